"""Clips: `"input": {"url": …, "clips": [{"offset", "duration"}, …]}` joins ranges of one
input into the timeline every output is made from. The input's frames each carry their
number as their brightness (frame N is grey level 3·N), so every output frame names the
input frame it came from; its audio is one unbroken tone (AAC: planar samples, cut within frames).

- the output holds exactly the frames of the clips, in order, none twice, none missing;
- the video and the audio last the clips' total within one frame, and the audio has no
  gap (no silence of 20 ms or more at the joins);
- an output's own `offset` applies to the joined timeline, conditions see its length,
  and quality is measured against the clips joined;
- a clip past the input's end fails the input, saying so; malformed clips are 400s."""

import re
import subprocess
import uuid

import pytest
import requests

from conftest import KEY_A, ffprobe, frame_of, luma_means, run_and_download, s3_storage

FPS = 25
FRAMES = 80
W, H = 160, 120
CLIPS = [{"offset": 0.4, "duration": 0.8}, {"offset": 2.0, "duration": 0.6}]
KEPT = list(range(10, 30)) + list(range(50, 65))


def y_means(path) -> list:
    return luma_means(path, W, H)


@pytest.fixture(scope="module")
def counter(media_dir, media_server):
    d = media_dir / "clips"
    d.mkdir(exist_ok=True)
    path = d / "counter.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"nullsrc=size={W}x{H}:rate={FPS}:duration={FRAMES / FPS},geq=lum='3*N':cb=128:cr=128",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={FRAMES / FPS}",
         "-c:v", "libx264", "-preset", "veryfast", "-qp", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path.with_suffix(".mov"))],
        check=True,
    )
    means = y_means(path.with_suffix(".mov"))
    assert len(means) == FRAMES
    return {"url": f"{media_server}/clips/counter.mov", "means": means}


def run(server, s3, counter, outputs, tmp_path, clips=CLIPS):
    job = {"input": {"url": counter["url"], "clips": clips}, "storage": s3_storage(s3, path=f"/clips-{uuid.uuid4().hex[:6]}"), "outputs": outputs}
    return run_and_download(server, s3, job, tmp_path, timeout=120)


def test_the_clips_are_joined_frame_exact_with_unbroken_audio(shared_copra, s3, counter, tmp_path):
    outputs = {
        f"mp4:{W}x{H}": {"key": "joined", "path": "/joined.mp4"},
        f"mov:{W}x{H}": {"key": "trimmed", "path": "/trimmed.mov", "offset": 0.6, "duration": 0.4},
        "webm:160x": {"key": "skipped", "path": "/skipped.webm", "if": "{{ input.duration }} > 2"},
        f"mp4:{W}x{H}::quality=5": {"key": "measured", "path": "/measured.mp4", "metrics": ["psnr"]},
    }
    final, files = run(shared_copra, s3, counter, outputs, tmp_path)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])
    by_key = {o["key"]: o for o in final["outputs"]}

    got = [frame_of(m, counter["means"]) for m in y_means(files["joined"])]
    assert got == KEPT, ("frames out of the input", got)
    streams = {s["codec_type"]: s for s in ffprobe(files["joined"])["streams"]}
    total = len(KEPT) / FPS
    assert abs(float(streams["video"]["duration"]) - total) <= 1 / FPS + 1e-6, streams["video"]["duration"]
    assert abs(float(streams["audio"]["duration"]) - total) <= 1 / FPS + 0.03, streams["audio"]["duration"]
    silences = subprocess.run(["ffmpeg", "-nostdin", "-i", str(files["joined"]), "-map", "0:a", "-af", "silencedetect=n=-40dB:d=0.02", "-f", "null", "-"],
                              capture_output=True, text=True).stderr
    assert not re.search(r"silence_start", silences), silences[-2000:]

    # An output's own offset and duration cut the joined timeline: frames 15..24 of the
    # clips' 35 (0.6 s in, 0.4 s long) are input frames 25..29 and 50..54.
    got = [frame_of(m, counter["means"]) for m in y_means(files["trimmed"])]
    assert got == KEPT[15:25], got
    # Conditions see the joined length (1.4 s), not the input's (3.2 s).
    assert by_key["skipped"]["status"] == "video.skipped", by_key["skipped"]
    # Quality is measured against the clips joined (frame N against frame N): a reference
    # read whole would be a second off and score far lower.
    metadata = requests.get(f"{shared_copra.url}/v2/metadata/jobs/{final['id']}/measured", auth=(KEY_A, ""), timeout=10).json()
    assert metadata["quality"]["psnr"]["y"] > 40 and metadata["quality"]["frames"] == len(KEPT), metadata["quality"]


def test_a_clip_past_the_input_fails_the_input(shared_copra, s3, counter, tmp_path):
    final, _ = run(shared_copra, s3, counter, {f"mp4:{W}x{H}": {"path": "/x.mp4"}}, tmp_path, clips=[{"offset": 1, "duration": 1}, {"offset": 9, "duration": 1}])
    assert final["status"] == "job.failed", final
    assert "clip 1 starts at 9" in final["input"]["error"] and "past the input's end" in final["input"]["error"], final["input"]


@pytest.mark.parametrize("clips, says", [
    ([], "1 to 100"),
    ([{"offset": 2, "duration": 1}, {"offset": 1, "duration": 1}], "do not overlap"),
    ([{"offset": 0}], "'duration'"),
    ([{"offset": 0, "duration": 1, "speed": 2}], "'speed'"),
])
def test_malformed_clips_are_refused(shared_copra, s3, clips, says):
    r = requests.post(f"{shared_copra.url}/v2/jobs", auth=(KEY_A, ""), timeout=10, json={
        "input": {"url": "https://example.com/in.mp4", "clips": clips},
        "storage": s3_storage(s3),
        "outputs": {"mp4": {"path": "/x.mp4"}},
    })
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == "error" and body["error_code"] == "input_not_valid" and says in body["message"], body
