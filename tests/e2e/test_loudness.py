"""Loudness normalization (EBU R128 / ITU-R BS.1770-4), checked by two independent
meters on the files Copra made: FFmpeg's `ebur128` filter (the `ffmpeg` command) and
PyPI's `pyloudnorm`.

- a quiet input (-35 LUFS, with clicks whose peaks a plain gain would push past the
  ceiling) and a loud one (-8 LUFS) both come out at -16 LUFS within 1 LU, with their
  true peaks at or under -1.5 dBTP; the quiet one needed the limiter, the loud one not;
- the output's metadata says what was measured (the output's figures, the input's,
  the gain, whether the limiter ran), agreeing with the meters;
- `{"measure_only": true}` reports the input's loudness, and its decoded audio is
  bit-identical to the same output's without it;
- presets (`ebu` on an audio-only MP3, `streaming` on an HLS package's audio rendition,
  `atsc` on a DASH-only package, read back from its manifest);
- a bad target is a 400 in the API's error shape, naming the parameter."""

import json
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import requests

from conftest import KEY_A, run_and_download, s3_storage

RATE = 48000
DURATION = 8
LOUDNESS = {"integrated": -16, "true_peak": -1.5, "lra": 11}


def decode(path: Path) -> np.ndarray:
    """The file's audio as float samples, (n, channels), at 48 kHz stereo."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", "0:a:0", "-ac", "2", "-ar", str(RATE), "-f", "f32le", "-"],
        check=True, capture_output=True, timeout=120,
    ).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2).astype(np.float64)


def pyloudnorm_lufs(path: Path) -> float:
    return float(pyloudnorm.Meter(RATE).integrated_loudness(decode(path)))


def ebur128(path: Path, stream: int = 0) -> dict:
    """Integrated loudness and true peak of an audio stream, from FFmpeg's ebur128
    filter's summary."""
    log = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-nostdin", "-i", str(path), "-map", f"0:a:{stream}", "-af", "ebur128=peak=true", "-f", "null", "-"],
        check=True, capture_output=True, text=True, timeout=120,
    ).stderr
    summary = log[log.rindex("Summary:"):]
    figure = lambda label: float(summary.split(label, 1)[1].split()[0])  # noqa: E731
    return {"integrated": figure("I:"), "true_peak": figure("Peak:"), "lra": figure("LRA:")}


def make_input(path: Path, expr: str, lufs: float):
    """A 320x240 video with stereo PCM audio of `expr(A)` scaled to `lufs` (measured by
    pyloudnorm on a first rendering, the amplitude then corrected)."""
    def render(amplitude: float):
        audio = f"aevalsrc=exprs='{expr.format(A=amplitude)}':s={RATE}:c=stereo:d={DURATION}"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-nostdin",
             "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=10:duration={DURATION}",
             "-f", "lavfi", "-i", audio,
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", "-shortest", str(path)],
            check=True, timeout=120,
        )
    render(0.01)
    render(0.01 * 10 ** ((lufs - pyloudnorm_lufs(path)) / 20))
    measured = pyloudnorm_lufs(path)
    assert abs(measured - lufs) < 0.2, measured


# A tone with 0.5 ms clicks 22 dB above it (near -12 dBFS) twice a second: quiet, but with peaks far above
# its loudness, so that +19 dB of gain needs the limiter.
QUIET = "{A}*(sin(2*PI*440*t)+if(lt(mod(t\\,0.5)\\,0.0005)\\,13\\,0))"
# A chord, loud and dense (peaks near its loudness).
LOUD = "{A}*(sin(2*PI*220*t)+sin(2*PI*277*t)+sin(2*PI*330*t))/3"


@pytest.fixture(scope="module")
def inputs(media_dir):
    d = media_dir / "loudness"
    d.mkdir(exist_ok=True)
    make_input(d / "quiet.mov", QUIET, -35.0)
    make_input(d / "loud.mov", LOUD, -8.0)
    return d


