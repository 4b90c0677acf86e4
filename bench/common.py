"""What every benchmark needs: generated inputs, a real `copra serve` (release build)
with an HTTP server for its inputs and a webhook receiver, Copra jobs timed as a client
sees them, and the `ffmpeg` command timed on the same machine in the same run.

Benchmarks interleave Copra and ffmpeg runs so that drift in machine load hits both, and
report medians.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
COPRA = ROOT / "target" / "release" / "copra"
KEY = "bench-key"

# What format-video plans for `mp4:<size>` at quality 3 (its default), for ffmpeg.
X264_DEFAULT = ["-c:v", "libx264", "-crf", "23", "-preset", "medium", "-pix_fmt", "yuv420p"]
AAC_DEFAULT = ["-c:a", "aac", "-b:a", "128k", "-ar", "44100", "-ac", "2"]
MP4 = ["-movflags", "+faststart"]


def workdir():
    return Path(tempfile.mkdtemp(prefix="copra-bench-"))


def generate(path, width, height, fps, seconds):
    """A testsrc2 + sine input, h264/aac, like a camera file."""
    if path.exists():
        return path
    print(f"generating {width}x{height} {fps}fps {seconds}s input ...", file=sys.stderr)
    subprocess.run(["ffmpeg", "-v", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                    str(path)], check=True)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Webhooks(BaseHTTPRequestHandler):
    """Records the final event of each job (`job.completed` / `job.failed`)."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.send_response(200)
        self.end_headers()
        if body.get("event") in ("job.completed", "job.failed"):
            with self.server.lock:
                self.server.finished[body.get("job_id")] = (time.monotonic(), body["event"], body)
                self.server.lock.notify_all()

    def log_message(self, *args):
        pass


class Copra:
    """A running `copra serve` and the HTTP server that serves its inputs."""

    def __init__(self, work):
        self.work = work
        self.files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(work)))
        threading.Thread(target=self.files.serve_forever, daemon=True).start()
        self.hooks = ThreadingHTTPServer(("127.0.0.1", 0), _Webhooks)
        self.hooks.lock, self.hooks.finished = threading.Condition(), {}
        threading.Thread(target=self.hooks.serve_forever, daemon=True).start()
        port = free_port()
        env = dict(os.environ, COPRA_LISTEN=f"127.0.0.1:{port}", COPRA_DATA_DIR=str(work / "data"),
                   COPRA_PLUGIN_DIR=str(ROOT / "plugins" / "dist"), COPRA_API_KEYS=KEY, RUST_LOG="warn",
                   # The bench's media server and S3 are on loopback, which the
                   # outbound policy refuses unless allowed.
                   COPRA_OUTBOUND_ALLOW="127.0.0.0/8,::1/128")
        self.process = subprocess.Popen([str(COPRA), "serve"], env=env)
        self.sampled_peak = 0
        threading.Thread(target=self._sample, daemon=True).start()
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.base}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                sys.exit("copra did not start")
            time.sleep(0.05)

    def url(self, path):
        """The URL at which the input server serves `path` (inside the work dir)."""
        return f"http://127.0.0.1:{self.files.server_address[1]}/{Path(path).relative_to(self.work)}"

    def run(self, outputs, source, prefix, timeout=3600, settings=None):
        """Submit a job to local storage and wait for its webhook, as a Coconut client
        does; returns seconds from POST to the `job.completed` webhook (input fetch,
        probe, plugins, encode, uploads, status writes, delivery). No status polling:
        its load would be counted against the job."""
        hook = f"http://127.0.0.1:{self.hooks.server_address[1]}/hook"
        job = {"input": {"url": self.url(source)}, "storage": {"service": "local", "path": f"/{prefix}"},
               "notification": {"type": "http", "url": hook}, "outputs": outputs}
        if settings:
            job["settings"] = settings
        start = time.monotonic()
        r = requests.post(f"{self.base}/v2/jobs", auth=(KEY, ""), json=job, timeout=30)
        r.raise_for_status()
        job_id = self.last_job = r.json()["id"]
        with self.hooks.lock:
            if not self.hooks.lock.wait_for(lambda: job_id in self.hooks.finished, timeout):
                sys.exit(f"copra job {job_id}: no webhook within {timeout} s")
            at, event, body = self.hooks.finished.pop(job_id)
        if event != "job.completed":
            sys.exit(f"copra job failed: {body}")
        return at - start

    def peak_rss_mib(self):
        """The peak resident memory of the server and its media engine processes
        together (sampled every 20 ms), or the server's own VmHWM if that is higher."""
        hwm = float("nan")
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
        return max(hwm, self.sampled_peak / 1024)

    def _sample(self):
        """Keep the largest sum of the resident memory of the server and its children."""
        while self.process.poll() is None:
            total = 0
            for pid in [self.process.pid, *_descendants(self.process.pid)]:
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                except OSError:
                    pass
            self.sampled_peak = max(self.sampled_peak, total)
            time.sleep(0.02)

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        self.files.shutdown()
        self.hooks.shutdown()


@contextmanager
def copra(work):
    server = Copra(work)
    try:
        yield server
    finally:
        server.stop()


def ffmpeg(args):
    """Run the ffmpeg command; returns its wall time in seconds."""
    start = time.monotonic()
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)
    return time.monotonic() - start


def _descendants(pid):
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def load_average():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def compare(name, runs, contenders):
    """Run each `(label, fn)` once per round, interleaved, `runs` rounds; print each
    label's median with the spread of its runs and the load average before and after,
    and return the medians by label."""
    times = {label: [] for label, _ in contenders}
    load_before = load_average()
    for i in range(runs):
        for label, fn in contenders:
            times[label].append(fn(i))
        print(f"{name} round {i + 1}: " + ", ".join(f"{label} {times[label][-1]:.2f}s" for label, _ in contenders), file=sys.stderr)
    for label, values in times.items():
        print(f"{name}: {label} median {statistics.median(values):.2f} s, spread {min(values):.2f}-{max(values):.2f} s over {runs} runs")
    print(f"{name}: load average {load_before} before, {load_average()} after")
    return {label: statistics.median(values) for label, values in times.items()}
