"""Watermarks: an image drawn over the picture, checked pixel by pixel on what Copra made.

- over a flat grey input, the opaque half of a red PNG is blended at the given opacity,
  its transparent half (the PNG's own alpha) leaves the picture as it was, and so does
  everything outside it;
- the corner and margin place it; a time range shows it only then, with its fades;
- every rung of an HLS package has it, sized for the rung;
- an image at a refused address fails that output alone, naming why;
- bad parameters are a 400 in the API's error shape."""

import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
import requests

from conftest import KEY_A, run_and_download, s3_storage

W, H, FPS, DURATION = 320, 240, 10, 4
GREY = 128
RED = np.array([255.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def assets(media_dir):
    d = media_dir / "watermark"
    d.mkdir(exist_ok=True)
    # Flat grey, near-lossless, with audio.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin",
         "-f", "lavfi", "-i", f"color=c=0x808080:s={W}x{H}:r={FPS}:d={DURATION}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={DURATION}",
         "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(d / "grey.mp4")],
        check=True, timeout=120,
    )
    # 64x32: the left half opaque red, the right half fully transparent.
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin",
         "-f", "lavfi", "-i", "color=c=red@1.0:s=32x32,format=rgba",
         "-f", "lavfi", "-i", "color=c=black@0.0:s=32x32,format=rgba",
         "-filter_complex", "[0][1]hstack,format=rgba", "-frames:v", "1", str(d / "logo.png")],
        check=True, timeout=60,
    )
    return d


