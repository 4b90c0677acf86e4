#!/usr/bin/env bash
# Build the first-party plugins (plugins/*) as WASI components into
# ${COPRA_PLUGIN_DIR:-plugins/dist}/<name>.wasm. Each crate gets its own cargo invocation:
# the SDK enables one world per plugin kind, and features must not unify across plugins.
# Respects CARGO_TARGET_DIR. If `wasm-tools` happens to be installed, each output is
# checked to be a component; it is not required.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
out="${COPRA_PLUGIN_DIR:-plugins/dist}"
mkdir -p "$out"
for manifest in plugins/*/Cargo.toml; do
  crate=$(basename "$(dirname "$manifest")")
  cargo build --quiet --profile plugin --target wasm32-wasip2 -p "$crate"
  wasm="$target_dir/wasm32-wasip2/plugin/${crate//-/_}.wasm"
  if command -v wasm-tools >/dev/null 2>&1; then
    wasm-tools component wit "$wasm" >/dev/null || { echo "$wasm is not a WASI component" >&2; exit 1; }
  fi
  # Copy then rename, so a running server's watcher never loads half a file.
  cp "$wasm" "$out/.$crate.wasm.tmp"
  mv "$out/.$crate.wasm.tmp" "$out/$crate.wasm"
done
ls -l "$out"/*.wasm
