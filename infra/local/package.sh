#!/usr/bin/env bash
# make package: release builds of every function as Lambda zips (arm64 when
# the aarch64 Rust target can be had, else x86_64), with their sizes.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
ensure_tool cargo-lambda 'cargo-lambda==1.*'
export PATH="$TOOLS/bin:$PATH"   # cargo-lambda finds zig (the ziglang package) here

arch="${ARCH:-arm64}"
if [ "$arch" = arm64 ] && ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
  if ! rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1; then
    echo "!! the aarch64 Rust target cannot be installed here; building x86_64 (deploy with Architecture=x86_64)" >&2
    arch=x86_64
  fi
fi
flag="--arm64"; [ "$arch" = x86_64 ] && flag="--x86-64"

functions=()
for manifest in functions/*/Cargo.toml; do functions+=("$(basename "$(dirname "$manifest")")"); done
packages=(); for f in "${functions[@]}"; do packages+=(-p "$f"); done

out="$ROOT/.local/lambda"
echo "==> cargo lambda build --release $flag (${functions[*]})"
cargo-lambda lambda build --release "$flag" --output-format zip --lambda-dir "$out" "${packages[@]}"

echo
printf '%-12s %-8s %12s %12s\n' function arch zip_bytes binary_bytes
for f in "${functions[@]}"; do
  zip="$out/$f/bootstrap.zip"
  [ -f "$zip" ] || { echo "missing $zip" >&2; exit 1; }
  binary=$(python3 -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$zip")
  printf '%-12s %-8s %12s %12s\n' "$f" "$arch" "$(stat -c %s "$zip")" "$binary"
done
echo "zips in $out/<function>/bootstrap.zip"
