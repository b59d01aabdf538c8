#!/usr/bin/env bash
# infra/smoke.sh URL KEY: every route family once against a running
# deployment, with a secret key (sk_…) of one of its projects.
#
#   URL  the API's base URL (the stack's ApiUrl output), or a URL with
#        {function} where the function's name goes, for `make dev`:
#        http://127.0.0.1:9000/lambda-url/{function}
#
# Each step prints one line; the first that fails names itself and the
# script exits 1 (2 for a wrong call). Everything it writes hangs off an
# organization and a user with external ids of this run's own
# (smoke-<time>-<random>); the organization is deleted at the end (also
# when a step failed) and its purge awaited. The user stays (no route
# deletes users): a user record with no memberships, under that unique
# external id.
# Needs curl and python3.
set -euo pipefail

if [ $# -ne 2 ] || [ -z "$1" ] || [ -z "$2" ]; then
  echo "usage: $0 URL SECRET_KEY   (URL may contain {function}, e.g. http://127.0.0.1:9000/lambda-url/{function})" >&2
  exit 2
fi
BASE="${1%/}"
KEY="$2"
case "$KEY" in
  sk_*) ;;
  *) echo "$0: KEY must be a secret key (sk_…): accounts, crm, tenant, segments and cleanup refuse others" >&2; exit 2 ;;
esac
# Seconds to wait for what the queues do (the timeline, the purge).
WAIT="${SMOKE_WAIT:-60}"

RUN="smoke-$(date -u +%Y%m%d%H%M%S)-$(python3 -c 'import secrets; print(secrets.token_hex(4))')"
ORG_EXT="$RUN-org"
USER_EXT="$RUN-user"

work="$(mktemp -d)"
BODY="$work/body"
HEADERS="$work/headers"
# A run that stops before its last steps still deletes its organization
# (best effort; the organization's purge then takes the rest with it).
ORG=""
DELETED=""
finish() {
  if [ -n "$ORG" ] && [ -z "$DELETED" ]; then
    curl -s -o /dev/null --max-time 30 -X DELETE -H "Authorization: Bearer $KEY" \
      "$(url accounts "/v1/organizations/$ORG")" || true
  fi
  rm -rf "$work"
}
trap finish EXIT

STEP=""
fail() {
  echo "FAIL $STEP: $*" >&2
  if [ -s "$BODY" ]; then echo "  response: $(head -c 600 "$BODY")" >&2; fi
  exit 1
}

# url FUNCTION PATH: where FUNCTION's PATH is served.
url() {
  case "$BASE" in
    *"{function}"*) printf '%s%s' "${BASE//\{function\}/$1}" "$2" ;;
    *) printf '%s%s' "$BASE" "$2" ;;
  esac
}

# call FUNCTION METHOD PATH [BODY [CONTENT_TYPE]]: sets STATUS; the body
# is in $BODY, the headers in $HEADERS.
call() {
  local function="$1" method="$2" path="$3" data="${4:-}" type="${5:-application/json}"
  local args=(-sS -o "$BODY" -D "$HEADERS" -w '%{http_code}' --max-time 30 -X "$method"
    -H "Authorization: Bearer $KEY")
  if [ -n "$data" ]; then args+=(-H "Content-Type: $type" --data-binary "$data"); fi
  : >"$BODY"
  STATUS="$(curl "${args[@]}" "$(url "$function" "$path")")" || fail "$method $path: curl failed"
}

# expect STATUS...: the last call answered one of these.
expect() {
  local want
  for want in "$@"; do [ "$STATUS" = "$want" ] && return 0; done
  fail "HTTP $STATUS, expected $*"
}

# field EXPR: a Python expression over the last body (b, parsed JSON).
field() {
  python3 -c 'import json, sys
b = json.load(open(sys.argv[1]))
v = eval(sys.argv[2], {"b": b})
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$BODY" "$1" 2>/dev/null ||
    fail "no $1 in the response"
}

# check EXPR WHAT: EXPR (over b) is true.
check() {
  [ "$(field "$1")" = true ] || fail "$2"
}

ok() { printf 'ok   %-34s %s\n' "$STEP" "$*"; }

# retry SECONDS COMMAND...: COMMAND until it succeeds (in a subshell, so a
# failing check does not end the script) or SECONDS have passed; the last
# try runs for real, so its failure is reported.
retry() {
  local seconds="$1"; shift
  local deadline=$((SECONDS + seconds))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ( "$@" ) >/dev/null 2>&1; then break; fi
    sleep 1
  done
  "$@"
}

echo "smoke against $BASE (run $RUN)"

# ------------------------------------------------------------------ client
STEP="client: upsert organization"
call client POST /api/client/organizations \
  "{\"identifier\": [{\"external_id\": \"$ORG_EXT\"}], \"name\": \"Smoke $RUN\", \"data\": {\"plan\": \"$RUN\"}}"
