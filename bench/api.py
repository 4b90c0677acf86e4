#!/usr/bin/env python3
"""Benchmark (issue 10: the queue): the API's submit and read paths under a real load
tool, and how soon an idle worker picks up a new job.

- `POST /v2/jobs` throughput and latency percentiles with `wrk` on loopback, against
  `copra serve --no-worker` (jobs are stored, not run), on SQLite (single process) and on
  PostgreSQL (a database of its own, created and dropped by the bench).
- `GET /v2/jobs/{id}` throughput with `wrk`, same servers, round 64 jobs.
- Pickup latency: from sending `POST /v2/jobs` to the job's input leaving its first
  status (`input.transferring`: a worker claimed it and started), with an idle worker in
  the same process (SQLite), median and p95 over `--pickups` jobs. The job is read every
  2 ms, so the figure is accurate to about 2 ms.

Every wrk figure is the median of `--runs` runs (3), printed with their spread and the
load average before and after.

Usage: bench/api.py [--seconds 10] [--connections 32] [--runs 3] [--pickups 30] [--no-postgres] [--no-pickup]
(bench/run.sh builds first; `wrk` comes from scripts/setup.sh --tests.)
"""

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from functools import partial
from http.server import ThreadingHTTPServer

import requests

from common import COPRA, KEY, ROOT, _Quiet, free_port, generate, workdir

PG = os.environ.get("COPRA_BENCH_PG", "postgres://postgres@127.0.0.1:5432")

# wrk reports through this: one JSON line at the end of the run.
LUA_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"status_errors":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


class Server:
    """`copra serve` on a fresh data directory (and database)."""

    def __init__(self, work, name, database_url=None, worker=False):
        self.data = work / name
        port = free_port()
        env = dict(os.environ, COPRA_LISTEN=f"127.0.0.1:{port}", COPRA_DATA_DIR=str(self.data),
                   COPRA_PLUGIN_DIR=str(ROOT / "plugins" / "dist"), COPRA_API_KEYS=KEY, RUST_LOG="warn",
                   COPRA_OUTBOUND_ALLOW="127.0.0.0/8,::1/128")
        if database_url:
            env["COPRA_DATABASE_URL"] = database_url
        args = [str(COPRA), "serve"] + ([] if worker else ["--no-worker"])
        self.log = open(work / f"{name}.log", "wb")
        self.process = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.base}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                sys.exit(f"copra ({name}) did not start; see {work / name}.log")
            time.sleep(0.05)

    def cpu_seconds(self):
        """User + system CPU time the server has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.process.terminate()
        self.process.wait(20)
        self.log.close()


def wrk(url, script, seconds, connections, threads=2):
    """Run wrk with a Lua script; returns its figures."""
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script), url],
                         check=True, capture_output=True, text=True).stdout
    line = next((l for l in out.splitlines() if l.startswith("WRK ")), None)
    if line is None:
        sys.exit(f"wrk printed no figures:\n{out}")
    figures = json.loads(line[4:])
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    return figures


def lua_script(path, method, body=None, paths=None):
    """A wrk script: `method` with `body` on the URL's path, or round `paths` in turn."""
    auth = base64.b64encode(f"{KEY}:".encode()).decode()
    lines = [f'wrk.method = "{method}"', f'wrk.headers["Authorization"] = "Basic {auth}"']
    if body is not None:
        lines += ['wrk.headers["Content-Type"] = "application/json"', f"wrk.body = [[{json.dumps(body)}]]"]
    if paths:
        lines += ["paths = {" + ", ".join(f'"{p}"' for p in paths) + "}", "n = 0",
                  "request = function() n = n % #paths + 1; return wrk.format(nil, paths[n]) end"]
    path.write_text("\n".join(lines) + "\n" + LUA_DONE)
    return path


def job_body(input_url):
    return {"input": {"url": input_url}, "storage": {"service": "local", "path": "/bench"},
            "outputs": {"mp4:360p": {"path": "/out.mp4"}, "jpg:200x": {"path": "/thumb.jpg"}}}


