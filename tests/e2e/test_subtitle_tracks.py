"""Subtitle tracks carried into video files, read back with FFmpeg's own tools:
`ffprobe` for the streams (codec, `language` tag, title, default disposition) and
`ffmpeg -map 0:s:N -f srt` for every cue's text and times.

- MP4 carries `mov_text`, Matroska `subrip`, WebM `webvtt`; one stream per track, its
  language as the container stores it (ISO 639-2: `en` is `eng`, `pt-BR` is `por`);
- an output's `offset` moves the cues with it;
- containers without text subtitles (MPEG-TS) get none and are made as before;
- a file that is not subtitles fails the outputs that would carry it, alone."""

import json
import re
import subprocess
import uuid
from pathlib import Path

import requests

from conftest import KEY_A, Copra, run_and_download, s3_storage
from test_subtitles import CUES, assets, tracks  # noqa: F401 (the fixture is shared)

CODEC = {"mp4": "mov_text", "mkv": "subrip", "webm": "webvtt"}
LANGUAGE = {"en": "eng", "pt-BR": "por"}


def metadata(server, job_id: str, key: str) -> dict:
    r = requests.get(f"{server.url}/v2/metadata/jobs/{job_id}/{key}", auth=(KEY_A, ""), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def subtitle_streams(path: Path) -> list:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)], check=True, capture_output=True, text=True, timeout=60).stdout
    return [s for s in json.loads(out)["streams"] if s["codec_type"] == "subtitle"]


def srt_time(text: str) -> float:
    h, m, s = text.replace(",", ".").split(":")
    return round(int(h) * 3600 + int(m) * 60 + float(s), 3)


def video_start(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=start_time", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    return float(out)


def cues_in(path: Path, index: int) -> list:
    """The cues of the file's `index`th subtitle stream, as FFmpeg reads them (to SRT),
    timed from the first picture (Matroska files start their video a few ms late)."""
    srt = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-copyts", "-i", str(path), "-map", f"0:s:{index}", "-f", "srt", "-"],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    origin = video_start(path)
    cues = []
    for block in re.split(r"\n\s*\n", srt.replace("\r\n", "\n").strip()):
        lines = block.split("\n")
        start, end = lines[1].split(" --> ")
        cues.append((round(srt_time(start) - origin, 3), round(srt_time(end) - origin, 3), "\n".join(lines[2:])))
    return cues


def close(got: list, want: list, within: float = 0.011) -> bool:
    return len(got) == len(want) and all(abs(g[0] - w[0]) < within and abs(g[1] - w[1]) < within and g[2] == w[2] for g, w in zip(got, want))


def test_files_carry_every_track(shared_copra, s3, media_server, assets, tmp_path):  # noqa: F811
    subtitles = tracks(media_server)
    subtitles[0]["default"] = True
    job = {
        "input": {"url": f"{media_server}/subtitles/in.mp4"},
        "storage": s3_storage(s3, path=f"/subs-{uuid.uuid4().hex[:6]}"),
        "subtitles": subtitles,
        "outputs": {
            "mp4:240p": [{"key": "mp4", "path": "/out.mp4"}, {"key": "later", "path": "/later.mp4", "offset": 2}],
            "mkv:240p": {"key": "mkv", "path": "/out.mkv"},
            "webm:240p": {"key": "webm", "path": "/out.webm"},
            "ts:240p": {"key": "ts", "path": "/out.ts"},
        },
    }
    final, files = run_and_download(shared_copra, s3, job, tmp_path)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])

    for key in ("mp4", "mkv", "webm"):
        streams = subtitle_streams(files[key])
        assert [s["codec_name"] for s in streams] == [CODEC[key]] * 2, (key, streams)
        assert [s["tags"]["language"] for s in streams] == ["eng", "por"], (key, streams)
        assert [s["disposition"]["default"] for s in streams] == [1, 0], (key, streams)
        names = [s["tags"].get("handler_name" if key == "mp4" else "title") for s in streams]
        assert names == ["English", "Português"], (key, names)
        for i, language in enumerate(("en", "pt-BR")):
            got = cues_in(files[key], i)
            assert close(got, CUES[language]), (key, language, got)
        # The video and audio are still there, and the file's metadata lists the tracks.
        kinds = [s["codec_type"] for s in metadata(shared_copra, final["id"], key)["streams"]]
        assert kinds.count("video") == 1 and kinds.count("audio") == 1 and kinds.count("subtitle") == 2, (key, kinds)

    # Two seconds later: the first cue is gone, the others moved with the output.
    moved = cues_in(files["later"], 0)
    assert close(moved, [(0.5, 2.5, "Across a segment boundary"), (3.0, 3.8, "<i>Last</i>")]), moved
    assert subtitle_streams(files["ts"]) == []


