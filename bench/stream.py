#!/usr/bin/env python3
"""Benchmark (issue: adaptive streaming): a Copra `httpstream` job (HLS with fMP4
segments + DASH) on a generated 1280x720 30 fps input, whose default ladder is 720p,
480p and 360p, vs the `ffmpeg` command producing the same ladder with its own HLS and
DASH muxers:

- in one command (one decode, one encode per rung, `tee` to both muxers);
- in two separate runs, one per package, as without a shared encode.

Same settings on both sides: h264 high crf 23 preset medium with the rung's maxrate
(3500k/1500k/800k, bufsize 2x), a keyframe forced every 2 s and no scene-cut ones,
6 s segments, one aac 128k 48 kHz rendition.

Usage: bench/stream.py [--duration 60] [--runs 3]
"""

import argparse
import shutil

from common import compare, copra, ffmpeg, generate, workdir

RUNGS = [(1280, 720, 3500), (854, 480, 1500), (640, 360, 800)]
SEGMENT = 6


def ladder_args(source):
    """Decode once, split, scale and encode each rung, encode the audio once."""
    labels = "".join(f"[s{i}]" for i in range(len(RUNGS)))
    graph = f"[0:v]split={len(RUNGS)}{labels};" + ";".join(f"[s{i}]scale={w}:{h}[v{i}]" for i, (w, h, _) in enumerate(RUNGS))
    args = ["-i", str(source), "-filter_complex", graph]
    for i in range(len(RUNGS)):
        args += ["-map", f"[v{i}]"]
    args += ["-map", "0:a", "-c:v", "libx264", "-preset", "medium", "-profile:v", "high", "-crf", "23", "-pix_fmt", "yuv420p"]
    for i, (_, _, maxrate) in enumerate(RUNGS):
        args += [f"-maxrate:v:{i}", f"{maxrate}k", f"-bufsize:v:{i}", f"{maxrate * 2}k"]
    args += ["-force_key_frames", "expr:gte(t,n_forced*2)", "-sc_threshold", "0", "-forced-idr", "1",
             "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2"]
    return args


def hls_options(out, escape):
    """The hls muxer's options; `escape` quotes ':' and ',' inside values (for tee)."""
    streams = " ".join(f"v:{i},agroup:aud" for i in range(len(RUNGS))) + " a:0,agroup:aud"
    return {"hls_time": str(SEGMENT), "hls_playlist_type": "vod", "hls_segment_type": "fmp4", "master_pl_name": "master.m3u8",
            "hls_segment_filename": f"{out}/hls/%v/segment_%05d.m4s", "var_stream_map": escape(streams)}


def dash_options(escape):
    return {"seg_duration": str(SEGMENT), "use_template": "1", "use_timeline": "1",
            "adaptation_sets": escape("id=0,streams=v id=1,streams=a")}


def fresh(out):
    shutil.rmtree(out, ignore_errors=True)
    for sub in ("hls", "dash"):
        (out / sub).mkdir(parents=True)
    return out


def ffmpeg_one_command(source, out):
    out = fresh(out)
    # tee unescapes its slave list once, then each slave's options once more.
    sep = "\\:"
    escape = lambda value: value.replace(":", "\\\\:").replace(",", "\\\\,").replace("=", "\\\\=")
    hls = sep.join(f"{k}={v}" for k, v in {"f": "hls", **hls_options(out, escape)}.items())
    dash = sep.join(f"{k}={v}" for k, v in {"f": "dash", **dash_options(escape)}.items())
    return ffmpeg([*ladder_args(source), "-f", "tee", f"[{hls}]{out}/hls/%v/index.m3u8|[{dash}]{out}/dash/master.mpd"])


def ffmpeg_two_runs(source, out):
    out = fresh(out)
    keep = lambda value: value
    hls = [a for k, v in hls_options(out, keep).items() for a in (f"-{k}", v)]
    dash = [a for k, v in dash_options(keep).items() for a in (f"-{k}", v)]
    return (ffmpeg([*ladder_args(source), "-f", "hls", *hls, f"{out}/hls/%v/index.m3u8"])
            + ffmpeg([*ladder_args(source), "-f", "dash", *dash, f"{out}/dash/master.mpd"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=60)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    work = workdir()
    source = generate(work / "input720.mp4", 1280, 720, 30, args.duration)
    job = {"httpstream": {"hls": {"path": "hls", "hlsfmp4": True}, "dash": {"path": "dash"}, "segment_duration": SEGMENT}}
    with copra(work) as server:
        medians = compare("stream", args.runs, [
            ("ffmpeg-one-command", lambda i: ffmpeg_one_command(source, work / "ff1")),
            ("ffmpeg-two-runs", lambda i: ffmpeg_two_runs(source, work / "ff2")),
            ("copra", lambda i: server.run(job, source, f"stream{i}")),
        ])
    one, two, c = medians["ffmpeg-one-command"], medians["ffmpeg-two-runs"], medians["copra"]
    print(f"input: 1280x720 30fps {args.duration}s; 3-rung h264 ladder + aac as HLS (fMP4) and DASH; median of {args.runs}")
    print(f"ffmpeg one command (tee) {one:.2f} s, ffmpeg HLS run + DASH run {two:.2f} s, copra job {c:.2f} s")
    print(f"hls+dash ladder: ratio copra/ffmpeg-one-command: {c / one:.3f} (target <= 1.05)")
    print(f"hls+dash ladder: ratio copra/ffmpeg-two-runs: {c / two:.3f} (target <= 0.55)")


if __name__ == "__main__":
    main()
