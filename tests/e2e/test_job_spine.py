"""The whole path of a job: Coconut v2 REST → queue → plugins → FFmpeg → S3 → webhook."""

import re

from conftest import KEY_A, count_frames, ffprobe, s3_storage, wait_until

INPUT_DURATION = 5.0


def test_transcode_to_s3_with_condition_and_webhook(shared_copra, media_server, s3, webhooks, tmp_path):
    job = {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": s3_storage(s3, path="/spine"),
        "notification": {"type": "http", "url": f"{webhooks.url}/spine", "events": True, "metadata": True},
        "outputs": {
            "mp4:720p": {"path": "/720p/video.mp4"},
            "mp4:360p::quality=4": {"key": "mp4:360p", "path": "/360p/video.mp4"},
            "mp4:1080p": {"path": "/1080p/video.mp4", "if": "{{ input.width }} >= 1920"},
        },
    }
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    body = created.json()
    assert re.fullmatch(r"[A-Za-z0-9]{14}", body["id"])
    assert body["status"] == "job.starting"
    assert body["progress"] == "0%"
    assert body["completed_at"] is None
    assert body["input"] == {"status": "input.starting"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000", body["created_at"])
    assert [o["key"] for o in body["outputs"]] == ["mp4:720p", "mp4:360p", "mp4:1080p"]
    assert all(o["type"] == "video" and o["status"] == "video.waiting" for o in body["outputs"])
    assert body["outputs"][1]["format"] == "mp4:360p::quality=4"

    # Progress is observed rising while the job runs, and ends at 100%.
    seen_progress = []

    def finished():
        view = shared_copra.get_job(body["id"]).json()
        seen_progress.append(int(view["progress"].rstrip("%")))
        return view if view["status"] in ("job.completed", "job.failed") else None

    final = wait_until(finished, 180, "job to finish", interval=0.1)
    assert final["status"] == "job.completed", final
    assert final["progress"] == "100%"
    assert seen_progress == sorted(seen_progress), "progress went backwards"
    assert any(0 < p < 100 for p in seen_progress), f"no progress seen between 0% and 100%: {seen_progress}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000", final["completed_at"])
    assert final["input"]["status"] == "input.transferred"
    outputs = {o["key"]: o for o in final["outputs"]}
    assert outputs["mp4:1080p"]["status"] == "video.skipped"
    assert "url" not in outputs["mp4:1080p"]

    # The files are in the bucket, and are what was asked for.
    expected = {"mp4:720p": ("spine/720p/video.mp4", 1280, 720), "mp4:360p": ("spine/360p/video.mp4", 640, 360)}
    for key, (object_key, width, height) in expected.items():
        assert outputs[key]["status"] == "video.encoded"
        assert outputs[key]["url"] == f"{s3['endpoint']}/{s3['bucket']}/{object_key}"
        local = tmp_path / object_key.replace("/", "_")
        s3["client"].download_file(s3["bucket"], object_key, str(local))
        probe = ffprobe(local)
        video = next(s for s in probe["streams"] if s["codec_type"] == "video")
        audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")
        assert video["codec_name"] == "h264"
        assert (video["width"], video["height"]) == (width, height)
        assert video["pix_fmt"] == "yuv420p"
        assert audio["codec_name"] == "aac"
        assert abs(float(probe["format"]["duration"]) - INPUT_DURATION) <= 0.1, probe["format"]["duration"]
        assert count_frames(local) == 125

    # Webhooks: per-event callbacks, then job.completed with every url.
    done = webhooks.wait_for("/spine", "job.completed")
    assert done["job_id"] == body["id"]
    urls = {o["key"]: o.get("url") for o in done["data"]["outputs"]}
    assert urls["mp4:720p"] == outputs["mp4:720p"]["url"]
    assert urls["mp4:360p"] == outputs["mp4:360p"]["url"]
    assert done["data"]["status"] == "job.completed"
    assert done["metadata"] is True
    events = [h["body"]["event"] for h in webhooks.received("/spine")]
    assert events.count("input.transferred") == 1
    assert events.count("output.completed") == 2
    assert events[-1] == "job.completed"

    # Metadata of input and outputs.
    meta = shared_copra_get(shared_copra, f"/v2/metadata/jobs/{body['id']}")
    assert meta.status_code == 200
    meta = meta.json()
    assert set(meta) == {"source", "mp4:720p", "mp4:360p"}
    source_video = next(s for s in meta["source"]["streams"] if s["codec_type"] == "video")
    assert (source_video["width"], source_video["height"]) == (1280, 720)
    one = shared_copra_get(shared_copra, f"/v2/metadata/jobs/{body['id']}/mp4:360p")
    assert one.status_code == 200
    v = next(s for s in one.json()["streams"] if s["codec_type"] == "video")
    assert (v["codec_name"], v["width"], v["height"]) == ("h264", 640, 360)
    missing = shared_copra_get(shared_copra, f"/v2/metadata/jobs/{body['id']}/mp4:1080p")
    assert missing.status_code == 404
    assert missing.json()["status"] == "error" and missing.json()["error_code"] == "metadata_not_found", missing.text


def shared_copra_get(server, path, key=KEY_A):
    import requests
    return requests.get(f"{server.url}{path}", auth=(key, ""), timeout=10)


def test_local_storage_is_served_back(shared_copra, media_server, tmp_path):
    job = {
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": {"service": "local", "path": "/local-test"},
        "outputs": {"mp4:240p": {"path": "small.mp4"}},
    }
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"])
    assert final["status"] == "job.completed", final
    url = final["outputs"][0]["url"]
    import re
    assert re.fullmatch(re.escape(shared_copra.url) + r"/files/t[0-9a-f]{24}/local-test/small\.mp4", url), url
    import requests
    assert requests.get(url, timeout=10).status_code == 401, "local files need an API key"
    got = requests.get(url, auth=(KEY_A, ""), timeout=10)
    assert got.status_code == 200
    out = tmp_path / "small.mp4"
    out.write_bytes(got.content)
    video = next(s for s in ffprobe(out)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (426, 240)


def test_input_from_a_storage_service(shared_copra, media_dir, s3, tmp_path):
    """`input.service` fetches the source through a storage plugin instead of a URL."""
    s3["client"].upload_file(str(media_dir / "input.mp4"), s3["bucket"], "sources/in.mp4")
    storage = s3_storage(s3, path="/from-s3")
    source = {k: v for k, v in storage.items() if k not in ("path",)}
    source["key"] = "sources/in.mp4"
    job = {"input": source, "storage": storage, "outputs": {"mp4:240p": {"path": "o.mp4"}}}
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"])
    assert final["status"] == "job.completed", final
    local = tmp_path / "o.mp4"
    s3["client"].download_file(s3["bucket"], "from-s3/o.mp4", str(local))
    assert abs(float(ffprobe(local)["format"]["duration"]) - INPUT_DURATION) <= 0.1