def api_figures(work, label, server, input_url, seconds, connections, runs):
    """`runs` wrk runs of each path, interleaved; each figure is the median of the runs,
    printed with their spread (min-max) and the load average before and after."""
    def measured(url, script):
        cpu = server.cpu_seconds()
        figures = wrk(url, script, seconds, connections)
        # The server's own CPU per request: what the machine's load does not change much.
        figures["cpu_us"] = (server.cpu_seconds() - cpu) / figures["requests"] * 1e6
        return figures

    # The reads go round 64 jobs, as clients polling their own jobs do.
    ids = []
    for _ in range(64):
        created = requests.post(f"{server.base}/v2/jobs", auth=(KEY, ""), json=job_body(input_url), timeout=10)
        created.raise_for_status()
        ids.append(created.json()["id"])
    post_script = lua_script(work / "post.lua", "POST", job_body(input_url))
    get_script = lua_script(work / "get.lua", "GET", paths=[f"/v2/jobs/{id}" for id in ids])
    before = loadavg()
    posts, gets = [], []
    for _ in range(runs):
        posts.append(measured(f"{server.base}/v2/jobs", post_script))
        gets.append(measured(f"{server.base}/v2/jobs", get_script))
    after = loadavg()
    summary = {}
    for name, all_runs in (("POST /v2/jobs", posts), ("GET /v2/jobs/{id}", gets)):
        def fig(key, scale=1.0):
            values = [r[key] / scale for r in all_runs]
            return statistics.median(values), min(values), max(values)
        rps, p50, p99, cpu = fig("rps"), fig("p50_us", 1000), fig("p99_us", 1000), fig("cpu_us")
        errors = sum(r["status_errors"] for r in all_runs), sum(r["socket_errors"] for r in all_runs)
        print(f"{label} {name}: {rps[0]:.0f} req/s ({rps[1]:.0f}-{rps[2]:.0f}), p50 {p50[0]:.2f} ms, "
              f"p99 {p99[0]:.2f} ms ({p99[1]:.2f}-{p99[2]:.2f}), server CPU {cpu[0]:.0f} us/request ({cpu[1]:.0f}-{cpu[2]:.0f}); "
              f"median of {runs} runs, {errors[0]} non-2xx and {errors[1]} socket errors in all; load average {before} before, {after} after")
        summary[name] = {"rps": rps[0], "p99_ms": p99[0]}
    return summary["POST /v2/jobs"], summary["GET /v2/jobs/{id}"]


def loadavg():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pickups(server, input_url, count):
    """Seconds from sending POST to the input's first status change, per job."""
    session = requests.Session()
    times = []
    for i in range(count):
        body = {"input": {"url": input_url}, "storage": {"service": "local", "path": f"/pickup{i}"},
                "outputs": {"jpg:100x": {"path": "/t.jpg"}}}
        start = time.monotonic()
        r = session.post(f"{server.base}/v2/jobs", auth=(KEY, ""), json=body, timeout=10)
        r.raise_for_status()
        view = r.json()
        first = view["input"]["status"]
        deadline = start + 10
        while view["input"]["status"] == first:
            if time.monotonic() > deadline:
                sys.exit(f"job {view['id']} was not picked up within 10 s")
            time.sleep(0.002)
            view = session.get(f"{server.base}/v2/jobs/{view['id']}", auth=(KEY, ""), timeout=10).json()
        times.append(time.monotonic() - start)
        # The worker is idle again before the next job.
        while view["status"] not in ("job.completed", "job.failed"):
            time.sleep(0.02)
            view = session.get(f"{server.base}/v2/jobs/{view['id']}", auth=(KEY, ""), timeout=10).json()
    return times


def psql(sql):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{PG}/test", "-c", sql], check=True, capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--pickups", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3, help="wrk runs of each path; figures are their median and spread")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--no-pickup", action="store_true", help="only the wrk figures")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (scripts/setup.sh --tests installs it)")
    work = workdir()
    source = generate(work / "input.mp4", 320, 240, 25, 1)
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(work)))
    threading.Thread(target=files.serve_forever, daemon=True).start()
    input_url = f"http://127.0.0.1:{files.server_address[1]}/{source.name}"
    print(f"load average before the run: {os.getloadavg()[0]:.1f} (other work on the machine lowers every figure but CPU/request)")
    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s on loopback, {os.cpu_count()} cores shared by wrk and copra; "
          f"jobs of 2 outputs, not run (copra serve --no-worker)")

    server = Server(work, "sqlite")
    try:
        sqlite_post, sqlite_get = api_figures(work, "sqlite", server, input_url, args.seconds, args.connections, args.runs)
    finally:
        server.stop()
    print(f"sqlite POST: {sqlite_post['rps'] / 2000:.2f}x the 2,000 jobs/s target, p99 {sqlite_post['p99_ms'] / 20:.2f}x the 20 ms bound; "
          f"GET: {sqlite_get['rps'] / 20000:.2f}x the 20,000 req/s target")

    if not args.no_postgres:
        database = "copra_bench_" + uuid.uuid4().hex[:8]
        psql(f"CREATE DATABASE {database}")
        try:
            server = Server(work, "postgres", database_url=f"{PG}/{database}")
            try:
                pg_post, pg_get = api_figures(work, "postgres", server, input_url, args.seconds, args.connections, args.runs)
                print(f"postgres POST: {pg_post['rps'] / 2000:.2f}x the 2,000 jobs/s target, p99 {pg_post['p99_ms'] / 25:.2f}x the 25 ms bound; "
                      f"GET: {pg_get['rps'] / 10000:.2f}x the 10,000 req/s target")
            finally:
                server.stop()
        finally:
            psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

    if args.no_pickup:
        files.shutdown()
        return
    server = Server(work, "pickup", worker=True)
    try:
        times = sorted(pickups(server, input_url, args.pickups))
    finally:
        server.stop()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"sqlite pickup (idle worker in the serving process, {len(times)} jobs): median {statistics.median(times) * 1000:.1f} ms, "
          f"p95 {p95 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms; median {statistics.median(times) / 0.05:.2f}x the 50 ms target")
    files.shutdown()


if __name__ == "__main__":
    main()
