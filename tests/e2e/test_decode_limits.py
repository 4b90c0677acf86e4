"""Limits that hold on what is decoded and on what a job's plans cost together.

`max_duration_secs` holds on decoded timestamps, not on what a container declares: a raw
H.264 stream (no duration at all) and an MKV whose header says 2 s but which holds 60 s
both fail naming the key. `max_pixels` holds on decoded pictures: a raw stream whose size
grows past it mid-way fails naming the key. A job whose plans cannot fit
`max_job_memory_mib` or `max_job_pictures` for any input is a 400 at submit; one that
fits nothing once its input is known fails its outputs with the estimate. A minute-long
4K GIF is made while the server's peak memory stays far below what keeping its frames
took (about 4 GB for this one)."""

import struct
import subprocess
import uuid

import pytest

import requests

from conftest import KEY_A, Copra, ffprobe, make_video

MAX_DURATION_SECS = 10
# 320x240 is within, 1280x720 is not.
MAX_PIXELS = 400 * 300


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def h264(path, size, seconds, rate=10):
    """A raw H.264 elementary stream: no container, so no declared duration."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
           "-c:v", "libx264", "-preset", "ultrafast", "-g", str(2 * rate), "-bsf:v", "h264_mp4toannexb", str(path))


def mkv_declaring(path, declared_secs, seconds):
    """An MKV holding `seconds` of video and audio whose Segment Info says it lasts
    `declared_secs`: its Duration element (ID 0x4489, an 8-byte float in milliseconds)
    is rewritten in place."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=10:duration={seconds}",
           "-f", "lavfi", "-i", f"sine=duration={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
           "-c:a", "aac", "-shortest", str(path))
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")
    assert at > 0, "no 8-byte Duration element"
    data[at + 3:at + 11] = struct.pack(">d", declared_secs * 1000.0)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def inputs(media_dir, media_server):
    h264(media_dir / "limits-raw60.h264", "320x240", 60)
    mkv_declaring(media_dir / "limits-declares2.mkv", 2, 60)
    # 3 s at 320x240, then 3 s at 1280x720, one stream.
    h264(media_dir / "limits-small.h264", "320x240", 3)
    h264(media_dir / "limits-large.h264", "1280x720", 3)
    (media_dir / "limits-grows.h264").write_bytes(
        (media_dir / "limits-small.h264").read_bytes() + (media_dir / "limits-large.h264").read_bytes())
    make_video(media_dir / "limits-ok.mp4", size="320x240", duration=3)
    # Within the limit alone (8 s), past it twice over, and declaring 2 s.
    mkv_declaring(media_dir / "limits-holds8.mkv", 2, 8)
    make_video(media_dir / "limits-large.mp4", size="1280x720", duration=1)
    make_video(media_dir / "limits-long.mp4", size="320x240", duration=MAX_DURATION_SECS + 2)
    names = ("raw60.h264", "declares2.mkv", "grows.h264", "ok.mp4", "holds8.mkv", "large.mp4", "long.mp4")
    return {name: f"{media_server}/limits-{name}" for name in names}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    copra = Copra(tmp_path_factory.mktemp("decode-limits") / "data", {
        "COPRA_LIMITS_MAX_DURATION_SECS": str(MAX_DURATION_SECS),
        "COPRA_LIMITS_MAX_PIXELS": str(MAX_PIXELS),
    }).start()
    yield copra
    copra.stop()


@pytest.fixture(scope="module")
def budget_server(tmp_path_factory):
    """The default limits: 2 GiB a job, 20,000 pictures a job."""
    copra = Copra(tmp_path_factory.mktemp("budget") / "data").start()
    yield copra
    copra.stop()


def job(url, outputs):
    return {"input": {"url": url}, "storage": {"service": "local"}, "outputs": outputs}


def run_to_failure(server, url, needles, timeout=120, **extra):
    created = server.post_job({**job(url, {"mp4:240p": {"path": f"/{uuid.uuid4().hex[:8]}.mp4"}}), **extra})
    assert created.status_code == 201, created.text
    final = server.wait_job(created.json()["id"], timeout=timeout)
    assert final["status"] == "job.failed", final
    errors = [final["input"].get("error") or ""] + [o.get("error") or "" for o in final["outputs"]]
    named = [e for e in errors if all(n in e for n in needles)]
    assert named, f"no error names {needles}: {errors}"
    return final


