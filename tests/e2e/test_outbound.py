"""The outbound network policy, black-box: copra may reach 127.0.0.2 only
(COPRA_OUTBOUND_ALLOW=127.0.0.2/32). An "internal" server on 127.0.0.1 counts every
connection it receives; an "allowed" server on 127.0.0.2 serves media, redirects,
playlists, stalls and takes PUTs. Every way a job can name the internal server fails
clearly, at submit or as a failed status naming the address and the setting, and the
internal server is never reached. Transfers are bounded in time and size."""

import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from conftest import Copra, make_video, wait_until, S3_ACCESS, S3_SECRET

IDLE_SECS = 2


class CountingServer(ThreadingHTTPServer):
    """Counts connections, whether or not a request follows."""

    daemon_threads = True

    def __init__(self, address, handler):
        self.connections = 0
        self.count_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        with self.count_lock:
            self.connections += 1
        super().process_request(request, client_address)


class InternalHandler(BaseHTTPRequestHandler):
    def _answer(self):
        body = b"internal secret"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = _answer

    def log_message(self, *args):
        pass


def allowed_handler(media: Path, release: threading.Event, received: list):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            parts = url.path.strip("/").split("/")
            if parts[0] == "media":
                body = (media / parts[1]).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif parts[0] == "unsized":
                # No Content-Length: the body ends when the connection closes.
                body = (media / parts[1]).read_bytes()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True
            elif parts[0] == "redirect":
                self.send_response(302)
                self.send_header("Location", query["to"])
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif parts[0] == "playlist":
                segment = query["segment"]
                body = (f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{segment}\n"
                        f"#EXTINF:2.0,\n{segment}?2\n#EXT-X-ENDLIST\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.apple.mpegurl")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif parts[0] == "stall":
                # Headers and a first piece, then silence.
                self.send_response(200)
                self.send_header("Content-Length", str(100_000))
                self.end_headers()
                self.wfile.write(b"\0" * 1000)
                self.wfile.flush()
                release.wait(120)
            elif parts[0] == "mute":
                # The connection is accepted; nothing is ever said.
                release.wait(120)
            else:
                self.send_error(404)

        def do_PUT(self):
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            if self.path.startswith("/put-redirect"):
                to = parse_qs(urlparse(self.path).query)["to"][0]
                self.send_response(307)
                self.send_header("Location", to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            received.append(("PUT", self.path, len(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            received.append(("POST", self.path, self.rfile.read(length)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    media = tmp_path_factory.mktemp("outbound-media")
    make_video(media / "small.mp4", size="320x240", duration=1)
    make_video(media / "big.mp4", size="1280x720", duration=6)
    small, big = (media / "small.mp4").stat().st_size, (media / "big.mp4").stat().st_size
    assert big > 2 * small
    max_input = (small + big) // 2

    internal = CountingServer(("127.0.0.1", 0), InternalHandler)
    threading.Thread(target=internal.serve_forever, daemon=True).start()
    release, received = threading.Event(), []
    try:
        allowed = CountingServer(("127.0.0.2", 0), allowed_handler(media, release, received))
    except OSError:
        pytest.skip("127.0.0.2 is not a usable loopback address here")
    threading.Thread(target=allowed.serve_forever, daemon=True).start()

    server = Copra(tmp_path_factory.mktemp("outbound") / "data", {
        "COPRA_OUTBOUND_ALLOW": "127.0.0.2/32",
        "COPRA_LIMITS_TRANSFER_IDLE_SECS": str(IDLE_SECS),
        "COPRA_LIMITS_MAX_INPUT_BYTES": str(max_input),
    }).start()

    class Rig:
        pass

    rig = Rig()
    rig.copra, rig.internal, rig.received, rig.max_input = server, internal, received, max_input
    rig.internal_url = f"http://127.0.0.1:{internal.server_address[1]}"
    rig.allowed_url = f"http://127.0.0.2:{allowed.server_address[1]}"
    yield rig
    release.set()
    server.stop()
    internal.shutdown()
    allowed.shutdown()


@pytest.fixture(autouse=True)
def internal_untouched(rig):
    """No test makes the internal server receive a connection."""
    before = rig.internal.connections
    yield
    assert rig.internal.connections == before, "the internal server received a connection"


def job(input_url, **extra):
    body = {"input": {"url": input_url}, "storage": {"service": "local", "path": "/outbound"},
            "outputs": {"mp4:240p": {"path": "/out.mp4"}}}
    body.update(extra)
    return body


def refused_at_submit(rig, body, code):
    response = rig.copra.post_job(body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error_code"] == code and error["status"] == "error", error
    return error["message"]


def failed_input(rig, body, timeout=60):
    created = rig.copra.post_job(body)
    assert created.status_code == 201, created.text
    final = rig.copra.wait_job(created.json()["id"], timeout=timeout)
    assert final["status"] == "job.failed", final
    assert final["input"]["status"] == "input.failed", final
    assert final["outputs"][0]["status"].endswith(".failed"), final
    return final["input"]["error"]


def names_address_and_setting(message, address):
    assert address in message, message
    assert "COPRA_OUTBOUND_ALLOW" in message, message


# --- refused at submit: the address is known then ---

@pytest.mark.parametrize("url,address", [
    ("{internal}/input.mp4", "127.0.0.1"),
    ("http://localhost:{port}/input.mp4", "localhost"),
    ("http://2130706433:{port}/input.mp4", "127.0.0.1"),
    ("http://[::ffff:127.0.0.1]:{port}/input.mp4", "127.0.0.1"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ("http://10.1.2.3/input.mp4", "10.1.2.3"),
])
def test_an_input_url_at_a_refused_address_is_a_400(rig, url, address):
    url = url.format(internal=rig.internal_url, port=rig.internal.server_address[1])
    message = refused_at_submit(rig, job(url), "input_not_valid")
    names_address_and_setting(message, address)


def test_a_webhook_at_a_refused_address_is_a_400(rig):
    body = job(f"{rig.allowed_url}/media/small.mp4",
               notification={"type": "http", "url": f"{rig.internal_url}/hook"})
    message = refused_at_submit(rig, body, "notification_not_valid")
    names_address_and_setting(message, "127.0.0.1")


def test_an_s3_endpoint_at_a_refused_address_is_a_400(rig):
    s3 = {"service": "s3", "region": "us-east-1", "bucket": "b", "endpoint": rig.internal_url,
          "force_path_style": True, "credentials": {"access_key_id": S3_ACCESS, "secret_access_key": S3_SECRET}}
    message = refused_at_submit(rig, job(f"{rig.allowed_url}/media/small.mp4", storage=s3), "storage_not_valid")
    names_address_and_setting(message, "127.0.0.1")
    # The same endpoint as an input's storage.
    body = job("unused")
    body["input"] = dict(s3, key="input.mp4")
    message = refused_at_submit(rig, body, "input_not_valid")
    names_address_and_setting(message, "127.0.0.1")


def test_an_output_put_url_at_a_refused_address_is_a_400(rig):
    body = job(f"{rig.allowed_url}/media/small.mp4", outputs={"mp4:240p": {"url": f"{rig.internal_url}/upload.mp4"}})
    message = refused_at_submit(rig, body, "output_param_not_valid")
    names_address_and_setting(message, "127.0.0.1")


# --- refused at run time: the address appears only then ---

def test_a_redirect_from_the_allowed_host_to_an_internal_one_fails_the_input(rig):
    for target in (f"{rig.internal_url}/secret.mp4", f"http://localhost:{rig.internal.server_address[1]}/secret.mp4"):
        message = failed_input(rig, job(f"{rig.allowed_url}/redirect?to={target}"))
        assert "redirect" in message, message
        names_address_and_setting(message, "127.0.0.1" if "127.0.0.1" in target else "localhost")


def test_a_name_resolving_to_a_refused_address_fails_the_input(rig):
    """Names are checked when resolved: this machine's own name, if it resolves to an
    address the policy refuses (loopback, or a private container address)."""
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        pytest.skip("this machine's name does not resolve")
    if name.lower().endswith("localhost") or address == "127.0.0.2" or ipaddress.ip_address(address).is_global:
        pytest.skip(f"this machine's name resolves to {address}, which the policy allows")
    message = failed_input(rig, job(f"http://{name}:{rig.internal.server_address[1]}/input.mp4"))
    # The class and the setting, never the address a name resolved to (a tenant could
    # map internal DNS with it); the operator's log has it.
    assert name in message and "COPRA_OUTBOUND_ALLOW" in message, message
    assert address not in message, message
    assert address in rig.copra.logs()


def test_a_playlist_pointing_at_an_internal_host_fetches_nothing(rig):
    for segment in (f"{rig.internal_url}/segment.ts", "file:///etc/passwd", "/etc/passwd"):
        message = failed_input(rig, job(f"{rig.allowed_url}/playlist/list.m3u8?segment={segment}"))
        assert "HLS playlist" in message and "media file" in message, message


def test_an_output_put_redirected_to_an_internal_host_fails_the_output(rig):
    target = f"{rig.internal_url}/upload.mp4"
    body = job(f"{rig.allowed_url}/media/small.mp4", outputs={"mp4:240p": {"url": f"{rig.allowed_url}/put-redirect?to={target}"}})
    created = rig.copra.post_job(body)
    assert created.status_code == 201, created.text
    final = rig.copra.wait_job(created.json()["id"], timeout=120)
    assert final["status"] == "job.failed", final
    assert final["outputs"][0]["status"] == "video.failed", final
    assert "307" in final["outputs"][0]["error"], final


# --- what is allowed still works ---

def test_the_allowed_host_serves_inputs_takes_puts_and_webhooks(rig):
    body = job(f"{rig.allowed_url}/media/small.mp4",
               outputs={"mp4:240p": {"url": f"{rig.allowed_url}/upload/out.mp4"}},
               notification={"type": "http", "url": f"{rig.allowed_url}/hook"})
    created = rig.copra.post_job(body)
    assert created.status_code == 201, created.text
    final = rig.copra.wait_job(created.json()["id"], timeout=120)
    assert final["status"] == "job.completed", final
    assert any(r[0] == "PUT" and r[1] == "/upload/out.mp4" and r[2] > 0 for r in rig.received), rig.received
    wait_until(lambda: any(r[0] == "POST" and r[1] == "/hook" and b"job.completed" in r[2] for r in rig.received),
               30, "the job.completed webhook on the allowed host")


# --- transfers bounded in time and size ---

@pytest.mark.parametrize("path", ["stall", "mute"])
def test_a_stalled_input_server_fails_the_input_within_the_idle_time(rig, path):
    created = rig.copra.post_job(job(f"{rig.allowed_url}/{path}/input.mp4"))
    assert created.status_code == 201, created.text
    started = time.monotonic()
    final = rig.copra.wait_job(created.json()["id"], timeout=30)
    took = time.monotonic() - started
    assert final["input"]["status"] == "input.failed", final
    message = final["input"]["error"]
    assert "idle" in message and "COPRA_LIMITS_TRANSFER_IDLE_SECS" in message, message
    assert took < IDLE_SECS + 10, f"the stalled input took {took:.1f} s to fail"
    # The worker is free: the next job on the same server completes.
    created = rig.copra.post_job(job(f"{rig.allowed_url}/media/small.mp4"))
    assert created.status_code == 201, created.text
    assert rig.copra.wait_job(created.json()["id"], timeout=120)["status"] == "job.completed"


@pytest.mark.parametrize("route", ["media", "unsized"])
def test_an_input_above_the_size_limit_fails_naming_the_limit(rig, route):
    message = failed_input(rig, job(f"{rig.allowed_url}/{route}/big.mp4"))
    assert "too large" in message and "COPRA_LIMITS_MAX_INPUT_BYTES" in message and str(rig.max_input) in message, message
