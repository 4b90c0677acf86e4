"""Stitching: `"inputs": [ … ]` joins several inputs, in order, into the timeline every
output is made from. Three inputs that differ in every way the engine must conform:

- `programme.mov`: 160x120 at 25 fps, a 440 Hz tone at 48 kHz stereo; cut to a clip of
  0.8 s (its frames 5..24);
- `bumper.mov`: 320x180 (16:9) at 50 fps, no audio, 1 s;
- `outro.mkv`: 160x120 at 25 fps, a 660 Hz tone at 44.1 kHz mono, 0.8 s.

Each frame carries its input and number as its brightness (programme 3·N, bumper 90+N,
outro 150+3·N), so every output frame names the frame it came from:

- the output holds the programme's clip, the bumper's frames at 25 fps (every other
  one, fitted into 160x120 with black bars), then the outro, none twice, none missing;
- the audio lasts as long as the pictures (within one frame), is silent exactly during
  the bumper, and each tone plays in its own input's time (the joins are in sync);
- conditions and the metadata see the joined timeline; quality is measured against it;
- an input that cannot be fetched fails the job naming it; malformed `inputs` are 400s."""

import subprocess
import uuid

import m3u8
import numpy as np
import pytest
import requests

from conftest import KEY_A, Copra, ffprobe, run_and_download, s3_storage
from test_subtitles import download_package

W, H = 160, 120
FPS = 25
# The joined timeline: (input, frame) for every output frame.
EXPECTED = [("programme", n) for n in range(5, 25)] + [("bumper", 2 * k) for k in range(25)] + [("outro", n) for n in range(20)]
BRIGHTNESS = {"programme": lambda n: 3 * n, "bumper": lambda n: 90 + n, "outro": lambda n: 150 + 3 * n}
FRAMES = {"programme": 30, "bumper": 50, "outro": 20}
CANDIDATES = [(name, n, f(n)) for name, f in BRIGHTNESS.items() for n in range(FRAMES[name])]
TOTAL = len(EXPECTED) / FPS  # 2.6 s
BUMPER = (0.8, 1.8)


