#!/usr/bin/env bash
# Build the test-only plugins in tests/plugins/ (hostile ones that exercise the sandbox)
# and the Rust example plugins in examples/plugins/ into tests/plugins/dist/. Each crate gets its own cargo invocation so the SDK's
# per-world features do not unify across plugins.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p tests/plugins/dist
for manifest in tests/plugins/*/Cargo.toml examples/plugins/*/Cargo.toml; do
  crate=$(basename "$(dirname "$manifest")")
  cargo build --quiet --profile plugin --target wasm32-wasip2 -p "$crate"
  cp "$target_dir/wasm32-wasip2/plugin/${crate//-/_}.wasm" "tests/plugins/dist/.$crate.wasm.tmp"
  mv "tests/plugins/dist/.$crate.wasm.tmp" "tests/plugins/dist/$crate.wasm"
done
