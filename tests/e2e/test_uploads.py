"""Direct uploads (tus 1.0 at /v2/uploads) with clients nobody here wrote: tuspy (PyPI)
and tus-js-client (npm, in Node). They upload, resume after the connection is cut and
after the server is killed mid-upload; the stored bytes are the file's. The protocol's
refusals (checksum 460, too large 413, wrong offset 409, other version 412), termination,
expiry, tenants, and a job whose input is an upload."""

import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from tusclient import client as tus_client

from conftest import COPRA_BIN, KEY_A, KEY_B, ROOT, Copra, ffprobe, free_port, make_video, wait_until

TUS = {"Tus-Resumable": "1.0.0"}
NODE_CLIENT = ROOT / "tests" / "services" / "tus-upload.cjs"


def auth(key=KEY_A):
    return {"Authorization": f"Bearer {key}", **TUS}


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored(server: Copra, upload_url: str) -> Path:
    """The bytes the server keeps for an upload (below its data directory)."""
    upload_id = upload_url.rstrip("/").rsplit("/", 1)[1]
    found = list((server.data_dir / "uploads").glob(f"*/{upload_id}"))
    assert len(found) == 1, found
    return found[0]


class Proxy:
    """A TCP relay in front of the server: it counts the bytes clients send, can cut
    the first connection that passes `cut_after` bytes, and can slow clients to `rate`
    bytes a second."""

    def __init__(self, target_port: int, cut_after=None, rate=None):
        self.target_port = target_port
        self.cut_after = cut_after
        self.rate = rate
        self.sent = 0
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.relay, args=(client,), daemon=True).start()

    def relay(self, client):
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        threading.Thread(target=self.pump_down, args=(upstream, client), daemon=True).start()
        try:
            while True:
                data = client.recv(16384)
                if not data:
                    break
                with self.lock:
                    self.sent += len(data)
                    cut = self.cut_after is not None and self.cuts == 0 and self.sent > self.cut_after
                    if cut:
                        self.cuts += 1
                if cut:
                    break
                upstream.sendall(data)
                if self.rate:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    @staticmethod
    def pump_down(upstream, client):
        try:
            while data := upstream.recv(16384):
                client.sendall(data)
        except OSError:
            pass

    def close(self):
        self.listener.close()


def behind_relay(tmp_path, **relay):
    """A server reached through a `Proxy` (whose URL is its public URL, so tus's
    `Location` leads back through the relay), started."""
    port = free_port()
    proxy = Proxy(port, **relay)
    server = Copra(tmp_path / "data", {"COPRA_LISTEN": f"127.0.0.1:{port}", "COPRA_PUBLIC_URL": proxy.url})
    server.port, server.url = port, f"http://127.0.0.1:{port}"
    return server.start(), proxy


@pytest.fixture(scope="module")
def uploads_copra(tmp_path_factory):
    server = Copra(tmp_path_factory.mktemp("uploads") / "data", {"COPRA_LIMITS_MAX_UPLOAD_BYTES": str(64 << 20)}).start()
    yield server
    server.stop()


def test_options_advertise_the_extensions(uploads_copra):
    r = requests.options(f"{uploads_copra.url}/v2/uploads", timeout=10)
    assert r.status_code == 204, r.text
    assert r.headers["Tus-Version"] == "1.0.0" and r.headers["Tus-Resumable"] == "1.0.0"
    assert set(r.headers["Tus-Extension"].split(",")) >= {"creation", "creation-with-upload", "termination", "expiration", "checksum"}
    assert "sha256" in r.headers["Tus-Checksum-Algorithm"].split(",")
    assert r.headers["Tus-Max-Size"] == str(64 << 20)


