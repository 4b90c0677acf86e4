"""Ultrafast jobs (`settings.ultrafast`): the input cut at keyframes into chunks that any
worker encodes, the audio encoded once, the pieces joined by stream copy. Black-box:
the real binary, S3 (moto), ffprobe/ffmpeg to check what a user gets against the same
job run normally; PostgreSQL with two worker processes for a worker killed mid-chunk.

Chunks are ~8 s here (`COPRA_WORKER_ULTRAFAST_CHUNK_SECS`), so a 32 s input with a
keyframe every second is cut at 8, 16 and 24 s; its picture changes at 16 s (a scene
change on a join)."""

import json
import posixpath
import re
import subprocess
import uuid
import xml.etree.ElementTree as ET

import m3u8
import pytest
import requests

from conftest import KEY_A, Copra, count_frames, ffprobe, s3_storage, wait_until
from test_scale_out import Cluster, database  # noqa: F401 (fixture)

DURATION = 32
RATE = 25
JOINS = [8.0, 16.0, 24.0]
CHUNK_ENV = {"COPRA_WORKER_ULTRAFAST_CHUNK_SECS": "8"}


@pytest.fixture(scope="module")
def uf_input(media_dir):
    """640x360, 25 fps, a keyframe every second, testsrc2 then mandelbrot from 16 s; a
    sine tone throughout."""
    name = "uf-input.mp4"
    half = DURATION // 2
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate={RATE}:duration={half}",
         "-f", "lavfi", "-i", f"mandelbrot=size=640x360:rate={RATE},trim=duration={half}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={DURATION}",
         "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0,format=yuv420p[v]",
         "-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-preset", "veryfast", "-g", str(RATE),
         "-c:a", "aac", str(media_dir / name)],
        check=True,
    )
    return name


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    node = Copra(tmp_path_factory.mktemp("uf") / "data", {**CHUNK_ENV, "COPRA_WORKER_CONCURRENCY": "2"}).start()
    yield node
    node.stop()


def run_job(server, s3, media_server, uf_input, outputs, ultrafast, tmp_path):
    name = "uf-" + uuid.uuid4().hex[:8]
    job = {"input": {"url": f"{media_server}/{uf_input}"}, "storage": s3_storage(s3, path=f"/{name}"), "outputs": outputs}
    if ultrafast:
        job["settings"] = {"ultrafast": True}
    created = server.post_job(job)
    assert created.status_code == 201, created.text
    view = server.wait_job(created.json()["id"], timeout=300)
    assert view["status"] == "job.completed", json.dumps(view, indent=1)
    return view, name


def download(s3, key, tmp_path):
    local = tmp_path / key.replace("/", "_")
    s3["client"].download_file(s3["bucket"], key, str(local))
    return local


def events_of(server, job_id):
    response = requests.get(f"{server.url}/v2/jobs/{job_id}/events", auth=(KEY_A, ""), stream=True, timeout=30)
    assert response.status_code == 200
    return response.text


def packets(path, stream):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries",
                          "packet=pts_time,dts_time,duration_time,flags", "-of", "json", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["packets"]


def psnr_per_frame(path, reference, tmp_path):
    stats = tmp_path / f"psnr-{uuid.uuid4().hex[:6]}.log"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-i", str(reference), "-lavfi",
                    f"[0:v][1:v]psnr=stats_file={stats}", "-f", "null", "-"], check=True)
    values = []
    for line in stats.read_text().splitlines():
        fields = dict(part.split(":", 1) for part in line.split() if ":" in part)
        values.append(min(float(fields["psnr_avg"]), 99.0))
    return values


def stream_duration(path, kind):
    probe = ffprobe(path)
    stream = next(s for s in probe["streams"] if s["codec_type"] == kind)
    return float(stream["duration"])


