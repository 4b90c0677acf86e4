#!/usr/bin/env python3
"""Benchmark (issue: media engine breadth), all on the same generated 1920x1080 30 fps
input, in one run, against the `ffmpeg` command with identical settings:

- one `mp4:720p` output vs `ffmpeg` producing the same file;
- a 4-rung ladder (1080p, 720p, 480p, 360p h264 mp4, each with aac) from one Copra job
  vs one `ffmpeg` command making all four from one decode (`split`), and vs four
  sequential `ffmpeg` runs;
- peak resident memory of the server and its engine processes for a job on a 1-minute and on a 5-minute input
  (each on a freshly started server), which must stay flat.

Usage: bench/media.py [--duration 60] [--runs 3] [--rss-minutes 1 5] [--skip-rss]
"""

import argparse
import time

from common import AAC_DEFAULT, MP4, X264_DEFAULT, compare, copra, ffmpeg, generate, workdir

RUNGS = [(1920, 1080), (1280, 720), (854, 480), (640, 360)]


def ladder_ffmpeg_one_command(source, out):
    """One ffmpeg command, one decode, four outputs: FFmpeg's own multi-output path."""
    labels = "".join(f"[v{i}]" for i in range(len(RUNGS)))
    graph = f"[0:v]split={len(RUNGS)}{labels};" + ";".join(f"[v{i}]scale={w}:{h}[o{i}]" for i, (w, h) in enumerate(RUNGS))
    args = ["-i", str(source), "-filter_complex", graph]
    for i, (w, h) in enumerate(RUNGS):
        args += ["-map", f"[o{i}]", "-map", "0:a", *X264_DEFAULT, *AAC_DEFAULT, *MP4, str(out / f"ladder{h}.mp4")]
    return ffmpeg(args)


def ladder_ffmpeg_sequential(source, out):
    return sum(ffmpeg(["-i", str(source), "-vf", f"scale={w}:{h}", *X264_DEFAULT, *AAC_DEFAULT, *MP4, str(out / f"seq{h}.mp4")])
               for w, h in RUNGS)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rss-minutes", type=int, nargs=2, default=[1, 5])
    ap.add_argument("--skip-rss", action="store_true")
    args = ap.parse_args()
    work = workdir()
    source = generate(work / "input.mp4", 1920, 1080, 30, args.duration)
    ladder_job = {f"mp4:{h}p": {"path": f"{h}.mp4"} for _, h in RUNGS}

    with copra(work) as server:
        single = compare("720p", args.runs, [
            ("ffmpeg", lambda i: ffmpeg(["-i", str(source), "-vf", "scale=1280:720", *X264_DEFAULT, *AAC_DEFAULT, *MP4, str(work / f"ff{i}.mp4")])),
            ("copra", lambda i: server.run({"mp4:720p": {"path": "out.mp4"}}, source, f"single{i}")),
        ])
        ladder = compare("ladder", args.runs, [
            ("ffmpeg-one-command", lambda i: ladder_ffmpeg_one_command(source, work)),
            ("ffmpeg-sequential", lambda i: ladder_ffmpeg_sequential(source, work)),
            ("copra", lambda i: server.run(ladder_job, source, f"ladder{i}")),
        ])

    print(f"input: 1920x1080 30fps {args.duration}s h264+aac; libx264 crf 23 preset medium, aac 128k; median of {args.runs}")
    print(f"720p: ffmpeg {single['ffmpeg']:.2f} s, copra {single['copra']:.2f} s")
    print(f"ladder: ffmpeg one command {ladder['ffmpeg-one-command']:.2f} s, ffmpeg 4 runs {ladder['ffmpeg-sequential']:.2f} s, copra {ladder['copra']:.2f} s")
    print(f"single 720p: ratio copra/ffmpeg: {single['copra'] / single['ffmpeg']:.3f} (target <= 1.03)")
    print(f"4-rung ladder: ratio copra/ffmpeg-one-command: {ladder['copra'] / ladder['ffmpeg-one-command']:.3f} (target <= 1.00)")
    print(f"4-rung ladder: ratio copra/ffmpeg-sequential: {ladder['copra'] / ladder['ffmpeg-sequential']:.3f} (target <= 0.85)")
    print(f"ffmpeg's own one-command/sequential: {ladder['ffmpeg-one-command'] / ladder['ffmpeg-sequential']:.3f}")

    if args.skip_rss:
        return
    peaks = []
    for minutes in args.rss_minutes:
        source = generate(work / f"input-{minutes}min.mp4", 1920, 1080, 30, minutes * 60)
        # A fresh server per input: VmHWM is the peak over the process's life.
        with copra(work) as server:
            start = time.monotonic()
            server.run({"mp4:720p": {"path": "rss.mp4"}}, source, f"rss{minutes}")
            peaks.append(server.peak_rss_mib())
            print(f"{minutes}-minute input: {time.monotonic() - start:.1f} s, peak RSS {peaks[-1]:.0f} MiB")
    print(f"peak RSS: ratio {args.rss_minutes[1]}-min/{args.rss_minutes[0]}-min: {peaks[1] / peaks[0]:.3f} (target within 10%)")


if __name__ == "__main__":
    main()
