#!/usr/bin/env bash
# One command: install what is needed, build the server and the first-party plugins,
# and run `copra serve` (API + worker, SQLite and local storage under ./data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh --release
export COPRA_PLUGIN_DIR="${COPRA_PLUGIN_DIR:-plugins/dist}"
exec target/release/copra serve "$@"
