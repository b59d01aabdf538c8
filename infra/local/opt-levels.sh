#!/usr/bin/env bash
# Measures the release profile's opt-level choice (not part of make bench:
# three full release builds). For each level in OPT_LEVELS (default "3 s z")
# it builds the client and processor functions and the bench in a target
# directory of their own, then writes .local/bench/opt-<level>.md: the
# client family's routes (handler overhead), the processor's throughput,
# and both functions' init times and host binary sizes (gzip -9 as a proxy
# for the zip). Compare the files to choose `opt-level` in Cargo.toml.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
base="${OPT_LEVELS_DIR:-$HOME/.cache/organizations-service/opt-levels}"
mkdir -p .local/bench "$base"

port="$(free_port)"
start_moto "$port" "$ROOT/.local/moto-opt-levels.log"
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export TABLE_NAME="organizations-opt-levels"

for level in ${OPT_LEVELS:-3 s z}; do
  dir="$base/$level"
  echo "==> opt-level $level (target $dir)"
  CARGO_TARGET_DIR="$dir" CARGO_PROFILE_RELEASE_OPT_LEVEL="$level" \
    cargo build --release --locked -p client -p processor -p bench
  out=".local/bench/opt-$level.md"
  BENCH_ONLY=client BENCH_ITERATIONS="${BENCH_ITERATIONS:-30}" BENCH_BINARIES="$dir/release" \
    BENCH_OUTPUT="$out" "$dir/release/bench"
  {
    echo
    echo "## Host binaries at opt-level $level"
    for f in client processor; do
      echo "- $f: $(stat -c %s "$dir/release/$f") bytes, gzip -9 $(gzip -9c "$dir/release/$f" | wc -c) bytes"
    done
  } >>"$out"
  echo "    wrote $out"
done
