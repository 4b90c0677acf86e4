"""Plugins in a cluster: nodes with their own data and plugin directories on one
PostgreSQL database load the same set of plugins added through any node's admin API,
removal reaches every node, and a job runs with the plugin versions it was planned with
(or waits for it, or fails naming the one that was removed), never another version.

Two versions that behave observably differently, under one plugin name `cluster-cond`:
v1 is the first-party condition-expr (evaluates `{{ input.width }} > 100` to true: the
output is encoded), v2 is the test plugin hostile-condition (knows no such expression:
the output fails with "unknown misdeed")."""

import shutil
import uuid

import pytest

from conftest import PG_SERVER, PLUGIN_DIR, ROOT, Copra, psql, s3_storage, wait_until

V1 = PLUGIN_DIR / "condition-expr.wasm"
V2 = ROOT / "tests" / "plugins" / "dist" / "hostile-condition.wasm"
NAME = "cluster-cond"
CONDITION = "{{ input.width }} > 100"
# Every node of a cluster seals job specs with the same key.
SECRET_KEY = uuid.uuid4().hex + uuid.uuid4().hex
# How fast a node must see a change made through another (sync every 500 ms here).
PROPAGATION = 15

pytestmark = pytest.mark.skipif(not V2.exists(), reason="tests/plugins/dist is not built (scripts/build-test-plugins.sh)")


class Node(Copra):
    """`copra serve` (with or without its worker) with its own data and plugin
    directories, on the test's database."""

    def __init__(self, root, name, database, worker=True, files=("storage-s3", "format-video", "notifier-http"), wait=5):
        plugin_dir = root / name / "plugins"
        plugin_dir.mkdir(parents=True)
        for first_party in files:
            shutil.copy(PLUGIN_DIR / f"{first_party}.wasm", plugin_dir)
        super().__init__(root / name / "data", {
            "COPRA_DATABASE_URL": f"{PG_SERVER}/{database}",
            "COPRA_PLUGIN_DIR": str(plugin_dir),
            "COPRA_SECRET_KEY": SECRET_KEY,
            "COPRA_PLUGIN_SYNC_MS": "500",
            "COPRA_PLUGIN_VERSION_WAIT_SECS": str(wait),
        })
        self.database = database
        self.plugin_dir = plugin_dir
        self.worker = worker

    def command(self):
        """`copra serve`, with `--no-worker` for an API-only node."""
        return super().command() + ([] if self.worker else ["--no-worker"])

    def add(self, name, wasm):
        r = self.admin("POST", "/plugins", params={"name": name}, data=wasm.read_bytes())
        assert r.status_code == 201, r.text
        return r.json()["sha256"]


@pytest.fixture()
def nodes(tmp_path, database):
    started = []

    def make(name, worker=True, **kwargs):
        node = Node(tmp_path, name, database, worker, **kwargs)
        started.append(node)
        return node

    yield make
    for node in started:
        node.stop()


def job(media_server, s3, key):
    return {"input": {"url": f"{media_server}/input.mp4"}, "storage": s3_storage(s3, path=f"/cluster/{key}"),
            "outputs": {"mp4:240p": {"path": "/out.mp4", "if": CONDITION}}}


def submit(node, media_server, s3, key):
    r = node.post_job(job(media_server, s3, key))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_added_on_one_node_runs_on_another_and_removal_reaches_every_node(nodes, media_server, s3, webhooks):
    api = nodes("api", worker=False).start()
    worker = nodes("worker").start()
    # Neither node has a condition plugin of its own: `if` is refused.
    r = api.post_job(job(media_server, s3, "none"))
    assert r.status_code == 400 and r.json()["error_code"] == "condition_not_valid", r.text

    sha = api.add(NAME, V1)
    seen = wait_until(lambda: worker.plugins().get(NAME), PROPAGATION, "the worker node to load the plugin")
    assert seen["sha256"] == sha and seen["kind"] == "condition" and seen["stored"] is True
    assert worker.plugins()["format-video"]["stored"] is False, "a file of the node's own directory"
    assert (worker.plugin_dir / f"{NAME}.wasm").read_bytes() == V1.read_bytes()

    # Planned on the API node, run on the worker node, with the plugin from the API node;
    # its webhook goes out through the notifier version it was planned with.
    planned = job(media_server, s3, "a")
    planned["notification"] = {"type": "http", "url": f"{webhooks.url}/cluster-plugins"}
    r = api.post_job(planned)
    assert r.status_code == 201, r.text
    final = worker.wait_job(r.json()["id"], timeout=120)
    assert final["status"] == "job.completed", final
    assert webhooks.wait_for("/cluster-plugins", "job.completed")["job_id"] == final["id"]
    assert final["outputs"][0]["status"] == "video.encoded", final
    assert s3["client"].head_object(Bucket=s3["bucket"], Key="cluster/a/out.mp4")["ContentLength"] > 0

    # The row is in PostgreSQL, bytes and all.
    row = psql(f"SELECT name, kind, length(wasm), removed_at IS NULL FROM plugins WHERE sha256 = '{sha}'", api.database)
    assert row.strip() == f"{NAME}|condition|{V1.stat().st_size}|t"

    # Removed through the worker node: gone from the API node too.
    assert worker.admin("DELETE", f"/plugins/{NAME}").status_code == 204
    wait_until(lambda: NAME not in api.plugins(), PROPAGATION, "the API node to unload the removed plugin")
    assert not (api.plugin_dir / f"{NAME}.wasm").exists()
    r = api.post_job(job(media_server, s3, "gone"))
    assert r.status_code == 400 and r.json()["error_code"] == "condition_not_valid", r.text
    assert api.admin("DELETE", f"/plugins/{NAME}").status_code == 404


