"""Limits on what a request or a peer controls: the body size, the number of outputs,
and a webhook receiver that never answers. Each gets a clear error in the API's shape or
a recorded delivery failure, and nobody else waits for it."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import ADMIN_KEY, KEY_A, Copra, wait_until


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["error_code"] == code, body
    assert len(body["message"]) > 10
    return body


def small_job(media_server, **extra):
    return {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local"},
            "outputs": {"mp4:240p": {"path": "/l.mp4"}}, **extra}


def test_a_huge_body_is_413_in_each_apis_shape(shared_copra, media_server):
    padding = "x" * (10 << 20)
    body = json.dumps({**small_job(media_server), "settings": {"pad": padding}})
    r = requests.post(f"{shared_copra.url}/v2/jobs", auth=(KEY_A, ""), data=body,
                      headers={"Content-Type": "application/json"}, timeout=30)
    error = assert_error(r, 413, "request_too_large")
    assert "max_body_bytes" in error["message"]
    # Without a Content-Length (chunked), the limit holds while reading.
    def chunks():
        for _ in range(11):
            yield b"x" * (1 << 20)
    r = requests.post(f"{shared_copra.url}/v2/jobs", auth=(KEY_A, ""), data=chunks(), timeout=30)
    assert_error(r, 413, "request_too_large")
    # Octet's API answers in its own shape.
    r = requests.post(f"{shared_copra.url}/v0/jobs/create", auth=(KEY_A, ""), data=body,
                      headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 413 and "error" in r.json(), r.text
    # The server serves on.
    created = shared_copra.post_job(small_job(media_server))
    assert created.status_code == 201, created.text
    assert shared_copra.wait_job(created.json()["id"])["status"] == "job.completed"


def test_too_many_outputs_is_refused_at_submit(shared_copra, media_server):
    outputs = {"mp4:240p": [{"key": f"o{i}", "path": f"/o{i}.mp4"} for i in range(1000)]}
    job = {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local"}, "outputs": outputs}
    error = assert_error(shared_copra.post_job(job), 400, "outputs_not_valid")
    assert "1000" in error["message"] and "50" in error["message"] and "max_outputs" in error["message"]


class Receivers:
    """A healthy webhook receiver and a mute one that reads the request and never answers."""

    def __init__(self):
        self.healthy = []
        self.mute_hits = 0
        self.release = threading.Event()
        receivers = self

        class Healthy(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                receivers.healthy.append((time.monotonic(), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        class Mute(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receivers.mute_hits += 1
                receivers.release.wait(120)

            def log_message(self, *args):
                pass

        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), h) for h in (Healthy, Mute)]
        for s in self.servers:
            s.daemon_threads = True
            threading.Thread(target=s.serve_forever, daemon=True).start()
        self.healthy_url = f"http://127.0.0.1:{self.servers[0].server_address[1]}/hook"
        self.mute_url = f"http://127.0.0.1:{self.servers[1].server_address[1]}/hook"

    def close(self):
        self.release.set()
        for s in self.servers:
            s.shutdown()


@pytest.fixture()
def receivers():
    r = Receivers()
    yield r
    r.close()


def test_a_mute_webhook_receiver_delays_nobody_else(tmp_path, media_server, receivers):
    server = Copra(tmp_path / "data", {"COPRA_LIMITS_WEBHOOK_TIMEOUT_SECS": "2"}).start()
    try:
        # Several jobs to the mute receiver first, so that a one-at-a-time outbox would
        # queue the healthy one behind all of them.
        mute_ids = []
        for _ in range(3):
            created = server.post_job(small_job(media_server, notification={"type": "http", "url": receivers.mute_url}))
            assert created.status_code == 201, created.text
            mute_ids.append(created.json()["id"])
        created = server.post_job(small_job(media_server, notification={"type": "http", "url": receivers.healthy_url}))
        assert created.status_code == 201, created.text
        healthy_id = created.json()["id"]
        final = server.wait_job(healthy_id)
        assert final["status"] == "job.completed", final
        completed_at = time.monotonic()
        hook = wait_until(lambda: [b for _, b in receivers.healthy if b.get("job_id") == healthy_id], 5,
                          "the healthy receiver's webhook, despite the mute one")
        assert hook[0]["event"] == "job.completed"
        assert receivers.mute_hits >= 1
        assert time.monotonic() - completed_at < 5

        # The mute receiver's deliveries are cut at the deadline and recorded as failed
        # attempts that will be retried.
        def timed_out():
            events = requests.get(f"{server.url}/admin/jobs/{mute_ids[0]}/events",
                                  headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10).json()["events"]
            done = [e for e in events if e["event"] == "job.completed"]
            return done and done[0]["attempts"] >= 1 and "2 s" in (done[0]["last_error"] or "") and done[0]["pending"]
        wait_until(timed_out, 60, "the mute delivery to be cut at its deadline")
    finally:
        server.stop()
