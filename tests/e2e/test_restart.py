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
