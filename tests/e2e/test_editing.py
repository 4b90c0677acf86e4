"""The book's Editing chapter's job, submitted as written (its URLs pointed at a test
server, its storage at the test bucket): an intro joined before the programme's clips,
a watermark, loudness, two subtitle languages and two audio languages into HLS, DASH
and an MP4 at once, each checked on what was made."""

import json
import re
import subprocess
import uuid
from pathlib import Path

import m3u8
import numpy as np
import pytest

from conftest import ffprobe, run_and_download, s3_storage
from test_alternate_audio import tone_of
from test_loudness import ebur128
from test_subtitles import cues_of, download_package
from test_watermark import frame_at, mean

ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- test_editing.py submits this job -->"


def chapter_job() -> dict:
    lines = (ROOT / "docs/src/editing.md").read_text().splitlines()
    at = lines.index(MARK)
    assert lines[at + 1] == "```json", "the mark precedes the job's JSON block"
    end = lines.index("```", at + 2)
    return json.loads("\n".join(lines[at + 2:end]))


@pytest.fixture(scope="module")
def assets(media_dir):
    d = media_dir / "editing"
    d.mkdir(exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=7",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=7,volume=-20dB",
         "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000:duration=7,volume=-35dB",
         "-map", "0:v", "-map", "1:a", "-map", "2:a", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fre",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(d / "programme.mp4")],
        check=True, timeout=120,
    )
    # The intro: another size, rate and audio format, one untagged track (its tone under both languages).
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-nostdin",
         "-f", "lavfi", "-i", "testsrc=size=1280x720:rate=30:duration=2",
         "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=2,volume=-20dB",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1", str(d / "intro.mp4")],
        check=True, timeout=120,
    )
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", "color=c=red:s=64x64,format=rgba", "-frames:v", "1", str(d / "logo.png")],
                   check=True, timeout=60)
    # Cues on the joined timeline: one in the programme's first clip, one in its second.
    (d / "programme.en.vtt").write_text("WEBVTT\n\n00:00:02.500 --> 00:00:03.500\nOne\n\n00:00:04.500 --> 00:00:05.500\nTwo\n")
    (d / "programme.fr.srt").write_text("1\n00:00:02,500 --> 00:00:03,500\nUn\n\n2\n00:00:04,500 --> 00:00:05,500\nDeux\n")
    return d


def test_the_chapters_job_does_it_all(shared_copra, s3, media_server, assets, tmp_path):
    prefix = f"/editing-{uuid.uuid4().hex[:6]}"
    job = json.loads(json.dumps(chapter_job()).replace("https://example.com", f"{media_server}/editing"))
    job["storage"] = s3_storage(s3, path=prefix)
    final, files = run_and_download(shared_copra, s3, job, tmp_path, timeout=300)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])
    pkg = download_package(s3, prefix, tmp_path / "pkg")
    mp4 = next(f for k, f in files.items() if str(f).endswith(".mp4"))

    # The intro (2 s) and the clips: 2 s + 3 s.
    assert abs(float(ffprobe(mp4)["format"]["duration"]) - 7.0) < 0.1

    # The logo, top right, 15 % of each picture's width, over the test pattern at 0.8.
    def logo_is_drawn(picture: np.ndarray):
        h, w, _ = picture.shape
        size, margin = round(0.15 * w), 16
        region = picture[margin + 4:margin + size - 4, w - margin - size + 4:w - margin - 4]
        r, g, b = mean(region)
        assert r > 190 and g < 70 and b < 70, (w, r, g, b)
    logo_is_drawn(frame_at(mp4, 1.0, (640, 360)))
    master = m3u8.load(str(pkg / "hls/master.m3u8"))
    for variant in master.playlists:
        w, h = variant.stream_info.resolution
        logo_is_drawn(frame_at(pkg / "hls" / variant.uri, 1.0, (w, h)))

    # Two audio languages, each at -16 LUFS from its own level (15 dB apart in the
    # programme), each the intro's tone first, then its own: in the HLS group, in the
    # MPD, in the MP4.
    intro, programme = (0.3, 1.7), (2.5, 6.5)
    audio = [m for m in master.media if m.type == "AUDIO"]
    assert [(m.language, m.default) for m in audio] == [("en", "YES"), ("fr", "NO")]
    for m in audio:
        assert abs(ebur128(pkg / "hls" / m.uri)["integrated"] - -16) <= 1.0, m.language
        assert abs(tone_of(pkg / "hls" / m.uri, window=intro) - 330) < 5, m.language
        assert abs(tone_of(pkg / "hls" / m.uri, window=programme) - {"en": 440, "fr": 660}[m.language]) < 5, m.language
    mp4_audio = [s for s in ffprobe(mp4)["streams"] if s["codec_type"] == "audio"]
    assert [s["tags"]["language"] for s in mp4_audio] == ["eng", "fra"]
    for i, tone in enumerate((440, 660)):
        assert abs(ebur128(mp4, i)["integrated"] - -16) <= 1.0, i
        assert abs(tone_of(mp4, i, window=intro) - 330) < 5, i
        assert abs(tone_of(mp4, i, window=programme) - tone) < 5, i

    # Both languages, their cues where the files put them on the joined timeline.
    subs = {m.language: m for m in master.media if m.type == "SUBTITLES"}
    assert set(subs) == {"en", "fr"} and subs["en"].default == "YES"
    en = m3u8.load(str(pkg / "hls" / subs["en"].uri))
    assert cues_of([pkg / "hls" / Path(subs["en"].uri).parent / s.uri for s in en.segments]) == [(2.5, 3.5, "One"), (4.5, 5.5, "Two")]
    # And in the MP4, as `mov_text` streams (their cues are read back in test_subtitle_tracks.py).
    mp4_subs = [(s["codec_name"], s["tags"]["language"]) for s in ffprobe(mp4)["streams"] if s["codec_type"] == "subtitle"]
    assert mp4_subs == [("mov_text", "eng"), ("mov_text", "fra")], mp4_subs
    mpd = next((pkg / "dash").glob("*.mpd")).read_text()
    for language in ("en", "fr"):
        assert re.search(rf'contentType="text"[^>]*lang="{language}"', mpd), mpd
        assert re.search(rf'contentType="audio"[^>]*lang="{language}"', mpd), mpd
    assert cues_of([pkg / "dash/subs-fr.vtt"]) == [(2.5, 3.5, "Un"), (4.5, 5.5, "Deux")]
