#!/usr/bin/env python3
"""Benchmark: one Copra job with one `mp4:720p` output vs the `ffmpeg` command with the
same libx264/aac settings, on the same generated 1080p input, in one run.

Prints each wall time and the ratio copra/ffmpeg. Copra's time runs from POST /v2/jobs
to `job.completed` as a client sees it (input fetch over loopback, probe, plugins,
encode, upload to local storage, status writes included).

Usage: bench/spine.py [--duration 30] [--runs 3]   (builds nothing; run `cargo build
--release -p copra` and scripts/build-plugins.sh first, or use bench/run.sh)
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
COPRA = ROOT / "target" / "release" / "copra"
KEY = "bench-key"

# What format-video plans for `mp4:720p` (quality 3): the same settings for ffmpeg.
FFMPEG_ARGS = ["-vf", "scale=1280:720", "-c:v", "libx264", "-crf", "23", "-preset", "medium",
               "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ar", "44100"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="copra-bench-"))
    source = work / "input.mp4"
    print(f"generating 1920x1080 30fps {args.duration}s input ...", file=sys.stderr)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={args.duration}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={args.duration}",
                    "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(source)], check=True)

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(work)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    input_url = f"http://127.0.0.1:{server.server_address[1]}/input.mp4"

    port = free_port()
    env = dict(os.environ, COPRA_LISTEN=f"127.0.0.1:{port}", COPRA_DATA_DIR=str(work / "data"),
               COPRA_PLUGIN_DIR=str(ROOT / "plugins" / "dist"), COPRA_API_KEYS=KEY, RUST_LOG="warn")
    copra = subprocess.Popen([str(COPRA), "serve"], env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            sys.exit("copra did not start")
        time.sleep(0.05)

    def run_copra(i):
        job = {"input": {"url": input_url}, "storage": {"service": "local", "path": f"/bench{i}"},
               "outputs": {"mp4:720p": {"path": "out.mp4"}}}
        start = time.monotonic()
        r = requests.post(f"{base}/v2/jobs", auth=(KEY, ""), json=job, timeout=30)
        r.raise_for_status()
        job_id = r.json()["id"]
        while True:
            view = requests.get(f"{base}/v2/jobs/{job_id}", auth=(KEY, ""), timeout=10).json()
            if view["status"] in ("job.completed", "job.failed"):
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - start
        if view["status"] != "job.completed":
            sys.exit(f"copra job failed: {view}")
        return elapsed

    def run_ffmpeg(i):
        start = time.monotonic()
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), *FFMPEG_ARGS, str(work / f"ffmpeg{i}.mp4")], check=True)
        return time.monotonic() - start

    copra_times, ffmpeg_times = [], []
    try:
        for i in range(args.runs):  # interleaved, so drift in machine load hits both
            ffmpeg_times.append(run_ffmpeg(i))
            copra_times.append(run_copra(i))
            print(f"run {i + 1}: ffmpeg {ffmpeg_times[-1]:.2f}s copra {copra_times[-1]:.2f}s", file=sys.stderr)
    finally:
        copra.terminate()
        copra.wait(10)
        server.shutdown()

    c, f = statistics.median(copra_times), statistics.median(ffmpeg_times)
    print(f"input: 1920x1080 30fps {args.duration}s h264+aac; output mp4:720p (libx264 crf 23 medium, aac 128k)")
    print(f"ffmpeg command (median of {args.runs}): {f:.2f} s")
    print(f"copra job      (median of {args.runs}): {c:.2f} s")
    print(f"ratio copra/ffmpeg: {c / f:.3f}")


if __name__ == "__main__":
    main()