def test_tuspy_uploads_and_resumes_after_the_connection_is_cut(tmp_path):
    server, proxy = behind_relay(tmp_path, cut_after=1_500_000)
    try:
        path = random_file(tmp_path / "clip.bin", 4 << 20)
        client = tus_client.TusClient(f"{proxy.url}/v2/uploads", headers={"Authorization": f"Bearer {KEY_A}"})
        uploader = client.uploader(file_path=str(path), chunk_size=1 << 20, retries=5, retry_delay=0.2,
                                   metadata={"filename": "clip.bin"}, upload_checksum=True)
        uploader.upload()
        assert proxy.cuts == 1, "the connection was cut once"
        assert sha256(stored(server, uploader.url)) == sha256(path)
        # Resumed from the offset, not started over: at most the cut chunk was sent twice.
        assert proxy.sent < (4 << 20) + (1 << 20) + 100_000, proxy.sent
        view = requests.get(uploader.url.replace(proxy.url, server.url), headers=auth(), timeout=10).json()
        assert view["finished"] and view["offset"] == view["length"] == 4 << 20 and view["filename"] == "clip.bin"
    finally:
        server.stop()
        proxy.close()


def test_an_acknowledged_offset_survives_a_killed_server(tmp_path):
    server = Copra(tmp_path / "data").start()
    try:
        path = random_file(tmp_path / "clip.bin", 3 << 20)
        client = tus_client.TusClient(f"{server.url}/v2/uploads", headers={"Authorization": f"Bearer {KEY_A}"})
        uploader = client.uploader(file_path=str(path), chunk_size=1 << 20)
        uploader.upload_chunk()
        uploader.upload_chunk()
        assert uploader.offset == 2 << 20
        server.stop(signal.SIGKILL)
        server.start()
        resumed = tus_client.TusClient(f"{server.url}/v2/uploads", headers={"Authorization": f"Bearer {KEY_A}"})
        again = resumed.uploader(file_path=str(path), url=uploader.url, chunk_size=1 << 20)
        assert again.offset == 2 << 20, "the client resumes from the acknowledged offset"
        again.upload()
        assert sha256(stored(server, again.url)) == sha256(path)
    finally:
        server.stop()


def test_tus_js_client_resumes_across_a_server_restart(tmp_path):
    server, proxy = behind_relay(tmp_path, rate=2 << 20)
    size = 6 << 20
    path = random_file(tmp_path / "clip.bin", size)
    env = dict(os.environ, ENDPOINT=f"{proxy.url}/v2/uploads", KEY=KEY_A, FILE=str(path), CHUNK=str(512 << 10))
    node = subprocess.Popen(["node", str(NODE_CLIENT)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        before, after, url = [], [], None
        restarted = False
        for line in node.stdout:
            kind, _, value = line.strip().partition(" ")
            if kind == "chunk":
                (after if restarted else before).append(int(value))
                if not restarted and len(before) == 2:
                    server.stop(signal.SIGKILL)
                    server.start()
                    restarted = True
            elif kind in ("done", "error"):
                url = value if kind == "done" else pytest.fail(f"tus-js-client failed: {value}")
                break
        assert node.wait(60) == 0
        assert restarted and before and after, (before, after)
        assert after[0] > before[-1], "the upload went on from where it was, not from zero"
        assert sha256(stored(server, url)) == sha256(path)
        assert proxy.sent < size * 1.5, proxy.sent
    finally:
        node.kill()
        server.stop()
        proxy.close()


def test_tus_js_client_resumes_after_the_connection_is_cut(tmp_path):
    server, proxy = behind_relay(tmp_path, cut_after=2_500_000)
    size = 5 << 20
    path = random_file(tmp_path / "clip.bin", size)
    # One request for the whole file (tus-js-client's default): the cut breaks it midway.
    env = dict(os.environ, ENDPOINT=f"{proxy.url}/v2/uploads", KEY=KEY_A, FILE=str(path))
    try:
        done = subprocess.run(["node", str(NODE_CLIENT)], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        url = done.stdout.strip().splitlines()[-1].split(" ", 1)[1]
        assert proxy.cuts == 1
        assert sha256(stored(server, url)) == sha256(path)
        # The bytes before the cut were kept: the retry sent only the rest.
        assert proxy.sent < size + 1_000_000, proxy.sent
    finally:
        server.stop()
        proxy.close()


def create(server, length, key=KEY_A, **headers):
    return requests.post(f"{server.url}/v2/uploads", headers={**auth(key), "Upload-Length": str(length), **headers}, timeout=10)


def patch(url, body, offset, key=KEY_A, **headers):
    return requests.patch(url, data=body, timeout=10,
                          headers={**auth(key), "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream", **headers})


def checksum(algorithm, body):
    import base64
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, body).digest()).decode()}"


