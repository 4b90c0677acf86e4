#!/usr/bin/env python3
"""Benchmark (issue: measured quality): what measuring VMAF, PSNR and SSIM costs. The
same Copra job, one `mp4:720p` of a 1080p input, with and without
`"settings": {"metrics": ["vmaf", "psnr", "ssim"]}`, interleaved in one run; prints the
medians, their spread, the load average and the ratio (target: at most 1.60).

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
        ])
    print(f"input: 1920x1080 30fps {args.duration}s h264+aac; output mp4:720p (libx264 crf 23 medium, aac 128k)")
    print(f"plain job                (median of {args.runs}): {medians['plain']:.2f} s")
    print(f"job with vmaf+psnr+ssim  (median of {args.runs}): {medians['measured']:.2f} s")
    print(f"quality: ratio measured/plain: {medians['measured'] / medians['plain']:.3f} (target <= 1.60)")


if __name__ == "__main__":
    main()
