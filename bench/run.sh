#!/usr/bin/env bash
# Build in release mode and run the benchmarks against the ffmpeg command; each prints
# its ratios, one per line. Usage: bench/run.sh [spine|media|stream|plugins|api|upload|quality|ladder ...]
# (default: all). Extra arguments for one benchmark: bench/media.py --help.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
cargo build --release -p copra
scripts/build-plugins.sh >/dev/null
benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(spine media stream plugins api upload quality ladder)
for bench in "${benches[@]}"; do
  echo "== $bench"
  case "$bench" in
    plugins) cargo bench -p copra --bench plugins ;;
    *) .venv/bin/python "bench/$bench.py" ;;
  esac
done
