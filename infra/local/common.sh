# Shared by the local scripts: tools in a project-local venv, dummy AWS
# credentials (without them the SDK probes instance metadata and hangs),
# free ports, readiness waits.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="$ROOT/.tools"
# .local holds keys (stack.json, project.json): its owner's alone.
mkdir -p "$ROOT/.local"
chmod 700 "$ROOT/.local"

# write_private FILE: stdin into FILE, readable by its owner only from the
# first byte: a temporary file created 0600 next to it, renamed over FILE
# when complete (a reader sees the old file or the whole new one, and an
# older FILE's wider mode goes with it). Empty input (the writer failed)
# leaves FILE as it was.
write_private() {
  local file="$1" tmp
  tmp="$(umask 077 && mktemp "$(dirname "$file")/.$(basename "$file").XXXXXX")" || return 1
  if ! cat >"$tmp" || ! [ -s "$tmp" ] || ! chmod 600 "$tmp"; then
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$file"
}

export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
export AWS_EC2_METADATA_DISABLED=true

ensure_venv() {
  if [ ! -x "$TOOLS/bin/python" ]; then
    echo "==> creating $TOOLS (python venv)" >&2
    python3 -m venv "$TOOLS"
  fi
}

# ensure_tool BIN PIP_SPEC: installs PIP_SPEC into .tools unless BIN is there.
ensure_tool() {
  local bin="$1" spec="$2"
  ensure_venv
  if [ ! -x "$TOOLS/bin/$bin" ]; then
    echo "==> installing $spec into .tools" >&2
    "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "$spec"
  fi
}

# ensure_dnsmasq: the local DNS server the domain-verification tests ask
# (Debian's dnsmasq-base: the binary alone, no system service).
ensure_dnsmasq() {
  if command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ]; then return 0; fi
  echo "==> installing dnsmasq-base (Debian) for the DNS tests" >&2
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dnsmasq-base >/dev/null
}

# ensure_epilot_client: epilot's published npm client, as pinned by
# tests/clients/epilot/package-lock.json, into that folder (never globally);
# tests/epilot_client.rs drives the tenant family with it and checks the
# installed versions against the lock file. Not `npm ci`: @epilot/sdk
# declares an optional dependency that is not on the public registry
# (@epilot/epilot-journey-sdk), so no lock file can list it and `npm ci`
# refuses every lock as out of sync; `npm install --no-save` follows the
# lock and leaves it as committed. npm's cache serves repeated installs.
ensure_epilot_client() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "Node.js 18+ with npm is needed: tests/epilot_client.rs runs epilot's npm client" >&2
    return 1
  fi
  echo "==> epilot's client (npm install in tests/clients/epilot, as locked)"
  (cd "$ROOT/tests/clients/epilot" &&
    npm install --no-save --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
}

# ensure_module MODULE PIP_SPEC: installs PIP_SPEC into .tools unless its
# python imports MODULE (for libraries without a command).
ensure_module() {
  local module="$1" spec="$2"
  ensure_venv
  if ! "$TOOLS/bin/python" -c "import $module" 2>/dev/null; then
    echo "==> installing $spec into .tools" >&2
    "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "$spec"
  fi
}

# The SAM transform CloudFormation runs (aws-sam-translator), pinned: the
# version decides which templates pass.
SAM_TRANSLATOR='aws-sam-translator==1.115.0'

# The SAM CLI (sam build, sam deploy). It pins an aws-sam-translator of its
# own, so it gets a venv of its own (.tools/sam-cli) and the lint venv keeps
# SAM_TRANSLATOR; .tools/bin/sam links to it, so one PATH entry (.tools/bin)
# gives sam, cargo-lambda and zig.
SAM_CLI='aws-sam-cli==1.170.*'

# ensure_sam: installs SAM_CLI into .tools/sam-cli unless it is there.
ensure_sam() {
  local venv="$TOOLS/sam-cli"
  ensure_venv
  if [ ! -x "$venv/bin/sam" ]; then
    echo "==> installing $SAM_CLI into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$SAM_CLI"
  fi
  ln -sfn ../sam-cli/bin/sam "$TOOLS/bin/sam"
}

