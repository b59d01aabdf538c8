#!/usr/bin/env bash
# make lint: the template as CloudFormation will see it (the SAM transform,
# then cfn-lint on the SAM template and on the transformed CloudFormation),
# and the code (rustfmt, clippy).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
ensure_tool cfn-lint 'cfn-lint==1.58.0'
# cfn-lint >= 1.54 no longer runs the SAM transform: a template it passes
# can still be refused by CloudFormation, so transform it here first.
echo "==> SAM transform ($SAM_TRANSLATOR) of infra/template.yaml into .local/cloudformation.json"
transform_template "$ROOT/.local/cloudformation.json"
echo "==> cfn-lint infra/template.yaml"
"$TOOLS/bin/cfn-lint" infra/template.yaml
# The generated resources: their references, and checks across them (a
# function's timeout against its queue's visibility timeout).
echo "==> cfn-lint .local/cloudformation.json (transformed)"
"$TOOLS/bin/cfn-lint" .local/cloudformation.json
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings
