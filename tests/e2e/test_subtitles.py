"""Sidecar subtitles (`"subtitles": [{"url", "language", "name", "default"}]`) carried into
adaptive-streaming packages, read back with tools nobody here wrote: `m3u8` for the
master playlist, `webvtt-py` for every WebVTT segment and file.

- HLS: one `EXT-X-MEDIA TYPE=SUBTITLES` per language (LANGUAGE, NAME, DEFAULT,
  AUTOSELECT), every variant naming the group; each language's segments hold exactly
  its cues (a cue across a segment boundary in both), and `X-TIMESTAMP-MAP` maps cue
  time 0 to the first video frame's MPEG-TS time;
- DASH: a text adaptation set per language with the whole WebVTT file;
- an output's `offset` moves the cues with it; SRT and WebVTT read alike;
- `burn_in` draws one track into the picture, changing its pixels only while a cue
  shows; a language the job has no track for fails that output;
- a file that is not subtitles fails the packages (and the files that carry tracks, see
  `test_subtitle_tracks.py`) alone; bad tracks are 400s."""

import re
import subprocess
import uuid
from pathlib import Path

import m3u8
import pytest
import requests
import webvtt

from conftest import KEY_A, run_and_download, s3_storage

VTT = """WEBVTT

intro
00:00:00.500 --> 00:00:01.500
Hello

00:00:02.500 --> 00:00:04.500 align:start
Across a segment boundary

00:00:05.000 --> 00:00:05.800
<i>Last</i>
"""

SRT = """1
00:00:00,500 --> 00:00:01,500
Olá

2
00:00:02,500 --> 00:00:04,500
Através de um limite

3
00:00:05,000 --> 00:00:05,800
Fim
"""

CUES = {
    "en": [(0.5, 1.5, "Hello"), (2.5, 4.5, "Across a segment boundary"), (5.0, 5.8, "<i>Last</i>")],
    "pt-BR": [(0.5, 1.5, "Olá"), (2.5, 4.5, "Através de um limite"), (5.0, 5.8, "Fim")],
}


@pytest.fixture(scope="module")
def assets(media_dir):
    d = media_dir / "subtitles"
    d.mkdir(exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin",
         "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(d / "in.mp4")],
        check=True, timeout=120,
    )
    (d / "en.vtt").write_text(VTT, encoding="utf-8")
    (d / "pt.srt").write_text(SRT.replace("\n", "\r\n"), encoding="utf-8")
    (d / "garbage.vtt").write_bytes(b"\x00\xff not subtitles")
    return d


def tracks(media_server, pt="pt.srt"):
    return [
        {"url": f"{media_server}/subtitles/en.vtt", "language": "en", "name": "English"},
        {"url": f"{media_server}/subtitles/{pt}", "language": "pt-BR", "name": "Português"},
    ]


def download_package(s3, prefix: str, dest: Path):
    listed = s3["client"].list_objects_v2(Bucket=s3["bucket"], Prefix=prefix.strip("/") + "/")["Contents"]
    for obj in listed:
        local = dest / obj["Key"].split("/", 1)[1]
        local.parent.mkdir(parents=True, exist_ok=True)
        s3["client"].download_file(s3["bucket"], obj["Key"], str(local))
    return dest


def cues_of(files) -> list:
    """Every cue of the WebVTT files, once each (a cue in two segments is one cue)."""
    seen = []
    for f in files:
        for c in webvtt.read(str(f)):
            cue = (parse_time(c.start), parse_time(c.end), c.raw_text)
            if cue not in seen:
                seen.append(cue)
    return seen


def parse_time(text: str) -> float:
    h, m, s = text.split(":")
    return round(int(h) * 3600 + int(m) * 60 + float(s), 3)


def test_hls_and_dash_carry_each_language(shared_copra, s3, media_server, assets, tmp_path):
    prefix = f"/subs-{uuid.uuid4().hex[:6]}"
    job = {
        "input": {"url": f"{media_server}/subtitles/in.mp4"},
        "storage": s3_storage(s3, path=prefix),
        "subtitles": tracks(media_server),
        "outputs": {"httpstream": [
            {"key": "whole", "hls": {"path": "/whole/hls"}, "dash": {"path": "/whole/dash"}, "variants": ["mp4:240p", "mp4:160x"], "segment_duration": 2},
            {"key": "later", "hls": {"path": "/later/hls"}, "variants": ["mp4:240p"], "segment_duration": 2, "offset": 2},
        ]},
    }
    final, _ = run_and_download(shared_copra, s3, job, tmp_path)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])
    pkg = download_package(s3, prefix, tmp_path / "pkg")

    master = m3u8.load(str(pkg / "whole/hls/master.m3u8"))
    subs = [m for m in master.media if m.type == "SUBTITLES"]
    assert [(m.language, m.name, m.default, m.autoselect) for m in subs] == [("en", "English", "YES", "YES"), ("pt-BR", "Português", "NO", "YES")]
    assert master.playlists and all(p.stream_info.subtitles == "subs" for p in master.playlists)

    first_video_segment = sorted((pkg / "whole/hls/240p").glob("*.ts"))[0]
    video_pts = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts", "-read_intervals", "%+#1",
                                "-of", "csv=p=0", str(first_video_segment)], check=True, capture_output=True, text=True).stdout.split()[0].strip(",")
    for m in subs:
        playlist = m3u8.load(str(pkg / "whole/hls" / m.uri))
        segments = [pkg / "whole/hls" / Path(m.uri).parent / s.uri for s in playlist.segments]
        assert len(segments) == 3, [s.uri for s in playlist.segments]
        assert abs(sum(s.duration for s in playlist.segments) - 6.0) < 0.05
        assert cues_of(segments) == CUES[m.language], m.language
        # The boundary cue (2.5-4.5 s) is in the 2-4 s and the 4-6 s segments.
        assert "boundary" in segments[1].read_text() or "limite" in segments[1].read_text()
        assert "boundary" in segments[2].read_text() or "limite" in segments[2].read_text()
        stamp = re.search(r"X-TIMESTAMP-MAP=MPEGTS:(\d+),LOCAL:00:00:00.000", segments[0].read_text())
        assert stamp and stamp.group(1) == video_pts, (stamp, video_pts)

    mpd = (pkg / "whole/dash/master.mpd").read_text() if (pkg / "whole/dash/master.mpd").exists() else next((pkg / "whole/dash").glob("*.mpd")).read_text()
    for language in ("en", "pt-BR"):
        assert re.search(rf'<AdaptationSet[^>]*contentType="text"[^>]*mimeType="text/vtt"[^>]*lang="{language}"', mpd), mpd
        assert cues_of([pkg / f"whole/dash/subs-{language}.vtt"]) == CUES[language]

    # Two seconds later: the cues move with the output, the first one gone.
    later = m3u8.load(str(pkg / "later/hls/subs-en/index.m3u8"))
    moved = cues_of([pkg / "later/hls/subs-en" / s.uri for s in later.segments])
    assert moved == [(0.5, 2.5, "Across a segment boundary"), (3.0, 3.8, "<i>Last</i>")], moved


