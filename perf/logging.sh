#!/usr/bin/env bash
# Cost of the access log at full load: the same gateway (perf/gateway.yaml) without access lines
# (RUST_LOG=warn) and with one JSON access line per request (perf/gateway-log.yaml, stderr to
# /dev/null: formatting, the queue and the writer thread are paid, not a terminal). PERF.md
# placement: both alone on cpu1 (the writer thread included), wrk on cpu0; interleaved, median of
# ROUNDS. Budget (issue 7): logging costs at most 5% of throughput.
# Usage: bash perf/logging.sh   (env: DURATION=10 CONNS=64 ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
command -v wrk >/dev/null || { echo "needs wrk"; exit 1; }
cargo build --release --bin portcullis >/dev/null 2>&1
out=perf/out/logging; mkdir -p "$out"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
PERF_PORT=18080 RUST_LOG=warn taskset -c 1 target/release/portcullis --config perf/gateway.yaml & pids+=($!)
PERF_PORT=18083 taskset -c 1 target/release/portcullis --config perf/gateway-log.yaml 2>/dev/null & pids+=($!)
wait_ports 18080 18083
compare_rps no-log 18080 json-log 18083 "$out/runs.txt"
