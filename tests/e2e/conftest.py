"""Real parts for black-box tests: the `copra` binary, an S3-compatible server (moto),
an HTTP server with generated input media, a webhook receiver, and ffprobe.

Nothing is mocked: every test talks to these over loopback sockets."""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from functools import partial
from pathlib import Path

import boto3
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
COPRA_BIN = Path(os.environ.get("COPRA_BIN", ROOT / "target" / "debug" / "copra"))
PLUGIN_DIR = Path(os.environ.get("COPRA_TEST_PLUGIN_DIR", ROOT / "plugins" / "dist"))
KEY_A = "key-a-" + uuid.uuid4().hex[:8]
KEY_B = "key-b-" + uuid.uuid4().hex[:8]
ADMIN_KEY = "admin-" + uuid.uuid4().hex[:8]
S3_ACCESS = "testing-access"
S3_SECRET = "testing-secret"
# The PostgreSQL of scripts/test-services.sh (trust auth); `test` is its database.
PG_SERVER = "postgres://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_taken(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port` now."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def answers(url: str, ok=lambda status: status == 200) -> bool:
    """Whether a GET of `url` gets a response now whose status is `ok` (200 by default):
    a readiness probe for `wait_until`."""
    try:
        return ok(requests.get(url, timeout=2).status_code)
    except requests.RequestException:
        return False


def psql(sql: str, db: str = "test") -> str:
    """Run `sql` on the PostgreSQL database `db`; its rows, one a line, fields split by `|`."""
    return subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-tA", "-F", "|", f"{PG_SERVER}/{db}", "-c", sql],
                          check=True, capture_output=True, text=True).stdout


