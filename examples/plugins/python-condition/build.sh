#!/usr/bin/env bash
# Build the Python condition plugin into a WASI component with componentize-py
# (installed from PyPI by scripts/setup.sh --tests, or `pip install componentize-py`).
# Usage: build.sh [OUT.wasm]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/python-condition.wasm}"
cd "$here"
componentize-py -d ../../../wit -w condition-plugin componentize app -o "$out"