def test_a_file_that_is_not_subtitles_fails_the_files_that_carry_it(shared_copra, s3, media_server, assets, tmp_path):  # noqa: F811
    job = {
        "input": {"url": f"{media_server}/subtitles/in.mp4"},
        "storage": s3_storage(s3, path=f"/subs-{uuid.uuid4().hex[:6]}"),
        "subtitles": tracks(media_server, pt="garbage.vtt"),
        "outputs": {"mkv:240p": {"key": "mkv", "path": "/out.mkv"}, "ts:240p": {"key": "ts", "path": "/out.ts"}},
    }
    final, files = run_and_download(shared_copra, s3, job, tmp_path)
    by_key = {o["key"]: o for o in final["outputs"]}
    assert by_key["mkv"]["status"] == "video.failed" and "'pt-BR' subtitles could not be used" in by_key["mkv"]["error"], by_key["mkv"]
    assert by_key["ts"]["status"] == "video.encoded" and "ts" in files, by_key["ts"]


FRA = """1
00:00:00,700 --> 00:00:01,900
Bonjour

2
00:00:03,000 --> 00:00:04,250
<i>Au revoir</i>
"""


def test_an_input_track_is_carried_like_a_sidecar_one(shared_copra, s3, media_server, assets, tmp_path):  # noqa: F811
    from test_subtitles import cues_of, download_package
    import m3u8

    (assets / "fra.srt").write_text(FRA, encoding="utf-8")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", "-i", str(assets / "in.mp4"), "-i", str(assets / "fra.srt"),
         "-map", "0:v", "-map", "0:a", "-map", "1:s", "-c:v", "copy", "-c:a", "copy", "-c:s", "mov_text",
         "-metadata:s:s:0", "language=fra", "-metadata:s:s:0", "handler_name=Français", str(assets / "in-fra.mp4")],
        check=True, timeout=60,
    )
    want = [(0.7, 1.9, "Bonjour"), (3.0, 4.25, "<i>Au revoir</i>")]
    prefix = f"/subs-{uuid.uuid4().hex[:6]}"
    job = {
        "input": {"url": f"{media_server}/subtitles/in-fra.mp4"},
        "storage": s3_storage(s3, path=prefix),
        "subtitles": tracks(media_server)[:1],
        "outputs": {
            "httpstream": {"key": "pkg", "hls": {"path": "/hls"}, "variants": ["mp4:240p"], "segment_duration": 2},
            "mp4:240p::quality=5": {"key": "mp4", "path": "/out.mp4"},
            "mov:240p::quality=5": {"key": "burnt", "path": "/burnt.mov", "burn_in": "fr"},
        },
    }
    final, files = run_and_download(shared_copra, s3, job, tmp_path)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])

    # The input's metadata lists its track.
    source = metadata(shared_copra, final["id"], "source")
    listed = [(s["codec_name"], s.get("tags", {}).get("language")) for s in source["streams"] if s["codec_type"] == "subtitle"]
    assert listed == [("mov_text", "fra")], source["streams"]

    # The MP4 has the sidecar's track, then the input's.
    streams = subtitle_streams(files["mp4"])
    assert [(s["codec_name"], s["tags"]["language"]) for s in streams] == [("mov_text", "eng"), ("mov_text", "fra")], streams
    assert streams[1]["tags"].get("handler_name") == "Français", streams[1]
    assert close(cues_in(files["mp4"], 1), want), cues_in(files["mp4"], 1)
    assert close(cues_in(files["mp4"], 0), CUES["en"])

    # `fr` names the input's `fra` track: it is drawn while "Bonjour" shows, not before.
    from test_watermark import frame_at
    import numpy as np
    def drawn(t: float) -> int:
        plain, burnt = frame_at(files["mp4"], t, (320, 240)), frame_at(files["burnt"], t, (320, 240))
        return int((np.abs(plain - burnt).max(axis=2) > 60).sum())
    assert drawn(1.2) > 100 and drawn(0.3) < 10, (drawn(1.2), drawn(0.3))

    # The package has a French rendition with the same cues.
    pkg = download_package(s3, prefix, tmp_path / "pkg")
    master = m3u8.load(str(pkg / "hls/master.m3u8"))
    subs = {m.language: m for m in master.media if m.type == "SUBTITLES"}
    assert set(subs) == {"en", "fra"}, master.dumps()
    assert subs["fra"].name == "Français"
    playlist = m3u8.load(str(pkg / "hls" / subs["fra"].uri))
    got = cues_of([pkg / "hls" / Path(subs["fra"].uri).parent / s.uri for s in playlist.segments])
    assert close(got, want), got


