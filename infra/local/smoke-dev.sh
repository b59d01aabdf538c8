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
log=.local/smoke/dev.log
start_dev "$log"
# Every family serves its document before the first step, so no smoke
# step meets a function's start.
for family in "${!OPENAPI_DOCUMENT[@]}"; do
  wait_for_document "$family" "$log" 240
done

key="$(stack_value secret_key)"
# http://127.0.0.1:PORT/lambda-url/client → …/lambda-url/{function}: one
# pattern for all the families.
client="$(function_url client)"
base="${client%/client}/{function}"
echo "==> infra/smoke.sh $base sk_…"
"$ROOT/infra/smoke.sh" "$base" "$key"
