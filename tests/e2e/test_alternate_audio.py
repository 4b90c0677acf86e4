"""Alternate audio (`"audio": "all"` or a list of languages on `httpstream`): every chosen
audio track of the input becomes a rendition of its own, read back with tools nobody
here wrote: `m3u8` for the master playlist, the MPD as XML, FFmpeg to decode each
rendition, and numpy to find which tone it plays.

The input has three audio tracks, each a different tone, tagged as files tag them
(ISO 639-2: `eng`, `fre`, `ger`); the playlists announce BCP 47 (`en`, `fr`, `de`).

- HLS: one `EXT-X-MEDIA TYPE=AUDIO` per track in one group, LANGUAGE and NAME (the
  track's title, else its language), the main track DEFAULT=YES and only it; every
  variant names the group; each rendition plays its own track's tone;
- DASH: one audio adaptation set per track with its `lang`, each playing its tone;
- a list of languages picks those tracks in that order, the first the default;
- MP4 and MKV outputs keep several audio tracks (`"audio"` on a video output), each a
  stream with its language (ISO 639-2, as files store it), the first the default;
- a language the input lacks fails that output, naming the tracks it has, and the
  job's other outputs are made; a bad language is a 400 at submit."""

import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import m3u8
import numpy as np
import pytest

from conftest import ffprobe, run_and_download, s3_storage
from test_subtitles import download_package

MPD_NS = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}
# (ISO 639-2 tag in the file, title, tone in Hz, BCP 47 language announced, level dB):
# levels 15 dB apart, so that one gain for all would miss a loudness target by far.
TRACKS = [("eng", "English", 440, "en", -30), ("fre", "Français", 660, "fr", 0), ("ger", None, 990, "de", -15)]
TONE = {language: tone for _, _, tone, language, _ in TRACKS}


@pytest.fixture(scope="module")
def three_languages(media_dir):
    d = media_dir / "alternate"
    d.mkdir(exist_ok=True)
    path = d / "in.mkv"  # Matroska keeps a track's title (MP4 has only a handler name)
    args = ["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6"]
    for _, _, tone, _, level in TRACKS:
        args += ["-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=48000:duration=6,volume={level}dB"]
    args += ["-map", "0:v"] + [x for i in range(len(TRACKS)) for x in ("-map", f"{i + 1}:a")]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
    for i, (tag, title, _, _, _) in enumerate(TRACKS):
        args += [f"-metadata:s:a:{i}", f"language={tag}"]
        if title:
            args += [f"-metadata:s:a:{i}", f"title={title}"]
    subprocess.run(args + [str(path)], check=True, timeout=120)
    return "alternate/in.mkv"


def tone_of(path: Path, stream: int = 0, window: tuple = None) -> float:
    """The loudest frequency of a file's (or an HLS playlist's) audio stream, in Hz
    (over `window`, (from, to) seconds, when given)."""
    hls = ["-allowed_extensions", "ALL"] if path.suffix == ".m3u8" else []
    raw = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", *hls, "-i", str(path), "-map", f"0:a:{stream}",
                          "-ac", "1", "-ar", "48000", "-f", "f32le", "-"], check=True, capture_output=True, timeout=60).stdout
    samples = np.frombuffer(raw, dtype=np.float32)
    assert len(samples) > 48000 * 4, f"{path}: {len(samples)} samples"
    if window:
        samples = samples[int(window[0] * 48000):int(window[1] * 48000)]
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / 48000)[np.argmax(spectrum)])


def integrated(path: Path, stream: int = 0) -> float:
    """Integrated loudness (LUFS) of an audio stream, by FFmpeg's ebur128 filter."""
    hls = ["-allowed_extensions", "ALL"] if path.suffix == ".m3u8" else []
    log = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-nostdin", *hls, "-i", str(path), "-map", f"0:a:{stream}",
                          "-af", "ebur128", "-f", "null", "-"], check=True, capture_output=True, text=True, timeout=120).stderr
    return float(log[log.rindex("Summary:"):].split("I:", 1)[1].split()[0])


def audio_media(master_path: Path) -> list:
    master = m3u8.load(str(master_path))
    return [m for m in master.media if m.type == "AUDIO"], master


