"""Operators manage plugins while the server runs: list, add, replace, remove — through
the admin API and by dropping files in the plugin directory — and jobs keep running."""

import shutil
import time

import pytest
import requests

from conftest import ADMIN_KEY, KEY_A, PLUGIN_DIR, ROOT, copra_with_plugins, wait_until

TEST_PLUGINS = ROOT / "tests" / "plugins" / "dist"
FIRST_PARTY = ("storage-s3", "format-video", "condition-expr", "notifier-http")


# The hostile notifier (added during a test) is granted the loopback address, any port.
GRANTS = '[plugins.hostile-notifier]\nallowed_hosts = ["127.0.0.1:*"]\n'


@pytest.fixture()
def admin_copra(tmp_path):
    server = copra_with_plugins(tmp_path, FIRST_PARTY, GRANTS)
    yield server
    server.stop()


def local_job(media_server, outputs):
    return {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local"}, "outputs": outputs}


def test_admin_needs_the_admin_key(admin_copra):
    assert requests.get(f"{admin_copra.url}/admin/plugins", timeout=10).status_code == 401
    r = requests.get(f"{admin_copra.url}/admin/plugins", auth=(KEY_A, ""), timeout=10)
    assert r.status_code == 401, "a job API key is not an admin key"
    assert r.json()["error_code"] == "authentication_failed"
    r = requests.get(f"{admin_copra.url}/admin/plugins", auth=(ADMIN_KEY, ""), timeout=10)
    assert r.status_code == 200


def test_listing_describes_every_plugin(admin_copra):
    plugins = admin_copra.plugins()
    assert set(plugins) == set(FIRST_PARTY)
    assert plugins["storage-s3"]["kind"] == "storage"
    assert plugins["storage-s3"]["provides"] == ["s3", "dospaces", "backblaze", "impossiblecloud", "contabo", "cdn77", "local", "coconut"]
    assert {"mp4", "webm", "mkv", "mp3", "jpg", "gif", "httpstream"} <= set(plugins["format-video"]["provides"])
    assert plugins["notifier-http"]["kind"] == "notifier"
    assert all(len(p["sha256"]) == 64 and p["version"] == "0.1.0" for p in plugins.values())


def test_upload_replace_reject_and_remove(admin_copra, media_server):
    # A component uploaded through the API is live at once.
    wasm = (TEST_PLUGINS / "hostile-notifier.wasm").read_bytes()
    r = admin_copra.admin("POST", "/plugins", params={"name": "sneaky"}, data=wasm)
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "notifier" and r.json()["provides"] == ["sneaky"]

    # Garbage is refused with a reason, and nothing else changes.
    before = {p["name"]: p["sha256"] for p in admin_copra.plugin_listing()["plugins"]}
    r = admin_copra.admin("POST", "/plugins", params={"name": "junk"}, data=b"\0asm not really")
    assert r.status_code == 400 and r.json()["error_code"] == "plugin_not_valid", r.text
    after = admin_copra.plugin_listing()
    assert {p["name"]: p["sha256"] for p in after["plugins"]} == before
    assert not (admin_copra.plugin_dir / "junk.wasm").exists()

    # A second plugin claiming a service already provided is refused by name.
    r = admin_copra.admin("POST", "/plugins", params={"name": "storage-copy"},
              data=(PLUGIN_DIR / "storage-s3.wasm").read_bytes())
    assert r.status_code == 400, r.text
    assert "already provided by plugin 'storage-s3'" in r.json()["message"]

    # Removing the format plugin makes jobs that need it a clear 400 ...
    assert admin_copra.admin("DELETE", "/plugins/format-video").status_code == 204
    r = admin_copra.post_job(local_job(media_server, {"mp4:240p": {"path": "a.mp4"}}))
    assert r.status_code == 400 and r.json()["error_code"] == "format_not_valid", r.text
    assert admin_copra.admin("DELETE", "/plugins/format-video").status_code == 404
    # ... and adding it back (the CLI way) restores them.
    r = admin_copra.admin("POST", "/plugins", params={"name": "format-video"}, data=(PLUGIN_DIR / "format-video.wasm").read_bytes())
    assert r.status_code == 201
    r = admin_copra.post_job(local_job(media_server, {"mp4:240p": {"path": "a.mp4"}}))
    assert r.status_code == 201, r.text
    assert admin_copra.wait_job(r.json()["id"])["status"] == "job.completed"


def test_dropped_file_replaces_a_plugin_without_restart(admin_copra, media_server):
    """The watcher swaps a replaced component in; in-flight jobs are not disturbed."""
    # `true and` does not parse in condition-expr: a 400 at submit time.
    def accepted():
        return admin_copra.post_job(local_job(media_server, {"mp4:240p": {"path": "x.mp4", "if": "true and"}})).status_code

    assert accepted() == 400
    running = admin_copra.post_job({"input": {"url": f"{media_server}/long.mp4"}, "storage": {"service": "local"},
                                    "outputs": {"mp4:360p": {"path": "long.mp4", "if": "{{ input.width }} > 0"}}})
    assert running.status_code == 201
    wait_until(lambda: admin_copra.get_job(running.json()["id"]).json()["outputs"][0]["status"] == "video.encoding", 60, "encoding")

    # Replace condition-expr with a plugin whose check accepts anything.
    staged = admin_copra.plugin_dir / ".swap.tmp"
    shutil.copy(TEST_PLUGINS / "hostile-condition.wasm", staged)
    written = time.monotonic()
    staged.rename(admin_copra.plugin_dir / "condition-expr.wasm")
    wait_until(lambda: accepted() == 201, 10, "the replaced plugin to answer")
    took = time.monotonic() - written
    print(f"hot reload (debug build, first compile): {took:.2f}s")
    # The swap happened while the job was provably still running.
    view = admin_copra.get_job(running.json()["id"]).json()
    assert view["outputs"][0]["status"] == "video.encoding" and view["progress"] != "100%", view

    # Removing the file takes the condition language away.
    (admin_copra.plugin_dir / "condition-expr.wasm").unlink()
    def refused():
        r = admin_copra.post_job(local_job(media_server, {"mp4:240p": {"path": "y.mp4", "if": "true"}}))
        return r.status_code == 400 and r.json()["error_code"] == "condition_not_valid"
    wait_until(refused, 10, "the removed plugin to be gone")

    final = admin_copra.wait_job(running.json()["id"], timeout=120)
    assert final["status"] == "job.completed", final


def test_a_running_job_finishes_on_the_storage_plugin_it_started_with(admin_copra, media_server):
    """The storage plugin is removed while a job encodes: new jobs naming its services are
    refused at once, and the running job still uploads through the version it was planned
    with (kept in memory by its hash) and completes."""
    running = admin_copra.post_job({"input": {"url": f"{media_server}/long.mp4"}, "storage": {"service": "local"},
                                    "outputs": {"mp4:360p": {"path": "kept/long.mp4"}}})
    assert running.status_code == 201, running.text
    job_id = running.json()["id"]
    wait_until(lambda: admin_copra.get_job(job_id).json()["outputs"][0]["status"] == "video.encoding", 60, "encoding")

    (admin_copra.plugin_dir / "storage-s3.wasm").unlink()

    def refused():
        r = admin_copra.post_job(local_job(media_server, {"mp4:240p": {"path": "z.mp4"}}))
        return r.status_code == 400 and r.json()["error_code"] == "storage_not_valid"
    wait_until(refused, 10, "the removed storage plugin to be gone for new jobs")
    view = admin_copra.get_job(job_id).json()
    assert view["outputs"][0]["status"] == "video.encoding" and view["progress"] != "100%", ("not mid-run", view)

    final = admin_copra.wait_job(job_id, timeout=180)
    assert final["status"] == "job.completed", final
    url = final["outputs"][0]["url"]
    got = requests.get(url, auth=(KEY_A, ""), timeout=30)
    assert got.status_code == 200 and len(got.content) > 10_000, (url, got.status_code)


def test_notifier_cannot_reach_hosts_it_was_not_granted(admin_copra, media_server, webhooks):
    shutil.copy(TEST_PLUGINS / "hostile-notifier.wasm", admin_copra.plugin_dir / "hostile-notifier.wasm")
    wait_until(lambda: "hostile-notifier" in admin_copra.plugins(), 10, "plugin loaded")
    job = local_job(media_server, {"mp4:240p": {"path": "n.mp4"}})
    port = webhooks.url.rsplit(":", 1)[1]
    # A host the plugin asks for but the operator did not grant: refused at submit,
    # naming the host and the grant key.
    job["notification"] = {"type": "sneaky", "url": f"http://localhost:{port}/asked",
                           "sneak_url": f"http://localhost:{port}/stolen"}
    r = admin_copra.post_job(job)
    assert (r.status_code, r.json()["error_code"]) == (400, "notification_not_valid"), r.text
    assert f'"localhost:{port}"' in r.json()["message"], r.text
    assert "[plugins.hostile-notifier] allowed_hosts" in r.json()["message"], r.text

    # Granted: 127.0.0.1:<port> of the webhook receiver. Attempted: the very same
    # receiver named `localhost` — another host, so it must be refused before sending.
    job["notification"] = {"type": "sneaky", "url": f"{webhooks.url}/granted",
                           "sneak_url": f"http://localhost:{port}/stolen"}
    created = admin_copra.post_job(job)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    assert admin_copra.wait_job(job_id)["status"] == "job.completed"

    def refused():
        # Events are delivered in order: the first one fails and is retried with
        # backoff, holding back the later ones.
        events = admin_copra.admin("GET", f"/jobs/{job_id}/events").json()["events"]
        return events and events[0]["last_error"] and events[0]

    event = wait_until(refused, 30, "the notification attempt to be recorded")
    assert "HttpRequestDenied" in event["last_error"], event
    assert event["attempts"] >= 1
    assert webhooks.received("/granted") == [] and webhooks.received("/stolen") == []
    assert webhooks.received("/asked") == []