def test_the_inputs_declare_what_the_test_says(media_dir, inputs):
    """The inputs pass the probe's checks: only their decode can catch them."""
    raw = ffprobe(media_dir / "limits-raw60.h264")
    assert "duration" not in raw["format"], raw["format"]
    mkv = ffprobe(media_dir / "limits-declares2.mkv")
    assert abs(float(mkv["format"]["duration"]) - 2.0) < 0.01, mkv["format"]
    grows = ffprobe(media_dir / "limits-grows.h264")
    assert (grows["streams"][0]["width"], grows["streams"][0]["height"]) == (320, 240)


@pytest.mark.parametrize("name", ["raw60.h264", "declares2.mkv"])
def test_a_stream_longer_than_the_limit_fails_on_its_decoded_time(server, inputs, name):
    final = run_to_failure(server, inputs[name], ["max_duration_secs", f"limit of {MAX_DURATION_SECS} seconds"])
    # The input passed the probe: it is the decode that stopped it.
    assert final["input"]["status"] == "input.transferred", final["input"]
    assert final["outputs"][0]["status"] == "video.failed"
    assert "whatever the file declares" in final["outputs"][0]["error"]


def test_an_ultrafast_job_is_held_to_the_decoded_time_too(server, inputs):
    """Its cut points read the packets' times: past the limit, the job is not cut, and
    its one-piece encode stops at the limit."""
    final = run_to_failure(server, inputs["declares2.mkv"], ["max_duration_secs"], settings={"ultrafast": True})
    assert final["outputs"][0]["status"] == "video.failed"


def test_a_stream_that_grows_past_max_pixels_fails_naming_it(server, inputs):
    final = run_to_failure(server, inputs["grows.h264"], ["max_pixels", "1280x720", str(MAX_PIXELS)])
    assert final["input"]["status"] == "input.transferred", final["input"]


def test_an_input_within_the_limits_still_completes(server, inputs):
    created = server.post_job(job(inputs["ok.mp4"], {"mp4:240p": {"path": "/ok.mp4"}}))
    assert created.status_code == 201, created.text
    assert server.wait_job(created.json()["id"], timeout=120)["status"] == "job.completed"


def assert_refused(response, needles):
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == "error" and body["error_code"] == "outputs_not_valid", body
    for needle in needles:
        assert needle in body["message"], f"{needle!r} not in {body['message']!r}"
    return body["message"]


def test_a_job_over_the_memory_budget_is_refused_at_submit(budget_server, inputs):
    server = budget_server
    # Exact sizes do not depend on the input: three 4K H.264 encodes (x264's lookahead
    # holds ~55 pictures of 4K each) cannot fit 2 GiB, whatever the input.
    outputs = {"mp4:3840x2160": [{"key": f"uhd{i}", "path": f"/uhd{i}.mp4"} for i in range(3)]}
    message = assert_refused(server.post_job(job(inputs["ok.mp4"], outputs)),
                             ["max_job_memory_mib", "2048 MiB", "output 'uhd", "whatever the input"])
    assert "estimated" in message
    # One of them fits.
    one = {"mp4:3840x2160": {"key": "uhd", "path": "/uhd.mp4"}}
    created = server.post_job(job(inputs["ok.mp4"], one))
    assert created.status_code == 201, created.text


def test_a_job_over_the_memory_budget_for_its_input_fails_with_the_estimate(tmp_path, media_server):
    """Relative sizes are known only once the input is: two outputs at the input's size
    fit 400 MiB for the smallest input (~200 MiB) but not for this 720p one (~600 MiB),
    so the job is accepted and its outputs fail, naming the estimate and the key."""
    copra = Copra(tmp_path / "data", {"COPRA_LIMITS_MAX_JOB_MEMORY_MIB": "400"}).start()
    try:
        outputs = {"mp4": [{"key": f"same{i}", "path": f"/same{i}.mp4"} for i in range(2)]}
        created = copra.post_job(job(f"{media_server}/long.mp4", outputs))
        assert created.status_code == 201, created.text
        final = copra.wait_job(created.json()["id"], timeout=60)
        assert final["status"] == "job.failed", final
        for output in final["outputs"]:
            assert output["status"] == "video.failed", output
            assert "max_job_memory_mib" in output["error"] and "400 MiB" in output["error"], output["error"]
            assert "estimated" in output["error"] and "output 'same" in output["error"], output["error"]
    finally:
        copra.stop()


