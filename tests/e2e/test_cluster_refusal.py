"""What a node that does not agree with its database's key is and is not allowed to do,
from outside the real binary (issue 21):

- an API node with another `COPRA_SECRET_KEY` refuses to start too, not only a worker
  (tests/e2e/test_cluster_config.py has the workers), within a deadline, on its standard
  error, naming the key and what to do;
- a job whose stored spec cannot be opened (a row sealed with another key before the
  check existed, or damaged) ends `job.failed` after its three attempts with an error an
  API client reads, and is never claimed again;
- a node whose webhook root differs from the cluster's says so at start, and still starts;
- on SQLite (one machine, no key given) the same data directory starts twice in a row,
  and a later start with another `COPRA_SECRET_KEY` on it is refused."""

import base64
import os
import subprocess

import pytest
import requests

from conftest import PG_SERVER, Copra, make_video, psql
from test_cluster_config import new_key
from test_scale_out import Node, database  # noqa: F401

REFUSE_WITHIN = 30


@pytest.fixture(scope="module")
def short_input(media_dir):
    make_video(media_dir / "refusal-short.mp4", size="320x240", duration=1)
    return "refusal-short.mp4"


def new_webhook_root():
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def thumb_job(media_server, short_input, path="/r"):
    return {"input": {"url": f"{media_server}/{short_input}"}, "storage": {"service": "local", "path": path},
            "outputs": {"jpg:160x": {"path": "/thumb.jpg"}}}


def run_to_exit(node, timeout=REFUSE_WITHIN):
    """Run `node`'s command and wait (with a deadline) for it to exit on its own: its exit
    code, standard output and standard error, kept apart."""
    proc = subprocess.Popen(node.command(), env=node.env, cwd=node.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"the node did not exit within {timeout}s; it ran with a key that is not the database's:\n{err[-3000:]}")
    return proc.returncode, out, err


def assert_refused(node):
    code, out, err = run_to_exit(node)
    assert code != 0, f"exited {code}:\n{err[-3000:]}"
    assert "COPRA_SECRET_KEY" in err and "same COPRA_SECRET_KEY on every node" in err, err[-3000:]
    assert "copra is serving" not in err + out and "worker claiming jobs" not in err + out, "it served or claimed before refusing"
    return err


def test_an_api_node_with_another_key_refuses_to_start(tmp_path, database):  # noqa: F811
    url = f"{PG_SERVER}/{database}"
    first = Node(tmp_path / "first", {"COPRA_DATABASE_URL": url, "COPRA_SECRET_KEY": new_key()}, api=True).start()
    try:
        assert psql("SELECT count(*) FROM cluster WHERE name = 'key_check'", database).strip() == "1", "the first node recorded its check value"
        second = Node(tmp_path / "second", {"COPRA_DATABASE_URL": url, "COPRA_SECRET_KEY": new_key()}, api=True)
        assert_refused(second)
        # The first node is untouched by the refusal, and the record is still its own.
        assert requests.get(f"{first.url}/health", timeout=5).status_code == 200
        assert first.post_job({"input": {"url": "http://127.0.0.1:9/x.mp4"}, "storage": {"service": "local"},
                               "outputs": {"jpg:80x": {"path": "/t.jpg"}}}).status_code == 201
    finally:
        first.stop()


