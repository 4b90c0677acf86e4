"""Fair webhook delivery. One tenant (KEY_B) owes about 200 events to 16 receivers that
accept connections, read what arrives and never answer (raw sockets), enough to hold
every one of the server's 64 delivery slots if they went first come, first served.
Another tenant's (KEY_A) `job.completed` still reaches its healthy receiver within a few
seconds of its job ending, because one tenant holds at most 16 deliveries at once (the
mute tenant's 16 receivers hold 16 connections, not 64). Redelivery is rate-limited per
key: beyond `[webhooks] redeliveries_per_minute` a 429 in the API's error shape with
`Retry-After`, while another key still redelivers."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import KEY_A, KEY_B, Copra, wait_until

MUTE_RECEIVERS = 16
MUTE_JOBS = 68  # three events each: about 200 owed to the mute receivers
PER_TENANT = 16
REDELIVERIES_PER_MINUTE = 3


class MuteReceiver:
    """Accepts connections, reads whatever arrives, never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.connections = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn):
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def count(self):
        with self.lock:
            return len(self.connections)

    def close(self):
        with self.lock:
            for conn in self.connections:
                conn.close()
        self.sock.close()


class HealthyReceiver:
    """Answers 200 at once; notes when each hook arrived."""

    def __init__(self):
        self.hits = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.hits.append((time.monotonic(), json.loads(raw)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def arrival(self, job_id, event):
        with self.lock:
            return next((at for at, body in self.hits if body["job_id"] == job_id and body["event"] == event), None)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def light(media_server, url):
    return {"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local"},
            "outputs": {"jpg:80x": {"path": "/f.jpg"}},
            "notification": {"type": "http", "url": url, "events": True}}


def submit(server, body, key):
    created = server.post_job(body, key=key)
    assert created.status_code == 201, created.text
    return created.json()["id"]


def log(server, job_id, key):
    r = requests.get(f"{server.url}/v2/jobs/{job_id}/webhooks", auth=(key, ""), timeout=10)
    assert r.status_code == 200, r.text
    return {e["event"]: e for e in r.json()["events"]}


@pytest.fixture()
def server(tmp_path):
    # Deliveries to a mute receiver are held for five minutes: longer than this test.
    copra = Copra(tmp_path / "data", {"COPRA_LIMITS_WEBHOOK_TIMEOUT_SECS": "300",
                                      "COPRA_WORKER_CONCURRENCY": "2",
                                      "COPRA_WEBHOOKS_REDELIVERIES_PER_MINUTE": str(REDELIVERIES_PER_MINUTE)}).start()
    yield copra
    copra.stop()


def test_a_tenants_mute_receivers_do_not_hold_back_another_tenants_webhooks(server, media_server):
    mutes = [MuteReceiver() for _ in range(MUTE_RECEIVERS)]
    healthy = HealthyReceiver()
    try:
        muted = [submit(server, light(media_server, mutes[i % MUTE_RECEIVERS].url), KEY_B) for i in range(MUTE_JOBS)]
        for job_id in muted:
            assert server.wait_job(job_id, key=KEY_B)["status"] == "job.completed"
        # The mute tenant holds all it may: 16 deliveries, its events still owed.
        wait_until(lambda: sum(m.count() for m in mutes) >= PER_TENANT or None, 30, "the mute receivers holding deliveries")
        owed = sum(1 for job_id in muted[:10] for e in log(server, job_id, KEY_B).values() if e["state"] == "pending")
        assert owed >= 10, "every mute job still owes its events"

        delays = []
        for _ in range(2):
            job_id = submit(server, light(media_server, healthy.url), KEY_A)
            assert server.wait_job(job_id)["status"] == "job.completed"
            ended = time.monotonic()
            arrived = wait_until(lambda: healthy.arrival(job_id, "job.completed"), 30, f"job.completed of {job_id}")
            delays.append(arrived - ended)
        print(f"job.completed arrived {', '.join(f'{d:.2f}' for d in delays)} s after each job ended")
        assert max(delays) <= 3, delays
        # Meanwhile the mute tenant never held more than its share of connections.
        assert sum(m.count() for m in mutes) == PER_TENANT, [m.count() for m in mutes]
        assert all(m.count() <= 4 for m in mutes), "and one receiver at most 4"

        # Redelivery: a few a minute per key, then 429 with Retry-After in the error shape.
        event = log(server, job_id, KEY_A)["job.completed"]
        url = f"{server.url}/v2/jobs/{job_id}/webhooks/{event['id']}/redeliver"
        for _ in range(REDELIVERIES_PER_MINUTE):
            r = requests.post(url, auth=(KEY_A, ""), json={}, timeout=10)
            assert r.status_code == 202, r.text
        r = requests.post(url, auth=(KEY_A, ""), json={}, timeout=10)
        assert r.status_code == 429, r.text
        assert r.json() == {**r.json(), "error_code": "too_many_redeliveries", "status": "error"}
        assert "redeliveries_per_minute" in r.json()["message"]
        assert 1 <= int(r.headers["Retry-After"]) <= 60 // REDELIVERIES_PER_MINUTE, r.headers
        # Another key has its own allowance.
        b_event = log(server, muted[0], KEY_B)["input.transferred"]
        r = requests.post(f"{server.url}/v2/jobs/{muted[0]}/webhooks/{b_event['id']}/redeliver",
                          auth=(KEY_B, ""), json={}, timeout=10)
        assert r.status_code == 202, r.text
    finally:
        healthy.close()
        for mute in mutes:
            mute.close()
