#!/usr/bin/env bash
# make fuzz: schemathesis against every HTTP family on the local stack
# (`make dev`: the functions behind cargo lambda watch, the emulator), with
# the demo project's secret key. Each family's operations come from the
# OpenAPI document the family serves; the checks are: no 5xx, every status
# and content type documented, every body matching its schema.
# FUZZ_EXAMPLES (default 200) sets the examples per operation; CI runs a
# smaller bounded pass. FUZZ_FAMILIES limits the families (space-separated).
# Reports (JUnit XML) go to .local/fuzz/.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

examples="${FUZZ_EXAMPLES:-200}"
families="${FUZZ_FAMILIES:-client accounts crm tenant segments cleanup}"
ST_VENV="$TOOLS/schemathesis"
# A venv of its own: schemathesis and moto pin different libraries.
if [ ! -x "$ST_VENV/bin/st" ]; then
  echo "==> installing schemathesis into $ST_VENV" >&2
  python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install --quiet --disable-pip-version-check 'schemathesis==4.32.*'
fi

mkdir -p .local/fuzz
log=.local/fuzz/dev.log
start_dev "$log"
key="$(stack_value secret_key)"

reports=()
for family in $families; do
  base="$(function_url "$family")"
  echo "==> $family: $examples examples per operation ($base${OPENAPI_DOCUMENT[$family]})"
  # From .local/fuzz: nothing schemathesis writes may land in the
  # workspace, where cargo lambda watch would rebuild on it.
  rm -f ".local/fuzz/$family.xml"
  # The function may still be starting: wait until it serves its document.
  wait_for_document "$family" "$log" 120
  # Its exit status mixes findings with its own errors; the reports decide.
  (cd .local/fuzz && SCHEMATHESIS_HOOKS=fuzz_hooks PYTHONPATH="$ROOT/infra/local" \
      "$ST_VENV/bin/st" --no-color run "$base${OPENAPI_DOCUMENT[$family]}" \
      --url "$base" \
      --header "Authorization: Bearer $key" \
      --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
      --max-examples "$examples" \
      --phases examples,coverage,fuzzing \
      --generation-codec utf-8 \
      --workers 2 \
      --request-timeout 30 \
      --wait-for-schema 120 \
      --generation-database none \
      --output-sanitize false \
      --report junit --report-junit-path "$family.xml") || true
  [ -f ".local/fuzz/$family.xml" ] || { echo "schemathesis wrote no report for $family" >&2; exit 1; }
  reports+=(".local/fuzz/$family.xml")
done
if ! python3 infra/local/fuzz_verdict.py "${reports[@]}"; then
  echo "==> findings (reports in .local/fuzz/)" >&2
  exit 1
fi
echo "==> no findings in: $families ($examples examples per operation)"