def make(path, size, rate, seconds, lum, audio=None):
    args = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"nullsrc=size={size}:rate={rate}:duration={seconds},geq=lum='{lum}':cb=128:cr=128"]
    if audio:
        args += ["-f", "lavfi", "-i", audio]
    args += ["-c:v", "libx264", "-preset", "veryfast", "-qp", "0", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-b:a", "128k"] if audio else []
    subprocess.run(args + [str(path)], check=True)


@pytest.fixture(scope="module")
def inputs(media_dir, media_server):
    d = media_dir / "stitching"
    d.mkdir(exist_ok=True)
    make(d / "programme.mov", f"{W}x{H}", 25, 1.2, "3*N", "sine=frequency=440:sample_rate=48000:duration=1.2,pan=stereo|c0=c0|c1=c0")
    make(d / "bumper.mov", "320x180", 50, 1.0, "90+N")
    make(d / "outro.mkv", f"{W}x{H}", 25, 0.8, "150+3*N", "sine=frequency=660:sample_rate=44100:duration=0.8")
    base = f"{media_server}/stitching"
    return [
        {"url": f"{base}/programme.mov", "clips": [{"offset": 0.2, "duration": 0.8}]},
        {"url": f"{base}/bumper.mov"},
        {"url": f"{base}/outro.mkv"},
    ]


def lumas(path) -> np.ndarray:
    """The luma plane of every frame, as stored (no range conversion)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, H * W * 3 // 2)[:, :H * W].reshape(-1, H, W)


def centre_lumas(path) -> list:
    """The mean luma of the centre of every frame (inside any bars)."""
    return [float(f[40:80, 40:120].mean()) for f in lumas(path)]


def named(mean: float):
    name, n, value = min(CANDIDATES, key=lambda c: abs(c[2] - mean))
    assert abs(value - mean) < 1.2, (mean, name, n, value)
    return name, n


def samples(path, rate=48000) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.float32)


def tone(window: np.ndarray, rate=48000) -> float:
    spectrum = np.abs(np.fft.rfft(window * np.hanning(len(window))))
    return float(np.fft.rfftfreq(len(window), 1 / rate)[spectrum.argmax()])


def run(server, s3, inputs, outputs, tmp_path):
    job = {"inputs": inputs, "storage": s3_storage(s3, path=f"/stitch-{uuid.uuid4().hex[:6]}"), "outputs": outputs}
    return run_and_download(server, s3, job, tmp_path, timeout=180)


def test_inputs_are_joined_frame_exact_conformed_and_in_sync(shared_copra, s3, inputs, tmp_path):
    outputs = {
        "mp4": {"key": "joined", "path": "/joined.mp4", "metrics": ["psnr"]},
        "webm": {"key": "webm", "path": "/joined.webm", "if": "{{ input.duration }} > 2.5"},
        f"mp4:{W}x{H}": {"key": "skipped", "path": "/skipped.mp4", "if": "{{ input.duration }} < 1"},
        "mp3": {"key": "audio", "path": "/joined.mp3"},
    }
    final, files = run(shared_copra, s3, inputs, outputs, tmp_path)
    assert final["status"] == "job.completed", (final["input"], [o.get("error") for o in final["outputs"]], shared_copra.logs()[-4000:])
    by_key = {o["key"]: o for o in final["outputs"]}
    # Conditions see the joined 2.6 s, not the first input's 0.8 s.
    assert by_key["skipped"]["status"] == "video.skipped", by_key["skipped"]
    assert by_key["webm"]["status"] == "video.encoded", by_key["webm"]

    for key in ("joined", "webm"):
        streams = {s["codec_type"]: s for s in ffprobe(files[key])["streams"]}
        assert (streams["video"]["width"], streams["video"]["height"]) == (W, H), streams["video"]
        assert eval(streams["video"]["avg_frame_rate"]) == FPS, streams["video"]["avg_frame_rate"]
        got = [named(m) for m in centre_lumas(files[key])]
        assert got == EXPECTED, (key, got)

    joined = files["joined"]
    # The bumper (16:9 in 4:3) is fitted with black bars above and below.
    bumper = lumas(joined)[30]
    assert bumper[:10].mean() < 20 and bumper[-10:].mean() < 20 and abs(float(bumper[30:90].mean()) - BRIGHTNESS["bumper"](20)) < 1.5, bumper.mean(axis=1)

    streams = {s["codec_type"]: s for s in ffprobe(joined)["streams"]}
    assert abs(float(streams["video"]["duration"]) - TOTAL) <= 1 / FPS + 1e-6, streams["video"]["duration"]
    assert abs(float(streams["audio"]["duration"]) - TOTAL) <= 1 / FPS + 0.03, streams["audio"]["duration"]
    # Silent exactly during the bumper (which has no audio); no other gap of 20 ms.
    log = subprocess.run(["ffmpeg", "-nostdin", "-i", str(joined), "-map", "0:a", "-af", "silencedetect=n=-40dB:d=0.02", "-f", "null", "-"],
                         capture_output=True, text=True).stderr
    starts = [float(line.split("silence_start:")[1].split()[0]) for line in log.splitlines() if "silence_start:" in line]
    ends = [float(line.split("silence_end:")[1].split()[0]) for line in log.splitlines() if "silence_end:" in line]
    assert len(starts) == 1 and len(ends) == 1, log[-2000:]
    assert abs(starts[0] - BUMPER[0]) < 0.03 and abs(ends[0] - BUMPER[1]) < 0.03, (starts, ends)
    # Each tone in its own input's time: 440 Hz before the bumper, 660 Hz after it.
    pcm = samples(joined)
    at = lambda t: pcm[int(t * 48000):int(t * 48000) + 4800]
    assert abs(tone(at(0.2)) - 440) < 15 and abs(tone(at(0.65)) - 440) < 15
    assert abs(tone(at(1.85)) - 660) < 15 and abs(tone(at(2.45)) - 660) < 15
    assert np.abs(at(1.0)).max() < 0.01, "the bumper is silent"
    # An audio-only output reads no pictures: each input's part ends where its container
    # says, and the same silence sits in the same place.
    mp3 = ffprobe(files["audio"])
    assert abs(float(mp3["format"]["duration"]) - TOTAL) < 0.08, mp3["format"]
    log = subprocess.run(["ffmpeg", "-nostdin", "-i", str(files["audio"]), "-af", "silencedetect=n=-40dB:d=0.02", "-f", "null", "-"],
                         capture_output=True, text=True).stderr
    starts = [float(line.split("silence_start:")[1].split()[0]) for line in log.splitlines() if "silence_start:" in line]
    assert len(starts) == 1 and abs(starts[0] - BUMPER[0]) < 0.06, log[-2000:]
    pcm = samples(files["audio"])
    assert abs(tone(pcm[int(0.2 * 48000):][:4800]) - 440) < 15 and abs(tone(pcm[int(2.2 * 48000):][:4800]) - 660) < 15

    # The metadata: the input's part says what was joined; quality is measured against
    # the joined timeline frame by frame.
    metadata = requests.get(f"{shared_copra.url}/v2/metadata/jobs/{final['id']}", auth=(KEY_A, ""), timeout=10).json()
    joined_meta = metadata.get("metadata", metadata)["source"]["joined"]
    assert abs(joined_meta["duration"] - TOTAL) < 0.05 and len(joined_meta["inputs"]) == 3, joined_meta
    assert [p["has_audio"] for p in joined_meta["inputs"]] == [True, False, True], joined_meta
    measured = requests.get(f"{shared_copra.url}/v2/metadata/jobs/{final['id']}/joined", auth=(KEY_A, ""), timeout=10).json()
    assert measured["quality"]["frames"] == len(EXPECTED) and measured["quality"]["psnr"]["y"] > 35, measured["quality"]


def test_a_package_of_joined_inputs(shared_copra, s3, inputs, tmp_path):
    """A package is made from the joined timeline as a file is: its rendition holds the
    same frames, and its audio rendition both tones in their places."""
    prefix = f"/stitch-{uuid.uuid4().hex[:6]}"
    job = {"inputs": inputs, "storage": s3_storage(s3, path=prefix),
           "outputs": {"httpstream": {"hls": {"path": "/hls"}, "variants": [f"mp4:{W}x{H}"], "segment_duration": 1}}}
    final, _ = run_and_download(shared_copra, s3, job, tmp_path, timeout=180)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])
    pkg = download_package(s3, prefix, tmp_path / "pkg")
    master = m3u8.load(str(pkg / "hls/master.m3u8"))
    (variant,) = master.playlists
    video = pkg / "hls" / variant.uri
    assert [named(m) for m in centre_lumas(video)] == EXPECTED
    (audio,) = [m for m in master.media if m.type == "AUDIO"]
    pcm = samples(pkg / "hls" / audio.uri)
    assert abs(len(pcm) / 48000 - TOTAL) <= 1 / FPS + 0.05, len(pcm) / 48000
    assert abs(tone(pcm[int(0.3 * 48000):][:4800]) - 440) < 15 and abs(tone(pcm[int(2.2 * 48000):][:4800]) - 660) < 15
    assert np.abs(pcm[int(1.0 * 48000):int(1.6 * 48000)]).max() < 0.01


def test_an_input_that_cannot_be_fetched_fails_the_job_naming_it(shared_copra, s3, inputs, media_server, tmp_path):
    broken = inputs[:1] + [{"url": f"{media_server}/stitching/missing.mp4"}]
    final, _ = run(shared_copra, s3, broken, {"mp4": {"path": "/x.mp4"}}, tmp_path)
    assert final["status"] == "job.failed", final
    assert final["input"]["error"].startswith("Input 2: "), final["input"]


def test_an_input_that_is_not_media_fails_the_job_naming_it(shared_copra, s3, inputs, media_dir, media_server, tmp_path):
    (media_dir / "stitching" / "garbage.mp4").write_bytes(b"\x00\x01 not a video " * 500)
    final, _ = run(shared_copra, s3, inputs + [{"url": f"{media_server}/stitching/garbage.mp4"}], {"mp4": {"path": "/x.mp4"}}, tmp_path)
    assert final["status"] == "job.failed", final
    assert final["input"]["error"].startswith("Input 4 is not a media file"), final["input"]


@pytest.mark.parametrize("body, says", [
    ({"inputs": []}, "1 to 20"),
    ({"inputs": {"url": "https://example.com/a.mp4"}}, "1 to 20"),
    ({"inputs": [{"url": "https://example.com/a.mp4"}] * 21}, "1 to 20"),
    ({"inputs": [{"url": "https://example.com/a.mp4"}, {"url": "ftp://example.com/b.mp4"}]}, "In 'inputs' item 1: "),
    ({"inputs": [{"url": "https://example.com/a.mp4"}, {"upload": "abc"}]}, "only the first input"),
    ({"inputs": [{"url": "https://example.com/a.mp4"}], "input": {"url": "https://example.com/a.mp4"}}, "not both"),
])
def test_malformed_inputs_are_refused(shared_copra, s3, body, says):
    r = requests.post(f"{shared_copra.url}/v2/jobs", auth=(KEY_A, ""), timeout=10,
                      json={**body, "storage": s3_storage(s3), "outputs": {"mp4": {"path": "/x.mp4"}}})
    assert r.status_code == 400, r.text
    reply = r.json()
    assert reply["status"] == "error" and reply["error_code"] == "input_not_valid" and says in reply["message"], reply


def test_a_dry_run_sees_the_joined_inputs(shared_copra, s3, inputs, media_server):
    """A dry run probes every input and plans from the joined timeline, as the job would."""
    job = {"inputs": inputs, "storage": s3_storage(s3), "outputs": {
        "mp4": {"key": "long", "path": "/x.mp4", "if": "{{ input.duration }} > 2.5"},
        "webm": {"key": "short", "path": "/x.webm", "if": "{{ input.duration }} < 1"},
    }}
    answer = requests.post(f"{shared_copra.url}/v2/jobs?dry_run=true", auth=(KEY_A, ""), json=job, timeout=60)
    assert answer.status_code == 200, answer.text
    plan = {o["key"]: o for o in answer.json()["outputs"]}
    assert plan["long"]["status"] == "planned" and plan["short"]["status"] == "skipped", plan
    broken = {**job, "inputs": inputs + [{"url": f"{media_server}/stitching/missing.mp4"}]}
    answer = requests.post(f"{shared_copra.url}/v2/jobs?dry_run=true", auth=(KEY_A, ""), json=broken, timeout=60).json()
    assert answer["input"]["status"] == "input.failed" and answer["input"]["error"].startswith("Input 4: "), answer["input"]


def test_the_inputs_of_a_job_share_max_input_bytes(tmp_path_factory, inputs, media_dir):
    """One job cannot fetch twenty times the limit: each input may take what the ones
    before it left."""
    sizes = [(media_dir / "stitching" / name).stat().st_size for name in ("programme.mov", "bumper.mov", "outro.mkv")]
    limit = sizes[0] + sizes[1] + sizes[2] // 2
    assert max(sizes) < limit < sum(sizes), sizes
    copra = Copra(tmp_path_factory.mktemp("stitch-bytes") / "data", {"COPRA_LIMITS_MAX_INPUT_BYTES": str(limit)}).start()
    try:
        created = copra.post_job({"inputs": inputs, "storage": {"service": "local"}, "outputs": {"mp4": {"path": "/x.mp4"}}})
        assert created.status_code == 201, created.text
        final = copra.wait_job(created.json()["id"], timeout=120)
        assert final["status"] == "job.failed", final
        error = final["input"]["error"]
        assert error.startswith("Input 3: ") and "share max_input_bytes" in error, error
        created = copra.post_job({"inputs": inputs[:2], "storage": {"service": "local"}, "outputs": {"mp4": {"path": "/y.mp4"}}})
        assert copra.wait_job(created.json()["id"], timeout=120)["status"] == "job.completed"
    finally:
        copra.stop()
