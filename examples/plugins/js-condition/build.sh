#!/usr/bin/env bash
# Build the JavaScript condition plugin into a WASI component with componentize-js
# (from npm; `npm ci` here installs it, as scripts/setup.sh --tests does).
# Usage: build.sh [OUT.wasm]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${1:-$here/js-condition.wasm}")"
cd "$here"
cmp -s package-lock.json node_modules/.copra-installed-lock || { npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.copra-installed-lock; }
node build.mjs app.js ../../../wit "$out"
