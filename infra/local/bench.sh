#!/usr/bin/env bash
# make bench: regenerates BENCHMARKS.md. In order: the criterion
# micro-benchmarks; the Lambda packages (make package) for their sizes;
# host release binaries for their init times; then every route and the
# processor measured against an emulator of the run's own (release build).
# BENCH_ITERATIONS (default 50) sets the requests per route;
# BENCH_SKIP_PACKAGE=1 skips the (slow) package step and BENCH_SKIP_MICRO=1
# the criterion run (the report then shows their previous results).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
target="${CARGO_TARGET_DIR:-$ROOT/target}"
functions=()
for manifest in functions/*/Cargo.toml; do functions+=("$(basename "$(dirname "$manifest")")"); done
packages=(); for f in "${functions[@]}"; do packages+=(-p "$f"); done
mkdir -p .local/bench

if [ "${BENCH_SKIP_MICRO:-}" != 1 ]; then
  echo "==> micro-benchmarks (criterion)"
  cargo bench --locked -p bench --bench hot -- --noplot
fi

sizes=".local/bench/sizes.tsv"
if [ "${BENCH_SKIP_PACKAGE:-}" != 1 ]; then
  echo "==> packages (make package)"
  "$ROOT/infra/local/package.sh" | tee .local/bench/package.txt
  awk 'NF == 4 && $3 ~ /^[0-9]+$/ {print}' .local/bench/package.txt >"$sizes"
fi

echo "==> host release binaries (init times)"
cargo build --release --locked "${packages[@]}"

port="$(free_port)"
start_moto "$port" "$ROOT/.local/moto-bench.log"
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export TABLE_NAME="organizations-bench"
export BENCH_BINARIES="$target/release"
[ -f "$sizes" ] && export BENCH_SIZES="$ROOT/$sizes"

echo "==> routes and processor (emulator at $AWS_ENDPOINT_URL)"
cargo run --release --locked -p bench
echo "==> BENCHMARKS.md"
