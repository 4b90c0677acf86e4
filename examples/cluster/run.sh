#!/usr/bin/env bash
# Several API nodes and workers on one PostgreSQL database, on this machine: the shape of a
# multi-node deployment (on many machines, run the same commands with the same shared.env
# on each, and an object store such as S3 for outputs instead of `local`).
#
#   COPRA_DATABASE_URL=postgres://user@host/db examples/cluster/run.sh
#
# Environment: COPRA_DATABASE_URL (required, postgres://), API_NODES (2), WORKERS (2),
# BASE_PORT (8080: the API nodes listen on BASE_PORT, BASE_PORT+1, ...), CLUSTER_DIR
# (./cluster: logs, the shared data directory, shared.env), COPRA_BIN (copra on PATH, else
# target/release/copra, else target/debug/copra). Ctrl-C (or SIGTERM) stops every process
# gracefully; if any process dies, the others are stopped too.
#
# What every node must share is generated once into $CLUSTER_DIR/shared.env: the API keys,
# the admin key, the key that seals job specs at rest and the webhook signing secret.
set -euo pipefail
: "${COPRA_DATABASE_URL:?set COPRA_DATABASE_URL=postgres://user@host/db}"
case "$COPRA_DATABASE_URL" in postgres://*|postgresql://*) ;; *) echo "COPRA_DATABASE_URL must be a postgres:// URL" >&2; exit 2 ;; esac
repo="$(cd "$(dirname "$0")/../.." && pwd)"
api_nodes="${API_NODES:-2}"
workers="${WORKERS:-2}"
base_port="${BASE_PORT:-8080}"
dir="$(mkdir -p "${CLUSTER_DIR:-cluster}" && cd "${CLUSTER_DIR:-cluster}" && pwd)"
bin="${COPRA_BIN:-$(command -v copra || true)}"
for candidate in "$repo/target/release/copra" "$repo/target/debug/copra"; do
  [ -n "$bin" ] || { [ -x "$candidate" ] && bin="$candidate"; } || true
done
[ -x "$bin" ] || { echo "no copra binary: build it (cargo build --release -p copra) or set COPRA_BIN" >&2; exit 2; }

if [ ! -f "$dir/shared.env" ]; then
  python3 - > "$dir/shared.env.tmp" <<'PY'
import base64, secrets
print(f"COPRA_API_KEYS={secrets.token_urlsafe(24)}")
print(f"COPRA_ADMIN_KEY=admin-{secrets.token_urlsafe(24)}")
print(f"COPRA_SECRET_KEY={secrets.token_hex(32)}")
print(f"COPRA_WEBHOOK_SECRET=whsec_{base64.b64encode(secrets.token_bytes(32)).decode()}")
PY
  chmod 600 "$dir/shared.env.tmp" && mv "$dir/shared.env.tmp" "$dir/shared.env"
fi
set -a
# shellcheck disable=SC1091
. "$dir/shared.env"
set +a
export COPRA_DATA_DIR="${COPRA_DATA_DIR:-$dir/data}"
export COPRA_PLUGIN_DIR="${COPRA_PLUGIN_DIR:-$repo/plugins/dist}"
export COPRA_PUBLIC_URL="${COPRA_PUBLIC_URL:-http://127.0.0.1:$base_port}"

pids=()
stop() {
  trap - EXIT INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop EXIT INT TERM

for i in $(seq 0 $((api_nodes - 1))); do
  COPRA_LISTEN="127.0.0.1:$((base_port + i))" "$bin" serve --no-worker >> "$dir/api-$i.log" 2>&1 &
  pids+=($!)
  echo "api node $i: http://127.0.0.1:$((base_port + i))  (log $dir/api-$i.log)"
done
for i in $(seq 0 $((workers - 1))); do
  COPRA_WORKER_ID="worker-$i" "$bin" worker >> "$dir/worker-$i.log" 2>&1 &
  pids+=($!)
  echo "worker $i  (log $dir/worker-$i.log)"
done
echo "API key: $COPRA_API_KEYS   admin key: in $dir/shared.env"
# Stop everything when any process ends (or on Ctrl-C / SIGTERM, through the trap).
wait -n "${pids[@]}" || true
echo "a process ended; stopping the cluster" >&2