def test_a_queued_job_runs_with_the_version_it_was_planned_with(nodes, media_server, s3):
    api = nodes("api", worker=False).start()
    sha1 = api.add(NAME, V1)
    planned_with_v1 = submit(api, media_server, s3, "v1")
    # Replaced while that job waits in the queue (no worker runs yet).
    sha2 = api.add(NAME, V2)
    assert sha2 != sha1 and api.plugins()[NAME]["sha256"] == sha2
    planned_with_v2 = submit(api, media_server, s3, "v2")

    # A worker node that has never seen v1: it loads it from the database for the job.
    worker = nodes("worker").start()
    wait_until(lambda: worker.plugins().get(NAME, {}).get("sha256") == sha2, PROPAGATION, "the worker node to load v2")
    first = worker.wait_job(planned_with_v1, timeout=120)
    assert first["status"] == "job.completed", first
    assert first["outputs"][0]["status"] == "video.encoded", first
    assert s3["client"].head_object(Bucket=s3["bucket"], Key="cluster/v1/out.mp4")["ContentLength"] > 0

    # The job planned with v2 ran with v2: the same expression means nothing to it.
    second = worker.wait_job(planned_with_v2, timeout=120)
    assert second["outputs"][0]["status"] == "video.failed", second
    assert "unknown misdeed" in second["outputs"][0]["error"], second
    # v1 stays stored, marked as replaced.
    rows = psql("SELECT sha256, superseded_at IS NOT NULL, removed_at IS NULL FROM plugins ORDER BY added_at", api.database)
    assert rows.split() == [f"{sha1}|t|t", f"{sha2}|f|t"]


def test_a_job_planned_with_a_removed_plugin_fails_naming_it(nodes, media_server, s3):
    api = nodes("api", worker=False).start()
    sha = api.add(NAME, V1)
    queued = submit(api, media_server, s3, "removed")
    assert api.admin("DELETE", f"/plugins/{NAME}").status_code == 204
    worker = nodes("worker").start()
    final = worker.wait_job(queued, timeout=60)
    assert final["status"] == "job.failed", final
    message = final["outputs"][0]["error"]
    assert NAME in message and sha in message and "removed" in message, message
    with pytest.raises(Exception):
        s3["client"].head_object(Bucket=s3["bucket"], Key="cluster/removed/out.mp4")


def test_a_worker_waits_for_a_version_it_does_not_have(nodes, media_server, s3):
    # The API node has condition-expr as a file of its own; the worker node has not.
    api = nodes("api", worker=False, files=("storage-s3", "format-video", "notifier-http", "condition-expr")).start()
    queued = submit(api, media_server, s3, "waits")
    worker = nodes("worker", wait=60).start()
    assert "condition-expr" not in worker.plugins()
    wait_until(lambda: "waiting for the plugin version the job was planned with" in worker.logs(), 30,
               "the worker to wait for the job's condition plugin")
    assert worker.get_job(queued).json()["status"] == "job.starting"

    # The same bytes added through the admin API: now every node can have that version.
    sha = api.add("condition-expr", V1)
    final = worker.wait_job(queued, timeout=120)
    assert final["status"] == "job.completed", final
    assert final["outputs"][0]["status"] == "video.encoded", final
    assert worker.plugins()["condition-expr"]["sha256"] == sha
