"""Breadth of the media engine, black-box: real jobs over HTTP, files fetched from the
bucket and checked with ffprobe (and, where content matters, compared with the input
picture by picture with the ffmpeg command, which only ever reads here).

Every container/codec pair the format-video plugin offers, audio-only outputs,
thumbnails, sprites with their WebVTT map, GIFs, offset/duration, rotation, pixel
formats, HDR → SDR, the 400s of bad format strings and params, and inputs that are
corrupt or truncated.

Inputs are generated small (320x240 or 640x360, 2-4 s) and each job carries many
outputs, so that one decode feeds them all and the file stays fast on 2 cores. Jobs are
submitted the first time a test needs them and awaited once (module-scoped)."""

import json
import random
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from conftest import KEY_A, count_frames, ffprobe, s3_storage

FPS = 25
FRAME = 1 / FPS


# --------------------------------------------------------------------------- media


def make_media(path: Path, size: str, duration: float, video=("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"),
               extra=()):
    """testsrc2 + a 48 kHz stereo sine, encoded with the ffmpeg command."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}:duration={duration}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration}",
         *video, "-c:a", "aac", "-ac", "2", "-shortest", *extra, str(path)],
        check=True,
    )
    return path


def top_level_boxes(data: bytes):
    """(type, start, size) of the top-level boxes of an MP4 file."""
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[pos + 8:pos + 16], "big")
        if size < 8:
            break
        boxes.append((kind, pos, size))
        pos += size
    return boxes


def scramble(data: bytes, start: int, end: int, seed: int) -> bytes:
    """`data` with bytes start..end replaced by deterministic noise."""
    noise = random.Random(seed).randbytes(end - start)
    return data[:start] + noise + data[end:]


@pytest.fixture(scope="module")
def inputs(media_dir, media_server):
    """The generated inputs, served by the session's HTTP media server."""
    d = media_dir / "breadth"
    d.mkdir(exist_ok=True)
    # 320x240, 2 s: the container/codec matrix, audio-only outputs, pixel formats.
    make_media(d / "matrix.mp4", "320x240", 2)
    # 640x360, 4 s: pictures, sprites, GIFs and cuts (content compared with the input).
    make_media(d / "pics.mp4", "640x360", 4)
    # The matrix input turned by its rotation metadata only (stream copy): a player shows it 240x320.
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(d / "matrix.mp4"), "-c", "copy",
                    "-metadata:s:v:0", "rotate=90", str(d / "rotated.mp4")], check=True)
    # 10-bit PQ HEVC.
    make_media(d / "pq.mkv", "320x240", 2, video=(
        "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le",
        "-x265-params", "log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc",
        "-color_primaries", "bt2020", "-color_trc", "smpte2084", "-colorspace", "bt2020nc"))
    # Broken inputs, all from a faststart MP4 (index first, then the media data).
    fast = make_media(d / "faststart.mp4", "320x240", 2, extra=("-movflags", "+faststart"))
    data = fast.read_bytes()
    boxes = {kind: (start, size) for kind, start, size in top_level_boxes(data)}
    assert "moov" in boxes and "mdat" in boxes and boxes["moov"][0] < boxes["mdat"][0], boxes
    mdat_start, mdat_size = boxes["mdat"]
    payload = (mdat_start + 8, mdat_start + mdat_size)
    (d / "truncated-faststart.mp4").write_bytes(data[: len(data) * 2 // 3])
    (d / "noise-payload.mp4").write_bytes(scramble(data, *payload, seed=1))
    span = payload[1] - payload[0]
    (d / "damaged-middle.mp4").write_bytes(scramble(data, payload[0] + span * 2 // 5, payload[0] + span * 3 // 5, seed=2))
    return {"dir": d, "url": f"{media_server}/breadth"}


def probe_streams(path, kind):
    return [s for s in ffprobe(path)["streams"] if s["codec_type"] == kind]


def read_frames(path) -> int:
    """Video frames decoded (not just packets), per ffprobe -count_frames."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
         "-show_entries", "stream=nb_read_frames", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    (stream,) = json.loads(out)["streams"]
    return int(stream["nb_read_frames"])


def gray(path, at=None, vf="", size=(64, 36)) -> bytes:
    """One picture of `path` (at `at` seconds, else the first) as small 8-bit grey
    pixels, with the ffmpeg command (which turns rotated inputs upright itself)."""
    seek = ["-ss", str(at)] if at is not None else []
    chain = ",".join(f for f in (vf, f"scale={size[0]}:{size[1]}") if f)
    out = subprocess.run(
        ["ffmpeg", "-v", "error", *seek, "-i", str(path), "-frames:v", "1", "-vf", chain,
         "-f", "rawvideo", "-pix_fmt", "gray", "-"],
        check=True, capture_output=True,
    ).stdout
    assert len(out) == size[0] * size[1], f"no picture from {path} at {at}"
    return out


def mean_diff(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b)) / len(a)


def closest_time(picture: bytes, source: Path, times, vf="", size=(64, 36)):
    """The time among `times` whose input picture `picture` resembles most. testsrc2
    moves, so distinct times differ (by ~5 grey levels on average here) while a
    re-encode of the same instant differs by far less. Returns (time, diffs)."""
    diffs = {t: mean_diff(picture, gray(source, t, vf, size)) for t in times}
    return min(diffs, key=diffs.get), diffs


# --------------------------------------------------------------------------- jobs


class Jobs:
    """Jobs of this file: submitted once on first use, awaited once, their files
    fetched from the bucket on demand."""

    def __init__(self, server, s3, inputs, tmp: Path):
        self.server, self.s3, self.inputs, self.tmp = server, s3, inputs, tmp
        self.ids, self.finals = {}, {}

    def submit(self, name, input_name, outputs):
        assert name not in self.ids
        job = {"input": {"url": f"{self.inputs['url']}/{input_name}"},
               "storage": s3_storage(self.s3, path=f"/breadth-{name}-{uuid.uuid4().hex[:6]}"),
               "outputs": outputs}
        created = self.server.post_job(job)
        assert created.status_code == 201, created.text
        self.ids[name] = created.json()["id"]
        return self.ids[name]

    def final(self, name, timeout=300):
        if name not in self.finals:
            if name not in self.ids:
                input_name, outputs = JOBS[name]()
                self.submit(name, input_name, outputs)
            self.finals[name] = self.server.wait_job(self.ids[name], timeout=timeout)
        return self.finals[name]

    def output(self, name, key):
        """The output `key` of job `name`, which must have succeeded."""
        final = self.final(name)
        outputs = {o["key"]: o for o in final["outputs"]}
        assert key in outputs, f"no output {key!r} in {list(outputs)}"
        out = outputs[key]
        assert out["status"] in ("video.encoded", "audio.encoded", "image.created"), (out, self.log_tail())
        return out

    def fetch(self, url) -> Path:
        prefix = f"{self.s3['endpoint']}/{self.s3['bucket']}/"
        assert url.startswith(prefix), url
        key = url[len(prefix):]
        local = self.tmp / key.replace("/", "__")
        if not local.exists():
            self.s3["client"].download_file(self.s3["bucket"], key, str(local))
        return local

    def metadata(self, name, key):
        r = requests.get(f"{self.server.url}/v2/metadata/jobs/{self.ids[name]}/{key}", auth=(KEY_A, ""), timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def log_tail(self):
        return "\n".join(self.server.logs().splitlines()[-15:])


@pytest.fixture(scope="module")
def jobs(shared_copra, s3, inputs, tmp_path_factory):
    return Jobs(shared_copra, s3, inputs, tmp_path_factory.mktemp("breadth-out"))


# --------------------------------------------------------------------------- 1. every container/codec pair

# (format, video codec, audio codec, (width, height), sample rate, channels, ffprobe format name)
# on the 320x240 2 s stereo 48 kHz input. Every video codec of each container appears,
# and so does every audio codec it holds (the first row of each is the defaults).
MP4_FAMILY = "mov,mp4,m4a,3gp,3g2,mj2"
MATRIX = [
    ("mp4:160x", "h264", "aac", (160, 120), 44100, 2, MP4_FAMILY),
    ("mp4:hevc_x120:mp3", "hevc", "mp3", (160, 120), 44100, 2, MP4_FAMILY),
    ("mp4:av1_160x:opus", "av1", "opus", (160, 120), 48000, 2, MP4_FAMILY),
    ("mp4:vp9_200x150:aac_96k_22050_mono", "vp9", "aac", (200, 150), 22050, 1, MP4_FAMILY),
    ("mp4:mpeg4_240p:mp3_mono", "mpeg4", "mp3", (320, 240), 44100, 1, MP4_FAMILY),
    ("webm:160x", "vp9", "opus", (160, 120), 48000, 2, "matroska,webm"),
    ("webm:vp8_160x:vorbis", "vp8", "vorbis", (160, 120), 44100, 2, "matroska,webm"),
    ("webm:av1_160x:opus_mono", "av1", "opus", (160, 120), 48000, 1, "matroska,webm"),
    ("mov:160x", "h264", "aac", (160, 120), 44100, 2, MP4_FAMILY),
    ("mov:hevc_160x:mp3", "hevc", "mp3", (160, 120), 44100, 2, MP4_FAMILY),
    ("mov:mpeg4_160x:aac", "mpeg4", "aac", (160, 120), 44100, 2, MP4_FAMILY),
    ("mkv:160x", "h264", "aac", (160, 120), 44100, 2, "matroska,webm"),
    ("mkv:hevc_160x:opus", "hevc", "opus", (160, 120), 48000, 2, "matroska,webm"),
    ("mkv:vp9_160x:vorbis", "vp9", "vorbis", (160, 120), 44100, 2, "matroska,webm"),
    ("mkv:vp8_160x:mp3", "vp8", "mp3", (160, 120), 44100, 2, "matroska,webm"),
    ("mkv:av1_160x:flac", "av1", "flac", (160, 120), 48000, 2, "matroska,webm"),
    ("mkv:mpeg4_160x:aac_32000", "mpeg4", "aac", (160, 120), 32000, 2, "matroska,webm"),
    ("mkv:theora_160x:vorbis_mono", "theora", "vorbis", (160, 120), 44100, 1, "matroska,webm"),
    ("mpegts:160x", "h264", "aac", (160, 120), 44100, 2, "mpegts"),
    ("ts:hevc_160x:mp3", "hevc", "mp3", (160, 120), 44100, 2, "mpegts"),
    ("mpegts:mpeg4_160x:aac", "mpeg4", "aac", (160, 120), 44100, 2, "mpegts"),
    ("ogv:160x", "theora", "vorbis", (160, 120), 44100, 2, "ogg"),
    ("ogv:vp8_160x:opus", "vp8", "opus", (160, 120), 48000, 2, "ogg"),
    ("avi:160x", "mpeg4", "mp3", (160, 120), 44100, 2, "avi"),
    ("avi:h264_160x:aac", "h264", "aac", (160, 120), 44100, 2, "avi"),
    ("flv:160x", "h264", "aac", (160, 120), 44100, 2, "flv"),
    ("flv:h264_160x:mp3_22050", "h264", "mp3", (160, 120), 22050, 2, "flv"),
    ("3gp:160x", "h264", "aac", (160, 120), 44100, 2, MP4_FAMILY),
    ("3gp:mpeg4_160x:aac_mono", "mpeg4", "aac", (160, 120), 44100, 1, MP4_FAMILY),
]
EXTENSION = {"mpegts": "ts"}
MATRIX_JOBS = 2


def matrix_job(part):
    def outputs():
        rows = MATRIX[part::MATRIX_JOBS]
        return "matrix.mp4", {row[0]: {"path": f"/m/{i}.{EXTENSION.get(row[0].split(':')[0], row[0].split(':')[0])}"}
                              for i, row in enumerate(rows)}
    return outputs


@pytest.mark.parametrize("row", MATRIX, ids=[r[0] for r in MATRIX])
def test_every_container_and_codec_pair(jobs, row):
    fmt, vcodec, acodec, (width, height), rate, channels, format_name = row
    name = f"matrix{MATRIX.index(row) % MATRIX_JOBS}"
    out = jobs.output(name, fmt)
    assert out["type"] == "video" and out["status"] == "video.encoded", out
    local = jobs.fetch(out["url"])
    probe = ffprobe(local)
    assert probe["format"]["format_name"] == format_name
    container = fmt.split(":")[0]
    head = local.read_bytes()[:64]
    if container == "webm":
        assert b"webm" in head, "a webm file declares the webm DocType"
    elif container == "mkv":
        assert b"matroska" in head
    elif container in ("mov", "3gp"):
        brand = probe["format"].get("tags", {}).get("major_brand", "")
        assert brand.startswith("qt" if container == "mov" else "3gp"), brand
    videos = [s for s in probe["streams"] if s["codec_type"] == "video"]
    audios = [s for s in probe["streams"] if s["codec_type"] == "audio"]
    assert len(videos) == 1 and len(audios) == 1, probe["streams"]
    v, a = videos[0], audios[0]
    assert v["codec_name"] == vcodec
    assert (v["width"], v["height"]) == (width, height)
    assert v["pix_fmt"] == "yuv420p"
    assert a["codec_name"] == acodec
    assert int(a["sample_rate"]) == rate
    assert a["channels"] == channels
    # AVI cannot signal AAC's encoder delay: its priming samples count (2.113 s with
    # the ffmpeg command too).
    slack = 0.12 if (container, acodec) == ("avi", "aac") else 0.1
    assert abs(float(probe["format"]["duration"]) - 2.0) <= slack, probe["format"]["duration"]
    assert read_frames(local) == 2 * FPS, "every input frame is encoded"
    # r_frame_rate: Ogg's demuxer reports no average rate for VP8 (0/0 for the ffmpeg
    # command's own files too).
    assert v["r_frame_rate"] == "25/1", "the file declares the input's frame rate"
    # The API's metadata describes the same file.
    meta = jobs.metadata(name, fmt)
    mv = next(s for s in meta["streams"] if s["codec_type"] == "video")
    ma = next(s for s in meta["streams"] if s["codec_type"] == "audio")
    assert (mv["codec_name"], mv["width"], mv["height"]) == (vcodec, width, height)
    assert (ma["codec_name"], int(ma["sample_rate"]), ma["channels"]) == (acodec, rate, channels)


# --------------------------------------------------------------------------- 2. audio-only outputs

# (key, format, params, codec, sample rate, channels, ffprobe format name, duration)
AUDIO = [
    ("mp3", "mp3", {}, "mp3", 44100, 2, "mp3", 2.0),
    ("mp3:1", "mp3", {"duration": 1}, "mp3", 44100, 2, "mp3", 1.0),
    ("mp3:64k_22050_mono", "mp3:64k_22050_mono", {}, "mp3", 22050, 1, "mp3", 2.0),
    ("aac", "aac", {}, "aac", 44100, 2, "aac", 2.0),
    ("m4a:96k_mono", "m4a:96k_mono", {}, "aac", 44100, 1, MP4_FAMILY, 2.0),
    ("ogg", "ogg", {}, "vorbis", 44100, 2, "ogg", 2.0),
    ("ogg::vorbis_22050", "ogg::vorbis_22050", {}, "vorbis", 22050, 2, "ogg", 2.0),
    ("ogg:opus", "ogg:opus", {}, "opus", 48000, 2, "ogg", 2.0),
    ("ogg:flac_mono", "ogg:flac_mono", {}, "flac", 48000, 1, "ogg", 2.0),
    ("opus:mono", "opus:mono", {}, "opus", 48000, 1, "ogg", 2.0),
    ("flac", "flac", {}, "flac", 48000, 2, "flac", 2.0),
    ("flac:44100", "flac:44100", {}, "flac", 44100, 2, "flac", 2.0),
    ("wav", "wav", {}, "pcm_s16le", 48000, 2, "wav", 2.0),
    ("wav:22050_mono", "wav:22050_mono", {}, "pcm_s16le", 22050, 1, "wav", 2.0),
]


def audio_job():
    outputs = {}
    for i, (key, fmt, params, *_rest) in enumerate(AUDIO):
        entry = {"path": f"/a/{i}.{fmt.split(':')[0]}", **params}
        if key != fmt:
            # A second output of the same format: the array form, keyed `format:1`.
            outputs[fmt] = [outputs[fmt], entry]
        else:
            outputs[fmt] = entry
    return "matrix.mp4", outputs


@pytest.mark.parametrize("row", AUDIO, ids=[r[0] for r in AUDIO])
def test_audio_only_outputs(jobs, row):
    key, fmt, _params, codec, rate, channels, format_name, duration = row
    out = jobs.output("audio", key)
    assert out["type"] == "audio" and out["status"] == "audio.encoded", out
    assert out["format"] == fmt
    local = jobs.fetch(out["url"])
    probe = ffprobe(local)
    assert probe["format"]["format_name"] == format_name
    assert [s["codec_type"] for s in probe["streams"]] == ["audio"], "no video (nor cover art) stream"
    a = probe["streams"][0]
    assert (a["codec_name"], int(a["sample_rate"]), a["channels"]) == (codec, rate, channels)
    assert abs(float(probe["format"]["duration"]) - duration) <= 0.1, probe["format"]["duration"]
    if fmt == "mp3:64k_22050_mono":
        assert int(a["bit_rate"]) == 64000, "the bitrate asked for"


# --------------------------------------------------------------------------- 3-5. thumbnails, sprites, GIFs

PICTURE_TIMES = [0.4, 1.2, 2.0, 2.8, 3.6]  # `number: 5` over 4 s: the middle of each fifth
SPRITE_TIMES = [i * 0.5 for i in range(8)]  # `interval: 0.5` over 4 s


def pictures_job():
    return "pics.mp4", {
        "jpg:320x": {"path": "/thumbs/thumb_%.2d.jpg", "number": 5},
        "png:200x": {"path": "/square/sq_#num#.png", "number": 2, "square": True},
        "webp": {"path": "/webp/frame.webp", "interval": 1},
        "jpg:160x": {"path": "/sprites/sheet_%d.jpg", "interval": 0.5, "sprite": {"columns": 3, "rows": 2},
                     "vtt": "/maps/sprites.vtt"},
        "jpg": {"path": "/sprites10/s_%.3d.jpg", "number": 12, "sprite": True},
        "gif:160x_10fps": {"path": "/gif/clip.gif", "offset": 1, "duration": 2},
        "gif:x90": {"path": "/gif/whole.gif", "fps": 5},
    }


def test_thumbnails_number_spread_and_numbered_paths(jobs):
    out = jobs.output("pictures", "jpg:320x")
    assert out["type"] == "image" and out["status"] == "image.created"
    urls = out["urls"]
    assert [u.rsplit("/", 1)[1] for u in urls] == [f"thumb_{i:02d}.jpg" for i in range(1, 6)]
    source = jobs.inputs["dir"] / "pics.mp4"
    for expected, url in zip(PICTURE_TIMES, urls):
        local = jobs.fetch(url)
        (s,) = ffprobe(local)["streams"]
        assert (s["codec_name"], s["width"], s["height"]) == ("mjpeg", 320, 180)
        # Each picture is the input's at its time (number spreads them evenly).
        at, diffs = closest_time(gray(local), source, PICTURE_TIMES)
        assert at == expected, diffs
    pictures = [jobs.fetch(u).read_bytes() for u in urls]
    assert len(set(pictures)) == 5, "the pictures differ"
    # The API's metadata of a picture output describes its first picture.
    (meta,) = jobs.metadata("pictures", "jpg:320x")["streams"]
    assert (meta["codec_name"], meta["width"], meta["height"]) == ("mjpeg", 320, 180)


def test_square_thumbnails_are_centre_crops(jobs):
    out = jobs.output("pictures", "png:200x")
    urls = out["urls"]
    assert [u.rsplit("/", 1)[1] for u in urls] == ["sq_1.png", "sq_2.png"]
    source = jobs.inputs["dir"] / "pics.mp4"
    for expected, url in zip([1.0, 3.0], urls):
        local = jobs.fetch(url)
        (s,) = ffprobe(local)["streams"]
        assert (s["codec_name"], s["width"], s["height"]) == ("png", 200, 200)
        picture = gray(local, size=(50, 50))
        crop = gray(source, expected, vf="crop=360:360", size=(50, 50))
        squash = gray(source, expected, size=(50, 50))
        # A centre crop, not the whole picture squashed into a square.
        assert mean_diff(picture, crop) < 3 < mean_diff(picture, squash), (mean_diff(picture, crop), mean_diff(picture, squash))


def test_webp_every_interval(jobs):
    out = jobs.output("pictures", "webp")
    urls = out["urls"]
    # A path without a number placeholder is numbered so the pictures do not overwrite each other.
    assert [u.rsplit("/", 1)[1] for u in urls] == [f"frame_{i}.webp" for i in range(1, 5)]
    source = jobs.inputs["dir"] / "pics.mp4"
    for expected, url in zip([0.0, 1.0, 2.0, 3.0], urls):
        local = jobs.fetch(url)
        (s,) = ffprobe(local)["streams"]
        assert (s["codec_name"], s["width"], s["height"]) == ("webp", 640, 360), "the input's size by default"
        at, diffs = closest_time(gray(local), source, [0.0, 1.0, 2.0, 3.0])
        assert at == expected, diffs


TIMESTAMP = r"(?:(\d+):)?(\d\d):(\d\d)\.(\d\d\d)"


def parse_vtt(text: str):
    """WebVTT cues as dicts: start, end (seconds), url, x, y, w, h."""
    lines = text.replace("\r\n", "\n").split("\n")
    assert lines[0].startswith("WEBVTT"), lines[:2]

    def seconds(m):
        h, mi, s, ms = m
        return int(h or 0) * 3600 + int(mi) * 60 + int(s) + int(ms) / 1000

    cues = []
    for block in "\n".join(lines[1:]).strip().split("\n\n"):
        rows = [r for r in block.split("\n") if r.strip()]
        timing = next(i for i, r in enumerate(rows) if "-->" in r)
        m = re.fullmatch(rf"{TIMESTAMP} --> {TIMESTAMP}(?: .*)?", rows[timing].strip())
        assert m, rows[timing]
        payload = rows[timing + 1:]
        assert len(payload) == 1, block
        f = re.fullmatch(r"(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)", payload[0].strip())
        assert f, payload[0]
        cues.append({"start": seconds(m.groups()[:4]), "end": seconds(m.groups()[4:]), "url": f.group(1),
                     "x": int(f.group(2)), "y": int(f.group(3)), "w": int(f.group(4)), "h": int(f.group(5))})
    return cues


def test_sprites_with_a_webvtt_map(jobs):
    out = jobs.output("pictures", "jpg:160x")
    sheets = out["urls"]
    # 8 pictures in sheets of 3x2: two sheets, at the numbered paths.
    assert [u.rsplit("/", 1)[1] for u in sheets] == ["sheet_1.jpg", "sheet_2.jpg"]
    assert out["url"].endswith("/maps/sprites.vtt"), out["url"]
    for url in sheets:
        (s,) = ffprobe(jobs.fetch(url))["streams"]
        assert (s["codec_name"], s["width"], s["height"]) == ("mjpeg", 3 * 160, 2 * 90)
    cues = parse_vtt(jobs.fetch(out["url"]).read_text())
    assert len(cues) == len(SPRITE_TIMES)
    for i, cue in enumerate(cues):
        assert abs(cue["start"] - SPRITE_TIMES[i]) < 0.002, cue
        end = SPRITE_TIMES[i + 1] if i + 1 < len(SPRITE_TIMES) else 4.0
        assert abs(cue["end"] - end) <= 0.1, cue
        assert cue["url"] == sheets[i // 6], "the fragment points at the uploaded sheet"
        assert (cue["w"], cue["h"]) == (160, 90)
        assert (cue["x"], cue["y"]) == ((i % 3) * 160, (i % 6) // 3 * 90)
        assert cue["x"] + cue["w"] <= 480 and cue["y"] + cue["h"] <= 180
    # The tiles hold the pictures the cues say.
    source = jobs.inputs["dir"] / "pics.mp4"
    for i in (0, 4, 7):
        cue = cues[i]
        tile = gray(jobs.fetch(cue["url"]), vf=f"crop={cue['w']}:{cue['h']}:{cue['x']}:{cue['y']}")
        at, diffs = closest_time(tile, source, SPRITE_TIMES)
        assert at == SPRITE_TIMES[i], (i, diffs)


def test_default_sprite_grid_and_vtt_path(jobs):
    out = jobs.output("pictures", "jpg")
    sheets = out["urls"]
    assert len(sheets) == 1 and sheets[0].endswith("/sprites10/s_001.jpg"), sheets
    # The map defaults to thumbnails.vtt beside the sheets.
    assert out["url"].endswith("/sprites10/thumbnails.vtt"), out["url"]
    (s,) = ffprobe(jobs.fetch(sheets[0]))["streams"]
    assert (s["width"], s["height"]) == (10 * 160, 10 * 90), "10x10 tiles of 160 px wide"
    cues = parse_vtt(jobs.fetch(out["url"]).read_text())
    assert len(cues) == 12
    assert [(c["x"], c["y"]) for c in cues] == [((i % 10) * 160, i // 10 * 90) for i in range(12)]
    starts = [c["start"] for c in cues]
    assert all(abs(a - (i + 0.5) / 3) < 0.002 for i, a in enumerate(starts)), starts


def test_gif_frames_and_size(jobs):
    clip = jobs.output("pictures", "gif:160x_10fps")
    assert clip["type"] == "image"
    local = jobs.fetch(clip["url"])
    (s,) = ffprobe(local)["streams"]
    assert (s["codec_name"], s["width"], s["height"]) == ("gif", 160, 90)
    assert read_frames(local) == 20, "2 s at 10 fps"
    assert abs(float(ffprobe(local)["format"]["duration"]) - 2.0) <= 0.1
    source = jobs.inputs["dir"] / "pics.mp4"
    at, diffs = closest_time(gray(local), source, [0.0, 0.5, 1.0, 1.5, 2.0])
    assert at == 1.0, ("the GIF starts at its offset", diffs)
    whole = jobs.fetch(jobs.output("pictures", "gif:x90")["url"])
    (s,) = ffprobe(whole)["streams"]
    assert (s["codec_name"], s["width"], s["height"]) == ("gif", 160, 90)
    assert read_frames(whole) == 20, "the whole 4 s input (under the 10 s default) at fps 5"


# --------------------------------------------------------------------------- 6. offset and duration


def cuts_job():
    return "pics.mp4", {
        "mp4:320x": [
            {"key": "trailer", "path": "/cuts/trailer.mp4", "duration": 2},
            {"path": "/cuts/middle.mp4", "offset": 1.5, "duration": 2},
        ],
        "mp4:320x::quality=2": {"key": "tail", "path": "/cuts/tail.mp4", "offset": 3},
        "mp3": {"path": "/cuts/middle.mp3", "offset": 1, "duration": 2},
    }


CUT_CANDIDATES = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


@pytest.mark.parametrize("key,offset,duration", [
    ("trailer", 0.0, 2.0),
    ("mp4:320x:1", 1.5, 2.0),
    ("tail", 3.0, 1.0),
])
def test_offset_and_duration_cut_within_a_frame(jobs, key, offset, duration):
    out = jobs.output("cuts", key)
    local = jobs.fetch(out["url"])
    probe = ffprobe(local)
    (v,) = [s for s in probe["streams"] if s["codec_type"] == "video"]
    (a,) = [s for s in probe["streams"] if s["codec_type"] == "audio"]
    assert (v["width"], v["height"]) == (320, 180)
    assert count_frames(local) == round(duration * FPS)
    assert abs(float(v["duration"]) - duration) <= FRAME + 1e-6, v["duration"]
    assert abs(float(probe["format"]["duration"]) - duration) <= FRAME + 1e-6, probe["format"]["duration"]
    assert abs(float(a["duration"]) - duration) <= 0.05, ("the audio is cut too", a["duration"])
    # The content is shifted by the offset: the first picture is the input's at the offset.
    at, diffs = closest_time(gray(local), jobs.inputs["dir"] / "pics.mp4", CUT_CANDIDATES)
    assert at == offset, diffs


def test_offset_and_duration_of_audio(jobs):
    out = jobs.output("cuts", "mp3")
    probe = ffprobe(jobs.fetch(out["url"]))
    assert abs(float(probe["format"]["duration"]) - 2.0) <= 0.05, probe["format"]["duration"]


# --------------------------------------------------------------------------- 7. rotation


def rotation_job():
    return "rotated.mp4", {
        "mp4:360p": {"path": "/rot/360p.mp4"},
        "webm:x160": {"path": "/rot/small.webm"},
        "jpg:x160": {"path": "/rot/poster.jpg"},
    }


def rotation_tags(stream):
    turns = [d.get("rotation") for d in stream.get("side_data_list", []) if "rotation" in d]
    return [t for t in turns if t not in (0, None)] + ([stream["tags"]["rotate"]] if "rotate" in stream.get("tags", {}) else [])


def test_input_fixture_is_rotated(inputs):
    (v,) = probe_streams(inputs["dir"] / "rotated.mp4", "video")
    assert (v["width"], v["height"]) == (320, 240)
    assert rotation_tags(v), "the fixture carries rotation metadata"


@pytest.mark.parametrize("key,size,at", [
    ("mp4:360p", (240, 320), 0),
    ("webm:x160", (120, 160), 0),
    ("jpg:x160", (120, 160), 1.0),  # one picture: the middle of the input
])
def test_rotated_input_comes_out_upright(jobs, key, size, at):
    out = jobs.output("rotation", key)
    local = jobs.fetch(out["url"] if "url" in out else out["urls"][0])
    (v,) = probe_streams(local, "video")
    # 360p is never an upscale: the upright 240x320 stays as it is.
    assert (v["width"], v["height"]) == size
    assert rotation_tags(v) == [], "upright pixels, no rotation left for the player"
    # The pixels are turned the way a player would turn them (ffmpeg autorotates).
    source = jobs.inputs["dir"] / "rotated.mp4"
    picture = gray(local, size=(36, 48))
    right = mean_diff(picture, gray(source, at, size=(36, 48)))
    wrong = mean_diff(picture, gray(source, at, vf="hflip,vflip", size=(36, 48)))
    assert right < 6 and right < wrong / 2, (right, wrong)


# --------------------------------------------------------------------------- 8. HDR → SDR


def hdr_job():
    return "pq.mkv", {
        "mp4:::force_sdr": {"path": "/hdr/sdr.mp4"},
        "mkv:hevc::pix_fmt=yuv420p10le": {"path": "/hdr/hdr.mkv"},
        "mkv:hevc::pix_fmt=yuv420p10le,force_sdr": {"path": "/hdr/sdr10.mkv"},
    }


def test_pq_fixture_is_hdr(inputs):
    (v,) = probe_streams(inputs["dir"] / "pq.mkv", "video")
    assert (v["codec_name"], v["pix_fmt"], v["color_transfer"], v["color_primaries"]) == \
        ("hevc", "yuv420p10le", "smpte2084", "bt2020")


def test_force_sdr_tone_maps_pq_to_bt709(jobs):
    sdr = jobs.fetch(jobs.output("hdr", "mp4:::force_sdr")["url"])
    (v,) = probe_streams(sdr, "video")
    assert (v["codec_name"], v["pix_fmt"]) == ("h264", "yuv420p")
    assert (v.get("color_transfer"), v.get("color_primaries")) == ("bt709", "bt709")
    assert abs(float(ffprobe(sdr)["format"]["duration"]) - 2.0) <= 0.1
    sdr10 = jobs.fetch(jobs.output("hdr", "mkv:hevc::pix_fmt=yuv420p10le,force_sdr")["url"])
    (v10,) = probe_streams(sdr10, "video")
    assert (v10["pix_fmt"], v10.get("color_transfer"), v10.get("color_primaries")) == ("yuv420p10le", "bt709", "bt709")
    # Tone-mapping changes the pixels, not only the tags: PQ code values mean other
    # brightnesses than BT.709 ones.
    hdr = jobs.fetch(jobs.output("hdr", "mkv:hevc::pix_fmt=yuv420p10le")["url"])
    assert mean_diff(gray(sdr), gray(hdr)) > 8, mean_diff(gray(sdr), gray(hdr))


def test_without_force_sdr_hdr_is_kept(jobs):
    hdr = jobs.fetch(jobs.output("hdr", "mkv:hevc::pix_fmt=yuv420p10le")["url"])
    (v,) = probe_streams(hdr, "video")
    assert (v["codec_name"], v["pix_fmt"], v.get("color_transfer"), v.get("color_primaries")) == \
        ("hevc", "yuv420p10le", "smpte2084", "bt2020")


# --------------------------------------------------------------------------- 9. pixel formats and other options

PIX_FMTS = [
    ("mkv:h264::pix_fmt=yuv422p", "h264", "yuv422p"),
    ("mkv:h264::pix_fmt=yuv444p", "h264", "yuv444p"),
    ("mkv:h264::pix_fmt=yuv420p10le", "h264", "yuv420p10le"),
    ("mkv:hevc::pix_fmt=yuv420p10le", "hevc", "yuv420p10le"),
    ("mkv:hevc::pix_fmt=yuv422p10le", "hevc", "yuv422p10le"),
    ("mkv:vp9::pix_fmt=yuv444p", "vp9", "yuv444p"),
    ("mkv:vp9::pix_fmt=yuv420p10le", "vp9", "yuv420p10le"),
    ("mp4:av1::pix_fmt=yuv420p10le", "av1", "yuv420p10le"),
    ("ogv:theora::pix_fmt=yuv422p", "theora", "yuv422p"),
]

# Fits of the 4:3 input into a square, as the ffmpeg command draws them.
FITS = {
    "stretch": "scale=200:200",
    "pad": "scale=200:150,pad=200:200:0:25",
    "crop": "crop=240:240,scale=200:200",
}


def options_job():
    outputs = {fmt: {"path": f"/pix/{i}.{fmt.split(':')[0]}"} for i, (fmt, _, _) in enumerate(PIX_FMTS)}
    outputs.update({
        "mp4:160x_10fps": {"path": "/opt/fps.mp4"},
        "mp4:160x::keyframe_interval=0.4": {"path": "/opt/keys.mp4"},
        "mp4:::rotate=90": {"path": "/opt/turned.mp4"},
        **{f"mp4:200x200::fit={fit}": {"path": f"/opt/{fit}.mp4"} for fit in FITS},
    })
    return "matrix.mp4", outputs


@pytest.mark.parametrize("fmt,codec,pix_fmt", PIX_FMTS, ids=[p[0] for p in PIX_FMTS])
def test_pixel_formats(jobs, fmt, codec, pix_fmt):
    local = jobs.fetch(jobs.output("options", fmt)["url"])
    (v,) = probe_streams(local, "video")
    assert (v["codec_name"], v["pix_fmt"], v["width"], v["height"]) == (codec, pix_fmt, 320, 240)
    assert read_frames(local) == 2 * FPS


def test_frame_rate_option(jobs):
    local = jobs.fetch(jobs.output("options", "mp4:160x_10fps")["url"])
    (v,) = probe_streams(local, "video")
    assert v["avg_frame_rate"] == "10/1"
    assert read_frames(local) == 20
    assert abs(float(ffprobe(local)["format"]["duration"]) - 2.0) <= 0.1


def test_keyframe_interval_option(jobs):
    local = jobs.fetch(jobs.output("options", "mp4:160x::keyframe_interval=0.4")["url"])
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
                          "-of", "csv=p=0", str(local)], check=True, capture_output=True, text=True).stdout
    keys = [round(float(line.split(",")[0]), 3) for line in out.split() if "K" in line.split(",")[1]]
    assert keys == [0.0, 0.4, 0.8, 1.2, 1.6], ("keyframes at every 0.4 s and nowhere else", keys)


def test_rotate_option_turns_clockwise(jobs):
    local = jobs.fetch(jobs.output("options", "mp4:::rotate=90")["url"])
    (v,) = probe_streams(local, "video")
    assert (v["width"], v["height"]) == (240, 320)
    assert rotation_tags(v) == []
    source = jobs.inputs["dir"] / "matrix.mp4"
    picture = gray(local, size=(36, 48))
    clockwise = mean_diff(picture, gray(source, 0, vf="transpose=clock", size=(36, 48)))
    counter = mean_diff(picture, gray(source, 0, vf="transpose=cclock", size=(36, 48)))
    assert clockwise < 3 < counter, (clockwise, counter)


@pytest.mark.parametrize("fit", list(FITS))
def test_fit_option(jobs, fit):
    local = jobs.fetch(jobs.output("options", f"mp4:200x200::fit={fit}")["url"])
    (v,) = probe_streams(local, "video")
    assert (v["width"], v["height"]) == (200, 200)
    picture = gray(local, size=(50, 50))
    source = jobs.inputs["dir"] / "matrix.mp4"
    diffs = {name: mean_diff(picture, gray(source, 0, vf=chain, size=(50, 50))) for name, chain in FITS.items()}
    assert min(diffs, key=diffs.get) == fit and diffs[fit] < 3, diffs
    if fit == "pad":
        top = gray(local, size=(200, 200))[: 200 * 20]
        assert max(top) < 24, "letterbox bars are black"


JOBS = {
    **{f"matrix{i}": matrix_job(i) for i in range(MATRIX_JOBS)},
    "audio": audio_job,
    "pictures": pictures_job,
    "cuts": cuts_job,
    "rotation": rotation_job,
    "hdr": hdr_job,
    "options": options_job,
}


# --------------------------------------------------------------------------- 10. bad combinations are 400s

BAD = [
    ("video codec the container cannot hold", "webm:h264", {}, "format_not_valid", ["webm", "h264"]),
    ("audio codec the container cannot hold", "mp4::vorbis", {}, "format_not_valid", ["mp4", "vorbis"]),
    ("audio-only container, other codec", "mp3:aac", {}, "format_not_valid", ["aac"]),
    ("pixel format the codec cannot take", "webm:vp8::pix_fmt=yuv444p", {}, "format_not_valid", ["yuv444p", "vp8"]),
    ("10-bit pixel format for vp8", "webm:vp8::pix_fmt=yuv420p10le", {}, "format_not_valid", ["yuv420p10le", "vp8"]),
    ("10-bit pixel format for mpeg4", "mp4:mpeg4::pix_fmt=yuv420p10le", {}, "format_not_valid", ["yuv420p10le", "mpeg4"]),
    ("unknown pixel format", "mkv:::pix_fmt=rgb48", {}, "format_not_valid", ["rgb48"]),
    ("unknown video part", "mp4:720p_sparkly", {}, "format_not_valid", ["sparkly"]),
    ("unknown option", "mp4:::sparkle=1", {}, "format_not_valid", ["sparkle"]),
    ("bad rotate", "mp4:::rotate=45", {}, "format_not_valid", ["rotate=45"]),
    ("bad fit", "mp4:::fit=zoom", {}, "format_not_valid", ["fit=zoom"]),
    ("gif frame rate too high", "gif:31fps", {}, "format_not_valid", ["31fps"]),
    ("sample rate opus cannot take", "opus:44100", {}, "format_not_valid", ["44100"]),
    ("options on an audio format", "mp3:::quality=4", {}, "format_not_valid", ["option"]),
    ("unknown container", "mp5:720p", {}, "format_not_valid", ["mp5"]),
    ("number on an mp4", "mp4", {"number": 3}, "output_param_not_valid", ["number"]),
    ("number on an mp3", "mp3", {"number": 3}, "output_param_not_valid", ["number"]),
    ("number and interval", "jpg:320x", {"number": 3, "interval": 2}, "output_param_not_valid", ["number", "interval"]),
    ("number zero", "jpg:320x", {"number": 0}, "output_param_not_valid", ["number"]),
    ("square with two sides", "jpg:300x200", {"square": True}, "output_param_not_valid", ["square"]),
    ("sprite grid zero", "jpg", {"sprite": {"columns": 0}}, "output_param_not_valid", ["sprite.columns"]),
    ("vtt without sprite", "jpg", {"vtt": "/t.vtt"}, "output_param_not_valid", ["vtt"]),
    ("gif fps twice", "gif:15fps", {"fps": 15}, "output_param_not_valid", ["fps"]),
    ("negative offset", "mp4", {"offset": -1}, "output_param_not_valid", ["offset"]),
    ("zero duration", "mp3", {"duration": 0}, "output_param_not_valid", ["duration"]),
]


@pytest.mark.parametrize("name,fmt,params,code,mentions", BAD, ids=[b[0] for b in BAD])
def test_bad_combinations_are_400_naming_the_problem(shared_copra, media_server, s3, name, fmt, params, code, mentions):
    job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": s3_storage(s3, path="/bad"),
           "outputs": {"mp4:240p": {"path": "/fine.mp4"}, fmt: {"path": "/bad/x", **params}}}
    r = shared_copra.post_job(job)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == "error" and body["error_code"] == code, body
    for word in mentions:
        assert word in body["message"], body["message"]


def test_a_bad_element_of_an_output_array_is_400(shared_copra, media_server, s3):
    job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": s3_storage(s3, path="/bad"),
           "outputs": {"mp4:240p": [{"path": "/a.mp4"}, {"path": "/b.mp4", "sparkle": 1}]}}
    r = shared_copra.post_job(job)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "output_param_not_valid"
    assert "sparkle" in r.json()["message"]


# --------------------------------------------------------------------------- 11. corrupt and truncated inputs


@pytest.mark.parametrize("file,mention", [
    # The index (moov first) promises more media data than the file holds.
    ("truncated-faststart.mp4", "truncated"),
    # A well-formed container whose media data is noise.
    ("noise-payload.mp4", "decoded"),
])
def test_corrupt_or_truncated_input_fails_with_a_message(shared_copra, s3, inputs, file, mention):
    job = {"input": {"url": f"{inputs['url']}/{file}"}, "storage": s3_storage(s3, path="/broken"),
           "outputs": {"mp4:160x": {"path": "/b.mp4"}, "jpg:80x": {"path": "/b.jpg"}}}
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"], timeout=60)
    assert final["status"] == "job.failed", final
    assert final["input"]["status"] == "input.failed", final
    assert mention in final["input"]["error"], final["input"]["error"]
    assert [o["status"] for o in final["outputs"]] == ["video.failed", "image.failed"], final["outputs"]
    assert all("url" not in o and "urls" not in o for o in final["outputs"])


def test_damaged_middle_is_concealed_and_the_server_goes_on(shared_copra, s3, inputs, tmp_path):
    """Noise over the middle fifth of the media data (index intact): as with the ffmpeg
    command, the damaged packets are skipped, the rest is encoded on the input's
    timeline, and the job completes; then the server runs a good job as usual."""
    damaged = inputs["dir"] / "damaged-middle.mp4"
    survivors = read_frames(damaged)  # what the ffmpeg libraries decode from it
    assert 0 < survivors < 2 * FPS, "the fixture really is damaged"
    job = {"input": {"url": f"{inputs['url']}/damaged-middle.mp4"}, "storage": s3_storage(s3, path="/damaged"),
           "outputs": {"mp4:160x": {"path": "/d.mp4"}}}
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"], timeout=60)
    assert final["status"] == "job.completed", final
    local = tmp_path / "d.mp4"
    s3["client"].download_file(s3["bucket"], "damaged/d.mp4", str(local))
    assert abs(read_frames(local) - survivors) <= 1, (read_frames(local), survivors)
    assert abs(float(ffprobe(local)["format"]["duration"]) - 2.0) <= 0.1
    good = shared_copra.post_job({"input": {"url": f"{inputs['url']}/matrix.mp4"}, "storage": s3_storage(s3, path="/after"),
                                  "outputs": {"mp4:160x": {"path": "/g.mp4"}}})
    assert good.status_code == 201, good.text
    after = shared_copra.wait_job(good.json()["id"], timeout=60)
    assert after["status"] == "job.completed", after
    assert after["outputs"][0]["status"] == "video.encoded"
