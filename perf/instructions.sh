#!/usr/bin/env bash
# Instructions per operation, deterministic: callgrind total Ir at N and 3N iterations,
# (Ir(3N) - Ir(N)) / 2N. Usage: bash perf/instructions.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
cargo build --release --example instructions >/dev/null 2>&1
ir() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/instructions "$1" "$2" 2>&1 \
    | sed -nE 's/.*Collected : ([0-9]+).*/\1/p'
}
for what in ${WHAT:-head envelope serde token-hit}; do
  a=$(ir "$what" "$N"); b=$(ir "$what" $((3 * N)))
  echo "$what: $(( (b - a) / (2 * N) )) instructions/op (N=$N: Ir $a, 3N: Ir $b)"
done