def test_a_job_whose_spec_cannot_be_opened_fails_after_its_attempts(tmp_path, database, media_server, short_input):  # noqa: F811
    url = f"{PG_SERVER}/{database}"
    key = new_key()
    api = Node(tmp_path / "api", {"COPRA_DATABASE_URL": url, "COPRA_SECRET_KEY": key}, api=True).start()
    nodes = [api]
    try:
        created = api.post_job(thumb_job(media_server, short_input))
        assert created.status_code == 201, created.text
        bad = created.json()["id"]
        # What a row sealed by a node with another key looks like to this cluster: the
        # same prefix, a nonce and bytes this key does not open.
        other = "sealed:v1:" + base64.b64encode(os.urandom(80)).decode().rstrip("=")
        psql(f"UPDATE jobs SET spec = '{other}' WHERE id = '{bad}'", database)

        worker = Node(tmp_path / "worker", {"COPRA_DATABASE_URL": url, "COPRA_SECRET_KEY": key, "COPRA_WORKER_ID": "w1"}, api=False).start()
        nodes.append(worker)
        job = api.wait_job(bad, timeout=60)
        assert job["status"] == "job.failed", job
        error = job["input"].get("error", "")
        assert "cannot be opened" in error and "COPRA_SECRET_KEY" in error, job
        assert job["outputs"] and all(o["status"].endswith("failed") and o.get("error") == error for o in job["outputs"]), job
        assert psql(f"SELECT attempts FROM jobs WHERE id = '{bad}'", database).strip() == "3", "failed on its third attempt"

        # A good job after it runs to its end on the same worker; the bad one meanwhile
        # was not claimed again (a fourth attempt would show in its row and the log).
        good = api.post_job(thumb_job(media_server, short_input, "/good"))
        assert good.status_code == 201, good.text
        assert api.wait_job(good.json()["id"], timeout=120)["status"] == "job.completed"
        assert psql(f"SELECT attempts FROM jobs WHERE id = '{bad}'", database).strip() == "3"
        logs = worker.new_logs()
        assert logs.count("given back for attempt") == 2, logs[-3000:]
        assert api.get_job(bad).json()["status"] == "job.failed"
    finally:
        for node in nodes:
            node.stop()


def test_a_node_with_another_webhook_root_says_so_at_start(tmp_path, database):  # noqa: F811
    env = {"COPRA_DATABASE_URL": f"{PG_SERVER}/{database}", "COPRA_SECRET_KEY": new_key()}
    root = new_webhook_root()
    first = Node(tmp_path / "first", {**env, "COPRA_WEBHOOK_SECRET": root}, api=True).start()
    same = Node(tmp_path / "same", {**env, "COPRA_WEBHOOK_SECRET": root, "COPRA_WORKER_ID": "same"}, api=False)
    other = Node(tmp_path / "other", {**env, "COPRA_WEBHOOK_SECRET": new_webhook_root(), "COPRA_WORKER_ID": "other"}, api=False)
    nodes = [first]
    try:
        same.start()
        nodes.append(same)
        assert "COPRA_WEBHOOK_SECRET" not in same.new_logs(), "a node with the cluster's root says nothing"
        other.start()
        nodes.append(other)
        logs = other.new_logs()
        assert "COPRA_WEBHOOK_SECRET" in logs and "is not the cluster's" in logs, logs[-3000:]
        assert "worker claiming jobs" in logs, "a differing root is said, not refused"
    finally:
        for node in nodes:
            node.stop()


def test_sqlite_starts_again_on_its_data_dir_and_refuses_another_key(tmp_path, media_server, short_input):
    """The single-machine default: no COPRA_SECRET_KEY, no COPRA_DATABASE_URL; the key is
    generated into the data directory on the first start and read back on the next."""
    data = tmp_path / "data"

    def single(**env):
        server = Copra(data, env)
        for name in ("COPRA_SECRET_KEY", "COPRA_DATABASE_URL"):
            server.env.pop(name, None)
        server.env.update(env)
        return server

    job_id = None
    for start in range(2):
        server = single().start()
        try:
            if job_id is None:
                created = server.post_job(thumb_job(media_server, short_input))
                assert created.status_code == 201, created.text
                job_id = created.json()["id"]
            job = server.wait_job(job_id, timeout=60)
            assert job["status"] == "job.completed", (start, job)
            assert server.post_job(thumb_job(media_server, short_input, f"/again{start}")).status_code == 201
        finally:
            server.stop()
    assert (data / "secret-key").exists() and (data / "copra.db").exists()

    err = assert_refused(single(COPRA_SECRET_KEY=new_key()))
    assert "data directory" in err, err[-2000:]
    # The data directory's own key still opens it.
    server = single().start()
    try:
        assert server.get_job(job_id).json()["status"] == "job.completed"
    finally:
        server.stop()