expect 200 201
ORG="$(field 'b["id"]')"
check "b['name'] == 'Smoke $RUN' and b['data']['plan'] == '$RUN'" "name or data not as sent"
ok "$ORG"

STEP="client: add a user"
call client POST /api/client/users \
  "{\"identifier\": [{\"external_id\": \"$USER_EXT\"}], \"data\": {\"first_name\": \"Smoke\"}}"
expect 200 201
USER="$(field 'b["id"]')"
ok "$USER"

STEP="client: add the user as a member"
call client POST /api/client/organizations/users \
  "{\"organization\": {\"identifier\": [{\"external_id\": \"$ORG_EXT\"}]}, \"user\": {\"identifier\": [{\"external_id\": \"$USER_EXT\"}]}, \"data\": {\"role\": \"admin\"}}"
expect 200 201
ok "role admin"

STEP="client: post an event"
call client POST /api/client/organizations/events \
  "[{\"identifier\": [{\"external_id\": \"$ORG_EXT\"}], \"name\": \"smoke_checked\", \"data\": {\"run\": \"$RUN\"}}]"
expect 202
check "b['accepted'] == 1 and not b.get('failed')" "the event was not accepted"
ok "accepted 1"

# ---------------------------------------------------------------- accounts
STEP="accounts: get the organization"
call accounts GET "/v1/organizations/$ORG"
expect 200
check "b['id'] == '$ORG' and b['name'] == 'Smoke $RUN'" "another organization"
grep -qi '^etag:' "$HEADERS" || fail "no ETag"
ok "name and ETag"

STEP="accounts: list organizations"
call accounts GET "/v1/organizations?limit=1"
expect 200
check "isinstance(b['items'], list) and len(b['items']) == 1 and 'pagination' in b" "not one item and a pagination"
ok "1 item"

STEP="accounts: patch the organization"
call accounts PATCH "/v1/organizations/$ORG" '{"billing_email": "smoke@example.com"}'
expect 200
check "b['billing_email'] == 'smoke@example.com'" "billing_email not changed"
ok "billing_email"

# The processor: the posted event reaches the timeline through the queue.
STEP="processor: event in the timeline"
timeline() {
  call accounts GET "/v1/organizations/$ORG/events?name=smoke_checked"
  expect 200
  check "any(e.get('name') == 'smoke_checked' for e in b['items'])" "smoke_checked not in the timeline"
}
retry "$WAIT" timeline
ok "smoke_checked"

# --------------------------------------------------------------------- crm
STEP="crm: get the organization"
call crm GET "/organizations/$ORG"
expect 200
check "b['@id'] == '/organizations/$ORG' and b['title'] == 'Smoke $RUN'" "another organization"
ok "title"

STEP="crm: list organizations"
crm_list() {
  call crm GET "/organizations?q=$RUN&itemsPerPage=5"
  expect 200
  check "b['totalItems'] == 1 and b['member'][0]['@id'] == '/organizations/$ORG'" "not found by its name"
}
retry 15 crm_list
ok "found by name"

# ------------------------------------------------------------------ tenant
STEP="tenant: get the organization"
call tenant GET "/v2/organization/$ORG"
expect 200
check "b['id'] == '$ORG'" "another organization"
ok "id"

STEP="tenant: put a setting"
call tenant PUT "/v2/organization/$ORG/settings/smoke" "{\"run\": \"$RUN\"}"
expect 200 201 204
ok "smoke"

STEP="tenant: get the settings"
call tenant GET "/v2/organization/$ORG/settings"
expect 200
check "b['smoke'] == {'run': '$RUN'}" "the setting is not there"
ok "smoke"

# ---------------------------------------------------------------- segments
STEP="segments: match"
call segments POST /api/admin/segments/match \
  "{\"user\": {\"identifier\": [{\"external_id\": \"$USER_EXT\"}]}, \"rule\": {\"type\": \"string\", \"group\": \"organization\", \"path\": \".plan\", \"operator\": \"=\", \"value\": \"$RUN\"}}"
expect 200
check "b['match'] is True and b['reasons'][0]['organization_id'] == '$ORG'" "the rule did not select the user through the organization"
ok "match true"

# ----------------------------------------------------------------- cleanup
STEP="accounts: delete the organization"
call accounts DELETE "/v1/organizations/$ORG"
expect 204
DELETED=1
ok "204"

# This service's own purge reports as "organizations"; whether the record
# is complete also waits for the stack's CleanupServices, if any.
STEP="cleanup: status of the deletion"
purged() {
  call cleanup GET "/v2/organization/cleanup/$ORG"
  expect 200
  check "b['org_id'] == '$ORG' and any(s['service_name'] == 'organizations' for s in b['services'])" \
    "organizations has not reported its purge"
}
retry "$WAIT" purged
ok "purged, complete: $(field 'b["complete"]')"

echo "smoke passed: every family answered (run $RUN)"
