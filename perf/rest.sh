#!/usr/bin/env bash
# REST tool tools/call through the gateway (MCP envelope decoded, arguments normalized, request
# rendered from the templates, POSTed over the worker's keep-alive pool, answer shaped into a
# tool result) against nginx proxy_pass relaying the same backend request (upstream keepalive),
# both in front of the floor responder. PERF.md placement: systems under test alone on cpu1, wrk
# and the backend on cpu0; runs interleaved, median of ROUNDS. Also reports upstream reuse.
# Usage: bash perf/rest.sh   (env: DURATION=10 CONNS=64 ROUNDS=3); needs wrk and nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx (apt-get install wrk nginx-light)"; exit 1; }
cargo build --release --example floor --bin portcullis >/dev/null 2>&1
out=perf/out/rest; mkdir -p "$out"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

nginx_conf "$out"
taskset -c 0 target/release/examples/floor 127.0.0.1:18081 & pids+=($!)
taskset -c 1 nginx -c "$PWD/$out/nginx.conf" & pids+=($!)
PERF_PORT=18085 RUST_LOG=warn taskset -c 1 target/release/portcullis --config perf/rest.yaml & pids+=($!)
wait_ports 18081 18085 18086

declare -A RPS LUA=([nginx]=perf/wrk/rest_direct.lua [gateway]=perf/wrk/tools_call.lua) PORT=([nginx]=18086 [gateway]=18085)
names=(nginx gateway)
run() { taskset -c 0 wrk -t1 -c"$CONNS" -d"$2"s -s "${LUA[$1]}" "http://127.0.0.1:${PORT[$1]}${3:-/}"; }
rounds "$out/runs.txt" "${names[@]}"
echo "== medians over $ROUNDS rounds, ${DURATION}s each, $CONNS connections"
a=$(median <<<"${RPS[nginx]}"); b=$(median <<<"${RPS[gateway]}")
echo "nginx rps $a (${RPS[nginx]})"
echo "gateway rps $b (${RPS[gateway]})"
awk -v a="$b" -v b="$a" 'BEGIN{printf "gateway/nginx ratio %.3f\n", a/b}'
metrics=$(curl -s http://127.0.0.1:18087/metrics)
opened=$(sed -nE 's/^portcullis_upstream_connections_total ([0-9]+)/\1/p' <<<"$metrics")
reused=$(sed -nE 's/^portcullis_upstream_reused_total ([0-9]+)/\1/p' <<<"$metrics")
echo "== gateway upstream: $opened connection(s) opened, $reused request(s) on pooled connections"
# One sample answer, to show the call really went through.
curl -s http://127.0.0.1:18085/mcp -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
  -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' -H 'mcp-name: hello' \
  -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello","arguments":{"who":"Ada"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
echo