def test_ultrafast_matches_the_normal_encode(server, s3, media_server, media_dir, uf_input, tmp_path):
    outputs = {"mp4:360p": {"path": "/out.mp4"}}
    normal_view, normal_name = run_job(server, s3, media_server, uf_input, outputs, False, tmp_path)
    fast_view, fast_name = run_job(server, s3, media_server, uf_input, outputs, True, tmp_path)
    normal = download(s3, f"{normal_name}/out.mp4", tmp_path)
    fast = download(s3, f"{fast_name}/out.mp4", tmp_path)

    history = events_of(server, fast_view["id"])
    assert "ultrafast: 4 chunks" in history, history
    assert "ultrafast" not in events_of(server, normal_view["id"])

    # Same frames, same length.
    assert count_frames(fast) == count_frames(normal) == DURATION * RATE
    frame = 1 / RATE
    assert abs(stream_duration(fast, "video") - stream_duration(normal, "video")) <= frame
    assert abs(float(ffprobe(fast)["format"]["duration"]) - float(ffprobe(normal)["format"]["duration"])) <= frame

    # Monotonic timestamps, and a keyframe at every join.
    video = packets(fast, "v:0")
    dts = [float(p["dts_time"]) for p in video]
    assert all(b > a for a, b in zip(dts, dts[1:])), "video dts not increasing"
    pts = sorted(float(p["pts_time"]) for p in video)
    assert all(abs((b - a) - frame) < 1e-3 for a, b in zip(pts, pts[1:])), "a frame missing or repeated"
    keys = {round(float(p["pts_time"]), 3) for p in video if "K" in p["flags"]}
    for join in JOINS:
        assert join in keys, f"no keyframe at the join at {join} s (keyframes: {sorted(keys)})"

    # No seam: over the second around each join, the picture (PSNR against the source) is
    # within 1 dB of the normal encode's over the same frames; and so is the average. (A
    # dropped or repeated frame would misalign every frame after it: tens of dB.) The
    # first frames of a chunk start the encoder's rate control afresh, so single frames
    # differ more, in either direction.
    source = media_dir / uf_input
    fast_psnr = psnr_per_frame(fast, source, tmp_path)
    normal_psnr = psnr_per_frame(normal, source, tmp_path)
    assert len(fast_psnr) == len(normal_psnr) == DURATION * RATE
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    assert abs(mean(fast_psnr) - mean(normal_psnr)) <= 0.5, (mean(fast_psnr), mean(normal_psnr))
    for join in JOINS:
        around = slice(int(join * RATE) - RATE // 2, int(join * RATE) + RATE // 2 + 1)
        assert abs(mean(fast_psnr[around]) - mean(normal_psnr[around])) <= 1.0, (join, fast_psnr[around], normal_psnr[around])

    # Audio: encoded once, as long as the normal encode's, without gaps.
    assert abs(stream_duration(fast, "audio") - stream_duration(normal, "audio")) < 1e-3
    audio = packets(fast, "a:0")
    for a, b in zip(audio, audio[1:]):
        assert abs(float(a["pts_time"]) + float(a["duration_time"]) - float(b["pts_time"])) < 1e-4, (a, b)
    assert [float(p["pts_time"]) for p in audio] == [float(p["pts_time"]) for p in packets(normal, "a:0")]


def fetch_prefix(s3, prefix, local):
    """Every object below `prefix` in the bucket, downloaded under `local`."""
    pages = s3["client"].get_paginator("list_objects_v2").paginate(Bucket=s3["bucket"], Prefix=prefix + "/")
    for key in [o["Key"] for page in pages for o in page.get("Contents", [])]:
        target = local / key[len(prefix) + 1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3["client"].download_file(s3["bucket"], key, str(target))
    return local


def stream_packets(path, stream):
    """Packets of one stream of `path` (a playlist or manifest is read to its end)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", stream, "-count_packets", "-show_entries",
                          "stream=nb_read_packets", "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True).stdout
    # (An HLS playlist is also shown as a program: the stream's count comes twice.)
    return int(out.split()[0])


def decodes_cleanly(path):
    done = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", "0", "-f", "null", "-"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), f"decoding {path}: {done.stderr}"


def hls_package(local):
    """The master playlist and each media playlist (by URI) of an HLS package on disk."""
    master = m3u8.loads((local / "hls" / "master.m3u8").read_text())
    uris = [p.uri for p in master.playlists] + [m.uri for m in master.media if m.uri]
    return master, {uri: m3u8.loads((local / "hls" / uri).read_text()) for uri in dict.fromkeys(uris)}


PACKAGE = {"hls": {"path": "/hls"}, "dash": {"path": "/dash"}, "variants": ["mp4:360p", "mp4:240p"]}


def test_three_outputs_two_sizes_and_a_package(server, s3, media_server, uf_input, tmp_path):
    """Two MP4 sizes and an HLS + DASH package (two rungs) from one ultrafast job: the
    rungs are chunk outputs and the package is made from the joined rungs by stream
    copy. Checked as a player reads it, and against the same job run normally."""
    outputs = {"mp4:360p": {"path": "/a.mp4"}, "mp4:240p": {"path": "/b.mp4"}, "httpstream": PACKAGE}
    view, name = run_job(server, s3, media_server, uf_input, outputs, True, tmp_path)
    normal_view, normal_name = run_job(server, s3, media_server, uf_input, outputs, False, tmp_path)
    assert [o["status"] for o in view["outputs"]] == ["video.encoded", "video.encoded", "httpstream.packaged"], view
    for key, height in (("a.mp4", 360), ("b.mp4", 240)):
        local = download(s3, f"{name}/{key}", tmp_path)
        assert count_frames(local) == DURATION * RATE
        stream = next(s for s in ffprobe(local)["streams"] if s["codec_type"] == "video")
        assert stream["height"] == height
    history = events_of(server, view["id"])
    assert "ultrafast: 4 chunks of about 8 s for 3 output(s)" in history, history
    assert "encoded in one piece" not in history, history
    package = next(o for o in view["outputs"] if o["key"] == "httpstream")
    assert sorted(u["format"] for u in package["urls"]) == ["dash", "hls"], package

    fast = fetch_prefix(s3, name, tmp_path / "fast")
    normal = fetch_prefix(s3, normal_name, tmp_path / "normal")
    master, media = hls_package(fast)
    normal_master, normal_media = hls_package(normal)
    # The same variants, sizes, codec strings and frame rates as the normal package.
    describe = lambda m: [(p.uri, p.stream_info.resolution, p.stream_info.codecs, p.stream_info.frame_rate)  # noqa: E731
                          for p in m.playlists]
    assert describe(master) == describe(normal_master)
    assert [p.stream_info.resolution[1] for p in master.playlists] == [360, 240]
    assert list(media) == list(normal_media) == ["360p/index.m3u8", "240p/index.m3u8", "audio/index.m3u8"]
    frame = 1 / RATE
    for uri, playlist in media.items():
        assert playlist.playlist_type == "vod" and playlist.is_endlist, uri
        durations = [s.duration for s in playlist.segments]
        # The playlist covers the input (within a frame) with the segments the normal
        # package has: keyframes at the same instants, cut at the same places.
        assert abs(sum(durations) - DURATION) <= frame + 1e-3, (uri, durations)
        assert durations == pytest.approx([s.duration for s in normal_media[uri].segments], abs=1e-3), uri
        if uri.startswith("audio"):
            continue
        for segment in playlist.segments:
            path = fast / "hls" / posixpath.dirname(uri) / segment.uri
            first = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags",
                                    "-read_intervals", "%+#1", "-of", "json", str(path)],
                                   check=True, capture_output=True, text=True).stdout
            assert "K" in json.loads(first)["packets"][0]["flags"], f"{path} does not start with a keyframe"
        # Every frame, as many as the normal package's rung.
        rung = fast / "hls" / uri
        assert abs(stream_packets(rung, "v:0") - stream_packets(normal / "hls" / uri, "v:0")) <= 1, uri
        assert stream_packets(rung, "v:0") == DURATION * RATE, uri
    counts = {len(media[uri].segments) for uri in media if not uri.startswith("audio")}
    assert len(counts) == 1, "rungs with different segment counts"
    decodes_cleanly(fast / "hls" / "master.m3u8")

    # DASH: the same representations and frames as the normal package's, and it plays.
    mpd = (fast / "dash" / "master.mpd").resolve()
    normal_mpd = (normal / "dash" / "master.mpd").resolve()
    ns = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}
    reps = lambda path: [(r.get("width"), r.get("height"), r.get("codecs"))  # noqa: E731
                         for r in ET.parse(path).getroot().iter(f"{{{ns['mpd']}}}Representation")]
    assert reps(mpd) == reps(normal_mpd)
    for index in range(2):
        assert stream_packets(mpd, f"v:{index}") == stream_packets(normal_mpd, f"v:{index}") == DURATION * RATE
    decodes_cleanly(mpd)


def test_a_package_alone_in_fmp4(server, s3, media_server, uf_input, tmp_path):
    """A job whose only output is a package (HLS in fMP4 segments, 4 s): chunked, and
    the same segments and frames as the normal job's."""
    outputs = {"httpstream": {"hls": {"path": "/hls", "hlsfmp4": True}, "variants": ["mp4:360p", "mp4:240p"],
                              "segment_duration": 4}}
    view, name = run_job(server, s3, media_server, uf_input, outputs, True, tmp_path)
    normal_view, normal_name = run_job(server, s3, media_server, uf_input, outputs, False, tmp_path)
    history = events_of(server, view["id"])
    assert "ultrafast: 4 chunks of about 8 s for 1 output(s)" in history, history
    fast = fetch_prefix(s3, name, tmp_path / "fast")
    normal = fetch_prefix(s3, normal_name, tmp_path / "normal")
    master, media = hls_package(fast)
    _, normal_media = hls_package(normal)
    assert list(media) == list(normal_media) and len(media) == 3
    for uri, playlist in media.items():
        assert playlist.segment_map and playlist.segment_map[0].uri == "init.mp4", uri
        assert all(s.uri.endswith(".m4s") for s in playlist.segments), uri
        durations = [s.duration for s in playlist.segments]
        assert durations == pytest.approx([s.duration for s in normal_media[uri].segments], abs=1e-3), uri
        if not uri.startswith("audio"):
            assert durations == pytest.approx([4.0] * 8, abs=1e-3), uri
            assert stream_packets(fast / "hls" / uri, "v:0") == DURATION * RATE, uri
    decodes_cleanly(fast / "hls" / "master.m3u8")


def chunk_log(logs, what):
    """The chunk indexes a worker's log says were `started` or `done`."""
    return [int(m) for m in re.findall(rf"chunk {what} job_id=\S+ chunk=(\d+)", logs)]


def kill_a_chunk_worker(tmp_path, database, s3, media_server, media_dir, env, stem, cleared):
    """Two worker processes on PostgreSQL (`env` says where chunks are staged): the
    second one's chunk is in progress when it is killed (SIGKILL); the first encodes that
    chunk again once its lease expires, the job completes with every frame, and
    `cleared(cluster, job_id)` checks that nothing of the job's staging is left."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate={RATE}:duration={DURATION}",
                    "-f", "lavfi", "-i", f"sine=sample_rate=48000:duration={DURATION}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", str(RATE), "-c:a", "aac", str(media_dir / f"{stem}.mp4")], check=True)
    cluster = Cluster(tmp_path, database, env)
    try:
        api = cluster.api()
        first = cluster.worker()
        name = f"{stem}-" + uuid.uuid4().hex[:6]
        job = {"input": {"url": f"{media_server}/{stem}.mp4"}, "storage": s3_storage(s3, path=f"/{name}"),
               "outputs": {"mp4:720p": {"path": "/out.mp4"}}, "settings": {"ultrafast": True}}
        created = api.post_job(job)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        # The first worker coordinates (and encodes a chunk); the second takes another.
        wait_until(lambda: chunk_log(first.logs(), "started"), 60, "the coordinator's first chunk")
        second = cluster.worker()
        wait_until(lambda: chunk_log(second.logs(), "started"), 60, "a chunk on the second worker")
        second.kill()
        held = [c for c in chunk_log(second.logs(), "started") if c not in chunk_log(second.logs(), "done")]
        assert held, "the second worker finished its chunk before it was killed"
        view = api.wait_job(job_id, timeout=300)
        assert view["status"] == "job.completed", view
        # The killed worker's chunk was encoded again by the first.
        assert held[0] in chunk_log(first.logs(), "done"), (held, first.logs()[-3000:])
        local = tmp_path / "out.mp4"
        s3["client"].download_file(s3["bucket"], f"{name}/out.mp4", str(local))
        assert count_frames(local) == DURATION * RATE
        cleared(cluster, job_id)
    finally:
        cluster.stop()


def test_a_worker_killed_holding_a_chunk(tmp_path, database, s3, media_server, media_dir):  # noqa: F811
    """Workers sharing a staging directory: a killed worker's chunk is encoded again."""
    def cleared(cluster, job_id):
        assert cluster.rows(f"SELECT count(*) FROM chunks WHERE job_id = '{job_id}'") == [["0"]]
        assert not (tmp_path / "shared" / job_id).exists()

    kill_a_chunk_worker(tmp_path, database, s3, media_server, media_dir,
                        {**CHUNK_ENV, "COPRA_WORKER_ULTRAFAST_DIR": str(tmp_path / "shared")}, "uf-kill", cleared)


def test_hevc_and_vp9_in_every_chunked_container(server, s3, media_server, uf_input, tmp_path):
    """H.264/HEVC in MP4, MOV and MKV and VP9 in WebM are chunked; each output has every
    frame, its length, increasing timestamps and a keyframe at each join. A GIF is not
    chunked: it is made on the normal path, with a note."""
    outputs = {"mp4:hevc_x240": {"path": "/h.mp4"}, "mov:x264_x240": {"path": "/h.mov"},
               "mkv:hevc_x240": {"path": "/h.mkv"}, "webm:vp9_x240": {"path": "/v.webm"},
               "gif:160x_5fps": {"path": "/a.gif", "duration": 2}}
    view, name = run_job(server, s3, media_server, uf_input, outputs, True, tmp_path)
    statuses = {o["key"]: o["status"] for o in view["outputs"]}
    assert [statuses[k] for k in list(outputs)[:4]] == ["video.encoded"] * 4, statuses
    assert not statuses["gif:160x_5fps"].endswith(".failed"), statuses
    for key, codec in (("h.mp4", "hevc"), ("h.mov", "h264"), ("h.mkv", "hevc"), ("v.webm", "vp9")):
        local = download(s3, f"{name}/{key}", tmp_path)
        stream = next(s for s in ffprobe(local)["streams"] if s["codec_type"] == "video")
        assert stream["codec_name"] == codec and stream["height"] == 240, (key, stream)
        assert count_frames(local) == DURATION * RATE, key
        assert abs(float(ffprobe(local)["format"]["duration"]) - DURATION) <= 2 / RATE, key
        video = packets(local, "v:0")
        dts = [float(p["dts_time"]) for p in video if p.get("dts_time") not in (None, "N/A")]
        assert all(b > a for a, b in zip(dts, dts[1:])), f"{key}: dts not increasing"
        # (Matroska starts HEVC at its first frame's delay: times from the first frame.)
        first = min(float(p["pts_time"]) for p in video)
        keys = {round(float(p["pts_time"]) - first, 2) for p in video if "K" in p["flags"]}
        for join in JOINS:
            assert join in keys, f"{key}: no keyframe at the join at {join} s ({sorted(keys)})"
        if key == "h.mp4":
            assert stream["codec_tag_string"] == "hvc1"
    history = events_of(server, view["id"])
    assert "ultrafast: 4 chunks of about 8 s for 4 output(s)" in history
    assert re.search(r"output gif:160x_5fps \([^)]+\) is encoded in one piece", history), history