def test_every_track_becomes_a_rendition(shared_copra, s3, media_server, three_languages, tmp_path):
    prefix = f"/alt-{uuid.uuid4().hex[:6]}"
    job = {
        "input": {"url": f"{media_server}/{three_languages}"},
        "storage": s3_storage(s3, path=prefix),
        "outputs": {"httpstream": {"hls": {"path": "/hls"}, "dash": {"path": "/dash"}, "variants": ["mp4:240p", "mp4:160x"],
                                   "segment_duration": 2, "audio": "all"}},
    }
    final, _ = run_and_download(shared_copra, s3, job, tmp_path)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])
    pkg = download_package(s3, prefix, tmp_path / "pkg")

    media, master = audio_media(pkg / "hls/master.m3u8")
    assert [(m.language, m.name, m.default, m.autoselect) for m in media] == [
        ("en", "English", "YES", "YES"), ("fr", "Français", "NO", "YES"), ("de", "de", "NO", "YES")]
    assert len({m.group_id for m in media}) == 1
    assert len(master.playlists) == 2 and all(p.stream_info.audio == media[0].group_id for p in master.playlists)
    for m in media:
        assert abs(tone_of(pkg / "hls" / m.uri) - TONE[m.language]) < 5, m.language

    mpd = ET.parse(pkg / "dash/master.mpd").getroot()
    sets = [s for s in mpd.iter(f"{{{MPD_NS['mpd']}}}AdaptationSet") if s.get("contentType") == "audio"]
    assert [s.get("lang") for s in sets] == ["en", "fr", "de"]
    for s in sets:
        (rep,) = s.findall("mpd:Representation", MPD_NS)
        rid = rep.get("id")
        joined = tmp_path / f"dash-{rid}.mp4"
        chunks = sorted((pkg / "dash").glob(f"chunk-{rid}-*.m4s"))
        assert chunks, rid
        joined.write_bytes((pkg / f"dash/init-{rid}.m4s").read_bytes() + b"".join(c.read_bytes() for c in chunks))
        assert abs(tone_of(joined) - TONE[s.get("lang")]) < 5, s.get("lang")


def test_languages_pick_tracks_in_order(shared_copra, s3, media_server, three_languages, tmp_path):
    prefix = f"/alt-{uuid.uuid4().hex[:6]}"
    job = {
        "input": {"url": f"{media_server}/{three_languages}"},
        "storage": s3_storage(s3, path=prefix),
        "outputs": {
            "httpstream": {"hls": {"path": "/hls"}, "variants": ["mp4:240p"], "segment_duration": 2, "audio": ["de", "en"]},
        },
    }
    final, _ = run_and_download(shared_copra, s3, job, tmp_path)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])
    pkg = download_package(s3, prefix, tmp_path / "pkg")
    media, _ = audio_media(pkg / "hls/master.m3u8")
    assert [(m.language, m.default) for m in media] == [("de", "YES"), ("en", "NO")]
    for m in media:
        assert abs(tone_of(pkg / "hls" / m.uri) - TONE[m.language]) < 5, m.language


def test_a_missing_language_fails_that_package_alone(shared_copra, s3, media_server, three_languages, tmp_path):
    job = {
        "input": {"url": f"{media_server}/{three_languages}"},
        "storage": s3_storage(s3, path=f"/alt-{uuid.uuid4().hex[:6]}"),
        "outputs": {
            "httpstream": {"key": "pkg", "hls": {"path": "/hls"}, "variants": ["mp4:240p"], "audio": ["en", "ja"]},
            "mp4:240p": {"key": "file", "path": "/file.mp4"},
        },
    }
    final, files = run_and_download(shared_copra, s3, job, tmp_path)
    by_key = {o["key"]: o for o in final["outputs"]}
    assert by_key["pkg"]["status"] == "httpstream.failed", by_key["pkg"]
    assert "no audio track in ja (its tracks: eng, fre, ger)" in by_key["pkg"]["error"], by_key["pkg"]
    assert by_key["file"]["status"] == "video.encoded", by_key["file"]
    assert abs(tone_of(files["file"]) - 440) < 5, "the main track"


def test_files_keep_several_tracks(shared_copra, s3, media_server, three_languages, tmp_path):
    job = {
        "input": {"url": f"{media_server}/{three_languages}"},
        "storage": s3_storage(s3, path=f"/alt-{uuid.uuid4().hex[:6]}"),
        "outputs": {
            "mp4:240p": [{"key": "all", "path": "/all.mp4", "audio": "all"}, {"key": "fr", "path": "/fr.mp4", "audio": ["fr"]}],
            "mkv:240p": {"key": "mkv", "path": "/two.mkv", "audio": ["de", "en"]},
        },
    }
    final, files = run_and_download(shared_copra, s3, job, tmp_path)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])

    def audio_streams(path):
        streams = ffprobe(path)["streams"]
        return [s for s in streams if s["codec_type"] == "audio"]

    expected = {"all": [("eng", 440), ("fra", 660), ("deu", 990)], "fr": [("fra", 660)], "mkv": [("deu", 990), ("eng", 440)]}
    for key, tracks in expected.items():
        streams = audio_streams(files[key])
        assert [s.get("tags", {}).get("language") for s in streams] == [t for t, _ in tracks], (key, streams)
        assert [s["disposition"]["default"] for s in streams] == [1] + [0] * (len(tracks) - 1), key
        for i, (_, tone) in enumerate(tracks):
            assert abs(tone_of(files[key], i) - tone) < 5, (key, i)
    assert audio_streams(files["mkv"])[1]["tags"].get("title") == "English"


def test_each_track_is_normalized_from_its_own_loudness(shared_copra, s3, media_server, three_languages, tmp_path):
    prefix = f"/alt-{uuid.uuid4().hex[:6]}"
    loudness = {"integrated": -16, "true_peak": -1.5}
    job = {
        "input": {"url": f"{media_server}/{three_languages}"},
        "storage": s3_storage(s3, path=prefix),
        "outputs": {
            "httpstream": {"key": "pkg", "hls": {"path": "/hls"}, "variants": ["mp4:240p"], "segment_duration": 2, "audio": "all", "loudness": loudness},
            "mkv:240p": {"key": "file", "path": "/all.mkv", "audio": "all", "loudness": loudness},
        },
    }
    final, files = run_and_download(shared_copra, s3, job, tmp_path)
    assert final["status"] == "job.completed", (final, shared_copra.logs()[-3000:])
    pkg = download_package(s3, prefix, tmp_path / "pkg")
    media, _ = audio_media(pkg / "hls/master.m3u8")
    levels = {m.language: integrated(pkg / "hls" / m.uri) for m in media}
    levels.update({f"file {i}": integrated(files["file"], i) for i in range(len(TRACKS))})
    assert len(levels) == 6 and all(abs(lufs + 16) <= 1.0 for lufs in levels.values()), levels


@pytest.mark.parametrize("format, audio, says", [("mp3", "all", "holds one"), ("mp4:240p:none", "all", "drops"), ("avi:240p", "all", "cannot hold")])
def test_outputs_that_hold_one_track_refuse(shared_copra, s3, format, audio, says):
    r = shared_copra.post_job({
        "input": {"url": "https://example.com/in.mp4"},
        "storage": s3_storage(s3),
        "outputs": {format: {"path": "/x", "audio": audio}},
    })
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "output_param_not_valid" and says in body["message"], body


@pytest.mark.parametrize("audio, says", [(["english!"], "english!"), ([], "audio"), (7, "audio"), (["en", "en"], "twice")])
def test_a_bad_selection_is_refused(shared_copra, s3, audio, says):
    r = shared_copra.post_job({
        "input": {"url": "https://example.com/in.mp4"},
        "storage": s3_storage(s3),
        "outputs": {"httpstream": {"hls": {"path": "/hls"}, "audio": audio}},
    })
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == "error" and body["error_code"] == "output_param_not_valid" and says in body["message"], body


def test_more_tracks_than_a_package_carries_fail_it(shared_copra, s3, media_server, media_dir):
    """An input of 17 audio tracks: "all" would be 17 renditions of every audio plan,
    past the 16 a package carries; the output fails naming the count, the main-track
    output of the same job is made."""
    path = media_dir / "alternate" / "seventeen.mkv"
    path.parent.mkdir(exist_ok=True)
    args = ["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2"]
    for i in range(17):
        args += ["-f", "lavfi", "-i", f"sine=frequency={300 + 20 * i}:sample_rate=48000:duration=2"]
    args += ["-map", "0:v"] + [x for i in range(17) for x in ("-map", f"{i + 1}:a")]
    subprocess.run(args + ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libopus", "-shortest", str(path)], check=True, timeout=120)
    created = shared_copra.post_job({
        "input": {"url": f"{media_server}/alternate/seventeen.mkv"},
        "storage": s3_storage(s3, path=f"/alt-{uuid.uuid4().hex[:6]}"),
        "outputs": {
            "httpstream": {"key": "pkg", "hls": {"path": "/hls"}, "variants": ["mp4:160x"], "audio": "all"},
            "mp4:160x": {"key": "file", "path": "/file.mp4"},
        },
    })
    assert created.status_code == 201, created.text
    final = shared_copra.wait_job(created.json()["id"], timeout=120)
    by_key = {o["key"]: o for o in final["outputs"]}
    assert by_key["pkg"]["status"] == "httpstream.failed" and "17 audio tracks" in by_key["pkg"]["error"], by_key["pkg"]
    assert by_key["file"]["status"] == "video.encoded", by_key["file"]
