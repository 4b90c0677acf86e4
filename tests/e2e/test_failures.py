"""Inputs that cannot be used end the job as failed with a message; the server goes on."""

import pytest
import requests

from conftest import free_port, s3_storage


def job_for(url, s3):
    return {"input": {"url": url}, "storage": s3_storage(s3, path="/fail"),
            "outputs": {"mp4:360p": {"path": "/f.mp4"}}}


@pytest.mark.parametrize("name,make_url,mention", [
    ("unreachable", lambda media: f"http://127.0.0.1:{free_port()}/nothing.mp4", "fetched"),
    ("404", lambda media: f"{media}/missing.mp4", "404"),
    ("not media", lambda media: f"{media}/not-media.mp4", "media"),
    ("truncated", lambda media: f"{media}/truncated.mp4", None),
])
def test_bad_input_fails_the_job_with_a_message(shared_copra, media_server, s3, webhooks, name, make_url, mention):
    job = job_for(make_url(media_server), s3)
    job["notification"] = {"type": "http", "url": f"{webhooks.url}/fail-{name.replace(' ', '-')}"}
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"], timeout=60)
    assert final["status"] == "job.failed", final
    if name == "truncated":
        # A truncated file may still probe (it fails while decoding) or not: either way
        # what failed says why.
        if final["input"]["status"] == "input.failed":
            assert final["input"]["error"].strip(), final
        else:
            assert final["input"]["status"] == "input.transferred", final
            output = final["outputs"][0]
            assert output["status"] == "video.failed" and output.get("error", "").strip(), final
    else:
        assert final["input"]["status"] == "input.failed"
        assert mention in final["input"]["error"], final["input"]["error"]
        assert final["outputs"][0]["status"] == "video.failed"
    failed = webhooks.wait_for(f"/fail-{name.replace(' ', '-')}", "job.failed")
    assert failed["data"]["status"] == "job.failed"
    # The server keeps serving.
    assert requests.get(f"{shared_copra.url}/health", timeout=5).status_code == 200
    assert shared_copra.get_job(created.json()["id"]).status_code == 200
