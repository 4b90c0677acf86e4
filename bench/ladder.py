#!/usr/bin/env python3
"""Benchmark (issue: measured quality): ladders planned from the content. For a simple,
a medium and a complex 1080p clip, the same `httpstream` package (HLS) two ways:
- default: the fixed ladder (1080p/720p/480p/360p at crf 23, capped);
- auto: `"variants": "auto"`, its rungs planned from probe encodes of samples.
Timed runs are interleaved, without metrics (target: auto at most 1.50 times default).
One more run of each asks for VMAF on every rung, so the package's bytes are compared at
the top rung's measured VMAF (target on the simple clip: at most 60 % of the bytes with
the top rung at VMAF 93 or more). Prints medians, their spread, the load average, the
ratios and, per clip, bytes and top-rung VMAF.

Usage: bench/ladder.py [--duration 10] [--runs 3]   (bench/run.sh builds first)
"""

import argparse
import subprocess
from pathlib import Path

import requests

from common import KEY, compare, copra, workdir

CLIPS = {
    "simple": "testsrc=size=1920x1080:rate=30:duration={d}",
    "medium": "testsrc2=size=1920x1080:rate=30:duration={d}",
    "complex": "testsrc2=size=1920x1080:rate=30:duration={d},noise=alls=12:allf=t+u",
}


def clip(path: Path, graph: str, seconds: int) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", graph.format(d=seconds),
                    "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "8", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                    str(path)], check=True)
    return path


def package(auto: bool, metrics: bool) -> dict:
    params = {"hls": {"path": "hls"}}
    if auto:
        params["variants"] = "auto"
    if metrics:
        params["metrics"] = ["vmaf"]
    return {"httpstream": params}


def measured(server, work: Path, source: Path, prefix: str, auto: bool) -> tuple[int, float, dict]:
    """One run with VMAF on every rung: the package's bytes, its top rung's VMAF, its
    metadata's quality."""
    server.run(package(auto, True), source, prefix)
    meta = requests.get(f"{server.base}/v2/metadata/jobs/{server.last_job}/httpstream", auth=(KEY, ""), timeout=10).json()
    quality = meta["quality"]
    files = [p for p in (work / "data").rglob("*") if p.is_file() and f"/{prefix}/" in str(p)]
    top = max(quality["variants"], key=lambda v: v["quality"]["vmaf"]["mean"])
    return sum(p.stat().st_size for p in files), top["quality"]["vmaf"]["mean"], quality


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = workdir()
    sources = {name: clip(work / f"{name}.mp4", graph, args.duration) for name, graph in CLIPS.items()}
    with copra(work) as server:
        contenders = []
        for name, source in sources.items():
            contenders.append((f"{name} default", lambda i, s=source, n=name: server.run(package(False, False), s, f"{n}-default{i}")))
            contenders.append((f"{name} auto", lambda i, s=source, n=name: server.run(package(True, False), s, f"{n}-auto{i}")))
        medians = compare("ladder", args.runs, contenders)
        sizes = {}
        for name, source in sources.items():
            sizes[name] = (measured(server, work, source, f"{name}-default-m", False), measured(server, work, source, f"{name}-auto-m", True))
    print(f"inputs: 1920x1080 30fps {args.duration}s h264+aac; package httpstream HLS, default ladder vs variants auto")
    for name in sources:
        (d_bytes, d_top, _), (a_bytes, a_top, quality) = sizes[name]
        rungs = [(r["name"], r["crf"], r["maxrate_kbps"]) for r in quality["ladder"]["rungs"]]
        print(f"ladder {name}: default {d_bytes / 1e6:.2f} MB top VMAF {d_top:.2f}; auto {a_bytes / 1e6:.2f} MB top VMAF {a_top:.2f}; "
              f"bytes auto/default {a_bytes / d_bytes:.3f}; rungs {rungs}")
        print(f"ladder {name}: time ratio auto/default: {medians[f'{name} auto'] / medians[f'{name} default']:.3f} (target <= 1.50)")


if __name__ == "__main__":
    main()
