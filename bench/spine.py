#!/usr/bin/env python3
"""Benchmark (issue: job spine): one Copra job with one `mp4:720p` output vs the `ffmpeg`
command with the same libx264/aac settings, on the same generated 1080p input, in one run.

Copra's time runs from POST /v2/jobs to `job.completed` as a client sees it.

Usage: bench/spine.py [--duration 30] [--runs 3]   (bench/run.sh builds first)
"""

import argparse

from common import AAC_DEFAULT, MP4, X264_DEFAULT, compare, copra, ffmpeg, generate, workdir


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = workdir()
    source = generate(work / "input.mp4", 1920, 1080, 30, args.duration)
    with copra(work) as server:
        medians = compare("spine", args.runs, [
            ("ffmpeg", lambda i: ffmpeg(["-i", str(source), "-vf", "scale=1280:720", *X264_DEFAULT, *AAC_DEFAULT, *MP4, str(work / f"ff{i}.mp4")])),
            ("copra", lambda i: server.run({"mp4:720p": {"path": "out.mp4"}}, source, f"spine{i}")),
        ])
    print(f"input: 1920x1080 30fps {args.duration}s h264+aac; output mp4:720p (libx264 crf 23 medium, aac 128k)")
    print(f"ffmpeg command (median of {args.runs}): {medians['ffmpeg']:.2f} s")
    print(f"copra job      (median of {args.runs}): {medians['copra']:.2f} s")
    print(f"spine: ratio copra/ffmpeg: {medians['copra'] / medians['ffmpeg']:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
