"""Adaptive streaming (`httpstream`), black-box: real jobs over HTTP, packages fetched
from the bucket and checked the way players read them.

HLS is parsed with the `m3u8` package (a player-grade parser) and played end to end by
FFmpeg's HLS demuxer through ffprobe/ffmpeg; DASH manifests are parsed as XML, every
segment they imply is looked for in the bucket, and FFmpeg's DASH demuxer reads them.
Bandwidths are measured on the segments as RFC 8216 defines the peak segment bit rate
and compared with Apple's validator tolerance (10 %).

Inputs are generated (testsrc2 + a 48 kHz sine, 25 fps) and kept small: one 1280x720
12 s ladder (720p/480p/360p), 854x480 10 s for TS mode and explicit variants, 640x360
for the never-upscale and streaming-upload checks. Each package is made once per module
and checked by several tests."""

import json
import posixpath
import re
import subprocess
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import m3u8
import pytest
import requests

from conftest import KEY_A, make_video, s3_storage, wait_until

FPS = 25
FRAME = 1 / FPS
# Every ladder keyframes about every 2 s (segment / ceil(segment / 2)): one GOP.
GOP = 2.0
# Float slack on top of frame-exact comparisons (EXTINF is printed with 6 decimals).
EPS = 1e-3
# A video track of N frames lasts N frames exactly: half a frame off is a frame too many
# or too few. Audio comes in AAC frames (1024 samples, 21 ms): one video frame of slack.
VIDEO_SLACK = FRAME / 2
AUDIO_SLACK = FRAME
# Apple's mediastreamvalidator: measured peak/average within 10 % of the declared values.
BANDWIDTH_TOLERANCE = 0.10
TERMINAL = ("job.completed", "job.failed")
STATUS_ORDER = ["httpstream.waiting", "httpstream.queued", "httpstream.variants.encoding",
                "httpstream.packaging", "httpstream.packaged"]
MPD_NS = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}

# (name, size, seconds) of the generated inputs.
INPUTS = {
    "ladder.mp4": ("1280x720", 12),
    "sd.mp4": ("854x480", 10),
    "small.mp4": ("640x360", 3),
    "long.mp4": ("640x360", 30),
}


# --------------------------------------------------------------------------- rig


@pytest.fixture(scope="module")
def inputs(media_dir, media_server):
    """Generates an input the first time a test asks for it; returns its URL."""
    d = media_dir / "httpstream"
    d.mkdir(exist_ok=True)

    def url(name):
        path = d / name
        if not path.exists():
            size, seconds = INPUTS[name]
            make_video(path, size=size, rate=FPS, duration=seconds)
        return f"{media_server}/httpstream/{name}"

    return url


