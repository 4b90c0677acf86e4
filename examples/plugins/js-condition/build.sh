#!/usr/bin/env bash
# Build the JavaScript condition plugin into a WASI component with componentize-js
# (from npm; `npm ci` here installs it, as scripts/setup.sh --tests does).
# Usage: build.sh [OUT.wasm]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${1:-$here/js-condition.wasm}")"
cd "$here"
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
node build.mjs app.js ../../../wit "$out"
