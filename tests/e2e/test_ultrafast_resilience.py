"""Ultrafast jobs when workers die: PostgreSQL, an API node and worker processes sharing
a staging directory, the real binary killed with SIGKILL.

- The coordinator dies after some chunks are done: another worker takes the job over
  and carries on with the chunks already done (their rows and pieces are kept, not
  encoded again), except one whose pieces were lost; the joined output has every frame.
- The worker holding one chunk dies three times: the chunk is given up, the output
  fails naming it, the job ends `job.failed`, and nothing is left behind (chunk rows,
  staged files, leases); the workers go on with the next job."""

import re
import signal
import subprocess
import uuid

import pytest

from conftest import count_frames, make_video, s3_storage, wait_until
from test_scale_out import Cluster
from test_ultrafast import chunk_log, events_of, packets

RATE = 25
DURATION = 32


@pytest.fixture(scope="module")
def source(media_dir):
    """640x360, 25 fps, a keyframe every second, with a tone."""
    name = "ufr-input.mp4"
    make_video(media_dir / name, size="640x360", rate=RATE, duration=DURATION, extra=("-g", str(RATE)))
    return name


def cluster_for(tmp_path, database, chunk_secs, **env):
    return Cluster(tmp_path, database, {"COPRA_WORKER_ULTRAFAST_CHUNK_SECS": str(chunk_secs),
                                        "COPRA_WORKER_ULTRAFAST_DIR": str(tmp_path / "shared"), **env})


def submit(api, media_server, s3, source, name):
    job = {"input": {"url": f"{media_server}/{source}"}, "storage": s3_storage(s3, path=f"/{name}"),
           "outputs": {"mp4:360p": {"path": "/out.mp4"}}, "settings": {"ultrafast": True}}
    created = api.post_job(job)
    assert created.status_code == 201, created.text
    return created.json()["id"]


def chunks_of(cluster, job_id):
    """idx -> (id, status, attempts, lease owner) of the job's chunk rows."""
    rows = cluster.rows(f"SELECT idx, id, status, attempts, coalesce(lease_owner, '') FROM chunks WHERE job_id = '{job_id}'")
    return {int(idx): (int(id_), status, int(attempts), owner) for idx, id_, status, attempts, owner in rows}


def test_a_new_coordinator_keeps_the_chunks_already_done(tmp_path, database, s3, media_server, source):
    chunk_secs = 4
    count = DURATION // chunk_secs
    cluster = cluster_for(tmp_path, database, chunk_secs)
    try:
        api = cluster.api()
        first = cluster.worker()
        name = "ufr-takeover-" + uuid.uuid4().hex[:6]
        job_id = submit(api, media_server, s3, source, name)

        def some_done():
            done = [c for c in chunks_of(cluster, job_id).values() if c[1] == "done"]
            return len(done) >= 2
        wait_until(some_done, 120, "two chunks done by the first coordinator")
        first.kill()
        done = {idx: c[0] for idx, c in chunks_of(cluster, job_id).items() if c[1] == "done"}
        assert 2 <= len(done) < count, done
        # The pieces of one of them are lost: that chunk must be encoded again.
        lost = min(done)
        pieces = list((tmp_path / "shared" / job_id).glob(f"c{done.pop(lost)}-o*"))
        assert pieces, list((tmp_path / "shared" / job_id).iterdir())
        for piece in pieces:
            piece.unlink()

        # Another worker takes the job over once the dead one's lease expires.
        second = cluster.worker()
        view = api.wait_job(job_id, timeout=300)
        assert view["status"] == "job.completed", view

        history = events_of(api, job_id)
        kept = re.search(rf"ultrafast: chunk\(s\) ([\d, ]+) of {count} were done before the job was taken over; kept", history)
        assert kept, history
        kept = {int(i) - 1 for i in kept.group(1).split(", ")}
        assert set(done) <= kept and lost not in kept, (done, kept, lost)
        # Each was encoded once, by the first worker, and never again; the lost one again.
        for idx in done:
            assert chunk_log(first.logs(), "done").count(idx) == 1, idx
            assert idx not in chunk_log(second.logs(), "started"), (idx, second.logs()[-3000:])
        assert chunk_log(second.logs(), "done").count(lost) == 1, second.logs()[-3000:]

        local = tmp_path / "out.mp4"
        s3["client"].download_file(s3["bucket"], f"{name}/out.mp4", str(local))
        assert count_frames(local) == DURATION * RATE
        video = packets(local, "v:0")
        dts = [float(p["dts_time"]) for p in video]
        assert all(b > a for a, b in zip(dts, dts[1:])), "video dts not increasing"
        keys = {round(float(p["pts_time"]), 3) for p in video if "K" in p["flags"]}
        for join in range(chunk_secs, DURATION, chunk_secs):
            assert float(join) in keys, f"no keyframe at the join at {join} s ({sorted(keys)})"
        assert chunks_of(cluster, job_id) == {}
        assert not (tmp_path / "shared" / job_id).exists()
    finally:
        cluster.stop()


def test_a_chunk_whose_worker_dies_three_times_fails_the_output(tmp_path, database, s3, media_server, source):
    """The coordinator is paused (SIGSTOP) while the chunk's worker is killed, so that
    only the killed worker (restarted each time, and taking the lowest chunk free) claims
    that chunk; the lease is long enough for the pause."""
    chunk_secs = 8
    count = DURATION // chunk_secs
    cluster = cluster_for(tmp_path, database, chunk_secs, COPRA_QUEUE_LEASE_SECS="60")
    try:
        api = cluster.api()
        coordinator = cluster.worker()
        name = "ufr-fail-" + uuid.uuid4().hex[:6]
        job_id = submit(api, media_server, s3, source, name)
        wait_until(lambda: chunk_log(coordinator.logs(), "started"), 60, "the coordinator's first chunk")
        coordinator.proc.send_signal(signal.SIGSTOP)
        try:
            holder = cluster.worker()
            target = None
            for attempt in (1, 2, 3):
                def holding():
                    return [idx for idx, (_, status, attempts, owner) in chunks_of(cluster, job_id).items()
                            if owner == holder.name and status == "pending" and attempts == attempt]
                held = wait_until(holding, 60, f"{holder.name} holding a chunk (attempt {attempt})")
                target = held[0] if target is None else target
                assert held == [target], (held, target)
                holder.kill()
                if attempt < 3:
                    holder.start()
            # Started once more, it gives the chunk back at once (it cannot claim it again).
            holder.start()
            wait_until(lambda: chunks_of(cluster, job_id)[target][3] == "", 60, "the dead worker's lease released")
        finally:
            coordinator.proc.send_signal(signal.SIGCONT)

        view = api.wait_job(job_id, timeout=120)
        assert view["status"] == "job.failed", view
        output = view["outputs"][0]
        assert output["status"] == "video.failed", view
        message = f"Chunk {target + 1} of {count} failed after 3 attempts: its worker stopped each time"
        assert output["error"] == message, output
        assert message in events_of(api, job_id)

        # Nothing left behind: no chunk rows, no staged files, no job lease.
        assert chunks_of(cluster, job_id) == {}
        assert not (tmp_path / "shared" / job_id).exists()
        assert cluster.rows(f"SELECT lease_owner IS NULL FROM jobs WHERE id = '{job_id}'") == [["t"]]
        # ... and the workers, alive, go on with the next job.
        again = submit(api, media_server, s3, source, name + "-again")
        assert api.wait_job(again, timeout=300)["status"] == "job.completed"
        for worker in (coordinator, holder):
            assert worker.proc.poll() is None, worker.logs()[-3000:]
    finally:
        cluster.stop()
