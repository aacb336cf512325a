#!/usr/bin/env bash
# Cost of stage 1 on the wire: the same traffic - one template tools/call carrying the same
# RS256 bearer token - against the gateway with authentication off (perf/gateway.yaml, which
# ignores the header) and with JWT (perf/gateway-jwt.yaml; verified-token cache hits after the
# first request). Method of perf/run.sh: gateways alone on
# cpu1, wrk on cpu0, runs interleaved, median of ROUNDS.
# Usage: bash perf/auth.sh   (env: DURATION=10 CONNS=64 ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
cargo build --release --example instructions --bin portcullis >/dev/null 2>&1
TOKEN=$(target/release/examples/instructions print-token)
mkdir -p perf/out
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
PERF_PORT=18080 RUST_LOG=warn taskset -c 1 target/release/portcullis --config perf/gateway.yaml & pids+=($!)
PERF_PORT=18083 RUST_LOG=warn taskset -c 1 target/release/portcullis --config perf/gateway-jwt.yaml & pids+=($!)
for port in 18080 18083; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
source perf/lib.sh
export MCP_AUTH="Bearer $TOKEN"
compare_rps auth-off 18080 auth-jwt 18083 perf/out/auth-runs.txt