def test_ultrafast_and_clipped_files_carry_them_too(s3, media_server, assets, tmp_path):  # noqa: F811
    """The chunked path joins the file before the tracks go in; clips put the cues on
    the joined timeline. A server of its own cuts 2 s chunks, from an input with a
    keyframe every second."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-i", str(assets / "in.mp4"), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                    "-c:a", "copy", str(assets / "in-gop.mp4")], check=True, timeout=60)
    jobs = {
        "ultrafast": ({"url": f"{media_server}/subtitles/in-gop.mp4"}, {"ultrafast": True}, CUES["en"]),
        "clipped": ({"url": f"{media_server}/subtitles/in-gop.mp4", "clips": [{"offset": 2, "duration": 3}]}, {}, [(0.5, 2.5, "Across a segment boundary")]),
    }
    server = Copra(tmp_path / "data", {"COPRA_WORKER_ULTRAFAST_CHUNK_SECS": "2"}).start()
    try:
        for name, (source, settings, want) in jobs.items():
            job = {
                "input": source,
                "settings": settings,
                "storage": s3_storage(s3, path=f"/subs-{uuid.uuid4().hex[:6]}"),
                "subtitles": tracks(media_server),
                "outputs": {"mp4:240p": {"key": "mp4", "path": "/out.mp4"}, "mkv:240p": {"key": "mkv", "path": "/out.mkv"}},
            }
            (tmp_path / name).mkdir()
            final, files = run_and_download(server, s3, job, tmp_path / name)
            assert final["status"] == "job.completed", (name, final, server.logs()[-3000:])
            if name == "ultrafast":
                chunked = [line for line in server.logs().splitlines() if f"job_id={final['id']}" in line and "ultrafast timings" in line]
                assert chunked, ("the job did not take the chunked path", server.logs()[-3000:])
            for key in ("mp4", "mkv"):
                assert [s["tags"]["language"] for s in subtitle_streams(files[key])] == ["eng", "por"], (name, key)
                got = cues_in(files[key], 0)
                assert close(got, want), (name, key, got)
    finally:
        server.stop()


ASS = """[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,{\\pos(10,10)}{\\b1}Hallo{\\b0}\\Nzusammen
Dialogue: 0,0:00:03.50,0:00:04.00,Default,,0,0,0,,Tschüss
"""


def test_an_ass_track_of_a_matroska_input_goes_into_webm(shared_copra, s3, media_server, assets, tmp_path):  # noqa: F811
    (assets / "de.ass").write_text(ASS, encoding="utf-8")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin", "-i", str(assets / "in.mp4"), "-i", str(assets / "de.ass"),
         "-map", "0:v", "-map", "0:a", "-map", "1:s", "-c:v", "copy", "-c:a", "copy", "-c:s", "ass",
         "-metadata:s:s:0", "language=ger", str(assets / "in-de.mkv")],
        check=True, timeout=60,
    )
    job = {
        "input": {"url": f"{media_server}/subtitles/in-de.mkv"},
        "storage": s3_storage(s3, path=f"/subs-{uuid.uuid4().hex[:6]}"),
        "outputs": {"webm:240p": {"key": "webm", "path": "/out.webm"}, "mp4:240p": {"key": "mp4", "path": "/out.mp4"}},
    }
    final, files = run_and_download(shared_copra, s3, job, tmp_path)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])
    source = metadata(shared_copra, final["id"], "source")
    assert [(s["codec_name"], s["tags"]["language"]) for s in source["streams"] if s["codec_type"] == "subtitle"] == [("ass", "ger")]
    want = [(1.0, 2.0, "<b>Hallo</b>\nzusammen"), (3.5, 4.0, "Tschüss")]
    for key, codec in (("webm", "webvtt"), ("mp4", "mov_text")):
        streams = subtitle_streams(files[key])
        # `ger` (ISO 639-2/B) is stored as `deu` (/T), as MP4 wants.
        assert [(s["codec_name"], s["tags"]["language"]) for s in streams] == [(codec, "deu")], (key, streams)
        # Within a frame (40 ms): this input's video starts 21 ms after its audio and
        # subtitles (the ffmpeg command's Matroska muxing), and a file's cue time 0 is its
        # first picture.
        assert close(cues_in(files[key], 0), want, within=0.045), (key, cues_in(files[key], 0))


def test_the_remux_keeps_every_stream_as_it_was(shared_copra, s3, media_server, assets, tmp_path):  # noqa: F811
    """The same outputs with and without tracks: the same video and audio packets, at the
    same times (WebM's Opus pre-skip included, which Matroska's reader takes off)."""
    outputs = {"mp4:240p": {"key": "mp4", "path": "/out.mp4"}, "mkv:240p": {"key": "mkv", "path": "/out.mkv"},
               "webm:240p": {"key": "webm", "path": "/out.webm"}}
    made = {}
    for name, subtitles in (("plain", None), ("with", tracks(media_server))):
        job = {"input": {"url": f"{media_server}/subtitles/in.mp4"}, "storage": s3_storage(s3, path=f"/subs-{uuid.uuid4().hex[:6]}"), "outputs": outputs}
        if subtitles:
            job["subtitles"] = subtitles
        (tmp_path / name).mkdir()
        final, made[name] = run_and_download(shared_copra, s3, job, tmp_path / name)
        assert final["status"] == "job.completed", (name, final)

    def packets(path: Path, kind: str) -> list:
        out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", kind, "-show_entries", "packet=pts_time,dts_time,size", "-of", "csv=p=0", str(path)],
                             check=True, capture_output=True, text=True, timeout=60).stdout
        return out.split()

    for key in ("mp4", "mkv", "webm"):
        assert subtitle_streams(made["plain"][key]) == [] and len(subtitle_streams(made["with"][key])) == 2, key
        for kind in ("v:0", "a:0"):
            plain, with_tracks = packets(made["plain"][key], kind), packets(made["with"][key], kind)
            assert len(plain) > 100 and plain == with_tracks, (key, kind, plain[:5], with_tracks[:5])