def frame_at(path: Path, seconds: float, size=(W, H)) -> np.ndarray:
    """The output's picture at `seconds`, as RGB floats (height, width, 3)."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-ss", str(seconds), "-i", str(path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True, timeout=60,
    ).stdout
    w, h = size
    return np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3).astype(np.float64)


def mean(region: np.ndarray) -> np.ndarray:
    return region.reshape(-1, 3).mean(axis=0)


def run_job(server, s3, media_server, outputs, tmp: Path):
    prefix = f"/wm-{uuid.uuid4().hex[:6]}"
    job = {"input": {"url": f"{media_server}/watermark/grey.mp4"}, "storage": s3_storage(s3, path=prefix), "outputs": outputs}
    final, files = run_and_download(server, s3, job, tmp)
    return final, files, prefix


def test_the_image_is_blended_where_it_is_placed_and_nowhere_else(shared_copra, s3, media_server, assets, tmp_path):
    logo = f"{media_server}/watermark/logo.png"
    outputs = {
        "mp4:240p::quality=5": {"key": "always", "path": "/always.mp4",
                                "watermark": {"url": logo, "position": "top-left", "margin": 16, "width": 64, "opacity": 0.5}},
        "mp4:240p::quality=4": {"key": "timed", "path": "/timed.mp4",
                                "watermark": {"url": logo, "position": "bottom-right", "margin": 20, "width": 64, "offset": 1, "duration": 2}},
        "mp4:240p::quality=3": {"key": "faded", "path": "/faded.mp4",
                                "watermark": {"url": logo, "position": "bottom-right", "margin": 20, "width": 64, "offset": 1, "duration": 2, "fade": 1}},
    }
    final, files, _ = run_job(shared_copra, s3, media_server, outputs, tmp_path)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])

    picture = frame_at(files["always"], 2.0)
    # The opaque half (x 16..48, y 16..48), inset 4 px from its edges for chroma.
    blended = mean(picture[20:44, 20:44])
    expected = 0.5 * RED + 0.5 * GREY
    assert np.abs(blended - expected).max() <= 12, (blended, expected)
    # The transparent half (x 48..80) and the rest of the picture are the input's grey.
    assert np.abs(mean(picture[20:44, 52:76]) - GREY).max() <= 4, mean(picture[20:44, 52:76])
    outside = np.concatenate([picture[60:, :].reshape(-1, 3), picture[:, 100:].reshape(-1, 3)])
    assert np.abs(outside - GREY).max() <= 6, np.abs(outside - GREY).max()

    # Bottom right with a 20 px margin, opaque: shown from 1 s to 3 s only.
    region = (slice(H - 20 - 32 + 4, H - 20 - 4), slice(W - 20 - 64 + 4, W - 20 - 32 - 4))
    shown = mean(frame_at(files["timed"], 2.0)[region])
    assert np.abs(shown - RED).max() <= 14, shown
    for t in (0.5, 3.5):
        assert np.abs(mean(frame_at(files["timed"], t)[region]) - GREY).max() <= 4, t
    # With a 1 s fade in and out: half-way in at 1.5 s, whole at 2 s, half-way out at 2.5 s.
    half = 0.5 * RED + 0.5 * GREY
    for t, expected in ((0.5, np.full(3, GREY)), (1.5, half), (2.0, RED), (2.5, half), (3.5, np.full(3, GREY))):
        seen = mean(frame_at(files["faded"], t)[region])
        assert np.abs(seen - expected).max() <= 26, (t, seen, expected)


def test_every_rung_of_a_package_has_it_sized_for_the_rung(shared_copra, s3, media_server, assets, tmp_path):
    logo = f"{media_server}/watermark/logo.png"
    outputs = {"httpstream": {"key": "hls", "hls": {"path": "/hls"}, "variants": ["mp4:240p", "mp4:160x"],
                              "watermark": {"url": logo, "position": "top-left", "margin": "5%", "width": "20%"}}}
    final, _, prefix = run_job(shared_copra, s3, media_server, outputs, tmp_path)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])
    listed = s3["client"].list_objects_v2(Bucket=s3["bucket"], Prefix=f"{prefix.strip('/')}/hls/")["Contents"]
    for obj in listed:
        local = tmp_path / "pkg" / obj["Key"].split("/hls/", 1)[1]
        local.parent.mkdir(parents=True, exist_ok=True)
        s3["client"].download_file(s3["bucket"], obj["Key"], str(local))
    for rung, (w, h) in {"240p": (320, 240), "120p": (160, 120)}.items():
        playlist = next((tmp_path / "pkg").rglob(f"{rung}/index.m3u8"))
        picture = frame_at(playlist, 1.0, (w, h))
        # 20 % of the width, 5 % margins: the opaque half spans 5 %..15 % of the width.
        x0, x1, y0 = round(0.05 * w), round(0.15 * w), round(0.05 * w)
        opaque = mean(picture[y0 + 2:y0 + (x1 - x0) - 2, x0 + 2:x1 - 2])
        assert np.abs(opaque - RED).max() <= 20, (rung, opaque)
        assert np.abs(mean(picture[h // 2:, w // 2:]) - GREY).max() <= 4, rung


def test_an_image_at_a_refused_address_fails_its_output_alone(shared_copra, s3, media_server, assets, tmp_path):
    outputs = {
        "mp4:240p": {"key": "bad", "path": "/bad.mp4", "watermark": {"url": "http://169.254.169.254/logo.png"}},
        "mp4:160x": {"key": "fine", "path": "/fine.mp4"},
    }
    final, files, _ = run_job(shared_copra, s3, media_server, outputs, tmp_path)
    by_key = {o["key"]: o for o in final["outputs"]}
    assert by_key["bad"]["status"] == "video.failed", by_key["bad"]
    assert "watermark image could not be fetched" in by_key["bad"]["error"], by_key["bad"]
    assert by_key["fine"]["status"] == "video.encoded" and "fine" in files, by_key["fine"]


@pytest.mark.parametrize("watermark, says", [
    ({"position": "top-left"}, "watermark.url"),
    ({"url": "file:///etc/passwd"}, "http or https"),
    ({"url": "https://example.com/l.png", "opacity": 1.5}, "watermark.opacity"),
    ({"url": "https://example.com/l.png", "position": "upside"}, "watermark.position"),
    ([{"url": "https://example.com/l.png"}] * 9, "1 to 8 images"),
])
def test_bad_parameters_are_refused(shared_copra, s3, watermark, says):
    r = requests.post(f"{shared_copra.url}/v2/jobs", auth=(KEY_A, ""), timeout=10, json={
        "input": {"url": "https://example.com/in.mp4"},
        "storage": s3_storage(s3),
        "outputs": {"mp4:240p": {"path": "/x.mp4", "watermark": watermark}},
    })
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == "error" and body["error_code"] == "output_param_not_valid" and says in body["message"], body
