"""`offset` cuts at the right frame, not just to the right length: the input's frames
each carry their own number as their brightness (frame N is grey level 3·N), so the
first and last pictures of a cut name the frames they came from."""

import subprocess
import uuid

import pytest

from conftest import count_frames, frame_of, luma_means, s3_storage

FPS = 25
FRAMES = 80
W, H = 160, 120


def y_means(path) -> list:
    return luma_means(path, W, H)


@pytest.fixture(scope="module")
def counter(media_dir, media_server):
    d = media_dir / "counter"
    d.mkdir(exist_ok=True)
    path = d / "counter.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"nullsrc=size={W}x{H}:rate={FPS}:duration={FRAMES / FPS},geq=lum='3*N':cb=128:cr=128",
         "-c:v", "libx264", "-preset", "veryfast", "-qp", "0", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )
    means = y_means(path)
    assert len(means) == FRAMES
    # Every frame is told apart from its neighbours by its brightness alone.
    assert all(b - a >= 2.5 for a, b in zip(means, means[1:])), means
    return {"url": f"{media_server}/counter/counter.mp4", "means": means}


@pytest.mark.parametrize("offset,duration", [(1.48, 1.0), (0.04, 0.4), (2.0, None)])
def test_offset_starts_on_the_named_frame(shared_copra, s3, counter, tmp_path, offset, duration):
    output = {"path": "/cut.mp4", "offset": offset}
    if duration is not None:
        output["duration"] = duration
    prefix = f"/cut-{uuid.uuid4().hex[:6]}"
    created = shared_copra.post_job({"input": {"url": counter["url"]}, "storage": s3_storage(s3, path=prefix),
                                     "outputs": {f"mp4:{W}x{H}": output}})
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"], timeout=120)
    assert final["status"] == "job.completed", final
    local = tmp_path / "cut.mp4"
    s3["client"].download_file(s3["bucket"], final["outputs"][0]["url"].split(f"/{s3['bucket']}/", 1)[1], str(local))

    first = round(offset * FPS)
    last = (first + round(duration * FPS) if duration is not None else FRAMES) - 1
    means = y_means(local)
    assert count_frames(local) == last - first + 1
    got = [frame_of(m, counter["means"]) for m in means]
    assert got == list(range(first, last + 1)), ("frames out of the input", got)