def test_too_many_pictures_in_one_job_is_refused_at_submit(budget_server, inputs):
    server = budget_server
    # Each output within max_pictures (10,000); fifty of them at 0.001 s write 500,000.
    outputs = {"jpg:160x": [{"key": f"t{i}", "path": f"/t{i}/%05d.jpg", "interval": 0.001} for i in range(50)]}
    assert_refused(server.post_job(job(inputs["ok.mp4"], outputs)), ["max_job_pictures", "20000"])
    # One of them is accepted.
    one = {"jpg:160x": {"path": "/one/%05d.jpg", "interval": 0.5}}
    created = server.post_job(job(inputs["ok.mp4"], one))
    assert created.status_code == 201, created.text


def vm_hwm_mib(pid) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_minute_long_4k_gif_keeps_memory_flat(tmp_path, media_dir, media_server):
    """`gif:3840x2160_2fps` over 60 s is 120 frames of 4K: kept for the palette, as they
    were, they took ~4 GB; made in two passes, a few at a time. The input is 4K at one
    frame a second to keep the test fast: the point is frames × size."""
    source = media_dir / "limits-4k.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=1:duration=60", "-c:v", "libx264",
           "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", str(source))
    copra = Copra(tmp_path / "data").start()
    try:
        created = copra.post_job(job(f"{media_server}/limits-4k.mp4",
                                     {"gif:3840x2160_2fps": {"path": "/big.gif", "duration": 60}}))
        assert created.status_code == 201, created.text
        final = copra.wait_job(created.json()["id"], timeout=600)
        peak = vm_hwm_mib(copra.proc.pid)
        assert final["status"] == "job.completed", final
        gif = next((tmp_path / "data" / "files").rglob("big.gif"))
        probed = ffprobe(gif)
        stream = probed["streams"][0]
        assert (stream["codec_name"], stream["width"], stream["height"]) == ("gif", 3840, 2160)
        assert abs(float(probed["format"]["duration"]) - 60) < 1.5, probed["format"]
        print(f"4K GIF: server peak {peak:.0f} MiB")
        assert peak < 1536, f"the server peaked at {peak:.0f} MiB"
    finally:
        copra.stop()


def test_joined_inputs_are_held_to_the_limit_together(server, inputs):
    """Two inputs of 8 s each, declaring 2 s: each is within the limit and the declared
    total (4 s) passes the probe, but their decoded 16 s do not."""
    job_inputs = {"inputs": [{"url": inputs["holds8.mkv"]}, {"url": inputs["holds8.mkv"]}]}
    created = server.post_job({**job_inputs, "storage": {"service": "local"}, "outputs": {"mp4:240p": {"path": "/joined.mp4"}}})
    assert created.status_code == 201, created.text
    final = server.wait_job(created.json()["id"], timeout=120)
    assert final["status"] == "job.failed", final
    error = final["outputs"][0]["error"]
    assert "max_duration_secs" in error and f"limit of {MAX_DURATION_SECS} seconds" in error, error


def test_a_joined_input_above_max_pixels_fails_the_job_naming_it(server, inputs):
    """Later inputs are conformed to the first's size, but each is decoded at its own:
    each is held to max_pixels before anything is decoded."""
    job_inputs = {"inputs": [{"url": inputs["ok.mp4"]}, {"url": inputs["large.mp4"]}]}
    created = server.post_job({**job_inputs, "storage": {"service": "local"}, "outputs": {"mp4:240p": {"path": "/large.mp4"}}})
    assert created.status_code == 201, created.text
    final = server.wait_job(created.json()["id"], timeout=120)
    assert final["status"] == "job.failed", final
    error = final["input"]["error"]
    assert error.startswith("Input 2: ") and "max_pixels" in error, error


def test_an_input_refused_for_its_length_still_shows_its_metadata(server, inputs):
    """Refused before any decode, from what the probe found: the input fails naming the
    limit, and its metadata says what it was."""
    created = server.post_job(job(inputs["long.mp4"], {"mp4:240p": {"path": "/long.mp4"}}))
    assert created.status_code == 201, created.text
    final = server.wait_job(created.json()["id"], timeout=120)
    assert final["status"] == "job.failed" and "max_duration_secs" in final["input"]["error"], final
    metadata = requests.get(f"{server.url}/v2/metadata/jobs/{final['id']}", auth=(KEY_A, ""), timeout=10).json()
    source = metadata.get("metadata", metadata)["source"]
    assert abs(float(source["format"]["duration"]) - (MAX_DURATION_SECS + 2)) < 0.2, source["format"]
