#!/usr/bin/env bash
# make smoke: infra/smoke.sh against `make dev` (what CI runs). Starts the
# local stack on free ports in the background, waits for .local/stack.json
# and for every family to answer, runs the smoke test with the demo
# project's secret key, and stops the stack whatever happened. Exits with
# the smoke test's status. Log: .local/smoke/dev.log.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

mkdir -p .local/smoke
rm -f .local/stack.json
echo "==> make dev (log: .local/smoke/dev.log)"
MOTO_PORT="$(free_port)" WATCH_PORT="$(free_port)" "$ROOT/infra/local/dev.sh" >.local/smoke/dev.log 2>&1 &
DEV_PID=$!
stop() {
  # dev.sh stops what it started (moto, cargo lambda watch, the bridge) on TERM.
  kill -TERM "$DEV_PID" 2>/dev/null || true
  wait "$DEV_PID" 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 1800); do
  [ -f .local/stack.json ] && break
  kill -0 "$DEV_PID" 2>/dev/null || { tail -n 40 .local/smoke/dev.log >&2; echo "make dev exited" >&2; exit 1; }
  sleep 1
done
[ -f .local/stack.json ] || { echo "the stack did not come up; see .local/smoke/dev.log" >&2; exit 1; }

stack() { python3 -c 'import json, sys; print(json.load(open(".local/stack.json"))[sys.argv[1]])' "$1"; }
key="$(stack secret_key)"
# {"client": "http://127.0.0.1:PORT/lambda-url/client", …}: one pattern for all.
base="$(python3 -c 'import json; print(json.load(open(".local/stack.json"))["functions"]["client"].removesuffix("/client") + "/{function}")')"

# cargo lambda watch starts each function on its first request: wait until
# every family serves its OpenAPI document, so no smoke step meets a start.
declare -A DOCUMENT=(
  [client]=/api/client/openapi.json
  [accounts]=/v1/openapi.json
  [crm]=/organizations/openapi.json
  [tenant]=/v2/openapi.json
  [segments]=/api/admin/segments/openapi.json
  [cleanup]=/v2/organization/cleanup/openapi.json
)
for family in "${!DOCUMENT[@]}"; do
  url="${base//\{function\}/$family}${DOCUMENT[$family]}"
  for _ in $(seq 1 240); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 "$url")" = 200 ] && continue 2
    kill -0 "$DEV_PID" 2>/dev/null || { tail -n 40 .local/smoke/dev.log >&2; echo "make dev exited" >&2; exit 1; }
    sleep 1
  done
  echo "$family did not serve $url; see .local/smoke/dev.log" >&2
  exit 1
done

echo "==> infra/smoke.sh $base sk_…"
"$ROOT/infra/smoke.sh" "$base" "$key"
