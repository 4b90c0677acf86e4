"""The same code runs on PostgreSQL (the scale-out database): a job goes end to end."""

import subprocess
import uuid

from conftest import Copra, ffprobe, s3_storage

PG = "postgres://postgres@127.0.0.1:5432/test"


def psql(sql):
    subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", PG, "-c", sql], check=True)


def test_job_on_postgres(tmp_path, media_server, s3):
    schema = "copra_e2e_" + uuid.uuid4().hex[:8]
    psql(f"CREATE SCHEMA {schema}")
    try:
        url = f"{PG}?options=-c%20search_path%3D{schema}"
        server = Copra(tmp_path / "data", {"COPRA_DATABASE_URL": url}).start()
        try:
            job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": s3_storage(s3, path="/pg"),
                   "outputs": {"mp4:360p": {"path": "/pg.mp4"}}}
            created = server.post_job(job)
            assert created.status_code == 201, created.text
            final = server.wait_job(created.json()["id"])
            assert final["status"] == "job.completed", final
            local = tmp_path / "pg.mp4"
            s3["client"].download_file(s3["bucket"], "pg/pg.mp4", str(local))
            video = next(s for s in ffprobe(local)["streams"] if s["codec_type"] == "video")
            assert (video["width"], video["height"]) == (640, 360)
        finally:
            server.stop()
        # The rows really are in PostgreSQL.
        out = subprocess.run(["psql", "-tA", PG, "-c", f"SELECT status FROM {schema}.jobs"],
                             check=True, capture_output=True, text=True).stdout.split()
        assert out == ["job.completed"]
    finally:
        psql(f"DROP SCHEMA {schema} CASCADE")
