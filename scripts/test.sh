#!/usr/bin/env bash
# One command: install what the tests need, build everything, run every test.
# Unit tests (host and plugins) with cargo, then the black-box suite with pytest
# against the real binary, a real S3-compatible server, HTTP servers and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests

scripts/build.sh --test-plugins
echo "== unit tests"
cargo test -p copra
cargo test -p copra-codes
# One invocation per plugin: the SDK's per-kind features must not unify.
for manifest in plugins/*/Cargo.toml examples/plugins/*/Cargo.toml; do
  cargo test -p "$(basename "$(dirname "$manifest")")"
done
# The SDK alone, and with each plugin kind (and its HTTP helpers) enabled.
for features in "" storage format condition notifier "notifier,http" "storage,http"; do
  cargo test -p copra-sdk --features "$features"
done
echo "== the book"
# Its links and examples are checked by tests/e2e/test_docs.py; here it must build.
mdbook build docs -d "$PWD/target/book"
echo "== black-box tests"
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/pytest tests/e2e -v --durations=10 "$@"
