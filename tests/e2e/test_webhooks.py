"""Webhooks that are never lost: signed as Standard Webhooks with each key's own secret
(verified with the `standardwebhooks` package), retried on the configured schedule while a receiver is
down, logged attempt by attempt through `GET /v2/jobs/{id}/webhooks`, failed after the
last attempt and redelivered on request, and delivered exactly once by two processes
sharing one PostgreSQL database.

Every receiver here is a real HTTP server on loopback whose answers the test sets."""

import base64
import json
import subprocess
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from standardwebhooks import Webhook, WebhookVerificationError

from conftest import KEY_A, KEY_B, Copra, free_port, wait_until

PG = "postgres://postgres@127.0.0.1:5432/test"
# A per-key secret for KEY_B (24 bytes, the Standard Webhooks minimum).
SECRET_B = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
RETRIES = 8


class Receiver:
    """A webhook receiver on a fixed loopback port. It answers `status` after `delay`
    seconds, or is not listening at all (connections refused) until `listen()`."""

    def __init__(self, status=200, delay=0.0, listening=True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.status = status
        self.delay = delay
        self.hits = []
        self.lock = threading.Lock()
        self.server = None
        if listening:
            self.listen()

    def listen(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(receiver.delay)
                status = receiver.status
                with receiver.lock:
                    receiver.hits.append({"at": time.monotonic(), "raw": raw, "status": status,
                                          "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.listening_since = time.monotonic()

    def close(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def delivered(self):
        """The hooks answered 2xx."""
        with self.lock:
            return [h for h in self.hits if 200 <= h["status"] < 300]

    def all(self):
        with self.lock:
            return list(self.hits)


def event_of(hook):
    return json.loads(hook["raw"])["event"]


def job_of(hook):
    return json.loads(hook["raw"])["job_id"]


def verifies(secret, hook):
    try:
        Webhook(secret).verify(hook["raw"], hook["headers"])
        return True
    except WebhookVerificationError:
        return False


def job(media_server, url, events=True):
    return {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local"},
            "outputs": {"mp4:240p": {"path": "/w.mp4"}},
            "notification": {"type": "http", "url": url, "events": events}}


def webhook_log(server, job_id, key=KEY_A):
    r = requests.get(f"{server.url}/v2/jobs/{job_id}/webhooks", auth=(key, ""), timeout=10)
    assert r.status_code == 200, r.text
    return {e["event"]: e for e in r.json()["events"]}


def submit(server, body, key=KEY_A):
    created = server.post_job(body, key=key)
    assert created.status_code == 201, created.text
    return created.json()["id"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server: its own generated root secret, a per-key secret for KEY_B, and a short
    retry schedule (eight retries about a second apart) from the config file."""
    root = tmp_path_factory.mktemp("webhooks")
    config = root / "copra.toml"
    config.write_text(f'[webhooks]\nretry_schedule_secs = [{", ".join(["1"] * RETRIES)}]\n'
                      f'[webhooks.secrets]\n"{KEY_B}" = "{SECRET_B}"\n')
    copra = Copra(root / "data", {"COPRA_CONFIG": str(config)}).start()
    yield copra
    copra.stop()


def generated_root(server):
    secret = (server.data_dir / "webhook-secret").read_text().strip()
    assert secret.startswith("whsec_")
    return secret


def key_secret(server, key=KEY_A):
    """The secret that signs `key`'s webhooks, as the key reads it."""
    r = requests.get(f"{server.url}/v2/webhooks/secret", auth=(key, ""), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["secret"]


def test_every_webhook_is_signed_with_its_tenants_secret(server, media_server):
    root = generated_root(server)
    assert f"Webhook root secret generated into {server.data_dir / 'webhook-secret'}" in server.logs(), \
        "the operator is told where the generated root is kept"
    assert root not in server.logs(), "the root itself is not shown: it signs nothing"
    secret = key_secret(server)
    assert secret != root and key_secret(server, KEY_B) == SECRET_B
    receiver = Receiver()
    try:
        job_a = submit(server, job(media_server, receiver.url))
        job_b = submit(server, job(media_server, receiver.url), key=KEY_B)
        wait_until(lambda: len(receiver.delivered()) >= 6, 120, "three webhooks of each job")
        hooks = receiver.delivered()
        assert sorted(event_of(h) for h in hooks if job_of(h) == job_a) == \
            ["input.transferred", "job.completed", "output.completed"]
        for hook in hooks:
            headers = hook["headers"]
            assert headers["webhook-id"].startswith("msg_")
            assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
            assert headers["webhook-signature"].startswith("v1,")
            if job_of(hook) == job_a:
                assert verifies(secret, hook) and not verifies(SECRET_B, hook) and not verifies(root, hook), hook["headers"]
            else:
                assert verifies(SECRET_B, hook) and not verifies(secret, hook) and not verifies(root, hook), \
                    "KEY_B's own secret signs its hooks"
        assert len({h["headers"]["webhook-id"] for h in hooks}) == len(hooks), "one id per event"
        # The ids are the events' ids in the delivery log.
        log = webhook_log(server, job_a)
        for hook in hooks:
            if job_of(hook) == job_a:
                entry = log[event_of(hook)]
                assert entry["webhook_id"] == hook["headers"]["webhook-id"]
                assert entry["state"] == "delivered" and entry["attempts"][-1]["status_code"] == 200
        # A tampered body does not verify.
        forged = dict(hooks[0], raw=hooks[0]["raw"].replace(b"job", b"jab"))
        assert not verifies(secret, forged) and not verifies(SECRET_B, forged) and not verifies(root, forged)
    finally:
        receiver.close()


def test_a_receiver_down_then_back_gets_every_event_and_the_log_shows_each_attempt(server, media_server):
    secret = key_secret(server)
    receiver = Receiver(status=500, listening=False)
    try:
        job_id = submit(server, job(media_server, receiver.url))

        def failed_attempts():
            entry = webhook_log(server, job_id).get("input.transferred")
            return entry and len(entry["attempts"]) >= 2 and entry["attempts"]
        refused = wait_until(failed_attempts, 60, "two refused attempts")
        # Back, but failing: one answer of 500, then healthy.
        receiver.listen()
        wait_until(receiver.all, 30, "an attempt on the failing receiver")
        receiver.status = 200
        wait_until(lambda: len(receiver.delivered()) == 3, 60, "every event after recovery")
        assert server.wait_job(job_id)["status"] == "job.completed"

        hooks = receiver.delivered()
        assert [event_of(h) for h in hooks] == ["input.transferred", "output.completed", "job.completed"], "in order"
        assert all(verifies(secret, h) for h in hooks)
        assert all(h["at"] >= receiver.listening_since for h in hooks)
        # The retry of the same event carries the same id as its failed attempt.
        first = [h for h in receiver.all() if event_of(h) == "input.transferred"]
        assert [h["status"] for h in first][:1] == [500] and first[-1]["status"] == 200
        assert len({h["headers"]["webhook-id"] for h in first}) == 1

        log = webhook_log(server, job_id)
        attempts = log["input.transferred"]["attempts"]
        for attempt in refused:
            assert attempt["succeeded"] is False and attempt["status_code"] is None
            assert "refused" in attempt["error"].lower() or "connect" in attempt["error"].lower(), attempt
            assert attempt["duration_ms"] >= 0
        answered = [a for a in attempts if a["status_code"] == 500]
        assert answered and "500" in answered[0]["error"] and answered[0]["succeeded"] is False
        assert attempts[-1] == {**attempts[-1], "status_code": 200, "succeeded": True, "error": None}
        assert attempts.index(answered[0]) > attempts.index(refused[-1]), "refused, then 500, then success"
        assert log["input.transferred"]["state"] == "delivered" and log["input.transferred"]["delivered_at"]
        assert all(e["state"] == "delivered" for e in log.values()), log
    finally:
        receiver.close()


def test_a_failed_output_is_an_output_failed_webhook_with_its_error(server, media_server):
    """One output cannot be made (its cut starts after the 5 s input ends), the other can:
    the receiver gets `output.failed` naming that output and its error, `output.completed`
    for the other, and the job's final event."""
    receiver = Receiver()
    try:
        body = job(media_server, receiver.url)
        body["outputs"]["mp4:240p::quality=2"] = {"key": "late", "path": "/late.mp4", "offset": 100}
        job_id = submit(server, body)
        final = server.wait_job(job_id)
        failed = {o["key"]: o for o in final["outputs"]}["late"]
        assert failed["status"] == "video.failed" and failed["error"], failed
        hooks = wait_until(lambda: [h for h in receiver.delivered() if event_of(h) in ("job.completed", "job.failed")]
                           and receiver.delivered(), 30, "the final webhook")
        bodies = [json.loads(h["raw"]) for h in hooks]
        (output_failed,) = [b for b in bodies if b["event"] == "output.failed"]
        assert output_failed["job_id"] == job_id
        data = output_failed["data"]
        assert data["key"] == "late" and data["error"] == failed["error"], (data, failed)
        assert [b["data"]["key"] for b in bodies if b["event"] == "output.completed"] == ["mp4:240p"]
        assert bodies[-1]["event"] in ("job.completed", "job.failed")
    finally:
        receiver.close()


def test_after_the_whole_schedule_an_event_fails_and_can_be_redelivered(server, media_server):
    secret = key_secret(server)
    receiver = Receiver(status=503)
    try:
        job_id = submit(server, job(media_server, receiver.url, events=False))
        assert server.wait_job(job_id)["status"] == "job.completed"

        def failed():
            entry = webhook_log(server, job_id)["job.completed"]
            return entry["state"] == "failed" and entry
        entry = wait_until(failed, 60, "the event to fail after its schedule")
        assert len(entry["attempts"]) == RETRIES + 1
        assert all(a["status_code"] == 503 and not a["succeeded"] for a in entry["attempts"])
        assert entry["failed_at"] and entry["next_attempt_at"] is None and "503" in entry["last_error"]
        tried = receiver.all()
        assert len(tried) == RETRIES + 1 and len({h["headers"]["webhook-id"] for h in tried}) == 1
        time.sleep(2)
        assert len(receiver.all()) == RETRIES + 1, "a failed event is not tried again by itself"

        # Another key sees none of it.
        base = f"{server.url}/v2/jobs/{job_id}/webhooks"
        for r in (requests.get(base, auth=(KEY_B, ""), timeout=10),
                  requests.post(f"{base}/{entry['id']}/redeliver", auth=(KEY_B, ""), timeout=10)):
            assert r.status_code == 404 and r.json()["error_code"] == "job_not_found", r.text
        assert requests.get(base, timeout=10).status_code == 401
        r = requests.post(f"{base}/999999/redeliver", auth=(KEY_A, ""), timeout=10)
        assert r.status_code == 404 and r.json() == {**r.json(), "error_code": "event_not_found", "status": "error"}

        receiver.status = 200
        r = requests.post(f"{base}/{entry['id']}/redeliver", auth=(KEY_A, ""), timeout=10)
        assert r.status_code == 202, r.text
        assert r.json()["state"] == "pending" and r.json()["webhook_id"] == entry["webhook_id"]
        hook = wait_until(receiver.delivered, 30, "the redelivered event")[0]
        assert hook["headers"]["webhook-id"] == entry["webhook_id"] and verifies(secret, hook)
        after = wait_until(lambda: (e := webhook_log(server, job_id)["job.completed"])["state"] == "delivered" and e,
                           30, "the event to be delivered")
        assert len(after["attempts"]) == RETRIES + 2 and after["attempts"][-1]["status_code"] == 200

        # A delivered event can be sent again too, with the same id.
        r = requests.post(f"{base}/{entry['id']}/redeliver", auth=(KEY_A, ""), timeout=10)
        assert r.status_code == 202, r.text
        wait_until(lambda: len(receiver.delivered()) == 2, 30, "the second redelivery")
        assert {h["headers"]["webhook-id"] for h in receiver.all()} == {entry["webhook_id"]}
    finally:
        receiver.close()


def test_a_job_without_notification_has_nothing_to_redeliver(server, media_server):
    body = job(media_server, "http://127.0.0.1:9/unused")
    del body["notification"]
    job_id = submit(server, body)
    assert server.wait_job(job_id)["status"] == "job.completed"
    log = webhook_log(server, job_id)
    assert log["job.completed"]["state"] == "not_requested" and log["job.completed"]["attempts"] == []
    r = requests.post(f"{server.url}/v2/jobs/{job_id}/webhooks/{log['job.completed']['id']}/redeliver",
                      auth=(KEY_A, ""), timeout=10)
    assert r.status_code == 400 and r.json()["error_code"] == "notification_not_found", r.text
    assert "notification" in r.json()["message"]


def test_octet_callbacks_are_signed_too(server, media_server, s3):
    from test_octet import create, destination
    receiver = Receiver()
    try:
        body = {"input": {"url": f"{media_server}/missing.mp4"}, "destination": destination(s3),
                "outputs": [{"codec": "h264", "resolution": "-1x240", "dest_path": "octet/hooks.mp4"}],
                "callback": receiver.url}
        created = create(server, body)
        assert created.status_code == 200, created.text
        job_id = created.json()["job_id"]
        hook = wait_until(receiver.delivered, 60, "the octet callback")[0]
        assert json.loads(hook["raw"]) == {"api_version": "v0", "job_id": job_id, "status": "error"}
        assert verifies(key_secret(server), hook) and not verifies(generated_root(server), hook)
        assert hook["headers"]["webhook-id"] == webhook_log(server, job_id)["job.failed"]["webhook_id"]
    finally:
        receiver.close()


def psql(sql):
    subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-q", PG, "-c", sql], check=True)


def test_two_processes_on_one_postgres_deliver_each_event_once(tmp_path, media_server):
    schema = "copra_hooks_" + uuid.uuid4().hex[:8]
    psql(f"CREATE SCHEMA {schema}")
    receiver = Receiver(delay=1.5)
    servers = []
    try:
        secret = "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode()
        shared = {"COPRA_DATABASE_URL": f"{PG}?options=-c%20search_path%3D{schema}",
                  "COPRA_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
                  "COPRA_WEBHOOK_SECRET": secret}
        for name in ("one", "two"):
            servers.append(Copra(tmp_path / name, shared).start())
        jobs = [submit(servers[i % 2], job(media_server, receiver.url)) for i in range(6)]
        for job_id in jobs:
            assert servers[0].wait_job(job_id, timeout=180)["status"] == "job.completed"

        def all_delivered():
            logs = [webhook_log(servers[1], job_id) for job_id in jobs]
            return all(e["state"] == "delivered" for log in logs for e in log.values()) and logs
        logs = wait_until(all_delivered, 120, "every event delivered", interval=0.5)
        expected = {e["webhook_id"] for log in logs for e in log.values()}
        assert len(expected) == 18
        time.sleep(3)  # room for a duplicate to show up, if one were on its way
        hooks = receiver.all()
        ids = [h["headers"]["webhook-id"] for h in hooks]
        assert sorted(ids) == sorted(expected), "each event exactly once"
        # Both nodes derive KEY_A's secret from the shared root; it signs, the root does not.
        secret_a = key_secret(servers[0])
        assert key_secret(servers[1]) == secret_a != secret
        assert all(verifies(secret_a, h) and not verifies(secret, h) for h in hooks)
        for job_id in jobs:
            assert [event_of(h) for h in hooks if job_of(h) == job_id] == \
                ["input.transferred", "output.completed", "job.completed"], "each job's events in order"
        for log in logs:
            assert all(len(e["attempts"]) == 1 for e in log.values()), log
        # Both processes delivered some of them.
        for copra in servers:
            assert "notification delivered" in copra.logs(), copra.log_path
    finally:
        receiver.close()
        for copra in servers:
            copra.stop()
        psql(f"DROP SCHEMA {schema} CASCADE")


class MuteReceiver:
    """Accepts connections and reads what arrives, but never answers."""

    def __init__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self):
        for conn in self.connections:
            conn.close()
        self.sock.close()


def test_a_mute_receiver_does_not_delay_a_healthy_ones_webhooks(tmp_path, media_server):
    """Six jobs notify a receiver that accepts and never answers (more than one receiver's
    share of deliveries), then two jobs notify a healthy receiver: the healthy one's
    `job.completed` arrives within a couple of seconds of each job completing, while the
    mute one still holds its deliveries open."""
    server = Copra(tmp_path / "data", {"COPRA_LIMITS_WEBHOOK_TIMEOUT_SECS": "60"}).start()
    mute, healthy = MuteReceiver(), Receiver()
    light = lambda url: {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local"},  # noqa: E731
                         "outputs": {"jpg:160x": {"path": "/t.jpg"}},
                         "notification": {"type": "http", "url": url, "events": True}}
    try:
        muted = [submit(server, light(mute.url)) for _ in range(6)]
        server.wait_job(muted[-1])
        wait_until(lambda: len(mute.connections) >= 4 or None, 30, "the mute receiver holding deliveries")
        for _ in range(2):
            job_id = submit(server, light(healthy.url))
            assert server.wait_job(job_id)["status"] == "job.completed"
            seen = time.monotonic()
            wait_until(lambda: any(event_of(h) == "job.completed" and job_of(h) == job_id for h in healthy.delivered()) or None,
                       3, f"job.completed of {job_id} at the healthy receiver")
            assert time.monotonic() - seen < 3
        # Its deliveries are still open, and capped: one receiver holds at most 4 at once.
        assert len(mute.connections) == 4, len(mute.connections)
    finally:
        server.stop()
        mute.close()
        healthy.close()


def stamp(text):
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")


def test_progress_webhooks_at_the_asked_interval_and_only_when_asked(server, media_server):
    def long_job(url, **notification):
        return {"input": {"url": f"{media_server}/long.mp4"}, "storage": {"service": "local"},
                "outputs": {"mp4:720p": {"path": "/p.mp4"}},
                "notification": {"type": "http", "url": url, **notification}}

    refused = server.post_job(long_job("http://127.0.0.1:9/h", progress_interval=0))
    assert refused.status_code == 400 and refused.json()["error_code"] == "request_not_valid", refused.text
    refused = server.post_job(long_job("http://127.0.0.1:9/h", progress_interval="1"))
    assert refused.status_code == 400 and refused.json()["error_code"] == "request_not_valid", refused.text

    asked, quiet = Receiver(), Receiver()
    try:
        asked_id = submit(server, long_job(asked.url, progress_interval=1))
        quiet_id = submit(server, long_job(quiet.url, events=True))
        for receiver in (asked, quiet):
            wait_until(lambda: "job.completed" in [event_of(h) for h in receiver.delivered()], 180, "the job's end")
        hooks = asked.delivered()
        events = [event_of(h) for h in hooks]
        progress = [json.loads(h["raw"]) for h in hooks if event_of(h) == "job.progress"]
        assert len(progress) >= 3, events
        percents = [int(p["data"]["progress"].rstrip("%")) for p in progress]
        assert percents == sorted(percents) and len(set(percents)) == len(percents), percents
        assert 0 <= percents[0] < percents[-1] < 100, percents
        assert all(p["job_id"] == asked_id and p["data"]["status"] == "job.starting" for p in progress)
        assert events.index("job.completed") > events.index("job.progress"), events
        assert all(verifies(key_secret(server), h) for h in hooks)
        # Each was recorded as an event of the job's log, and delivered.
        log = requests.get(f"{server.url}/v2/jobs/{asked_id}/webhooks", auth=(KEY_A, ""), timeout=10).json()["events"]
        recorded = [e for e in log if e["event"] == "job.progress"]
        assert len(recorded) == len(progress) and all(e["state"] == "delivered" for e in recorded)
        # At most one a second: no more than the job's seconds (whole-second times) allow.
        finished = server.get_job(asked_id).json()
        seconds = (stamp(finished["completed_at"]) - stamp(finished["created_at"])).total_seconds()
        assert len(progress) <= seconds + 2, (len(progress), seconds)
        # Without the option: per-event callbacks, but no progress.
        quiet_events = [event_of(h) for h in quiet.delivered()]
        assert "output.completed" in quiet_events and "job.progress" not in quiet_events, quiet_events
        assert "job.progress" not in webhook_log(server, quiet_id)
    finally:
        asked.close()
        quiet.close()
