"""storage-cloud against real servers on loopback, each checked with its own client:
outputs (a video and numbered thumbnails) land at the provider's URLs, the same object
is a job's input (`input.service`), missing or malformed credentials are a 400
`storage_credentials_not_valid` naming the field, and no secret shows in the server's
log, the job's views or its events."""

import json

import pytest
import requests

from cloud_services import azure, gcs, rackspace, sftp  # noqa: F401  (fixtures)
from conftest import ADMIN_KEY, KEY_A, ffprobe
from test_observability import read_sse

PROVIDERS = ["azure", "gcs", "sftp", "rackspace"]


@pytest.fixture(params=PROVIDERS)
def provider(request):
    return request.getfixturevalue(request.param)


def everything_shown(server, job_id):
    """The job's views and events, and the server's log, as one text to grep."""
    view = server.get_job(job_id).json()
    meta = requests.get(f"{server.url}/v2/metadata/jobs/{job_id}", auth=(KEY_A, ""), timeout=10).text
    admin = requests.get(f"{server.url}/admin/jobs/{job_id}/events", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10).text
    with requests.get(f"{server.url}/v2/jobs/{job_id}/events", auth=(KEY_A, ""), stream=True, timeout=30) as response:
        events = json.dumps(read_sse(response))
    return "\n".join([json.dumps(view), meta, admin, events, server.logs()])


def assert_no_secret(text, secrets):
    for secret in secrets:
        assert secret not in text, f"a secret ({secret[:6]}…) was shown"


def test_outputs_land_at_the_providers_urls(shared_copra, media_server, provider, tmp_path):
    job = {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": provider.storage("/cloud/run"),
        "outputs": {
            "mp4:240p": {"path": "/video/v.mp4"},
            "jpg:160x": {"path": "/thumbs/t_%.2d.jpg", "number": 3},
        },
    }
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    final = shared_copra.wait_job(job_id)
    assert final["status"] == "job.completed", final
    outputs = {o["key"]: o for o in final["outputs"]}
    assert outputs["mp4:240p"]["url"] == provider.url("cloud/run/video/v.mp4")
    assert outputs["jpg:160x"]["urls"] == [provider.url(f"cloud/run/thumbs/t_{i:02d}.jpg") for i in (1, 2, 3)]
    assert provider.keys("cloud/run/") == ["cloud/run/thumbs/t_01.jpg", "cloud/run/thumbs/t_02.jpg",
                                           "cloud/run/thumbs/t_03.jpg", "cloud/run/video/v.mp4"]

    video = tmp_path / "v.mp4"
    provider.get("cloud/run/video/v.mp4", video)
    probe = ffprobe(video)
    (stream,) = [s for s in probe["streams"] if s["codec_type"] == "video"]
    assert (stream["width"], stream["height"]) == (426, 240)
    assert abs(float(probe["format"]["duration"]) - 5.0) <= 0.1
    thumb = tmp_path / "t.jpg"
    provider.get("cloud/run/thumbs/t_02.jpg", thumb)
    (picture,) = ffprobe(thumb)["streams"]
    assert (picture["codec_name"], picture["width"]) == ("mjpeg", 160)

    assert_no_secret(everything_shown(shared_copra, job_id), provider.secrets)


def test_an_object_there_is_a_jobs_input(shared_copra, media_dir, provider, tmp_path):
    provider.put("sources/in.mp4", media_dir / "input.mp4")
    source = provider.source("sources/in.mp4")
    job = {"input": source, "storage": provider.storage("/from-input"), "outputs": {"mp4:240p": {"path": "o.mp4"}}}
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"])
    assert final["status"] == "job.completed", final
    assert final["input"]["status"] == "input.transferred"
    local = tmp_path / "o.mp4"
    provider.get("from-input/o.mp4", local)
    assert abs(float(ffprobe(local)["format"]["duration"]) - 5.0) <= 0.1
    assert_no_secret(everything_shown(shared_copra, created.json()["id"]), provider.secrets)


def test_missing_or_malformed_credentials_are_refused_at_submit(shared_copra, media_server, provider):
    for storage, field in provider.bad():
        job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": storage, "outputs": {"mp4:240p": {"path": "x.mp4"}}}
        r = shared_copra.post_job(job)
        assert r.status_code == 400, (storage, r.text)
        body = r.json()
        assert body["status"] == "error" and body["error_code"] == "storage_credentials_not_valid", body
        assert field in body["message"], (field, body)
        # The same block as an input is refused too, before any work.
        source = dict(storage, key="sources/in.mp4")
        r = shared_copra.post_job({"input": source, "storage": provider.storage("/x"), "outputs": {"mp4:240p": {"path": "x.mp4"}}})
        assert r.status_code == 400 and r.json()["error_code"] == "storage_credentials_not_valid", r.text


def test_azure_with_a_sas_token_and_with_a_wrong_key(shared_copra, media_server, azure, tmp_path):
    job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": azure.storage("/sas", sas=True),
           "outputs": {"mp4:240p": {"path": "v.mp4"}}}
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"])
    assert final["status"] == "job.completed", final
    local = tmp_path / "v.mp4"
    azure.get("sas/v.mp4", local)
    assert ffprobe(local)["format"]["format_name"].startswith("mov")
    assert_no_secret(everything_shown(shared_copra, created.json()["id"]), azure.secrets)

    storage, wrong_key = azure.wrong("/wrong")
    created = shared_copra.post_job(dict(job, storage=storage))
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"])
    assert final["status"] == "job.failed", final
    assert azure.keys("wrong/") == []
    assert_no_secret(everything_shown(shared_copra, created.json()["id"]), azure.secrets + [wrong_key])


def test_rackspace_signs_in_per_job_and_a_refused_sign_in_fails_the_job(shared_copra, media_server, rackspace):
    before = rackspace.sign_ins
    storage = rackspace.storage("/refused")
    storage["credentials"] = dict(storage["credentials"], api_key="rax-wrong-key-0000")
    job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": storage, "outputs": {"mp4:240p": {"path": "v.mp4"}}}
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"])
    assert final["status"] == "job.failed", final
    assert rackspace.sign_ins == before and rackspace.keys("refused/") == []
    assert_no_secret(everything_shown(shared_copra, created.json()["id"]), rackspace.secrets + ["rax-wrong-key-0000"])


def test_sftp_refuses_a_server_whose_host_key_is_not_the_pinned_one(shared_copra, media_server, sftp):
    storage = sftp.storage("/pinned")
    storage["fingerprint"] = "SHA256:" + "A" * 43
    job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": storage, "outputs": {"mp4:240p": {"path": "v.mp4"}}}
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"])
    assert final["status"] == "job.failed", final
    assert sftp.keys("pinned") == []
    assert "host key" in shared_copra.logs()
    assert_no_secret(everything_shown(shared_copra, created.json()["id"]), sftp.secrets)


def test_an_sftp_host_the_outbound_policy_refuses_is_a_400_at_submit(shared_copra, media_server, sftp):
    for host in ("169.254.169.254", "10.1.2.3"):
        storage = dict(sftp.storage("/refused"), host=host)
        job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": storage, "outputs": {"mp4:240p": {"path": "v.mp4"}}}
        r = shared_copra.post_job(job)
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["error_code"] == "storage_not_valid" and host in body["message"], body
