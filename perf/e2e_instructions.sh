#!/usr/bin/env bash
# User-space instructions per request in the real gateway: callgrind on the gateway (epoll
# driver, one worker, access log off), N and 3N requests on one keep-alive connection,
# (Ir(3N) - Ir(N)) / 2N. Deterministic for a given binary.
#   bash perf/e2e_instructions.sh [N]          template tool, 2026-07-28 wire
#   bash perf/e2e_instructions.sh [N] proxy    proxied tools/call to one backend (the floor,
#                                              outside valgrind), 2025-11-25 wire in a session
#   bash perf/e2e_instructions.sh [N] jwt      the template tool behind JWT RS256 authentication
#                                              (one token: verified-token cache hits)
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
N=${1:-2000}
MODE=${2:-template}
cargo build --release --bin portcullis --example floor --example instructions >/dev/null 2>&1
floor=""
trap '[ -n "$floor" ] && kill "$floor" 2>/dev/null || true' EXIT
if [ "$MODE" = proxy ]; then
  config=perf/proxy.yaml; client_mode=session
  target/release/examples/floor 127.0.0.1:18081 & floor=$!
elif [ "$MODE" = jwt ]; then
  config=perf/gateway-jwt.yaml; client_mode=stateless
  MCP_AUTH="Bearer $(target/release/examples/instructions print-token)"
  export MCP_AUTH
else
  config=perf/gateway.yaml; client_mode=stateless
fi
run() {
  local out; out=$(mktemp)
  PERF_PORT=18090 PERF_ADMIN=18091 RUST_LOG=warn MONOIO_FORCE_LEGACY_DRIVER=1 valgrind --tool=callgrind \
    --callgrind-out-file=/dev/null target/release/portcullis --config "$config" 2>"$out" &
  local pid=$!
  for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/18090) 2>/dev/null && break; sleep 0.1; done
  python3 perf/e2e_client.py 127.0.0.1 18090 "$1" "$client_mode"
  kill -TERM "$pid"; wait "$pid" || true
  sed -nE 's/.*Collected : ([0-9]+).*/\1/p' "$out"; rm -f "$out"
}
a=$(run "$N"); b=$(run $((3 * N)))
echo "gateway $MODE tools/call: $(( (b - a) / (2 * N) )) instructions/request (N=$N: Ir $a, 3N: Ir $b)"
