"""Nodes of one cluster (one PostgreSQL database) that do not agree with it say so at
start: a worker with another `COPRA_SECRET_KEY`, or with none (so a key of its own),
refuses to start and names the key, where it used to claim every job and abort it again
and again; a worker given no `COPRA_PUBLIC_URL` writes `local` output URLs at the
cluster's public URL, not at its own listen address where no API node listens."""

import subprocess
import uuid

import pytest

from conftest import PG_SERVER, make_video, wait_until
from test_scale_out import Node, database  # noqa: F401


@pytest.fixture(scope="module")
def short_input(media_dir):
    make_video(media_dir / "cluster-short.mp4", size="320x240", duration=1)
    return "cluster-short.mp4"


def new_key():
    return uuid.uuid4().hex + uuid.uuid4().hex


def refused(node, timeout=30):
    """Start `node` and wait for it to exit: its exit code and log."""
    node.log_start = node.log_path.stat().st_size if node.log_path.exists() else 0
    node.log = open(node.log_path, "ab")
    node.proc = subprocess.Popen(node.command(), env=node.env, stdout=node.log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: node.proc.poll() is not None, timeout, "the node to refuse to start")
    finally:
        if node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(10)
        node.log.close()
    return node.proc.returncode, node.new_logs()


def test_a_worker_with_another_key_or_none_refuses_to_start(tmp_path, database, media_server, short_input):  # noqa: F811
    url = f"{PG_SERVER}/{database}"
    key = new_key()
    api = Node(tmp_path / "api", {"COPRA_DATABASE_URL": url, "COPRA_SECRET_KEY": key}, api=True).start()
    nodes = [api]
    try:
        created = api.post_job({"input": {"url": f"{media_server}/{short_input}"}, "storage": {"service": "local", "path": "/c"},
                                "outputs": {"jpg:160x": {"path": "/thumb.jpg"}}})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        wrong = Node(tmp_path / "wrong", {"COPRA_DATABASE_URL": url, "COPRA_SECRET_KEY": new_key(), "COPRA_WORKER_ID": "wrong"}, api=False)
        code, logs = refused(wrong)
        assert code != 0, logs
        assert "COPRA_SECRET_KEY" in logs and "same COPRA_SECRET_KEY on every node" in logs, logs[-2000:]
        assert "worker claiming jobs" not in logs, "a node with another key claimed jobs"

        # No key at all: the node generates one into its own data directory, which is
        # not the cluster's either.
        keyless_env = {"COPRA_DATABASE_URL": url, "COPRA_WORKER_ID": "keyless"}
        keyless = Node(tmp_path / "keyless", keyless_env, api=False)
        keyless.env.pop("COPRA_SECRET_KEY", None)
        code, logs = refused(keyless)
        assert code != 0 and "COPRA_SECRET_KEY" in logs, logs[-2000:]
        assert (tmp_path / "keyless" / "secret-key").exists(), "the keyless node made a key of its own"

        # The job waited, untouched, for a node with the cluster's key.
        job = api.get_job(job_id).json()
        assert job["status"] == "job.starting" and job["progress"] == "0%", job
        right = Node(tmp_path / "right", {"COPRA_DATABASE_URL": url, "COPRA_SECRET_KEY": key, "COPRA_WORKER_ID": "right"}, api=False).start()
        nodes.append(right)
        job = api.wait_job(job_id, timeout=120)
        assert job["status"] == "job.completed", job
    finally:
        for node in nodes:
            node.stop()


def test_a_worker_without_a_public_url_uses_the_clusters(tmp_path, database, media_server, short_input):  # noqa: F811
    env = {"COPRA_DATABASE_URL": f"{PG_SERVER}/{database}", "COPRA_SECRET_KEY": new_key()}
    public = "http://copra.example.test:9000"
    api = Node(tmp_path / "api", {**env, "COPRA_PUBLIC_URL": public}, api=True).start()
    worker = Node(tmp_path / "worker", {**env, "COPRA_WORKER_ID": "w1"}, api=False)
    worker.env.pop("COPRA_PUBLIC_URL", None)
    nodes = [api]
    try:
        worker.start()
        nodes.append(worker)
        assert "local output URLs use the cluster's" in worker.new_logs()
        created = api.post_job({"input": {"url": f"{media_server}/{short_input}"}, "storage": {"service": "local", "path": "/c"},
                                "outputs": {"jpg:160x": {"path": "/thumb.jpg"}}})
        assert created.status_code == 201, created.text
        job = api.wait_job(created.json()["id"], timeout=120)
        assert job["status"] == "job.completed", job
        urls = [u for o in job["outputs"] for u in ([o["url"]] if o.get("url") else o.get("urls") or [""])]
        assert urls and all(u.startswith(f"{public}/files/") for u in urls), urls
        assert not any("127.0.0.1" in u for u in urls), urls
    finally:
        for node in nodes:
            node.stop()
