"""Coconut's own Python client library (coconutpy, from PyPI), unchanged, against Copra:
create a job, follow it, read its metadata, and get Coconut's errors."""

import coconut
import pytest
from coconut import job as coconut_job
from coconut import metadata as coconut_metadata
from coconut.error import CoconutError

from conftest import KEY_A, s3_storage, wait_until


@pytest.fixture()
def client(shared_copra):
    coconut.api_key = KEY_A
    coconut.endpoint = f"{shared_copra.url}/v2"
    coconut.storage = None
    coconut.notification = None
    return coconut


def test_client_library_runs_a_job(client, media_server, s3):
    created = coconut_job.Job.create({
        "input": {"url": f"{media_server}/input.mp4"},
        "storage": s3_storage(s3, path="/client"),
        "outputs": {"mp4:360p": {"path": "/c.mp4"}},
    })
    assert created["status"] == "job.starting"
    job_id = created["id"]
    done = wait_until(lambda: (lambda j: j if j["status"] in ("job.completed", "job.failed") else None)(
        coconut_job.Job.retrieve(job_id)), 120, "the job to finish", interval=0.2)
    assert done["status"] == "job.completed", done
    assert done["outputs"][0]["url"].endswith("/client/c.mp4")

    everything = coconut_metadata.Metadata.retrieve(job_id)
    assert set(everything) == {"source", "mp4:360p"}
    one = coconut_metadata.Metadata.retrieve(job_id, key="mp4:360p")
    assert any(s["codec_type"] == "video" and s["height"] == 360 for s in one["streams"])


def test_client_library_reports_coconut_errors(client, media_server, s3):
    with pytest.raises(CoconutError, match=r"\(code=format_not_valid\)"):
        coconut_job.Job.create({"input": {"url": f"{media_server}/input.mp4"}, "storage": s3_storage(s3),
                                "outputs": {"mp4:720p_sparkly": {"path": "/x.mp4"}}})
    coconut.api_key = "not-a-key"
    with pytest.raises(CoconutError, match=r"\(code=authentication_failed\)"):
        coconut_job.Job.retrieve("whatever")
