"""Octet's v0 API against the real binary: `POST /v0/jobs/create` → the same queue, plugins,
FFmpeg and S3 as a Coconut job → Octet's callback; errors in Octet's `{"error"}` shape."""

import requests

from conftest import KEY_A, KEY_B, S3_ACCESS, S3_SECRET, ffprobe, wait_until


def destination(s3):
    return {
        "provider": "s3",
        "region": "us-east-1",
        "bucket": s3["bucket"],
        "endpoint": s3["endpoint"],
        "creds": {"access_key_id": S3_ACCESS, "secret_access_key": S3_SECRET},
    }


def create(server, body, key=KEY_A, bearer=False):
    if bearer:
        return requests.post(f"{server.url}/v0/jobs/create", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30)
    return requests.post(f"{server.url}/v0/jobs/create", auth=(key, ""), json=body, timeout=30)


def show(server, job_id, key=KEY_A):
    return requests.get(f"{server.url}/v0/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}, timeout=10)


def wait_octet(server, job_id, timeout=180):
    def done():
        view = show(server, job_id).json()
        return view if view["status"] in ("complete", "error") else None
    return wait_until(done, timeout, f"octet job {job_id} to finish", interval=0.2)


def test_octet_job_with_two_outputs(shared_copra, media_server, s3, webhooks, tmp_path):
    body = {
        "input": {"url": f"{media_server}/input.mp4"},
        "destination": destination(s3),
        "outputs": [
            {"codec": "h264", "resolution": "1280x-1", "dest_path": "octet/full/path/vid_720.mp4",
             "bitrate_kbps": 2000, "preset": "fast", "profile": "high", "level": "4.1", "rc": "vbr"},
            {"codec": "h264", "resolution": "-1x360", "dest_path": "octet/full/path/vid_360.mp4",
             "rc": "constqp", "qp": 30, "scale_interp_algo": "lanczos", "profile": "main", "coder": "cavlc"},
        ],
        "callback": f"{webhooks.url}/octet",
    }
    created = create(shared_copra, body, bearer=True)
    assert created.status_code == 200, created.text
    job = created.json()
    job_id = job["job_id"]
    assert job["status"] == "pending"
    assert [o["dest_path"] for o in job["outputs"]] == ["octet/full/path/vid_720.mp4", "octet/full/path/vid_360.mp4"]
    assert all(o["status"] == "pending" for o in job["outputs"])

    # A translated job is just a job: the Coconut view shows the plan's format strings.
    coconut = shared_copra.get_job(job_id).json()
    assert [o["format"] for o in coconut["outputs"]] == [
        "mp4:h264_1280x_2000k:none:preset=fast,profile=high,level=4.1,rc=vbr",
        "mp4:h264_x360:none:profile=main,rc=constqp,coder=cavlc,qp=30,scale=lanczos",
    ]

    final = wait_octet(shared_copra, job_id)
    assert final["status"] == "complete", final
    assert final["progress"] == 100
    assert final["completed_at"] is not None
    expected = {
        "octet/full/path/vid_720.mp4": (1280, 720, "High", 41),
        "octet/full/path/vid_360.mp4": (640, 360, "Main", None),
    }
    for output in final["outputs"]:
        assert output["status"] == "complete", output
        object_key = output["dest_path"]
        assert output["url"] == f"{s3['endpoint']}/{s3['bucket']}/{object_key}"
        width, height, profile, level = expected[object_key]
        local = tmp_path / object_key.replace("/", "_")
        s3["client"].download_file(s3["bucket"], object_key, str(local))
        probe = ffprobe(local)
        streams = probe["streams"]
        assert [s["codec_type"] for s in streams] == ["video"], "Octet outputs carry no audio"
        video = streams[0]
        assert video["codec_name"] == "h264"
        assert (video["width"], video["height"]) == (width, height)
        assert video["profile"] == profile
        if level is not None:
            assert video["level"] == level
        if object_key.endswith("720.mp4"):
            kbps = int(probe["format"]["bit_rate"]) / 1000
            assert 1000 <= kbps <= 3000, f"vbr at 2000k came out at {kbps} kbit/s"

    # Octet's callback: one POST, for the final event only.
    hook = wait_until(lambda: webhooks.received("/octet"), 30, "the octet callback")[0]
    assert hook["body"] == {"api_version": "v0", "job_id": job_id, "status": "complete"}
    assert hook["content_type"] == "application/json"
    # Earlier events are delivered (as nothing) before the final one, so one is all.
    assert len(webhooks.received("/octet")) == 1


def test_failed_job_calls_back_with_error(shared_copra, media_server, s3, webhooks):
    body = {
        "input": {"url": f"{media_server}/missing.mp4"},
        "destination": destination(s3),
        "outputs": [{"codec": "h264", "resolution": "-1x240", "dest_path": "octet/missing.mp4"}],
        "callback": f"{webhooks.url}/octet-failed",
    }
    created = create(shared_copra, body)
    assert created.status_code == 200, created.text
    job_id = created.json()["job_id"]
    final = wait_octet(shared_copra, job_id, timeout=60)
    assert final["status"] == "error"
    assert final["error"]
    assert final["outputs"][0]["status"] == "error"
    hook = wait_until(lambda: webhooks.received("/octet-failed"), 30, "the octet callback")[0]
    assert hook["body"] == {"api_version": "v0", "job_id": job_id, "status": "error"}


def test_bad_requests_are_400_with_an_error(shared_copra, media_server, s3):
    def body(**output):
        base = {"codec": "h264", "resolution": "1280x720", "dest_path": "octet/bad.mp4"}
        base.update(output)
        return {"input": {"url": f"{media_server}/input.mp4"}, "destination": destination(s3), "outputs": [base]}

    no_input = body()
    del no_input["input"]
    cases = [
        (no_input, "input"),
        (body(codec="vp9"), "outputs[0].codec"),
        (body(resolution="1280x720p"), "outputs[0].resolution"),
        (body(resolution="-1x-1"), "outputs[0].resolution"),
        (body(preset="placebo"), "outputs[0].preset"),
        (body(rc="cbr"), "bitrate_kbps"),
        (body(qp=99), "qp"),
        # Checked by the format plugin, as for a Coconut job.
        (body(profile="baseline", coder="cabac"), "CABAC"),
    ]
    for request, needle in cases:
        answer = create(shared_copra, request)
        assert answer.status_code == 400, (request, answer.text)
        error = answer.json()
        assert set(error) == {"error"}, error
        assert needle in error["error"], (needle, error)

    broken = requests.post(f"{shared_copra.url}/v0/jobs/create", auth=(KEY_A, ""), data=b"{not json", timeout=10)
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json()["error"]

    no_creds = body()
    del no_creds["destination"]["creds"]
    answer = create(shared_copra, no_creds)
    assert answer.status_code == 400 and "creds" in answer.json()["error"]


def test_auth_and_ownership(shared_copra, media_server, s3):
    body = {
        "input": {"url": f"{media_server}/missing.mp4"},
        "destination": destination(s3),
        "outputs": [{"codec": "h264", "resolution": "-1x240", "dest_path": "octet/owned.mp4"}],
    }
    anonymous = requests.post(f"{shared_copra.url}/v0/jobs/create", json=body, timeout=10)
    assert anonymous.status_code == 401
    assert set(anonymous.json()) == {"error"}
    wrong = create(shared_copra, body, key="not-a-key", bearer=True)
    assert wrong.status_code == 401

    created = create(shared_copra, body)
    assert created.status_code == 200, created.text
    job_id = created.json()["job_id"]
    assert show(shared_copra, job_id).status_code == 200
    assert requests.get(f"{shared_copra.url}/v0/jobs/{job_id}", timeout=10).status_code == 401
    other = show(shared_copra, job_id, key=KEY_B)
    assert other.status_code == 404
    assert set(other.json()) == {"error"}
    assert show(shared_copra, "nosuchjob").status_code == 404
    missing_route = requests.get(f"{shared_copra.url}/v0/nothing", auth=(KEY_A, ""), timeout=10)
    assert missing_route.status_code == 404 and "error" in missing_route.json()
