"""Jobs are durable: a restart keeps them, and an interrupted job completes after it."""

import signal

from conftest import Copra, ffprobe, s3_storage, wait_until


def test_restart_keeps_jobs_and_resumes_interrupted_work(tmp_path, media_server, s3):
    server = Copra(tmp_path / "data").start()
    try:
        job = {"input": {"url": f"{media_server}/long.mp4"}, "storage": s3_storage(s3, path="/restart"),
               "outputs": {"mp4:720p": {"path": "/r.mp4"}}}
        created = server.post_job(job)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        # Wait until the job is part-way encoded (progress reported between 0% and
        # 100%), then kill the server hard mid-work.
        def midway():
            view = server.get_job(job_id).json()
            percent = int(view["progress"].rstrip("%"))
            return view["outputs"][0]["status"] == "video.encoding" and 0 < percent < 100 and percent

        midway_percent = wait_until(midway, 60, "encoding to be under way")
        server.stop(signal.SIGKILL)

        server.start()
        view = server.get_job(job_id)
        assert view.status_code == 200, "the job was lost across the restart"
        final = server.wait_job(job_id, timeout=180)
        assert final["status"] == "job.completed", final
        assert final["progress"] == "100%" and midway_percent < 100
        local = tmp_path / "r.mp4"
        s3["client"].download_file(s3["bucket"], "restart/r.mp4", str(local))
        assert abs(float(ffprobe(local)["format"]["duration"]) - 20.0) <= 0.1
    finally:
        server.stop()


def long_job(media_server, s3, path):
    return {"input": {"url": f"{media_server}/long.mp4"}, "storage": s3_storage(s3, path=path),
            "outputs": {"mp4:720p": {"path": "/r.mp4"}}}


def wait_encoding(server, job_id, timeout=90):
    def under_way():
        view = server.get_job(job_id).json()
        return view["outputs"][0]["status"] == "video.encoding" and int(view["progress"].rstrip("%")) > 0
    wait_until(under_way, timeout, "encoding to be under way", interval=0.05)


def starts(server) -> int:
    """How many times a worker of this server started the job (every attempt logs it once)."""
    return server.logs().count("job started")


def test_a_restarted_worker_takes_back_its_claims_at_once(tmp_path, media_server, s3):
    """With a two-minute lease, a worker killed mid-job and started again resumes the job
    within seconds: it holds its node's worker id, so it does not wait for the lease."""
    server = Copra(tmp_path / "data", {"COPRA_QUEUE_LEASE_SECS": "120"}).start()
    try:
        created = server.post_job(long_job(media_server, s3, "/takeback"))
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        wait_encoding(server, job_id)
        server.stop(signal.SIGKILL)
        assert starts(server) == 1
        server.start()
        # Claimed again long before the 120 s lease could have expired.
        wait_until(lambda: starts(server) == 2, 30, "the restarted worker to take the job back")
        final = server.wait_job(job_id, timeout=180)
        assert final["status"] == "job.completed", final
    finally:
        server.stop()


def test_a_job_interrupted_three_times_is_failed_saying_so(tmp_path, media_server, s3, webhooks):
    server = Copra(tmp_path / "data").start()
    try:
        body = long_job(media_server, s3, "/thrice")
        body["notification"] = {"type": "http", "url": f"{webhooks.url}/thrice", "events": True}
        created = server.post_job(body)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        # Each kill lands while the worker holds the job (its attempt has been counted).
        for attempt in (1, 2, 3):
            wait_until(lambda: starts(server) == attempt, 30, f"attempt {attempt} to start")
            server.stop(signal.SIGKILL)
            server.start()
        final = server.wait_job(job_id, timeout=60)
        assert final["status"] == "job.failed", final
        message = final["outputs"][0].get("error") or (final.get("input") or {}).get("error")
        assert message and "interrupted 3 times" in message, final
        hook = webhooks.wait_for("/thrice", "job.failed", timeout=30)
        assert hook is not None
    finally:
        server.stop()