@contextmanager
def pg_database(prefix: str = "copra_"):
    """A PostgreSQL database of its own (`<prefix><random>`), dropped at the end whatever
    still uses it."""
    name = prefix + uuid.uuid4().hex[:10]
    psql(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture()
def database():
    """A PostgreSQL database for the test alone: its tables and NOTIFY channels are its own."""
    with pg_database("copra_t_") as name:
        yield name


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns a truthy value or `timeout` passes."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def ffprobe(path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_format", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def count_frames(path) -> int:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets",
         "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    return int(out.strip())


def luma_means(path, width: int, height: int) -> list:
    """The mean luma of every decoded frame of `path` (a `width`x`height` video)."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"],
                         check=True, capture_output=True).stdout
    frame = width * height * 3 // 2
    assert raw and len(raw) % frame == 0, len(raw)
    return [sum(raw[i:i + width * height]) / (width * height) for i in range(0, len(raw), frame)]


def frame_of(mean: float, means: list) -> int:
    """Which input frame (by its mean luma among `means`) a picture of `mean` is."""
    best = min(range(len(means)), key=lambda i: abs(means[i] - mean))
    assert abs(means[best] - mean) < 1.2, (mean, means[best])
    return best


def run_and_download(server, s3, job: dict, tmp: Path, timeout=180):
    """Submit `job` (its storage the test S3 bucket), wait for it to end, and download
    every output that has a URL into `tmp`; returns (final job, files by output key)."""
    created = server.post_job(job)
    assert created.status_code == 201, created.text
    final = server.wait_job(created.json()["id"], timeout=timeout)
    files = {}
    for o in final["outputs"]:
        if o.get("url"):
            key = o["url"].split(f"/{s3['bucket']}/", 1)[1]
            files[o["key"]] = tmp / f"{uuid.uuid4().hex[:6]}-{Path(key).name}"
            s3["client"].download_file(s3["bucket"], key, str(files[o["key"]]))
    return final, files


def make_video(path: Path, size="1280x720", rate=25, duration=5, extra=()):
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={duration}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={duration}",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
         *extra, str(path)],
        check=True,
    )


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("media")
    make_video(d / "input.mp4")
    make_video(d / "long.mp4", size="1280x720", duration=20)
    (d / "not-media.mp4").write_bytes(os.urandom(64 * 1024))
    truncated = (d / "input.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(truncated[: len(truncated) // 3])
    return d


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def media_server(media_dir):
    """A real HTTP server serving the generated inputs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(media_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class Webhooks:
    """Receives webhook POSTs and keeps their JSON bodies."""

    def __init__(self):
        self.bodies = []
        self.lock = threading.Lock()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_raw": raw.decode(errors="replace")}
                with hooks.lock:
                    hooks.bodies.append({"path": self.path, "body": body, "raw": raw,
                                         "headers": {k.lower(): v for k, v in self.headers.items()},
                                         "content_type": self.headers.get("Content-Type")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def received(self, path: str, event: str = None):
        with self.lock:
            return [h for h in self.bodies if h["path"] == path and (event is None or h["body"].get("event") == event)]

    def wait_for(self, path: str, event: str, timeout: float = 30):
        return self.wait_for_raw(path, event, timeout)["body"]

    def wait_for_raw(self, path: str, event: str, timeout: float = 30):
        """The first hook for `event` at `path`, with its raw body and headers."""
        return wait_until(lambda: self.received(path, event), timeout, f"webhook {event} at {path}")[0]

    def wait_for_any(self, path: str, timeout: float = 30):
        return wait_until(lambda: self.received(path), timeout, f"a webhook at {path}")[0]["body"]


@pytest.fixture(scope="session")
def webhooks():
    hooks = Webhooks()
    yield hooks
    hooks.server.shutdown()


@pytest.fixture(scope="session")
def s3():
    """A real S3-compatible server (moto) on a loopback port, with a bucket."""
    port = free_port()
    exe = shutil.which("moto_server")
    assert exe, "moto_server is not installed (run scripts/setup.sh)"
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"

    wait_until(lambda: answers(endpoint, ok=lambda status: status < 500), 30, "moto S3 server")
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_ACCESS,
                          aws_secret_access_key=S3_SECRET, region_name="us-east-1")
    client.create_bucket(Bucket="copra-out")
    yield {"endpoint": endpoint, "client": client, "bucket": "copra-out"}
    proc.terminate()
    proc.wait(10)


class Copra:
    """The real `copra serve` process, restartable on the same data directory."""

    def __init__(self, data_dir: Path, env_extra=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ,
                        COPRA_LISTEN=f"127.0.0.1:{self.port}",
                        COPRA_DATA_DIR=str(data_dir),
                        COPRA_PLUGIN_DIR=str(PLUGIN_DIR),
                        COPRA_API_KEYS=f"{KEY_A},{KEY_B}",
                        COPRA_ADMIN_KEY=ADMIN_KEY,
                        # The rig's servers (media, webhooks, S3) are on loopback, which
                        # the outbound policy refuses by default; tests may override.
                        COPRA_OUTBOUND_ALLOW="127.0.0.0/8,::1/128",
                        # A stopped test server waits this long for its running jobs.
                        COPRA_WORKER_SHUTDOWN_GRACE_SECS="5",
                        RUST_LOG="info,copra=debug")
        self.env.update(env_extra or {})
        self.proc = None
        self.log_path = data_dir / "copra.log"
        # Arguments before `serve` (e.g. `--config FILE`) and the working directory.
        self.args = []
        self.cwd = None

    def command(self) -> list:
        """What the process runs."""
        return [str(COPRA_BIN), *self.args, "serve"]

    def ready(self) -> bool:
        """Whether the process serves: its /health answers."""
        return answers(f"{self.url}/health")

    def start(self, timeout=60):
        assert COPRA_BIN.exists(), f"{COPRA_BIN} is not built"
        # A restart appends to the log; `new_logs` is what this run wrote.
        self.log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.log = open(self.log_path, "ab")
        command = self.command()
        self.proc = subprocess.Popen(command, env=self.env, cwd=self.cwd, stdout=self.log, stderr=subprocess.STDOUT)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"copra exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            return self.ready()

        wait_until(up, timeout, f"copra {' '.join(command[-2:])} ready")
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        if self.proc:
            self.log.close()

    # --- API helpers ---
    def post_job(self, job, key=KEY_A):
        return requests.post(f"{self.url}/v2/jobs", auth=(key, ""), json=job, timeout=30)

    def get_job(self, job_id, key=KEY_A):
        return requests.get(f"{self.url}/v2/jobs/{job_id}", auth=(key, ""), timeout=10)

    def wait_job(self, job_id, timeout=120, key=KEY_A):
        def done():
            job = self.get_job(job_id, key).json()
            return job if job["status"] in ("job.completed", "job.failed") else None
        return wait_until(done, timeout, f"job {job_id} to finish", interval=0.2)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def new_logs(self) -> str:
        """The log of the last start only."""
        with open(self.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode(errors="replace")

    # --- admin API ---
    def admin(self, method, path, **kwargs):
        """A call to `/admin<path>` with the admin key."""
        return requests.request(method, f"{self.url}/admin{path}", headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                                timeout=60, **kwargs)

    def plugin_listing(self) -> dict:
        """`GET /admin/plugins`: `plugins` (each with its `name`) and `load_errors`."""
        r = self.admin("GET", "/plugins")
        assert r.status_code == 200, r.text
        return r.json()

    def plugins(self) -> dict:
        """The loaded plugins by name."""
        return {p["name"]: p for p in self.plugin_listing()["plugins"]}


def copra_with_plugins(tmp_path, plugins, config="", timeout=60):
    """A server whose plugin directory holds exactly `plugins` (paths of .wasm files,
    or names of first-party plugins), with `config` as its TOML config file."""
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    for plugin in plugins:
        source = PLUGIN_DIR / f"{plugin}.wasm" if isinstance(plugin, str) else plugin
        shutil.copy(source, plugin_dir)
    config_file = tmp_path / "copra.toml"
    config_file.write_text(config)
    server = Copra(tmp_path / "data", {"COPRA_PLUGIN_DIR": str(plugin_dir), "COPRA_CONFIG": str(config_file)})
    server.plugin_dir = plugin_dir
    return server.start(timeout=timeout)


@pytest.fixture()
def copra(tmp_path):
    server = Copra(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_copra(tmp_path_factory):
    server = Copra(tmp_path_factory.mktemp("copra") / "data").start()
    yield server
    server.stop()


def s3_storage(s3, path="/out"):
    return {
        "service": "s3",
        "region": "us-east-1",
        "bucket": s3["bucket"],
        "path": path,
        "endpoint": s3["endpoint"],
        "force_path_style": True,
        "credentials": {"access_key_id": S3_ACCESS, "secret_access_key": S3_SECRET},
    }
