"""A third-party storage provider that uploads by itself over wasi:http (the `custom`
target): the host streams each finished file through the plugin, which PUTs it to a
real HTTP server. The plugin may reach only the host the operator granted."""

import socket
import threading
from urllib.parse import urlsplit
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import ROOT, copra_with_plugins, count_frames, ffprobe

EXAMPLES = ROOT / "tests" / "plugins" / "dist"


class PutHandler(BaseHTTPRequestHandler):
    """A minimal WebDAV-style server: PUT stores the body under the path."""

    def __init__(self, root: Path, *args, **kwargs):
        self.root = root
        super().__init__(*args, **kwargs)

    def do_PUT(self):
        length = int(self.headers["Content-Length"])
        target = self.root / urlsplit(self.path).path.lstrip("/")
        if ".." in target.parts:
            self.send_response(403)
            self.end_headers()
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            remaining = length
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                out.write(chunk)
                remaining -= len(chunk)
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def put_server(tmp_path):
    root = tmp_path / "dav"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(PutHandler, root))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, server.server_address[1]
    server.shutdown()


def start(tmp_path, port_granted):
    config = f'[plugins.http-put-storage]\nallowed_hosts = ["127.0.0.1:{port_granted}"]\n'
    return copra_with_plugins(tmp_path, ["format-video", EXAMPLES / "http-put-storage.wasm"], config)


def job(media_server, port):
    return {"input": {"url": f"{media_server}/input.mp4"},
            "storage": {"service": "http-put", "url": f"http://127.0.0.1:{port}/videos", "path": "/2026"},
            "outputs": {"mp4:360p": {"path": "clip/360p.mp4"}}}


def test_plugin_uploads_outputs_with_http_put(tmp_path, media_server, put_server):
    root, port = put_server
    server = start(tmp_path, port)
    try:
        created = server.post_job(job(media_server, port))
        assert created.status_code == 201, created.text
        final = server.wait_job(created.json()["id"])
        assert final["status"] == "job.completed", final
        assert final["outputs"][0]["url"] == f"http://127.0.0.1:{port}/videos/2026/clip/360p.mp4"
        stored = root / "videos" / "2026" / "clip" / "360p.mp4"
        video = next(s for s in ffprobe(stored)["streams"] if s["codec_type"] == "video")
        assert (video["width"], video["height"]) == (640, 360)
        assert count_frames(stored) == 125
    finally:
        server.stop()


def test_upload_to_a_host_not_granted_fails_the_output(tmp_path, media_server, put_server):
    root, port = put_server
    server = start(tmp_path, port + 1 if port < 65535 else port - 1)
    try:
        created = server.post_job(job(media_server, port))
        assert created.status_code == 201, created.text
        final = server.wait_job(created.json()["id"])
        assert final["status"] == "job.failed"
        output = final["outputs"][0]
        assert output["status"] == "video.failed"
        assert "HttpRequestDenied" in output["error"], output["error"]
        assert not any(root.rglob("*.mp4")), "nothing reached the server"
    finally:
        server.stop()


@pytest.fixture()
def mute_server():
    """Accepts connections and reads what it is sent, but never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    received = []

    def drain(conn):
        with conn:
            while chunk := conn.recv(1 << 16):
                received.append(len(chunk))

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], received
    listener.close()


def test_an_upload_to_a_mute_server_hits_the_plugins_deadline(tmp_path, media_server, put_server, mute_server):
    """A plugin waiting on the network is bounded by its wall-clock deadline, not only
    its CPU budget: the output fails with `plugin_timeout` and the server serves on."""
    mute_port, received = mute_server
    root, port = put_server
    config = (f'[plugins.http-put-storage]\nallowed_hosts = ["127.0.0.1:{mute_port}", "127.0.0.1:{port}"]\n'
              'deadline_ms = 1500\n')
    server = copra_with_plugins(tmp_path, ["format-video", EXAMPLES / "http-put-storage.wasm"], config)
    try:
        created = server.post_job(job(media_server, mute_port))
        assert created.status_code == 201, created.text
        final = server.wait_job(created.json()["id"], timeout=60)
        assert final["status"] == "job.failed", final
        error = final["outputs"][0]["error"]
        assert "plugin_timeout" in error and "deadline of 1500 ms" in error, error
        assert sum(received) > 0, "the upload reached the mute server and waited for its answer"

        again = server.post_job(job(media_server, port))
        assert again.status_code == 201, again.text
        assert server.wait_job(again.json()["id"])["status"] == "job.completed"
    finally:
        server.stop()


def test_output_url_is_uploaded_with_http_put(copra, media_server, put_server):
    """An output's `url` (e.g. a presigned URL) receives the file directly by HTTP PUT."""
    root, port = put_server
    target = f"http://127.0.0.1:{port}/direct/out.mp4?signature=abc"
    created = copra.post_job({"input": {"url": f"{media_server}/input.mp4"}, "storage": {"service": "local"},
                              "outputs": {"mp4:240p": {"url": target}}})
    assert created.status_code == 201, created.text
    final = copra.wait_job(created.json()["id"])
    assert final["status"] == "job.completed", final
    # Reported where the file is, without the signature that allowed the upload.
    assert final["outputs"][0]["url"] == target.split("?")[0]
    stored = root / "direct" / "out.mp4"
    video = next(s for s in ffprobe(stored)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (426, 240)
