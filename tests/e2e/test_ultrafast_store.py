"""Ultrafast jobs on worker machines that share no file system (`[worker]
ultrafast_store`): the coordinator cuts the input into one file per chunk (stream copy)
and uploads them to an S3 work area (moto here); each chunk worker downloads its chunk
only, uploads its pieces there, and the coordinator downloads the pieces and joins them.
Black-box: the real binary, PostgreSQL, an API node and two worker processes, each with
its own data directory and its own `ultrafast_dir`. Also: a worker killed holding a
chunk (the other encodes it), a coordinator killed after some chunks (the next keeps the
pieces it finds in the store), and a malformed setting refused at start with its name.

The input is test_ultrafast's: 32 s, 25 fps, a keyframe every second, chunks of ~8 s
(cut at 8, 16 and 24 s), a scene change at 16 s."""

import os
import re
import subprocess
import uuid

import pytest

from conftest import COPRA_BIN, S3_ACCESS, S3_SECRET, count_frames, ffprobe, s3_storage, wait_until
from test_scale_out import Cluster, bucket_keys, database  # noqa: F401 (fixture)
from test_ultrafast_resilience import chunks_of, source, submit  # noqa: F401 (fixture)
from test_ultrafast import (CHUNK_ENV, DURATION, JOINS, RATE, chunk_log, decodes_cleanly, events_of, fetch_prefix,  # noqa: F401
                            hls_package, kill_a_chunk_worker, packets, stream_duration, stream_packets, uf_input)


def store_env(s3, area):
    return {
        **CHUNK_ENV,
        "COPRA_WORKER_ULTRAFAST_STORE": f"s3://{s3['bucket']}/{area}",
        "COPRA_WORKER_ULTRAFAST_STORE_ENDPOINT": s3["endpoint"],
        "COPRA_WORKER_ULTRAFAST_STORE_ACCESS_KEY_ID": S3_ACCESS,
        "COPRA_WORKER_ULTRAFAST_STORE_SECRET_ACCESS_KEY": S3_SECRET,
    }


def test_workers_without_a_shared_directory_use_the_store(tmp_path, database, s3, media_server, uf_input):  # noqa: F811
    area = "uf-area-" + uuid.uuid4().hex[:6]
    # One slot each: the coordinator encodes one chunk at a time, so the other worker
    # surely takes some.
    cluster = Cluster(tmp_path, database, {**store_env(s3, area), "COPRA_WORKER_CONCURRENCY": "1"})
    try:
        api = cluster.api()
        workers = [cluster.worker(COPRA_WORKER_ULTRAFAST_DIR=str(tmp_path / f"own-uf-{i}")) for i in (1, 2)]
        name = "uf-store-" + uuid.uuid4().hex[:6]
        job = {"input": {"url": f"{media_server}/{uf_input}"}, "storage": s3_storage(s3, path=f"/{name}"),
               "outputs": {"mp4:360p": {"path": "/out.mp4"},
                           # A package's rungs are pieces of their own, through the store too.
                           "httpstream": {"hls": {"path": "/hls", "hlsfmp4": True}, "variants": ["mp4:360p", "mp4:240p"],
                                          "segment_duration": 4}},
               "settings": {"ultrafast": True}}
        created = api.post_job(job)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        view = api.wait_job(job_id, timeout=300)
        assert view["status"] == "job.completed", view
        assert [o["status"] for o in view["outputs"]] == ["video.encoded", "httpstream.packaged"], view
        assert "ultrafast: 4 chunks of about 8 s for 2 output(s)" in events_of(api, job_id)

        # Both workers encoded chunks, all four chunks once, from files in the store.
        logs = [w.logs() for w in workers]
        done = [chunk_log(text, "done") for text in logs]
        assert all(done), ("each worker should encode a chunk", done)
        assert sorted(done[0] + done[1]) == [0, 1, 2, 3], done
        assert sum("chunk files uploaded to the ultrafast store" in text for text in logs) == 1
        # The coordinator reads the chunk files it cut; the other worker downloads its own.
        coordinator, other = sorted(logs, key=lambda text: "chunk files uploaded" not in text)
        assert "coordinator's own copy" in coordinator and "coordinator's own copy" not in other
        # Nothing was staged in either worker's own directory, and the work area is empty.
        for i in (1, 2):
            staged = tmp_path / f"own-uf-{i}"
            assert not staged.exists() or not any(staged.iterdir()), list(staged.iterdir())
        wait_until(lambda: bucket_keys(s3, area) == [], 10, "the job's work area to be cleared")
        assert cluster.rows(f"SELECT count(*) FROM chunks WHERE job_id = '{job_id}'") == [["0"]]

        # What a user gets: every frame, the length, increasing timestamps, a keyframe
        # at each join, continuous audio.
        local = tmp_path / "out.mp4"
        s3["client"].download_file(s3["bucket"], f"{name}/out.mp4", str(local))
        assert count_frames(local) == DURATION * RATE
        frame = 1 / RATE
        assert abs(stream_duration(local, "video") - DURATION) <= frame
        assert abs(float(ffprobe(local)["format"]["duration"]) - DURATION) <= 2 * frame
        video = packets(local, "v:0")
        dts = [float(p["dts_time"]) for p in video]
        assert all(b > a for a, b in zip(dts, dts[1:])), "video dts not increasing"
        pts = sorted(float(p["pts_time"]) for p in video)
        assert all(abs((b - a) - frame) < 1e-3 for a, b in zip(pts, pts[1:])), "a frame missing or repeated"
        keys = {round(float(p["pts_time"]), 3) for p in video if "K" in p["flags"]}
        for join in JOINS:
            assert join in keys, f"no keyframe at the join at {join} s (keyframes: {sorted(keys)})"
        audio = packets(local, "a:0")
        for a, b in zip(audio, audio[1:]):
            assert abs(float(a["pts_time"]) + float(a["duration_time"]) - float(b["pts_time"])) < 1e-4, (a, b)

        # The package: every rung's segments of 4 s with every frame, and it decodes.
        package = fetch_prefix(s3, name, tmp_path / "package")
        _, media = hls_package(package)
        video = [uri for uri in media if not uri.startswith("audio")]
        assert len(video) == 2, list(media)
        for uri in video:
            assert [s.duration for s in media[uri].segments] == pytest.approx([4.0] * 8, abs=1e-3), uri
            assert stream_packets(package / "hls" / uri, "v:0") == DURATION * RATE, uri
        decodes_cleanly(package / "hls" / "master.m3u8")
    finally:
        cluster.stop()


