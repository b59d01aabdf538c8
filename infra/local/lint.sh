#!/usr/bin/env bash
# make lint: the template (cfn-lint) and the code (rustfmt, clippy).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
ensure_tool cfn-lint 'cfn-lint==1.*'
echo "==> cfn-lint infra/template.yaml"
"$TOOLS/bin/cfn-lint" infra/template.yaml
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings
