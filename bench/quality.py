#!/usr/bin/env python3
"""Benchmark (issue: measured quality): what quality costs. The same Copra job, one
`mp4:720p` of a 1080p input, three ways, interleaved in one run:
- plain;
- measured: with `"settings": {"metrics": ["vmaf", "psnr", "ssim"]}` (target: at most
  1.60 times plain);
- target: `mp4:720p::vmaf=93`, its setting searched on samples, then encoded and
  measured (target: at most 2.00 times plain).
Prints the medians, their spread, the load average and the ratios.

Usage: bench/quality.py [--duration 30] [--runs 3]   (bench/run.sh builds first)
"""

import argparse

from common import compare, copra, generate, workdir

METRICS = {"metrics": ["vmaf", "psnr", "ssim"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = workdir()
    source = generate(work / "input.mp4", 1920, 1080, 30, args.duration)
    outputs = {"mp4:720p": {"path": "out.mp4"}}
    with copra(work) as server:
        medians = compare("quality", args.runs, [
            ("plain", lambda i: server.run(outputs, source, f"plain{i}")),
            ("measured", lambda i: server.run(outputs, source, f"measured{i}", settings=METRICS)),
            ("target", lambda i: server.run({"mp4:720p::vmaf=93": {"path": "out.mp4"}}, source, f"target{i}")),
        ])
    print(f"input: 1920x1080 30fps {args.duration}s h264+aac; output mp4:720p (libx264 crf 23 medium, aac 128k)")
    print(f"plain job                (median of {args.runs}): {medians['plain']:.2f} s")
    print(f"job with vmaf+psnr+ssim  (median of {args.runs}): {medians['measured']:.2f} s")
    print(f"job with vmaf=93         (median of {args.runs}): {medians['target']:.2f} s")
    print(f"quality: ratio measured/plain: {medians['measured'] / medians['plain']:.3f} (target <= 1.60)")
    print(f"quality: ratio target/plain: {medians['target'] / medians['plain']:.3f} (target <= 2.00)")


if __name__ == "__main__":
    main()
