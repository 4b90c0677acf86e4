#!/usr/bin/env python3
"""Benchmark (issue 22: direct uploads): a large file sent to `/v2/uploads` over loopback
with a real tus client (tuspy, from PyPI), against the release build.

- Throughput: bytes of the file over the time from the upload's creation to its last
  chunk acknowledged (every chunk is synced to disk before its answer, as the server
  promises). Targets: at least 400 MiB/s.
- Memory: the server's resident set (VmRSS), sampled every 20 ms during the upload,
  minus its value before. Target: at most 64 MiB of growth.
- The peer in the same run: `dd ... conv=fdatasync` writing the same number of bytes to
  the same disk, the most the disk gives a single writer that syncs; printed as a ratio.

Three runs; each figure is printed as the median with the spread (min-max), and the
load average before and after.

Usage: bench/upload.py [--mib 1024] [--chunk-mib 64] [--runs 3]
(bench/run.sh builds first.)
"""

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import threading
import time

from tusclient import client as tus_client

from common import COPRA, KEY, ROOT, free_port, workdir

import requests


def random_file(path, mib):
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(mib):
            # Each MiB differs, so nothing downstream can dedupe it.
            chunk = i.to_bytes(8, "little") + block[8:]
            f.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def serve(data):
    port = free_port()
    env = dict(os.environ, COPRA_LISTEN=f"127.0.0.1:{port}", COPRA_DATA_DIR=str(data), COPRA_API_KEYS=KEY,
               COPRA_PLUGIN_DIR=str(ROOT / "plugins" / "dist"), RUST_LOG="warn")
    proc = subprocess.Popen([str(COPRA), "serve", "--no-worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.05)
    proc.kill()
    sys.exit("copra did not start")


def one_upload(work, path, size, digest, chunk):
    proc, url = serve(work / f"data-{time.monotonic_ns()}")
    try:
        before = rss_kib(proc.pid)
        peak = [before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        client = tus_client.TusClient(f"{url}/v2/uploads", headers={"Authorization": f"Bearer {KEY}"})
        started = time.monotonic()
        uploader = client.uploader(file_path=str(path), chunk_size=chunk)
        uploader.upload()
        seconds = time.monotonic() - started
        stop.set()
        sampler.join()
        upload_id = uploader.url.rsplit("/", 1)[1]
        stored = next(work.glob(f"data-*/uploads/*/{upload_id}"))
        assert stored.stat().st_size == size
        return size / seconds / (1 << 20), (peak[0] - before) / 1024, stored
    finally:
        proc.terminate()
        proc.wait(30)


def dd_write(work, mib):
    target = work / "dd.bin"
    started = time.monotonic()
    subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}", "conv=fdatasync", "status=none"], check=True)
    seconds = time.monotonic() - started
    target.unlink()
    return mib / seconds


def spread(values):
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = workdir()
    path = work / "upload.bin"
    print(f"generating {args.mib} MiB ...", file=sys.stderr)
    digest = random_file(path, args.mib)
    size = path.stat().st_size
    print(f"load average before: {os.getloadavg()}")
    rates, growths, disks = [], [], []
    for run in range(args.runs):
        disks.append(dd_write(work, args.mib))
        rate, growth, stored = one_upload(work, path, size, digest, args.chunk_mib << 20)
        if run == 0:
            with open(stored, "rb") as f:
                h = hashlib.sha256()
                while block := f.read(1 << 20):
                    h.update(block)
            assert h.hexdigest() == digest, "the stored bytes are the file's"
        stored.unlink()
        rates.append(rate)
        growths.append(growth)
        print(f"run {run + 1}: upload {rate:.1f} MiB/s, RSS +{growth:.1f} MiB; dd conv=fdatasync {disks[-1]:.1f} MiB/s", flush=True)
    print(f"load average after: {os.getloadavg()}")
    print(f"upload {args.mib} MiB in {args.chunk_mib} MiB chunks (tuspy): {spread(rates)} MiB/s (target >= 400)")
    print(f"server RSS growth: {spread(growths)} MiB (target <= 64)")
    print(f"dd conv=fdatasync, same bytes, same disk: {spread(disks)} MiB/s")
    print(f"ratio upload/dd: {statistics.median(rates) / statistics.median(disks):.2f}")
    path.unlink()


if __name__ == "__main__":
    main()
