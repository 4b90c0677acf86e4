#!/usr/bin/env python3
"""Benchmark (issue: measured quality): where measuring costs, metric by metric, and
how two builds compare. The job of bench/quality.py (one `mp4:720p` of a 1080p input)
plain, with each metric alone and with all three, interleaved, on one server per binary
(the servers side by side; each binary's jobs are timed against its own plain job).
Prints the medians, their spread, the load average and each way's ratio to plain.

Usage: bench/quality_breakdown.py [--duration 10] [--runs 3] [--binary PATH ...]
(default: the release build; give two binaries, for example an older commit's build
copied aside, to compare them in one run)
"""

import argparse
from pathlib import Path

import common
from common import compare, generate, workdir

WAYS = [("plain", None), ("psnr", ["psnr"]), ("ssim", ["ssim"]), ("vmaf", ["vmaf"]), ("all", ["vmaf", "psnr", "ssim"])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--binary", action="append", type=Path)
    args = ap.parse_args()
    binaries = args.binary or [common.COPRA]
    work = workdir()
    source = generate(work / "input.mp4", 1920, 1080, 30, args.duration)
    outputs = {"mp4:720p": {"path": "out.mp4"}}
    servers = []
    try:
        for n, binary in enumerate(binaries):
            common.COPRA = binary
            home = work / f"server{n}"
            home.mkdir()
            (home / "input.mp4").symlink_to(source)
            servers.append(common.Copra(home))
        contenders = []
        for n, server in enumerate(servers):
            for way, metrics in WAYS:
                settings = {"metrics": metrics} if metrics else None
                run = (lambda s, settings, tag: lambda i: s.run(outputs, s.work / "input.mp4", f"{tag}{i}", settings=settings))(server, settings, f"{n}{way}")
                contenders.append((f"{n}:{way}", run))
        medians = compare("quality-breakdown", args.runs, contenders)
    finally:
        for server in servers:
            server.stop()
    for n, binary in enumerate(binaries):
        plain = medians[f"{n}:plain"]
        print(f"{binary}: " + ", ".join(f"{way} {medians[f'{n}:{way}']:.2f} s ({medians[f'{n}:{way}'] / plain:.2f}x)" for way, _ in WAYS))


if __name__ == "__main__":
    main()
