#!/usr/bin/env bash
# Build in release mode and run the benchmarks; prints one ratio per line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
cargo build --release -p copra
scripts/build-plugins.sh
.venv/bin/python bench/spine.py "$@"
