#!/usr/bin/env bash
# Build the server and the plugins side by side. The plugins are WebAssembly built in
# their own profile and target (target/wasm32-wasip2/plugin), so cargo's lock on the
# server's build directory does not make them wait: they compile while the server's
# last crates compile and link, which keep only one core busy.
# Usage: scripts/build.sh [--release] [--test-plugins]
set -euo pipefail
cd "$(dirname "$0")/.."
release=() test_plugins=0
for arg in "$@"; do
  case "$arg" in
    --release) release=(--release) ;;
    --test-plugins) test_plugins=1 ;;
    *) echo "usage: scripts/build.sh [--release] [--test-plugins]" >&2; exit 2 ;;
  esac
done
mkdir -p target
log=target/build-plugins.log
(
  scripts/build-plugins.sh
  if [ "$test_plugins" = 1 ]; then scripts/build-test-plugins.sh; fi
) >"$log" 2>&1 &
plugins=$!
# The server's build ends first or last; either way the plugins' result is waited for.
server_ok=0
cargo build "${release[@]}" -p copra || server_ok=$?
if ! wait "$plugins"; then
  cat "$log" >&2
  echo "building the plugins failed (log above, also in $log)" >&2
  exit 1
fi
tail -n 20 "$log"
exit "$server_ok"
