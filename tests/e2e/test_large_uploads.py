"""Outputs larger than one upload part: an S3 output over one 8 MiB part goes up as a
multipart upload (its ETag says how many parts) and arrives whole; a `custom` target's
plugin gets a file over 1 MiB in several chunks and the server it PUTs to gets every byte
once, in order. A 60 s stereo WAV (about 10-11 MB of PCM) is the large output: its RIFF
header states its own length, so a lost, repeated or reordered chunk shows."""

import struct
import subprocess

import pytest

from conftest import copra_with_plugins, ffprobe, s3_storage
from test_custom_storage import EXAMPLES, put_server  # noqa: F401 (fixture)

SECONDS = 60


@pytest.fixture(scope="module")
def long_audio(media_dir, media_server):
    d = media_dir / "large"
    d.mkdir(exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
                    "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}",
                    "-ac", "2", "-c:a", "aac", "-b:a", "64k", str(d / "long-audio.m4a")], check=True)
    return f"{media_server}/large/long-audio.m4a"


def assert_whole_wav(path, more_than):
    data = path.read_bytes()
    assert len(data) > more_than, len(data)
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    (riff_size,) = struct.unpack("<I", data[4:8])
    assert riff_size + 8 == len(data), ("the file is not the length its header states", riff_size + 8, len(data))
    (audio,) = ffprobe(path)["streams"]
    assert abs(float(audio["duration"]) - SECONDS) < 0.1, audio["duration"]


def test_an_output_over_one_part_is_a_multipart_upload(shared_copra, s3, long_audio, tmp_path):
    created = shared_copra.post_job({"input": {"url": long_audio}, "storage": s3_storage(s3, path="/large"),
                                     "outputs": {"wav": {"path": "/long.wav"}}})
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"], timeout=120)
    assert final["status"] == "job.completed", final
    head = s3["client"].head_object(Bucket=s3["bucket"], Key="large/long.wav")
    # A multipart object's ETag is "<md5 of the parts' md5s>-<number of parts>".
    assert head["ETag"].strip('"').endswith("-2"), head["ETag"]
    local = tmp_path / "long.wav"
    s3["client"].download_file(s3["bucket"], "large/long.wav", str(local))
    assert_whole_wav(local, more_than=8 << 20)


def test_a_custom_target_gets_a_large_file_in_chunks(tmp_path, long_audio, put_server):  # noqa: F811
    root, port = put_server
    config = f'[plugins.http-put-storage]\nallowed_hosts = ["127.0.0.1:{port}"]\n'
    server = copra_with_plugins(tmp_path, ["format-video", EXAMPLES / "http-put-storage.wasm"], config)
    try:
        created = server.post_job({"input": {"url": long_audio},
                                   "storage": {"service": "http-put", "url": f"http://127.0.0.1:{port}/big"},
                                   "outputs": {"wav": {"path": "long.wav"}}})
        assert created.status_code == 201, created.text
        final = server.wait_job(created.json()["id"], timeout=120)
        assert final["status"] == "job.completed", final
        assert_whole_wav(root / "big" / "long.wav", more_than=8 << 20)
    finally:
        server.stop()
