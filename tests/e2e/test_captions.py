"""CEA-608 captions carried in an H.264 input (ATSC A/53 user data in SEI messages)
survive a re-encode to H.264: the decoder hands them out with each frame, and the
encoder writes them back into its own SEI. The input here is made by this test: an
H.264 stream from `ffmpeg`, with a caption SEI (608 field 1: "HELLO WORLD") written
before every picture.

- `ffprobe` reports `Closed Captions` on the input and on the H.264 output;
- the input's metadata says it has them (`closed_captions` on its video stream);
- an output in another codec (VP9) has no place for them, and no error."""

import re
import subprocess
import uuid

import pytest
import requests

from conftest import KEY_A, run_and_download, s3_storage


def parity(b: int) -> int:
    b &= 0x7F
    return b | (0 if bin(b).count("1") % 2 else 0x80)


def caption_sei(pair: bytes) -> bytes:
    """An SEI NAL: user data registered by ITU-T T.35 (ATSC, GA94), one 608 pair."""
    cc = bytes([0xB5, 0x00, 0x31]) + b"GA94" + bytes([0x03, 0x40 | 2, 0xFF])
    cc += bytes([0xFC, parity(pair[0]), parity(pair[1]), 0xFC, 0x80, 0x80, 0xFF])
    payload = bytes([4, len(cc)]) + cc + b"\x80"
    escaped, zeros = bytearray(), 0
    for b in payload:
        if zeros >= 2 and b <= 3:
            escaped.append(3)
            zeros = 0
        escaped.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return b"\x06" + bytes(escaped)


def with_captions(annexb: bytes) -> bytes:
    starts = [m.start() for m in re.finditer(b"\x00\x00\x01", annexb)]
    text = b"\x14\x2c\x14\x20HELLO WORLD\x14\x2f"
    pairs = [text[i:i + 2].ljust(2, b"\x00") for i in range(0, len(text), 2)]
    out, picture = bytearray(), 0
    for i, start in enumerate(starts):
        nal = annexb[start + 3:starts[i + 1] if i + 1 < len(starts) else len(annexb)].rstrip(b"\x00")
        if nal[0] & 0x1F in (1, 5):
            out += b"\x00\x00\x00\x01" + caption_sei(pairs[picture % len(pairs)] if picture < 60 else b"\x80\x80")
            picture += 1
        out += b"\x00\x00\x00\x01" + nal
    return bytes(out)


def has_captions(path) -> bool:
    described = subprocess.run(["ffprobe", "-hide_banner", str(path)], capture_output=True, text=True).stderr
    return bool(re.search(r"Video:.*Closed Captions", described)), described


@pytest.fixture(scope="module")
def captioned(media_dir, media_server):
    d = media_dir / "captions"
    d.mkdir(exist_ok=True)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=3",
                          "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-f", "h264", "-"], check=True, capture_output=True).stdout
    (d / "cc.h264").write_bytes(with_captions(raw))
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-r", "30", "-i", str(d / "cc.h264"), "-c", "copy", str(d / "cc.mp4")], check=True)
    found, described = has_captions(d / "cc.mp4")
    assert found, described
    return f"{media_server}/captions/cc.mp4"


def test_608_captions_survive_an_h264_reencode(shared_copra, s3, captioned, tmp_path):
    job = {
        "input": {"url": captioned},
        "storage": s3_storage(s3, path=f"/cc-{uuid.uuid4().hex[:6]}"),
        "outputs": {"mp4:240p": {"key": "h264", "path": "/cc.mp4"}, "webm:240p": {"key": "vp9", "path": "/cc.webm"}},
    }
    final, files = run_and_download(shared_copra, s3, job, tmp_path)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])
    found, described = has_captions(files["h264"])
    assert found, described
    metadata = requests.get(f"{shared_copra.url}/v2/metadata/jobs/{final['id']}/source", auth=(KEY_A, ""), timeout=10).json()
    video = next(s for s in metadata["streams"] if s["codec_type"] == "video")
    assert video.get("closed_captions") is True, video
