#!/usr/bin/env bash
# A walk through Copra's Coconut v2 API with curl: render a job from examples/jobs/, ask
# for its plan (dry run), submit it, follow it to the end, read its metadata and its
# webhook log, and download its first output. Each request is printed before it runs.
#
#   examples/walkthrough.sh [JOB_FILE]          (default: examples/jobs/01-create-a-job.json)
#
# Environment: COPRA_URL (default http://127.0.0.1:8080), COPRA_API_KEY (default: the
# key `copra serve` generated into ./data/api-key), INPUT_URL (the video to encode) and,
# for the S3 examples, S3_BUCKET, S3_ENDPOINT, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY,
# WEBHOOK_URL. Needs curl and python3 (to read JSON). Exits 1 if the job fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
job_file="${1:-$here/jobs/01-create-a-job.json}"
url="${COPRA_URL:-http://127.0.0.1:8080}"
key="${COPRA_API_KEY:-$(cat data/api-key 2>/dev/null || true)}"
: "${key:?set COPRA_API_KEY (or run from the directory holding data/api-key)}"
: "${INPUT_URL:?set INPUT_URL to the http(s) URL of a video}"
out="${OUT_DIR:-$(mktemp -d)}"

say() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }
field() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1].split("."): v=v[int(k)] if isinstance(v,list) else v.get(k)
print("" if v is None else v)' "$1"; }

# 1. The job, with ${NAME} replaced by the environment's NAME.
python3 - "$job_file" > "$out/job.json" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
print(re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: os.environ.get(m.group(1), m.group(0)), text))
PY

# 2. Its plan: the input probed, each output's encoder settings, nothing encoded.
say curl -u "KEY:" -H "'Content-Type: application/json'" -X POST "$url/v2/jobs?dry_run=true" -d @job.json
curl -fsS -u "$key:" -H 'Content-Type: application/json' -X POST "$url/v2/jobs?dry_run=true" --data-binary @"$out/job.json" > "$out/plan.json"
python3 -c 'import json,sys
for o in json.load(sys.stdin)["outputs"]:
    plan = o.get("plan") or {}
    video = plan.get("video") or {}
    size = "%sx%s" % (video.get("width", ""), video.get("height", "")) if video else ""
    print("  ", o["key"], o["status"], plan.get("container", ""), video.get("codec", ""), size, o.get("error", ""))' < "$out/plan.json" >&2

# 3. Submit it.
say curl -u "KEY:" -H "'Content-Type: application/json'" -X POST "$url/v2/jobs" -d @job.json
curl -sS -u "$key:" -H 'Content-Type: application/json' -X POST "$url/v2/jobs" --data-binary @"$out/job.json" > "$out/created.json"
id=$(field id < "$out/created.json")
[ -n "$id" ] || { cat "$out/created.json" >&2; exit 1; }
echo "job $id" >&2

# 4. Follow it (or: curl -N -u KEY: $url/v2/jobs/$id/events for a live stream).
say curl -u "KEY:" "$url/v2/jobs/$id"
while :; do
  curl -fsS -u "$key:" "$url/v2/jobs/$id" > "$out/job-view.json"
  status=$(field status < "$out/job-view.json")
  echo "  $status $(field progress < "$out/job-view.json")" >&2
  case "$status" in job.completed|job.failed) break ;; esac
  sleep 1
done
python3 -m json.tool < "$out/job-view.json" >&2

# 5. What Copra learnt about the input and each output.
say curl -u "KEY:" "$url/v2/metadata/jobs/$id"
curl -fsS -u "$key:" "$url/v2/metadata/jobs/$id" | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)))' >&2

# 6. The webhook log (empty without a notification).
say curl -u "KEY:" "$url/v2/jobs/$id/webhooks"
curl -fsS -u "$key:" "$url/v2/jobs/$id/webhooks" >&2 || true
echo >&2

# 7. The first output's file.
first=$(python3 -c 'import json,sys
for o in json.load(sys.stdin)["outputs"]:
    u = o.get("url") or next((x if isinstance(x, str) else x["url"] for x in o.get("urls") or []), None)
    if u: print(u); break' < "$out/job-view.json")
if [ -n "$first" ]; then
  say curl -u "KEY:" -o "$out/$(basename "$first")" "$first"
  case "$first" in "$url"/*) curl -fsS -u "$key:" -o "$out/$(basename "$first")" "$first" ;;
                   *) curl -fsS -o "$out/$(basename "$first")" "$first" ;; esac
  echo "saved $out/$(basename "$first")" >&2
fi
echo "$id"
[ "$status" = job.completed ]