# ensure_deploy_tools: what `sam build` and `sam deploy` need on PATH
# (.tools/bin): the SAM CLI and cargo-lambda (with zig, its linker).
ensure_deploy_tools() {
  ensure_tool cargo-lambda 'cargo-lambda==1.*'
  ensure_sam
}

# transform_template OUT: infra/template.yaml through the SAM transform
# into OUT (CloudFormation JSON); fails with SAM's messages if refused.
transform_template() {
  ensure_module samtranslator "$SAM_TRANSLATOR"
  "$TOOLS/bin/python" "$ROOT/infra/local/transform.py" "$ROOT/infra/template.yaml" --out "$1"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_free() {
  python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

# wait_for URL SECONDS: until URL answers any HTTP status.
wait_for() {
  local url="$1" seconds="${2:-30}"
  for _ in $(seq 1 $((seconds * 10))); do
    if curl -s -o /dev/null "$url"; then return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for $url" >&2
  return 1
}

# start_moto PORT LOGFILE: starts moto server in the background, sets MOTO_PID.
start_moto() {
  local port="$1" log="$2"
  ensure_tool moto_server 'moto[server]==5.*'
  "$TOOLS/bin/python" "$ROOT/infra/local/emulator.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  wait_for "http://127.0.0.1:$port/moto-api/" 30
}

# Where each HTTP family serves its OpenAPI document (under its function's
# base URL in .local/stack.json's "functions").
declare -A OPENAPI_DOCUMENT=(
  [client]=/api/client/openapi.json
  [accounts]=/v1/openapi.json
  [crm]=/organizations/openapi.json
  [tenant]=/v2/openapi.json
  [segments]=/api/admin/segments/openapi.json
  [cleanup]=/v2/organization/cleanup/openapi.json
)

# start_dev LOG: `make dev` on free ports in the background (DEV_PID),
# stopped on exit (dev.sh stops what it started on TERM); returns once
# .local/stack.json is written, fails with the log's tail if dev.sh exits.
start_dev() {
  local log="$1"
  rm -f "$ROOT/.local/stack.json"
  echo "==> make dev (log: $log)"
  MOTO_PORT="$(free_port)" WATCH_PORT="$(free_port)" "$ROOT/infra/local/dev.sh" >"$log" 2>&1 &
  DEV_PID=$!
  trap 'kill -TERM "$DEV_PID" 2>/dev/null || true; wait "$DEV_PID" 2>/dev/null || true' EXIT
  trap 'exit 130' INT TERM
  for _ in $(seq 1 1800); do
    [ -f "$ROOT/.local/stack.json" ] && return 0
    dev_running "$log" || return 1
    sleep 1
  done
  echo "the stack did not come up; see $log" >&2
  return 1
}

# dev_running LOG: whether start_dev's stack still runs (says why not).
dev_running() {
  kill -0 "$DEV_PID" 2>/dev/null && return 0
  tail -n 40 "$1" >&2
  echo "make dev exited" >&2
  return 1
}

# stack_value KEY: a top-level value of .local/stack.json.
stack_value() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$ROOT/.local/stack.json" "$1"
}

# function_url FAMILY: the base URL of FAMILY's function in the stack.
function_url() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["functions"][sys.argv[2]])' "$ROOT/.local/stack.json" "$1"
}

# wait_for_document FAMILY LOG SECONDS: until FAMILY serves its OpenAPI
# document (cargo lambda watch starts a function on its first request).
wait_for_document() {
  local family="$1" log="$2" seconds="$3" url
  url="$(function_url "$family")${OPENAPI_DOCUMENT[$family]}"
  for _ in $(seq 1 "$seconds"); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 "$url")" = 200 ] && return 0
    dev_running "$log" || return 1
    sleep 1
  done
  echo "$family did not serve $url; see $log" >&2
  return 1
}
