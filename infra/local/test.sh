#!/usr/bin/env bash
# make test: the linters, then every test against its own emulator on a
# free port, which is stopped afterwards.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

"$ROOT/infra/local/lint.sh"

ensure_dnsmasq
ensure_epilot_client
export DNSMASQ="$(command -v dnsmasq || echo /usr/sbin/dnsmasq)"

port="$(free_port)"
start_moto "$port" "$ROOT/.local/moto-test.log"
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export TABLE_NAME="organizations-test"
export EVENTS_QUEUE_URL="" LOGO_BUCKET=""
# The tests sign dev session tokens and serve JWKS from 127.0.0.1.
export DEV_SESSIONS=1

# Every AWS request a function makes is recorded (shared::call_log), then
# checked against the functions' roles in the transformed template.
export AWS_CALL_LOG="$ROOT/.local/aws-calls.jsonl"
: >"$AWS_CALL_LOG"

echo "==> cargo test (emulator at $AWS_ENDPOINT_URL)"
cargo test --workspace --locked "$@"

# Only after the whole suite: a filtered run leaves permissions unused.
if [ "$#" -eq 0 ]; then
  echo "==> least privilege: $(wc -l <"$AWS_CALL_LOG") recorded calls against infra/template.yaml"
  cargo test --workspace --locked --test least_privilege -- --ignored
fi
