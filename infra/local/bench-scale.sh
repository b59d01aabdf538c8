#!/usr/bin/env bash
# make bench-scale: regenerates the "Scale" section of BENCHMARKS.md (the
# rest of the file is make bench's and stays). Starts an emulator of its
# own, seeds one project in-process through the store's write paths at each
# N and measures every list, search, evaluate and match route, the
# processor's match fan-out, a scheduler tick and a purge (bench/src/scale.rs).
#   SCALE_NS=1000,10000          the Ns (default 1000,10000,100000)
#   SCALE_LARGE=0.01             the large organization's size as a fraction
#                                of 10,000 members, 100,000 events, 10,000 notes
#   SCALE_ITERATIONS=3           runs per row and N
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
mkdir -p .local/bench

cargo build --release --locked -p bench

port="$(free_port)"
start_moto "$port" "$ROOT/.local/moto-bench-scale.log"
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export TABLE_NAME="organizations-bench-scale"

echo "==> scale (emulator at $AWS_ENDPOINT_URL, N = ${SCALE_NS:-1000,10000,100000})"
cargo run --release --locked -p bench -- scale
echo "==> BENCHMARKS.md (Scale section)"
