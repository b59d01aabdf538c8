#!/usr/bin/env bash
# make package: `sam build` (samconfig.toml: infra/template.yaml, each
# function by `cargo lambda build --release`), the very build `sam deploy`
# uploads, then each function's sizes. arm64 when the aarch64 Rust target
# can be had, else x86_64 (then deploy with Architecture=x86_64).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
ensure_deploy_tools
# sam, cargo-lambda and zig (the ziglang package, cargo-lambda's linker).
export PATH="$TOOLS/bin:$PATH"
export SAM_CLI_TELEMETRY="${SAM_CLI_TELEMETRY:-0}"

arch="${ARCH:-arm64}"
if [ "$arch" = arm64 ] && ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
  if ! rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
    echo "!! the aarch64 Rust target cannot be installed here; building x86_64 (deploy with Architecture=x86_64)" >&2
    arch=x86_64
  fi
fi

functions=()
for manifest in functions/*/Cargo.toml; do functions+=("$(basename "$(dirname "$manifest")")"); done

echo "==> sam build --parameter-overrides Architecture=$arch"
sam build --parameter-overrides "Architecture=$arch"

# zip_bytes: the archive sam deploy uploads (SAM zips each build directory
# with deflate); elf: the machine the binary was built for, read from it.
echo
printf '%-12s %-8s %12s %12s\n' function arch zip_bytes binary_bytes
for f in "${functions[@]}"; do
  dir="$ROOT/.aws-sam/build/${f^}Function"
  [ -f "$dir/bootstrap" ] || { echo "missing $dir/bootstrap (is ${f^}Function in infra/template.yaml?)" >&2; exit 1; }
  read -r elf zip_bytes < <(python3 - "$dir/bootstrap" <<'PY'
import io, sys, zipfile
path = sys.argv[1]
data = open(path, "rb").read()
machine = int.from_bytes(data[18:20], "little") if data[:4] == b"\x7fELF" else None
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
    zf.writestr("bootstrap", data)
print({0x3E: "x86_64", 0xB7: "arm64"}.get(machine, "unknown"), len(buf.getvalue()))
PY
)
  [ "$elf" = "$arch" ] || { echo "$dir/bootstrap is $elf, expected $arch" >&2; exit 1; }
  printf '%-12s %-8s %12s %12s\n' "$f" "$arch" "$zip_bytes" "$(stat -c %s "$dir/bootstrap")"
done
echo "built in .aws-sam/build/<Function>/bootstrap; deploy with: sam deploy --guided --parameter-overrides Architecture=$arch"