def bucket_keys(s3, prefix):
    keys = []
    for page in s3["client"].get_paginator("list_objects_v2").paginate(Bucket=s3["bucket"], Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def bucket_text(s3, key) -> str:
    return s3["client"].get_object(Bucket=s3["bucket"], Key=key)["Body"].read().decode()


def head(s3, key):
    return s3["client"].head_object(Bucket=s3["bucket"], Key=key)


@dataclass
class Package:
    """A finished httpstream job: its final view, what was observed on the way, and a
    local copy of everything it put in the bucket."""
    job: dict
    final: dict
    statuses: list
    prefix: str          # bucket key prefix of the job's storage path
    local: Path          # the bucket's objects below `prefix`, downloaded
    keys: list           # every object key below `prefix`
    s3: dict
    hls: "Hls" = None

    @property
    def output(self):
        return self.final["outputs"][0]

    def key(self, *parts):
        return posixpath.join(self.prefix, *parts)

    def path(self, *parts) -> Path:
        return self.local.joinpath(*parts)


def run_package(server, s3, input_url, params, tmp: Path, webhooks=None, timeout=240) -> Package:
    """Submit one httpstream output, wait for it (recording the output's statuses), and
    download what it stored."""
    name = "hs-" + uuid.uuid4().hex[:10]
    job = {
        "input": {"url": input_url},
        "storage": s3_storage(s3, path=f"/{name}"),
        "outputs": {"httpstream": params},
    }
    if webhooks is not None:
        job["notification"] = {"type": "http", "url": f"{webhooks.url}/{name}", "events": True}
    created = server.post_job(job)
    assert created.status_code == 201, created.text
    body = created.json()
    assert [(o["key"], o["type"], o["format"]) for o in body["outputs"]] == [("httpstream", "httpstream", "httpstream")]
    statuses = []

    def finished():
        view = server.get_job(body["id"]).json()
        status = view["outputs"][0]["status"]
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        return view if view["status"] in TERMINAL else None

    final = wait_until(finished, timeout, f"httpstream job {body['id']}", interval=0.05)
    assert final["status"] == "job.completed", (final, server.logs()[-4000:])
    keys = bucket_keys(s3, name + "/")
    local = tmp / name
    for key in keys:
        target = local / key[len(name) + 1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3["client"].download_file(s3["bucket"], key, str(target))
    return Package(job=job, final=final, statuses=statuses, prefix=name, local=local, keys=keys, s3=s3)


def assert_status_order(statuses):
    """Statuses only move forward, and end packaged."""
    assert all(s in STATUS_ORDER for s in statuses), statuses
    ranks = [STATUS_ORDER.index(s) for s in statuses]
    assert ranks == sorted(ranks), f"statuses went backwards: {statuses}"
    assert statuses[-1] == "httpstream.packaged", statuses


def run(cmd) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True)


def probe_json(path, *entries) -> dict:
    done = run(["ffprobe", "-v", "error", "-print_format", "json", *entries, path])
    assert done.returncode == 0 and not done.stderr.strip(), f"ffprobe {path}: {done.stderr}"
    return json.loads(done.stdout)


def decode_all(path):
    """Demux and decode every stream of `path` to the end; FFmpeg must not complain."""
    done = run(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-map", "0", "-f", "null", "-"])
    assert done.returncode == 0 and not done.stderr.strip(), f"decoding {path}: {done.stderr}"


def video_packets(path, stream="v:0"):
    """(pts, duration, keyframe) of every packet of a stream, in presentation order."""
    data = probe_json(path, "-select_streams", stream, "-show_entries", "packet=pts_time,duration_time,flags")
    packets = [(float(p["pts_time"]), float(p.get("duration_time", 0) or 0), "K" in p["flags"]) for p in data["packets"]]
    return sorted(packets)


def keyframe_times(path):
    return [pts for pts, _, key in video_packets(path) if key]


# --------------------------------------------------------------------------- HLS


@dataclass
class Hls:
    master: m3u8.M3U8
    media: dict  # playlist URI (relative to the master) -> m3u8.M3U8


def load_hls(pkg: Package, block="hls") -> Hls:
    """The master playlist and every media playlist it names, as a player gets them."""
    master_key = pkg.key(block, "master.m3u8")
    master = m3u8.loads(bucket_text(pkg.s3, master_key))
    uris = [p.uri for p in master.playlists] + [m.uri for m in master.media if m.uri]
    media = {uri: m3u8.loads(bucket_text(pkg.s3, pkg.key(block, uri))) for uri in dict.fromkeys(uris)}
    return Hls(master, media)


def segment_uris(playlist: m3u8.M3U8):
    """Every URI a media playlist needs: its EXT-X-MAP init sections, then its segments."""
    maps = [s.uri for s in playlist.segment_map] if playlist.segment_map else []
    return list(dict.fromkeys(maps)) + [s.uri for s in playlist.segments]


def peak_segment_bitrate(segments, target):
    """RFC 8216 §4.3.4.2: the largest bit rate of any contiguous set of segments whose
    total duration is between 0.5 and 1.5 times the target duration. `segments` are
    (seconds, bytes)."""
    best = 0.0
    for i in range(len(segments)):
        seconds = size = 0
        for d, b in segments[i:]:
            seconds += d
            size += b
            if seconds > 1.5 * target:
                break
            if seconds >= 0.5 * target:
                best = max(best, size * 8 / seconds)
    if best == 0.0:  # shorter than half a target: the whole stream is the only set
        seconds = sum(d for d, _ in segments)
        best = sum(b for _, b in segments) * 8 / seconds
    return best


def measured_rates(pkg: Package, hls: Hls, uri: str, block="hls"):
    """(peak, average) bit rates of a media playlist, measured on its segment files."""
    playlist = hls.media[uri]
    base = posixpath.dirname(uri)
    segments = [(s.duration, pkg.path(block, base, s.uri).stat().st_size) for s in playlist.segments]
    average = sum(b for _, b in segments) * 8 / sum(d for d, _ in segments)
    return peak_segment_bitrate(segments, playlist.target_duration), average


def check_bandwidths(pkg: Package, hls: Hls, block="hls"):
    """BANDWIDTH is the peak, AVERAGE-BANDWIDTH the mean, of the variant's video plus its
    audio group, as measured on the files."""
    audio_uri = {m.group_id: m.uri for m in hls.master.media if m.type == "AUDIO"}
    for variant in hls.master.playlists:
        info = variant.stream_info
        peak, average = measured_rates(pkg, hls, variant.uri, block)
        group_uri = audio_uri.get(info.audio)
        if group_uri and group_uri != variant.uri:
            audio_peak, audio_average = measured_rates(pkg, hls, group_uri, block)
            peak += audio_peak
            average += audio_average
        assert info.bandwidth > 0 and info.average_bandwidth > 0, variant
        assert info.bandwidth >= info.average_bandwidth, variant
        assert peak <= info.bandwidth * (1 + BANDWIDTH_TOLERANCE), \
            f"{variant.uri}: measured peak {peak:.0f} b/s exceeds BANDWIDTH={info.bandwidth}"
        assert info.bandwidth <= peak * 1.5, f"{variant.uri}: BANDWIDTH={info.bandwidth} far above the peak {peak:.0f}"
        assert abs(average - info.average_bandwidth) <= info.average_bandwidth * BANDWIDTH_TOLERANCE, \
            f"{variant.uri}: measured average {average:.0f} b/s vs AVERAGE-BANDWIDTH={info.average_bandwidth}"


def check_media_playlists(pkg: Package, hls: Hls, duration: float, segment: float, extension: str, block="hls"):
    """Every media playlist: VOD, complete, durations summing to the input's, segments no
    longer than the target plus one GOP, and every file it names in the bucket."""
    for uri, playlist in hls.media.items():
        assert not playlist.is_variant
        assert playlist.playlist_type == "vod" and playlist.is_endlist, uri
        assert playlist.media_sequence == 1, uri
        durations = [s.duration for s in playlist.segments]
        assert durations, f"{uri} has no segments"
        slack = AUDIO_SLACK if is_audio(hls, uri) else VIDEO_SLACK
        assert abs(sum(durations) - duration) <= slack + EPS, \
            f"{uri}: segments sum to {sum(durations):.6f} s, the input is {duration} s ({durations})"
        assert max(durations) <= segment + GOP + EPS, f"{uri}: a segment is longer than {segment} s + one GOP: {durations}"
        # RFC 8216: each EXTINF rounded to the nearest integer is at most the target.
        assert all(round(d) <= playlist.target_duration for d in durations), (uri, playlist.target_duration, durations)
        assert playlist.target_duration <= segment + GOP, (uri, playlist.target_duration)
        assert all(s.uri.endswith(extension) for s in playlist.segments), (uri, [s.uri for s in playlist.segments])
        if extension == ".m4s":
            assert playlist.segment_map and playlist.segment_map[0].uri == "init.mp4", f"{uri} lacks EXT-X-MAP"
        else:
            assert not playlist.segment_map, f"{uri}: TS segments need no EXT-X-MAP"
        base = posixpath.dirname(uri)
        for name in segment_uris(playlist):
            key = pkg.key(block, base, name)
            found = head(pkg.s3, key)
            assert found["ContentLength"] > 0, key
            content_type = {".ts": "video/mp2t", ".m4s": "video/iso.segment", ".mp4": "video/mp4"}[Path(name).suffix]
            assert found["ContentType"] == content_type, (key, found["ContentType"])


def is_audio(hls: Hls, uri: str) -> bool:
    """A media playlist of audio only: an EXT-X-MEDIA rendition, or a variant without
    a picture."""
    return any(m.uri == uri for m in hls.master.media if m.type == "AUDIO") or \
        any(p.uri == uri and p.stream_info.resolution is None for p in hls.master.playlists)


def hls_objects(pkg: Package, hls: Hls, block="hls"):
    """Every object the HLS package should consist of: playlists and what they name."""
    wanted = {pkg.key(block, "master.m3u8")}
    for uri, playlist in hls.media.items():
        wanted.add(pkg.key(block, uri))
        wanted |= {pkg.key(block, posixpath.dirname(uri), name) for name in segment_uris(playlist)}
    return wanted


# --------------------------------------------------------------------------- DASH


def iso_duration(text: str) -> float:
    m = re.fullmatch(r"P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", text)
    assert m, text
    d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


def expand_template(template: str, representation: str, number=None) -> str:
    def number_field(m):
        width = int(m.group(1)) if m.group(1) else 0
        return str(number).zfill(width)

    out = template.replace("$RepresentationID$", representation)
    out = re.sub(r"\$Number(?:%0(\d+)d)?\$", number_field, out)
    return out.replace("$$", "$")


def dash_representations(mpd: ET.Element):
    """(adaptation set, representation, [init, segments...], segment seconds) of each."""
    period = mpd.find("mpd:Period", MPD_NS)
    assert period is not None, "the MPD has no Period"
    out = []
    for aset in period.findall("mpd:AdaptationSet", MPD_NS):
        for rep in aset.findall("mpd:Representation", MPD_NS):
            template = rep.find("mpd:SegmentTemplate", MPD_NS)
            if template is None:
                template = aset.find("mpd:SegmentTemplate", MPD_NS)
            assert template is not None, f"representation {rep.get('id')} has no SegmentTemplate"
            timescale = int(template.get("timescale", "1"))
            start = int(template.get("startNumber", "1"))
            timeline = template.find("mpd:SegmentTimeline", MPD_NS)
            assert timeline is not None, f"representation {rep.get('id')} has no SegmentTimeline"
            durations = []
            for s in timeline.findall("mpd:S", MPD_NS):
                durations += [int(s.get("d")) / timescale] * (int(s.get("r", "0")) + 1)
            rid = rep.get("id")
            files = [expand_template(template.get("initialization"), rid)]
            files += [expand_template(template.get("media"), rid, start + i) for i in range(len(durations))]
            out.append((aset, rep, files, durations))
    return out


# --------------------------------------------------------------------------- the fMP4 ladder

LADDER = [("720p", 1280, 720), ("480p", 854, 480), ("360p", 640, 360)]


@pytest.fixture(scope="module")
def fmp4(shared_copra, s3, inputs, webhooks, tmp_path_factory):
    """hls + dash (hlsfmp4 in the dash block) on a 1280x720 12 s input, default ladder."""
    params = {"hls": {"path": "/hls"}, "dash": {"path": "/dash", "hlsfmp4": True}}
    pkg = run_package(shared_copra, s3, inputs("ladder.mp4"), params, tmp_path_factory.mktemp("fmp4"), webhooks)
    pkg.hls = load_hls(pkg)
    return pkg


def test_fmp4_job_view_urls_and_webhook(fmp4, s3, webhooks, shared_copra):
    assert_status_order(fmp4.statuses)
    assert "httpstream.variants.encoding" in fmp4.statuses, fmp4.statuses
    out = fmp4.output
    assert (out["key"], out["type"], out["format"], out["status"]) == \
        ("httpstream", "httpstream", "httpstream", "httpstream.packaged")
    base = f"{s3['endpoint']}/{s3['bucket']}/{fmp4.prefix}"
    assert out["urls"] == [{"format": "dash", "url": f"{base}/dash/master.mpd"},
                           {"format": "hls", "url": f"{base}/hls/master.m3u8"}]
    assert out.get("url") is None, out
    assert fmp4.final["progress"] == "100%"
    done = webhooks.wait_for(f"/{fmp4.prefix}", "job.completed")
    assert done["job_id"] == fmp4.final["id"]
    assert done["data"]["status"] == "job.completed"
    assert done["data"]["outputs"][0]["urls"] == out["urls"]
    assert done["data"]["outputs"][0]["status"] == "httpstream.packaged"
    completed = [h["body"] for h in webhooks.received(f"/{fmp4.prefix}", "output.completed")]
    assert [c["data"]["key"] for c in completed] == ["httpstream"], completed
    # The output's metadata describes the package (as read through its master playlist).
    meta = requests.get(f"{shared_copra.url}/v2/metadata/jobs/{fmp4.final['id']}/httpstream", auth=(KEY_A, ""), timeout=10)
    assert meta.status_code == 200, meta.text
    sizes = sorted((s["width"], s["height"]) for s in meta.json()["streams"] if s["codec_type"] == "video")
    assert sizes == sorted((w, h) for _, w, h in LADDER), meta.json()


def test_fmp4_master_playlist(fmp4):
    master = fmp4.hls.master
    assert master.is_variant
    assert master.version >= 7, "fMP4 segments need EXT-X-VERSION 7 in the master"
    assert master.is_independent_segments
    # One audio rendition, shared by every rung through its group.
    audio = [m for m in master.media if m.type == "AUDIO"]
    assert len(audio) == 1, [m.dumps() for m in master.media]
    assert audio[0].uri == "audio/index.m3u8" and audio[0].default == "YES" and audio[0].autoselect == "YES"
    assert audio[0].channels in ("1", "2"), audio[0].channels
    rungs = [(p.uri, p.stream_info.resolution) for p in master.playlists]
    assert rungs == [(f"{name}/index.m3u8", (w, h)) for name, w, h in LADDER]
    for p in master.playlists:
        info = p.stream_info
        video, sound = info.codecs.split(",")
        assert re.fullmatch(r"avc1\.64[0-9a-f]{4}", video), info.codecs  # h264 High
        assert sound == "mp4a.40.2", info.codecs
        assert info.frame_rate == pytest.approx(25.0)
        assert info.audio == audio[0].group_id
    # Bigger rungs cost more.
    bandwidths = [p.stream_info.bandwidth for p in master.playlists]
    assert bandwidths == sorted(bandwidths, reverse=True), bandwidths
    check_bandwidths(fmp4, fmp4.hls)


def test_fmp4_media_playlists_and_bucket_objects(fmp4, s3):
    hls = fmp4.hls
    assert set(hls.media) == {f"{name}/index.m3u8" for name, _, _ in LADDER} | {"audio/index.m3u8"}
    check_media_playlists(fmp4, hls, duration=12.0, segment=6.0, extension=".m4s")
    # Video segments of every rung are cut at the same instants.
    cuts = {uri: [round(s.duration, 3) for s in p.segments] for uri, p in hls.media.items() if uri != "audio/index.m3u8"}
    assert len(set(map(tuple, cuts.values()))) == 1, cuts
    # The bucket holds the package and nothing else (no temporary files left behind).
    hls_keys = {k for k in fmp4.keys if k.startswith(fmp4.key("hls") + "/")}
    assert hls_keys == hls_objects(fmp4, hls)
    assert head(s3, fmp4.key("hls", "master.m3u8"))["ContentType"] == "application/vnd.apple.mpegurl"
    assert head(s3, fmp4.key("hls", "720p", "index.m3u8"))["ContentType"] == "application/vnd.apple.mpegurl"


def test_fmp4_hls_plays_end_to_end(fmp4):
    master = fmp4.path("hls", "master.m3u8")
    probe = probe_json(master, "-show_streams", "-show_format")
    assert probe["format"]["format_name"] == "hls"
    videos = sorted((s["width"], s["height"]) for s in probe["streams"] if s["codec_type"] == "video")
    assert videos == sorted((w, h) for _, w, h in LADDER)
    assert all(s["codec_name"] == "h264" for s in probe["streams"] if s["codec_type"] == "video")
    audio = [s for s in probe["streams"] if s["codec_type"] == "audio"]
    assert [(a["codec_name"], a["sample_rate"]) for a in audio] == [("aac", "48000")]
    assert str(audio[0]["channels"]) == fmp4.hls.master.media[0].channels, "CHANNELS is the rendition's"
    assert abs(float(probe["format"]["duration"]) - 12.0) <= VIDEO_SLACK + EPS, probe["format"]["duration"]
    decode_all(master)
    # The last picture of every rung is shown until the input's end.
    for name, _, _ in LADDER:
        packets = video_packets(fmp4.path("hls", name, "index.m3u8"))
        end = packets[-1][0] + packets[-1][1] - packets[0][0]
        assert abs(end - 12.0) <= FRAME / 2, f"{name} ends at {end:.3f} s, the input at 12 s"


def test_fmp4_every_input_frame_is_in_every_rung(fmp4):
    """The input has 12 s x 25 fps = 300 frames; each rung must carry all of them."""
    counts = {}
    for name, _, _ in LADDER:
        counts[name] = len(video_packets(fmp4.path("hls", name, "index.m3u8")))
    assert counts == {name: 300 for name, _, _ in LADDER}, f"frames per rung (input: 300): {counts}"


def test_fmp4_rungs_share_keyframes(fmp4):
    times = {name: keyframe_times(fmp4.path("hls", name, "index.m3u8")) for name, _, _ in LADDER}
    reference = times["720p"]
    for name, keys in times.items():
        assert keys == pytest.approx(reference, abs=EPS), f"{name} keyframes {keys} differ from 720p's {reference}"
    # Forced every 2 s from the start, and nowhere else (no scene-cut keyframes).
    first = video_packets(fmp4.path("hls", "720p", "index.m3u8"))[0][0]
    relative = [t - first for t in reference]
    assert relative == pytest.approx([0, 2, 4, 6, 8, 10], abs=EPS), relative
    # Every segment starts on one of them.
    starts, at = [], 0.0
    for s in fmp4.hls.media["720p/index.m3u8"].segments:
        starts.append(at)
        at += s.duration
    assert all(any(abs(s - k) <= EPS for k in relative) for s in starts), (starts, relative)


def test_fmp4_dash_manifest(fmp4, s3):
    text = bucket_text(s3, fmp4.key("dash", "master.mpd"))
    mpd = ET.fromstring(text)  # valid XML, or this raises
    assert mpd.tag == "{urn:mpeg:dash:schema:mpd:2011}MPD"
    assert mpd.get("type") == "static"
    assert abs(iso_duration(mpd.get("mediaPresentationDuration")) - 12.0) <= 0.1 + EPS, mpd.get("mediaPresentationDuration")
    assert head(s3, fmp4.key("dash", "master.mpd"))["ContentType"] == "application/dash+xml"
    reps = dash_representations(mpd)
    sets = mpd.find("mpd:Period", MPD_NS).findall("mpd:AdaptationSet", MPD_NS)
    assert sorted(a.get("contentType") for a in sets) == ["audio", "video"], "one adaptation set per media type"

    # The representations are the HLS rungs: same sizes, same codec strings.
    hls_video = {p.stream_info.resolution: p.stream_info.codecs.split(",")[0] for p in fmp4.hls.master.playlists}
    video = [(int(r.get("width")), int(r.get("height")), r.get("codecs"))
             for a, r, _, _ in reps if a.get("contentType") == "video"]
    assert sorted(video, reverse=True) == [(w, h, hls_video[(w, h)]) for _, w, h in LADDER]
    audio = [r for a, r, _, _ in reps if a.get("contentType") == "audio"]
    assert [(r.get("codecs"), r.get("audioSamplingRate")) for r in audio] == [("mp4a.40.2", "48000")]
    for _, rep, _, _ in reps:
        assert int(rep.get("bandwidth")) > 0, rep.attrib
    vbw = [int(r.get("bandwidth")) for a, r, _, _ in reps if a.get("contentType") == "video"]
    assert vbw == sorted(vbw, reverse=True), vbw
    # Every rung of one set displays at one aspect ratio (854x480 is not exactly 16:9).
    for _, rep, _, _ in reps:
        if rep.get("width"):
            num, den = (int(x) for x in (rep.get("sar") or "1:1").split(":"))
            assert int(rep.get("width")) * num * 9 == int(rep.get("height")) * den * 16, rep.attrib

    # Every segment the timelines imply is in the bucket, and the timelines cover the input.
    dash_keys = {k for k in fmp4.keys if k.startswith(fmp4.key("dash") + "/")}
    implied = {fmp4.key("dash", "master.mpd")}
    for aset, rep, files, durations in reps:
        slack = AUDIO_SLACK if aset.get("contentType") == "audio" else VIDEO_SLACK
        assert abs(sum(durations) - 12.0) <= slack + EPS, (rep.get("id"), durations)
        assert max(durations) <= 6.0 + GOP + EPS, (rep.get("id"), durations)
        for name in files:
            key = fmp4.key("dash", name)
            assert head(s3, key)["ContentLength"] > 0, key
            implied.add(key)
    assert dash_keys == implied, "the DASH directory holds exactly what the MPD names"


def test_fmp4_dash_plays_end_to_end(fmp4):
    # FFmpeg's DASH demuxer resolves segment names against an absolute manifest path
    # only (a relative path fails with "Error when loading first fragment").
    mpd = fmp4.path("dash", "master.mpd").resolve()
    probe = probe_json(mpd, "-show_streams")
    videos = sorted((s["width"], s["height"]) for s in probe["streams"] if s["codec_type"] == "video")
    assert videos == sorted((w, h) for _, w, h in LADDER)
    assert [s["codec_name"] for s in probe["streams"] if s["codec_type"] == "audio"] == ["aac"]
    decode_all(mpd)


# --------------------------------------------------------------------------- TS mode


@pytest.fixture(scope="module")
def ts(shared_copra, s3, inputs, tmp_path_factory):
    """HLS only, MPEG-TS segments, default ladder of an 854x480 10 s input."""
    pkg = run_package(shared_copra, s3, inputs("sd.mp4"), {"hls": {"path": "/ts"}}, tmp_path_factory.mktemp("ts"))
    pkg.hls = load_hls(pkg, "ts")
    return pkg


def test_ts_package(ts, s3):
    assert_status_order(ts.statuses)
    assert ts.output["urls"] == [{"format": "hls", "url": f"{s3['endpoint']}/{s3['bucket']}/{ts.prefix}/ts/master.m3u8"}]
    master = ts.hls.master
    assert [(p.uri, p.stream_info.resolution) for p in master.playlists] == \
        [("480p/index.m3u8", (854, 480)), ("360p/index.m3u8", (640, 360))]
    assert all(re.fullmatch(r"avc1\.64[0-9a-f]{4},mp4a\.40\.2", p.stream_info.codecs) for p in master.playlists)
    check_media_playlists(ts, ts.hls, duration=10.0, segment=6.0, extension=".ts", block="ts")
    check_bandwidths(ts, ts.hls, "ts")
    assert {k for k in ts.keys} == hls_objects(ts, ts.hls, "ts"), "no DASH, no stray files"
    decode_all(ts.path("ts", "master.m3u8"))


def test_ts_segments_decode_on_their_own(ts):
    """Each segment carries its parameter sets: a player may start at any of them."""
    for uri, playlist in ts.hls.media.items():
        base = posixpath.dirname(uri)
        for segment in playlist.segments:
            path = ts.path("ts", base, segment.uri)
            if base == "audio":
                data = probe_json(path, "-count_frames", "-show_streams")
                assert [s["codec_type"] for s in data["streams"]] == ["audio"], path
                assert int(data["streams"][0]["nb_read_frames"]) > 0, path
                continue
            data = probe_json(path, "-count_frames", "-count_packets", "-show_streams")
            assert [s["codec_type"] for s in data["streams"]] == ["video"], path
            stream = data["streams"][0]
            assert stream["codec_name"] == "h264" and (stream["width"], stream["height"]) != (0, 0), path
            packets, frames = int(stream["nb_read_packets"]), int(stream["nb_read_frames"])
            assert packets > 0 and frames == packets, f"{path}: {frames} of {packets} pictures decode alone"
            first = probe_json(path, "-select_streams", "v:0", "-show_entries", "packet=flags", "-read_intervals", "%+#1")
            assert "K" in first["packets"][0]["flags"], f"{path} does not start with a keyframe"


# --------------------------------------------------------------------------- explicit variants


@pytest.fixture(scope="module")
def variants(shared_copra, s3, inputs, tmp_path_factory):
    params = {"hls": {"path": "/v/hls"}, "dash": {"path": "/v/dash"}, "hlsfmp4": True,
              "variants": ["mp4:480p", "mp4:240p::quality=2", "aac:64k"], "segment_duration": 4}
    pkg = run_package(shared_copra, s3, inputs("sd.mp4"), params, tmp_path_factory.mktemp("variants"))
    pkg.hls = load_hls(pkg, "v/hls")
    return pkg


def test_explicit_variants(variants):
    master = variants.hls.master
    entries = [(p.stream_info.resolution, p.stream_info.codecs) for p in master.playlists]
    assert len(entries) == 3, entries
    # 240 lines of an 854x480 picture are 427 wide: an even neighbour, displayed at the
    # top rung's aspect through its sample aspect ratio.
    (top, small) = (entries[0][0], entries[1][0])
    assert top == (854, 480) and small in ((426, 240), (428, 240)), entries
    for name in ("480p", "240p"):
        stream = probe_json(variants.path("v", "hls", name, "index.m3u8"), "-show_streams")["streams"][0]
        assert stream["display_aspect_ratio"] == "427:240", (name, stream["sample_aspect_ratio"])
    assert all(re.fullmatch(r"avc1\.[0-9a-f]{6},mp4a\.40\.2", c) for _, c in entries[:2]), entries
    # The audio-only rung: an entry of its own, audio codec only, no picture.
    audio_only = master.playlists[2]
    assert audio_only.stream_info.resolution is None and audio_only.stream_info.codecs == "mp4a.40.2", audio_only
    assert audio_only.stream_info.frame_rate is None
    check_media_playlists(variants, variants.hls, duration=10.0, segment=4.0, extension=".m4s", block="v/hls")
    for uri, playlist in variants.hls.media.items():
        assert playlist.target_duration == 4, uri
        if "audio" not in uri:
            assert [round(s.duration, 2) for s in playlist.segments] in ([4, 4, 2], [4, 4, 1.96]), uri
    check_bandwidths(variants, variants.hls, "v/hls")
    # aac:64k is 64 kbit/s (fMP4 adds little), well below the rungs' shared 128k audio.
    _, average = measured_rates(variants, variants.hls, audio_only.uri, "v/hls")
    assert 48_000 <= average <= 80_000, average
    for name in ("480p", "240p"):
        keys = keyframe_times(variants.path("v", "hls", name, "index.m3u8"))
        first = video_packets(variants.path("v", "hls", name, "index.m3u8"))[0][0]
        assert [k - first for k in keys] == pytest.approx([0, 2, 4, 6, 8], abs=EPS), (name, keys)
    decode_all(variants.path("v", "hls", "master.m3u8"))
    mpd = ET.fromstring(variants.path("v", "dash", "master.mpd").read_text())
    sizes = sorted((int(r.get("width")), int(r.get("height"))) for _, r, _, _ in dash_representations(mpd) if r.get("width"))
    assert sizes == [small, top]
    decode_all(variants.path("v", "dash", "master.mpd").resolve())


# --------------------------------------------------------------------------- never upscaled


def test_small_input_gets_only_its_own_rung(shared_copra, s3, inputs, tmp_path):
    # hlsfmp4 inside the hls block this time.
    params = {"hls": {"path": "/hls", "hlsfmp4": True}, "dash": {"path": "/dash"}}
    pkg = run_package(shared_copra, s3, inputs("small.mp4"), params, tmp_path)
    hls = load_hls(pkg)
    assert [(p.uri, p.stream_info.resolution) for p in hls.master.playlists] == [("360p/index.m3u8", (640, 360))]
    assert sorted(p.name for p in pkg.path("hls").iterdir() if p.is_dir()) == ["360p", "audio"]
    check_media_playlists(pkg, hls, duration=3.0, segment=6.0, extension=".m4s")
    mpd = ET.fromstring(pkg.path("dash", "master.mpd").read_text())
    video = [(r.get("width"), r.get("height")) for a, r, _, _ in dash_representations(mpd) if a.get("contentType") == "video"]
    assert video == [("640", "360")]


# --------------------------------------------------------------------------- 400s

BAD = [
    ({}, "output_param_not_valid", ["'hls'", "'dash'"]),
    ({"hlsfmp4": True}, "output_param_not_valid", ["'hls'", "'dash'"]),
    ({"hls": {}}, "output_param_not_valid", ["hls.path"]),
    ({"hls": {"path": "/h"}, "dash": {"hlsfmp4": True}}, "output_param_not_valid", ["dash.path"]),
    ({"hls": {"path": "/h"}, "variants": ["mp4:720p_sparkly"]}, "output_param_not_valid", ["mp4:720p_sparkly", "sparkly"]),
    ({"hls": {"path": "/h"}, "variants": []}, "output_param_not_valid", ["variants"]),
    ({"hls": {"path": "/h"}, "variants": ["webm:720p"]}, "output_param_not_valid", ["webm:720p"]),
    ({"hls": {"path": "/h"}, "segment_duration": 0}, "output_param_not_valid", ["segment_duration", "0"]),
    ({"hls": {"path": "/h"}, "segment_duration": 31}, "output_param_not_valid", ["segment_duration", "31"]),
]


@pytest.mark.parametrize("params,code,words", BAD, ids=[
    "neither", "only-hlsfmp4", "hls-without-path", "dash-without-path", "bad-variant", "no-variants",
    "webm-variant", "segment-0", "segment-31"])
def test_bad_params_are_a_400(shared_copra, s3, media_server, params, code, words):
    job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": s3_storage(s3, path="/bad"),
           "outputs": {"httpstream": params}}
    r = shared_copra.post_job(job)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == "error" and body["error_code"] == code, body
    for word in words:
        assert word in body["message"], f"{word!r} not in {body['message']!r}"


# --------------------------------------------------------------------------- streaming upload


def test_segments_are_uploaded_while_encoding(shared_copra, s3, inputs):
    """Segments reach the bucket while the ladder is still encoding; playlists come
    last, and never name a segment that is not there yet."""
    name = "hs-live-" + uuid.uuid4().hex[:8]
    job = {"input": {"url": inputs("long.mp4")}, "storage": s3_storage(s3, path=f"/{name}"),
           "outputs": {"httpstream": {"hls": {"path": "/hls"}, "segment_duration": 2}}}
    created = shared_copra.post_job(job)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    snapshots, early = [], []

    def status():
        view = shared_copra.get_job(job_id).json()
        return view, view["outputs"][0]["status"]

    def watch():
        _, before = status()
        listed = set(bucket_keys(s3, name + "/"))
        view, after = status()
        snapshots.append(listed)
        encoding = before == after == "httpstream.variants.encoding"
        if encoding and any(k.endswith(".ts") for k in listed):
            assert not any(k.endswith(".m3u8") for k in listed), f"a playlist before the ladder is encoded: {sorted(listed)}"
            early.append(sorted(listed))
        return view if view["status"] in TERMINAL else None

    final = wait_until(watch, 240, f"job {job_id}", interval=0.05)
    assert final["status"] == "job.completed", final
    assert early, "no segment was seen in the bucket while the ladder was encoding"

    # Playlists are written last: any listing that shows one shows everything it names.
    final_keys = set(bucket_keys(s3, name + "/"))
    playlists = {k: m3u8.loads(bucket_text(s3, k)) for k in final_keys if k.endswith("index.m3u8")}
    needs = {k: {posixpath.join(posixpath.dirname(k), s.uri) for s in p.segments} for k, p in playlists.items()}
    master = f"{name}/hls/master.m3u8"
    for listed in snapshots:
        for playlist, segments in needs.items():
            if playlist in listed:
                assert segments <= listed, f"{playlist} listed before {sorted(segments - listed)}"
        if master in listed:
            assert set(needs) <= listed, "the master playlist came before a media playlist"
    segments = sorted(k for k in final_keys if k.endswith(".ts"))
    assert len(segments) >= 15 + 15, segments  # 30 s in 2 s segments, video and audio
