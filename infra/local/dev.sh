#!/usr/bin/env bash
# make dev: the whole service on this machine. Starts the emulator, creates
# the resources and a demo project, serves every function through
# `cargo lambda watch`, runs the SQS -> processor and stream -> publisher
# bridge (events reach a subscriber queue through the bus), writes
# .local/stack.json, and stops everything it started on Ctrl-C.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

MOTO_PORT="${MOTO_PORT:-4566}"
WATCH_PORT="${WATCH_PORT:-9000}"
port_free "$MOTO_PORT" || MOTO_PORT="$(free_port)"
port_free "$WATCH_PORT" || { WATCH_PORT="$(free_port)"; echo "port 9000 is taken; serving functions on $WATCH_PORT" >&2; }

ensure_tool cargo-lambda 'cargo-lambda==1.*'
rm -f .local/stack.json

PIDS=()
cleanup() {
  trap - INT TERM EXIT
  echo "==> stopping" >&2
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f .local/stack.json
}
trap cleanup INT TERM EXIT

echo "==> moto server on 127.0.0.1:$MOTO_PORT"
start_moto "$MOTO_PORT" "$ROOT/.local/moto.log"
PIDS+=("$MOTO_PID")

export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export TABLE_NAME="organizations"
export LOGO_BUCKET="organizations-logos"
# Local only: HS256 dev session tokens (orgctl token, stack.json's
# dev_token_secret) and loopback JWKS URLs. The SAM template never sets it.
export DEV_SESSIONS=1

echo "==> building the functions and orgctl"
cargo build --workspace --bins --exclude integration-tests --quiet
TARGET_DIR="$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
ORGCTL="$TARGET_DIR/debug/orgctl"

echo "==> orgctl init"
"$ORGCTL" init | write_private .local/init.json
export EVENTS_QUEUE_URL="$(python3 -c 'import json; print(json.load(open(".local/init.json"))["events_queue_url"])')"
export CLEANUP_QUEUE_URL="$(python3 -c 'import json; print(json.load(open(".local/init.json"))["cleanup_queue_url"])')"

echo "==> events out: bus organizations, a rule to a subscriber queue, the failure queue"
# What the template makes (EventBus, PublishFailuresQueue), plus what a
# subscriber would add: a rule feeding every event to a queue of its own.
"$TOOLS/bin/python" - <<'PY' | write_private .local/events.json
import json, os
import boto3
endpoint, region = os.environ["AWS_ENDPOINT_URL"], os.environ["AWS_REGION"]
events = boto3.client("events", endpoint_url=endpoint, region_name=region)
sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region)
bus = "organizations"
if bus not in [b["Name"] for b in events.list_event_buses()["EventBuses"]]:
    events.create_event_bus(Name=bus)
subscriber = sqs.create_queue(QueueName="organization-events-subscriber")["QueueUrl"]
failures = sqs.create_queue(QueueName="organization-publish-failures")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=subscriber, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
events.put_rule(Name="every-organization-event", EventBusName=bus, EventPattern=json.dumps({"source": ["organizations"]}))
events.put_targets(Rule="every-organization-event", EventBusName=bus, Targets=[{"Id": "subscriber", "Arn": arn}])
print(json.dumps({"event_bus": bus, "events_subscriber_queue_url": subscriber, "publish_failures_queue_url": failures}))
PY
export EVENT_BUS_NAME="$(python3 -c 'import json; print(json.load(open(".local/events.json"))["event_bus"])')"
export EVENTS_SUBSCRIBER_QUEUE_URL="$(python3 -c 'import json; print(json.load(open(".local/events.json"))["events_subscriber_queue_url"])')"
export PUBLISH_FAILURES_QUEUE_URL="$(python3 -c 'import json; print(json.load(open(".local/events.json"))["publish_failures_queue_url"])')"

echo "==> demo project (with a dev_token_secret: DEV_SESSIONS=1)"
"$ORGCTL" project create demo --dev-sessions --json | write_private .local/project.json

# The functions refuse to start without a cursor signing key (the
# template's generated secret in AWS); a fresh one per run.
CURSOR_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"

write_private .local/functions.env <<ENV
TABLE_NAME=$TABLE_NAME
CURSOR_KEY=$CURSOR_KEY
EVENTS_QUEUE_URL=$EVENTS_QUEUE_URL
CLEANUP_QUEUE_URL=$CLEANUP_QUEUE_URL
LOGO_BUCKET=$LOGO_BUCKET
EVENT_BUS_NAME=$EVENT_BUS_NAME
PUBLISH_FAILURES_QUEUE_URL=$PUBLISH_FAILURES_QUEUE_URL
AWS_REGION=$AWS_REGION
AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL
AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
AWS_EC2_METADATA_DISABLED=true
DEV_SESSIONS=1
RUST_LOG=info
ENV

echo "==> cargo lambda watch on 127.0.0.1:$WATCH_PORT"
"$TOOLS/bin/cargo-lambda" lambda watch -A 127.0.0.1 -P "$WATCH_PORT" --env-file .local/functions.env \
  > .local/watch.log 2>&1 &
PIDS+=("$!")
BASE="http://127.0.0.1:$WATCH_PORT"
# Ready when the client function itself answers (401 without a key).
for _ in $(seq 1 600); do
  code="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$BASE/lambda-url/client/api/client/organizations" || true)"
  [ "$code" = "401" ] && break
  if ! kill -0 "${PIDS[-1]}" 2>/dev/null; then echo "cargo lambda watch exited; see .local/watch.log" >&2; exit 1; fi
  sleep 0.5
done
[ "$code" = "401" ] || { echo "the client function did not come up; see .local/watch.log" >&2; exit 1; }

echo "==> bridge: SQS -> processor, cleanup; the table's stream -> publisher"
"$TOOLS/bin/python" infra/local/bridge.py --invoke "$BASE" --queue-url "$EVENTS_QUEUE_URL" \
  --cleanup-queue-url "$CLEANUP_QUEUE_URL" \
  --table "$TABLE_NAME" --publish-failures-queue-url "$PUBLISH_FAILURES_QUEUE_URL" \
  > .local/bridge.log 2>&1 &
PIDS+=("$!")

# The keys go to a file only its owner can read (write_private).
python3 - "$BASE" <<'PY' | write_private .local/stack.json
import json, os, sys
base = sys.argv[1]
project = json.load(open(".local/project.json"))
functions = sorted(
    d for d in os.listdir("functions")
    if os.path.isfile(os.path.join("functions", d, "Cargo.toml")) and d not in ("processor", "publisher", "scheduler")
)
stack = {
    "functions": {name: f"{base}/lambda-url/{name}" for name in functions},
    "project_id": project["project_id"],
    "publishable_key": project["publishable_key"],
    "secret_key": project["secret_key"],
    "dev_token_secret": project["dev_token_secret"],
    "aws_endpoint": os.environ["AWS_ENDPOINT_URL"],
    "table": os.environ["TABLE_NAME"],
    "events_queue_url": os.environ["EVENTS_QUEUE_URL"],
    "cleanup_queue_url": os.environ["CLEANUP_QUEUE_URL"],
    "event_bus": os.environ["EVENT_BUS_NAME"],
    "events_subscriber_queue_url": os.environ["EVENTS_SUBSCRIBER_QUEUE_URL"],
    "publish_failures_queue_url": os.environ["PUBLISH_FAILURES_QUEUE_URL"],
    "bucket": os.environ["LOGO_BUCKET"],
}
print(json.dumps(stack, indent=2))
PY
cat .local/stack.json
echo "==> ready: .local/stack.json written; Ctrl-C stops everything"
wait