def metadata(server, job_id, key):
    r = requests.get(f"{server.url}/v2/metadata/jobs/{job_id}/{key}", auth=(KEY_A, ""), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def run_job(server, s3, media_server, source: str, outputs: dict, tmp: Path, settings=None):
    prefix = f"/loud-{uuid.uuid4().hex[:6]}"
    job = {"input": {"url": f"{media_server}/loudness/{source}"}, "storage": s3_storage(s3, path=prefix), "outputs": outputs}
    if settings:
        job["settings"] = settings
    final, files = run_and_download(server, s3, job, tmp)
    assert final["status"] == "job.completed", (final, server.logs()[-3000:])
    return final, files, prefix


@pytest.mark.parametrize("source, gain, limited", [("quiet.mov", 19.0, True), ("loud.mov", -8.0, False)])
def test_output_lands_at_the_target_under_the_ceiling(shared_copra, s3, media_server, inputs, tmp_path, source, gain, limited):
    final, files, _ = run_job(shared_copra, s3, media_server, source, {"mp4:240p": {"key": "norm", "path": "/norm.mp4", "loudness": LOUDNESS}}, tmp_path)
    theirs, pln = ebur128(files["norm"]), pyloudnorm_lufs(files["norm"])
    ours = metadata(shared_copra, final["id"], "norm")["loudness"]
    print(source, json.dumps(ours), theirs, pln)
    assert abs(theirs["integrated"] - -16) <= 1.0, theirs
    assert abs(pln - -16) <= 1.0, pln
    assert theirs["true_peak"] <= -1.5, theirs
    # The metadata: the output's own figures, the input's, and what was done.
    assert ours["of"] == "output" and ours["target"] == {"integrated": -16, "true_peak": -1.5, "lra": 11}, ours
    assert abs(ours["integrated"] - theirs["integrated"]) <= 0.3, (ours, theirs)
    assert abs(ours["true_peak"] - theirs["true_peak"]) <= 0.3, (ours, theirs)
    assert abs(ours["input"]["integrated"] - (-16 - gain)) <= 0.5, ours
    # The limiter takes loudness off the clicks; the gain makes it up.
    assert ours["limiter"] is limited and -0.5 <= ours["gain"] - gain <= (6.0 if limited else 0.5), ours


def test_an_ultrafast_job_is_normalized_too(shared_copra, s3, media_server, inputs, tmp_path):
    """Ultrafast encodes the audio apart from the video chunks: the same gain applies."""
    outputs = {"mp4:240p": {"key": "uf", "path": "/uf.mp4", "loudness": LOUDNESS}}
    final, files, _ = run_job(shared_copra, s3, media_server, "quiet.mov", outputs, tmp_path, settings={"ultrafast": True})
    history = requests.get(f"{shared_copra.url}/v2/jobs/{final['id']}/events", auth=(KEY_A, ""), stream=True, timeout=30).text
    assert "ultrafast:" in history, history
    theirs = ebur128(files["uf"])
    assert abs(theirs["integrated"] - -16) <= 1.0 and theirs["true_peak"] <= -1.5, theirs
    ours = metadata(shared_copra, final["id"], "uf")["loudness"]
    assert ours["of"] == "output" and ours["limiter"] is True and abs(ours["integrated"] - theirs["integrated"]) <= 0.3, ours


def test_measure_only_reports_the_input_and_leaves_the_audio(shared_copra, s3, media_server, inputs, tmp_path):
    outputs = {
        "mp4:240p": {"key": "plain", "path": "/plain.mp4"},
        "mp4:360p": {"key": "measured", "path": "/measured.mp4", "loudness": {"measure_only": True}},
    }
    final, files, _ = run_job(shared_copra, s3, media_server, "quiet.mov", outputs, tmp_path)
    md5 = lambda f: subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(f), "-map", "0:a:0", "-f", "md5", "-"], check=True, capture_output=True, text=True).stdout  # noqa: E731
    assert md5(files["plain"]) == md5(files["measured"]), "measure-only changed the audio"
    ours = metadata(shared_copra, final["id"], "measured")["loudness"]
    source = ebur128(inputs / "quiet.mov")
    assert ours["of"] == "input" and "gain" not in ours, ours
    assert abs(ours["integrated"] - source["integrated"]) <= 0.3 and abs(ours["true_peak"] - source["true_peak"]) <= 0.3, (ours, source)
    assert "loudness" not in metadata(shared_copra, final["id"], "plain")


def test_presets_and_a_package(shared_copra, s3, media_server, inputs, tmp_path):
    outputs = {
        "mp3": {"key": "ebu", "path": "/ebu.mp3", "loudness": "ebu"},
        "httpstream": [
            {"key": "hls", "hls": {"path": "/hls"}, "variants": ["mp4:240p"], "loudness": "streaming"},
            {"key": "dash", "dash": {"path": "/dash"}, "variants": ["mp4:240p"], "loudness": "atsc"},
        ],
    }
    final, files, prefix = run_job(shared_copra, s3, media_server, "loud.mov", outputs, tmp_path)
    assert abs(ebur128(files["ebu"])["integrated"] - -23) <= 1.0
    # Each package's audio, read back as a player would: HLS's audio rendition (its
    # playlist and segments), and the DASH manifest with its segments.
    listed = s3["client"].list_objects_v2(Bucket=s3["bucket"], Prefix=f"{prefix.strip('/')}/")["Contents"]
    for obj in listed:
        local = tmp_path / "pkg" / obj["Key"].split("/", 1)[1]
        local.parent.mkdir(parents=True, exist_ok=True)
        s3["client"].download_file(s3["bucket"], obj["Key"], str(local))
    for key, read_back, target, peak in (("hls", next((tmp_path / "pkg/hls").rglob("audio*/index.m3u8")), -14, -1.0),
                                          ("dash", next((tmp_path / "pkg/dash").glob("*.mpd")), -24, -2.0)):
        theirs = ebur128(read_back)
        assert abs(theirs["integrated"] - target) <= 1.0 and theirs["true_peak"] <= peak, (key, theirs)
        ours = metadata(shared_copra, final["id"], key)["loudness"]
        assert ours["of"] == "output" and abs(ours["integrated"] - theirs["integrated"]) <= 0.3, (key, ours, theirs)


@pytest.mark.parametrize("loudness, says", [
    ({"integrated": 3}, "loudness.integrated"),
    ({"true_peak": -20}, "loudness.true_peak"),
    ({"measure_only": True, "integrated": -16}, "measure_only"),
    ("radio", "radio"),
    ({"volume": 3}, "loudness.volume"),
])
def test_a_bad_target_is_refused(shared_copra, s3, loudness, says):
    r = shared_copra.post_job({
        "input": {"url": "https://example.com/in.mp4"},
        "storage": s3_storage(s3),
        "outputs": {"mp4:240p": {"path": "/x.mp4", "loudness": loudness}},
    })
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == "error" and body["error_code"] == "output_param_not_valid" and says in body["message"], body