def test_the_protocols_refusals(uploads_copra):
    server = uploads_copra
    r = requests.post(f"{server.url}/v2/uploads", headers={"Authorization": f"Bearer {KEY_A}", "Upload-Length": "5"}, timeout=10)
    assert r.status_code == 412 and r.headers["Tus-Version"] == "1.0.0", r.text
    r = create(server, (64 << 20) + 1)
    assert r.status_code == 413 and r.json()["error_code"] == "upload_too_large" and r.json()["status"] == "error", r.text
    assert create(server, 10, key="not-a-key").status_code == 401
    assert create(server, 10, **{"Upload-Metadata": "filename not base64!"}).status_code == 400

    r = create(server, 10, **{"Upload-Metadata": "filename Y2xpcC5tcDQ="})
    assert r.status_code == 201 and "Upload-Expires" in r.headers, r.text
    url = r.headers["Location"]
    assert url.startswith(f"{server.url}/v2/uploads/") and len(url.rsplit("/", 1)[1]) >= 22

    r = patch(url, b"hello", 0, **{"Upload-Checksum": checksum("sha256", b"other")})
    assert r.status_code == 460 and r.json()["error_code"] == "upload_checksum_mismatch", r.text
    head = requests.head(url, headers=auth(), timeout=10)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "0" and head.headers["Upload-Length"] == "10"
    assert head.headers["Upload-Metadata"] == "filename Y2xpcC5tcDQ=" and head.headers["Cache-Control"] == "no-store"

    r = patch(url, b"hello", 0, **{"Upload-Checksum": checksum("sha256", b"hello")})
    assert r.status_code == 204 and r.headers["Upload-Offset"] == "5", r.text
    r = patch(url, b"world", 3)
    assert r.status_code == 409 and r.json()["error_code"] == "upload_offset_mismatch", r.text
    r = patch(url, b"world!", 5)
    assert r.status_code == 413, r.text
    r = requests.patch(url, data=b"world", headers={**auth(), "Upload-Offset": "5", "Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 415, r.text
    assert requests.head(url, headers=auth(), timeout=10).headers["Upload-Offset"] == "5"

    # Creation with upload: the first bytes come with the POST.
    r = requests.post(
        f"{server.url}/v2/uploads", data=b"abcd", timeout=10,
        headers={**auth(), "Upload-Length": "4", "Content-Type": "application/offset+octet-stream"})
    assert r.status_code == 201 and r.headers["Upload-Offset"] == "4", r.text
    assert stored(server, r.headers["Location"]).read_bytes() == b"abcd"

    # Termination.
    assert requests.delete(url, headers=auth(), timeout=10).status_code == 204
    assert requests.head(url, headers=auth(), timeout=10).status_code == 404
    assert not list((server.data_dir / "uploads").glob(f"*/{url.rsplit('/', 1)[1]}*"))


def test_another_key_cannot_see_append_delete_or_use_an_upload(uploads_copra, media_server):
    server = uploads_copra
    url = create(server, 5).headers["Location"]
    upload_id = url.rsplit("/", 1)[1]
    assert requests.head(url, headers=auth(KEY_B), timeout=10).status_code == 404
    assert requests.get(url, headers=auth(KEY_B), timeout=10).status_code == 404
    assert patch(url, b"12345", 0, key=KEY_B).status_code == 404
    assert requests.delete(url, headers=auth(KEY_B), timeout=10).status_code == 404
    assert requests.head(url, headers=auth(), timeout=10).headers["Upload-Offset"] == "0"

    job = {"input": {"upload": upload_id}, "storage": {"service": "local"}, "outputs": {"mp4:240p": {"path": "/o.mp4"}}}
    # Unfinished: refused, naming it.
    r = server.post_job(job)
    assert r.status_code == 400 and upload_id in r.json()["message"] and "not finished" in r.json()["message"], r.text
    assert patch(url, b"12345", 0).status_code == 204
    for input_ in ({"upload": upload_id}, {"url": url}):
        r = server.post_job({**job, "input": input_}, key=KEY_B)
        assert r.status_code == 400 and upload_id in r.json()["message"], r.text
        assert r.json()["error_code"] == "input_not_valid"


def test_a_job_takes_an_upload_as_its_input(uploads_copra, tmp_path):
    server = uploads_copra
    video = tmp_path / "in.mp4"
    make_video(video, size="640x360", duration=3)
    client = tus_client.TusClient(f"{server.url}/v2/uploads", headers={"Authorization": f"Bearer {KEY_A}"})
    uploader = client.uploader(file_path=str(video), chunk_size=256 << 10, metadata={"filename": "in.mp4"})
    uploader.upload()
    upload_id = uploader.url.rsplit("/", 1)[1]

    # A dry run plans from the upload.
    r = requests.post(f"{server.url}/v2/jobs", params={"dry_run": "true"}, auth=(KEY_A, ""), timeout=60,
                      json={"input": {"upload": upload_id}, "storage": {"service": "local"}, "outputs": {"mp4:240p": {"path": "/dry.mp4"}}})
    assert r.status_code == 200 and r.json()["input"]["status"] == "input.transferred", r.text
    video = [s for s in r.json()["input"]["metadata"]["streams"] if s["codec_type"] == "video"][0]
    assert video["width"] == 640, video

    for n, input_ in enumerate(({"upload": upload_id}, {"url": uploader.url})):
        r = server.post_job({"input": input_, "storage": {"service": "local"}, "outputs": {"mp4:240p": {"path": f"/up{n}.mp4"}}})
        assert r.status_code == 201, r.text
        job = server.wait_job(r.json()["id"])
        assert job["status"] == "job.completed", job
        out_url = job["outputs"][0]["urls"][0] if job["outputs"][0].get("urls") else job["outputs"][0]["url"]
        out = tmp_path / f"out{n}.mp4"
        out.write_bytes(requests.get(out_url, auth=(KEY_A, ""), timeout=30).content)
        stream = ffprobe(out)["streams"][0]
        assert stream["height"] == 240, stream
    # The upload is held for its jobs (and then follows the expiry).
    assert requests.head(uploader.url, headers=auth(), timeout=10).status_code == 200


def test_unfinished_uploads_expire_and_are_swept(tmp_path):
    server = Copra(tmp_path / "data", {"COPRA_LIMITS_UPLOAD_EXPIRY_SECS": "2"}).start()
    try:
        url = create(server, 100).headers["Location"]
        assert patch(url, b"x" * 10, 0).status_code == 204
        files = lambda: list((server.data_dir / "uploads").glob(f"*/{url.rsplit('/', 1)[1]}*"))
        assert len(files()) == 2
        wait_until(lambda: requests.head(url, headers=auth(), timeout=10).status_code == 404, 20, "the upload to expire")
        wait_until(lambda: not files(), 20, "the sweeper to delete the upload's files")
        assert "upload expired" in server.logs()
    finally:
        server.stop()


def test_copra_submit_a_file_interrupted_resumes_and_completes(tmp_path):
    server, proxy = behind_relay(tmp_path, rate=4 << 20)
    video = tmp_path / "My Clip.mp4"
    # Noise at a fine quantizer, so the file is large enough (about 12 MiB, two of the
    # command's chunks) to interrupt midway.
    make_video(video, size="640x360", duration=4, extra=["-vf", "noise=alls=20:allf=t", "-qp", "20"])
    size = video.stat().st_size
    assert size > 8 << 20, size
    env = dict(os.environ, COPRA_SERVER=proxy.url, COPRA_API_KEY=KEY_A, XDG_CACHE_HOME=str(tmp_path / "cache"))
    command = [str(COPRA_BIN), "submit", str(video), "-o", "mp4:240p", "--download", str(tmp_path / "out")]
    try:
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: proxy.sent > 1 << 20, 30, "the upload to be under way")
        first.send_signal(signal.SIGINT)
        _, said = first.communicate(timeout=10)
        assert first.returncode == 130 and "run the same command again" in said, (first.returncode, said)
        partial = proxy.sent
        assert partial < size, "interrupted before the whole file was sent"

        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr
        assert "resuming the upload" in second.stderr, second.stderr
        resumed_at = int(second.stderr.split("resuming the upload of ")[1].split(" at ")[1].split(" ")[0])
        assert resumed_at > 0, second.stderr
        # What was sent before the interruption was not sent again.
        assert proxy.sent < size * 1.5, (proxy.sent, size)
        key, status, url = second.stdout.strip().splitlines()[-1].split("\t")
        assert key == "mp4:240p" and url.endswith("/mp4_240p.mp4"), second.stdout
        out = tmp_path / "out" / "mp4_240p.mp4"
        stream = [s for s in ffprobe(out)["streams"] if s["codec_type"] == "video"][0]
        assert stream["height"] == 240, stream
        # The finished upload is forgotten: the next run of the same file starts a new one.
        assert not any((tmp_path / "cache" / "copra" / "uploads").iterdir())
    finally:
        server.stop()
        proxy.close()


def test_one_key_cannot_hoard_uploads(tmp_path):
    server = Copra(tmp_path / "data", {"COPRA_LIMITS_UPLOAD_QUOTA_BYTES": "100", "COPRA_LIMITS_MAX_UPLOADS_PER_KEY": "2"}).start()
    try:
        first = create(server, 60)
        assert first.status_code == 201, first.text
        r = create(server, 60)
        assert r.status_code == 413 and r.json()["error_code"] == "upload_quota_exceeded", r.text
        assert create(server, 40).status_code == 201
        r = create(server, 1)
        assert r.status_code == 429 and r.json()["error_code"] == "too_many_uploads", r.text
        # Another key is not held back by this one's uploads.
        assert create(server, 60, key=KEY_B).status_code == 201
        # Deleting one makes room.
        assert requests.delete(first.headers["Location"], headers=auth(), timeout=10).status_code == 204
        assert create(server, 60).status_code == 201
    finally:
        server.stop()


class ApiOnly(Copra):
    """`copra serve --no-worker`: jobs wait in the queue."""

    def command(self):
        return [*super().command(), "--no-worker"]


def test_a_jobs_input_upload_is_kept_until_the_job_ends(tmp_path):
    env = {"COPRA_LIMITS_UPLOAD_EXPIRY_SECS": "2"}
    video = tmp_path / "in.mp4"
    make_video(video, size="320x240", duration=2)
    server = ApiOnly(tmp_path / "data", env).start()
    try:
        client = tus_client.TusClient(f"{server.url}/v2/uploads", headers={"Authorization": f"Bearer {KEY_A}"})
        held = client.uploader(file_path=str(video))
        held.upload()
        loose = client.uploader(file_path=str(video))
        loose.upload()
        r = server.post_job({"input": {"url": held.url}, "storage": {"service": "local"}, "outputs": {"mp4:240p": {"path": "/h.mp4"}}})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        # The other upload, as old, is swept; the one the waiting job holds is not.
        wait_until(lambda: requests.head(loose.url, headers=auth(), timeout=10).status_code == 404
                   and not list((server.data_dir / "uploads").glob(f"*/{loose.url.rsplit('/', 1)[1]}")), 30, "the loose upload to be swept")
        assert requests.head(held.url, headers=auth(), timeout=10).status_code == 200
        assert stored(server, held.url).stat().st_size == video.stat().st_size
    finally:
        server.stop()
    # A worker runs the job from the kept upload; once it has ended, the upload expires.
    server = Copra(tmp_path / "data", env).start()
    try:
        assert server.wait_job(job_id)["status"] == "job.completed"
        wait_until(lambda: not list((server.data_dir / "uploads").glob(f"*/{held.url.rsplit('/', 1)[1]}*")), 30,
                   "the held upload to be swept after its job")
    finally:
        server.stop()
