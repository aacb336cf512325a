#!/usr/bin/env bash
# Cost of stage 2 on the proxied path: the same traffic - a 2026-07-28 tools/call with the same
# RS256 token, proxied to the floor responder - through the gateway with JWT only
# (perf/proxy-jwt.yaml) and with JWT plus a three-rule table with a `matches` condition
# (perf/proxy-authz.yaml). Placement of perf/proxy.sh: gateways on cpu1, wrk and the backend on
# cpu0; runs interleaved, median of ROUNDS.
# Usage: bash perf/authz.sh   (env: DURATION=10 CONNS=64 ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
cargo build --release --example floor --example instructions --bin portcullis >/dev/null 2>&1
TOKEN=$(target/release/examples/instructions print-token)
mkdir -p perf/out
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
taskset -c 0 target/release/examples/floor 127.0.0.1:18081 & pids+=($!)
PERF_PORT=18088 RUST_LOG=warn taskset -c 1 target/release/portcullis --config perf/proxy-jwt.yaml & pids+=($!)
PERF_PORT=18089 RUST_LOG=warn taskset -c 1 target/release/portcullis --config perf/proxy-authz.yaml & pids+=($!)
for port in 18081 18088 18089; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
source perf/lib.sh
export MCP_AUTH="Bearer $TOKEN"
compare_rps jwt-only 18088 jwt+rules 18089 perf/out/authz-runs.txt