def test_a_worker_killed_holding_a_chunk_from_the_store(tmp_path, database, s3, media_server, media_dir):  # noqa: F811
    """The worker holding a chunk is killed (SIGKILL); the other downloads that chunk
    from the store once the lease expires, and the job completes with every frame."""
    area = "uf-area-" + uuid.uuid4().hex[:6]

    def cleared(cluster, job_id):
        wait_until(lambda: bucket_keys(s3, area) == [], 10, "the job's work area to be cleared")

    kill_a_chunk_worker(tmp_path, database, s3, media_server, media_dir, store_env(s3, area), "uf-store-kill", cleared)


def test_a_malformed_work_area_stops_the_server_with_its_name(tmp_path):
    env = dict(os.environ, COPRA_DATA_DIR=str(tmp_path / "data"), COPRA_LISTEN="127.0.0.1:0",
               COPRA_WORKER_ULTRAFAST_STORE="/mnt/shared")
    done = subprocess.run([str(COPRA_BIN), "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "COPRA_WORKER_ULTRAFAST_STORE" in done.stdout + done.stderr and "s3://" in done.stdout + done.stderr
    env.update(COPRA_WORKER_ULTRAFAST_STORE="s3://work-area/uf", COPRA_WORKER_ULTRAFAST_STORE_ACCESS_KEY_ID="AKID")
    done = subprocess.run([str(COPRA_BIN), "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "together" in done.stdout + done.stderr


def test_a_new_coordinator_keeps_the_pieces_in_the_store(tmp_path, database, s3, media_server, source):  # noqa: F811
    """The coordinator dies after some chunks are done: the next one finds their pieces
    in the work area and keeps them, except one chunk whose pieces were deleted from
    the bucket, which is encoded again; the output has every frame."""
    area = "uf-area-" + uuid.uuid4().hex[:6]
    cluster = Cluster(tmp_path, database, {**store_env(s3, area), "COPRA_WORKER_ULTRAFAST_CHUNK_SECS": "4"})
    count = DURATION // 4
    try:
        api = cluster.api()
        first = cluster.worker()
        name = "ufs-takeover-" + uuid.uuid4().hex[:6]
        job_id = submit(api, media_server, s3, source, name)
        wait_until(lambda: len([c for c in chunks_of(cluster, job_id).values() if c[1] == "done"]) >= 2, 120,
                   "two chunks done by the first coordinator")
        first.kill()
        done = {idx: c[0] for idx, c in chunks_of(cluster, job_id).items() if c[1] == "done"}
        assert 2 <= len(done) < count, done
        lost = min(done)
        lost_id = done.pop(lost)
        pieces = [k for k in bucket_keys(s3, f"{area}/{job_id}") if k.split("/")[-1].startswith(f"c{lost_id}-o")]
        assert pieces, bucket_keys(s3, f"{area}/{job_id}")
        for key in pieces:
            s3["client"].delete_object(Bucket=s3["bucket"], Key=key)

        second = cluster.worker()
        view = api.wait_job(job_id, timeout=300)
        assert view["status"] == "job.completed", view
        kept = re.search(rf"ultrafast: chunk\(s\) ([\d, ]+) of {count} were done before the job was taken over; kept",
                         events_of(api, job_id))
        assert kept, events_of(api, job_id)
        kept = {int(i) - 1 for i in kept.group(1).split(", ")}
        assert set(done) <= kept and lost not in kept, (done, kept, lost)
        for idx in done:
            assert idx not in chunk_log(second.logs(), "started"), idx
        assert chunk_log(second.logs(), "done").count(lost) == 1, second.logs()[-3000:]
        local = tmp_path / "out.mp4"
        s3["client"].download_file(s3["bucket"], f"{name}/out.mp4", str(local))
        assert count_frames(local) == DURATION * RATE
        wait_until(lambda: bucket_keys(s3, area) == [], 10, "the job's work area to be cleared")
    finally:
        cluster.stop()
