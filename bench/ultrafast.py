#!/usr/bin/env python3
"""Benchmark (issue 11: ultrafast): one job on a generated 2-minute 1080p input (h264/aac),
encoded to `mp4:720p`, as a normal job and as an ultrafast job with 1, 2 and 3 worker
processes (`copra worker`, one job slot each) on one PostgreSQL database, with one API
node (`copra serve --no-worker`). Prints wall time from POST to `job.completed` (the job
read every 0.25 s), the ratio to the normal job, and where an ultrafast job's time goes
(the coordinator's `ultrafast timings` log line: split, chunk encodes, join + upload).

With `--store`, the ultrafast jobs stage their chunks in an S3 work area (`[worker]
ultrafast_store`; a moto server started here) instead of a shared directory, and the
chunk files' upload is printed too.

Usage: bench/ultrafast.py [--seconds 120] [--chunk 15] [--workers 1,2,3] [--output mp4:720p] [--store]
Environment: COPRA_BIN (default target/release/copra), COPRA_BENCH_PG (postgres server URL).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import requests

from common import COPRA, KEY, ROOT, _Quiet, free_port, generate, workdir

PG = os.environ.get("COPRA_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
BIN = Path(os.environ.get("COPRA_BIN", COPRA))


def psql(sql):
    subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-tA", f"{PG}/postgres", "-c", sql], check=True, capture_output=True)


def moto():
    """A moto S3 server on a loopback port with a bucket; (process, endpoint)."""
    import boto3
    port = free_port()
    proc = subprocess.Popen([shutil.which("moto_server") or sys.exit("moto_server is not installed"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(endpoint, timeout=1)
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                sys.exit("moto did not start")
            time.sleep(0.1)
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench",
                 region_name="us-east-1").create_bucket(Bucket="copra-bench")
    return proc, endpoint


class Cluster:
    def __init__(self, work, workers, chunk, store=None):
        self.db = "copra_uf_" + uuid.uuid4().hex[:8]
        psql(f"CREATE DATABASE {self.db}")
        self.work = work
        self.env = dict(os.environ, COPRA_DATABASE_URL=f"{PG}/{self.db}", COPRA_SECRET_KEY=uuid.uuid4().hex * 2,
                        COPRA_API_KEYS=KEY, COPRA_PLUGIN_DIR=str(ROOT / "plugins" / "dist"),
                        COPRA_OUTBOUND_ALLOW="127.0.0.0/8,::1/128", RUST_LOG="info",
                        COPRA_WORKER_ULTRAFAST_CHUNK_SECS=str(chunk),
                        COPRA_WORKER_ULTRAFAST_DIR=str(work / "shared"))
        if store:
            # No shared directory: every worker stages through the bucket.
            del self.env["COPRA_WORKER_ULTRAFAST_DIR"]
            self.env.update(COPRA_WORKER_ULTRAFAST_STORE="s3://copra-bench/uf", COPRA_WORKER_ULTRAFAST_STORE_ENDPOINT=store,
                            COPRA_WORKER_ULTRAFAST_STORE_ACCESS_KEY_ID="bench", COPRA_WORKER_ULTRAFAST_STORE_SECRET_ACCESS_KEY="bench")
        self.port = free_port()
        self.procs, self.logs = [], []
        self.start(["serve", "--no-worker"], "api", COPRA_LISTEN=f"127.0.0.1:{self.port}")
        for i in range(workers):
            self.start(["worker"], f"w{i}", COPRA_WORKER_ID=f"w{i}", COPRA_WORKER_CONCURRENCY="1")
        deadline = time.monotonic() + 60
        while not all("worker claiming jobs" in log.read_text() for log in self.logs[1:]) or not self.healthy():
            if time.monotonic() > deadline:
                sys.exit("the cluster did not start")
            time.sleep(0.1)

    def start(self, command, name, **env):
        data = self.work / name
        data.mkdir(parents=True, exist_ok=True)
        log = data / "copra.log"
        self.logs.append(log)
        self.procs.append(subprocess.Popen([str(BIN), *command], env={**self.env, "COPRA_DATA_DIR": str(data), **env},
                                           stdout=open(log, "ab"), stderr=subprocess.STDOUT))

    def healthy(self):
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def run(self, url, output, ultrafast):
        job = {"input": {"url": url}, "storage": {"service": "local", "path": f"/b-{uuid.uuid4().hex[:6]}"},
               "outputs": {output: {"path": "out.mp4"}}}
        if ultrafast:
            job["settings"] = {"ultrafast": True}
        base = f"http://127.0.0.1:{self.port}/v2/jobs"
        start = time.monotonic()
        r = requests.post(base, auth=(KEY, ""), json=job, timeout=30)
        r.raise_for_status()
        job_id = r.json()["id"]
        while True:
            view = requests.get(f"{base}/{job_id}", auth=(KEY, ""), timeout=10).json()
            if view["status"] in ("job.completed", "job.failed"):
                break
            time.sleep(0.25)
        took = time.monotonic() - start
        if view["status"] != "job.completed":
            sys.exit(f"job failed: {json.dumps(view)}")
        timings = {}
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                if job_id in line and "ultrafast timings" in line:
                    timings.update({k: float(v) for k, v in re.findall(r"(\w+_secs)=([\d.]+)", line)})
                if job_id in line and "chunk files uploaded" in line:
                    fields = dict(re.findall(r"(bytes|seconds)=([\d.]+)", line))
                    timings.update(store_bytes=float(fields["bytes"]), store_upload_secs=float(fields["seconds"]))
        return took, timings

    def stop(self):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        psql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--chunk", type=int, default=15)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--output", default="mp4:720p")
    parser.add_argument("--store", action="store_true", help="stage ultrafast chunks in an S3 work area (moto)")
    args = parser.parse_args()
    store_proc, store = moto() if args.store else (None, None)
    work = workdir()
    source = generate(work / "in-1080p.mp4", 1920, 1080, 25, args.seconds)
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(work)))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{files.server_address[1]}/{source.name}"
    print(f"input: {args.seconds} s 1920x1080 25 fps h264/aac; output {args.output}; chunks ~{args.chunk} s; {os.cpu_count()} cores; {BIN}")

    cluster = Cluster(work / "normal", 1, args.chunk)
    try:
        normal, _ = cluster.run(url, args.output, False)
    finally:
        cluster.stop()
    print(f"normal job, 1 worker: {normal:.1f} s")
    for n in [int(x) for x in args.workers.split(",")]:
        cluster = Cluster(work / f"uf{n}", n, args.chunk, store)
        try:
            took, t = cluster.run(url, args.output, True)
        finally:
            cluster.stop()
        rest = took - sum(t.get(k, 0.0) for k in ("split_secs", "encode_secs", "join_and_upload_secs"))
        print(f"ultrafast, {n} worker(s): {took:.1f} s  speed-up {normal / took:.2f}x  "
              f"(split {t.get('split_secs', 0):.2f} s, chunks+audio {t.get('encode_secs', 0):.1f} s, "
              f"join+upload {t.get('join_and_upload_secs', 0):.2f} s, fetch/probe/queue {rest:.1f} s)")
        if "store_bytes" in t:
            print(f"  chunk files: {t['store_bytes'] / 1e6:.1f} MB uploaded to the work area in {t['store_upload_secs']:.2f} s")
    if store_proc:
        store_proc.terminate()


if __name__ == "__main__":
    main()