def test_a_file_that_is_not_subtitles_fails_the_packages_alone(shared_copra, s3, media_server, assets, tmp_path):
    job = {
        "input": {"url": f"{media_server}/subtitles/in.mp4"},
        "storage": s3_storage(s3, path=f"/subs-{uuid.uuid4().hex[:6]}"),
        "subtitles": tracks(media_server, pt="garbage.vtt"),
        "outputs": {"httpstream": {"key": "pkg", "hls": {"path": "/hls"}, "variants": ["mp4:240p"]}, "ts:240p": {"key": "file", "path": "/file.ts"}},
    }
    final, files = run_and_download(shared_copra, s3, job, tmp_path)
    by_key = {o["key"]: o for o in final["outputs"]}
    assert by_key["pkg"]["status"] == "httpstream.failed", by_key["pkg"]
    assert "'pt-BR' subtitles could not be used" in by_key["pkg"]["error"], by_key["pkg"]
    assert by_key["file"]["status"] == "video.encoded" and "file" in files


@pytest.mark.parametrize("subtitles, says", [
    ([{"url": "https://example.com/en.vtt"}], "'language'"),
    ([{"url": "ftp://example.com/en.vtt", "language": "en"}], "'url'"),
    ([{"url": "http://169.254.169.254/en.vtt", "language": "en"}], "cannot be used"),
    ([{"url": "https://example.com/a.vtt", "language": "en"}, {"url": "https://example.com/b.vtt", "language": "en"}], "repeats"),
    ("en.vtt", "a list"),
])
def test_bad_tracks_are_refused(shared_copra, s3, subtitles, says):
    r = requests.post(f"{shared_copra.url}/v2/jobs", auth=(KEY_A, ""), timeout=10, json={
        "input": {"url": "https://example.com/in.mp4"},
        "storage": s3_storage(s3),
        "subtitles": subtitles,
        "outputs": {"httpstream": {"hls": {"path": "/hls"}}},
    })
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == "error" and body["error_code"] == "subtitles_not_valid" and says in body["message"], body


def test_burn_in_draws_a_track_only_while_its_cues_show(shared_copra, s3, media_server, assets, tmp_path):
    import numpy as np
    from test_watermark import frame_at

    job = {
        "input": {"url": f"{media_server}/subtitles/in.mp4"},
        "storage": s3_storage(s3, path=f"/subs-{uuid.uuid4().hex[:6]}"),
        "subtitles": tracks(media_server),
        "outputs": {
            "mp4:240p::quality=5": {"key": "plain", "path": "/plain.mp4"},
            "mov:240p::quality=5": {"key": "burnt", "path": "/burnt.mov", "burn_in": "pt-BR"},
            "webm:240p": {"key": "missing", "path": "/missing.webm", "burn_in": "de"},
        },
    }
    final, files = run_and_download(shared_copra, s3, job, tmp_path)
    by_key = {o["key"]: o for o in final["outputs"]}
    assert by_key["burnt"]["status"] == "video.encoded", (by_key["burnt"], shared_copra.logs()[-3000:])
    assert by_key["missing"]["status"] == "video.failed" and "burn_in names 'de'" in by_key["missing"]["error"], by_key["missing"]

    def changed(t: float):
        """Pixels changed by more than an encoder's noise (text is white on the
        picture): in the bottom third, where the cue is drawn, and in the top half."""
        plain, burnt = frame_at(files["plain"], t), frame_at(files["burnt"], t)
        strong = np.abs(plain - burnt).max(axis=2) > 60
        return int(strong[160:].sum()), int(strong[:120].sum())
    # "Olá" shows from 0.5 s to 1.5 s, "Através de um limite" from 2.5 s to 4.5 s.
    for t in (1.0, 3.0):
        bottom, top = changed(t)
        assert bottom > 100 and top == 0, (t, bottom, top)
    for t in (0.2, 2.0, 4.8):
        bottom, top = changed(t)
        assert bottom < 10 and top == 0, (t, bottom, top)
