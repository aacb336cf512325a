#!/usr/bin/env bash
# Proxied tools/call: the gateway (envelope decoded, tool routed, name rewritten, body forwarded
# over its keep-alive pool) against nginx proxy_pass with upstream keepalive, both in front of
# the floor responder. PERF.md placement: systems under test alone on cpu1, wrk and the backend
# on cpu0; runs interleaved, median of ROUNDS. Also reports upstream connection reuse.
# Usage: bash perf/proxy.sh   (env: DURATION=10 CONNS=64 ROUNDS=3); needs wrk and nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
command -v wrk >/dev/null && command -v nginx >/dev/null || { echo "needs wrk and nginx (apt-get install wrk nginx-light)"; exit 1; }
cargo build --release --example floor --bin portcullis >/dev/null 2>&1
out=perf/out/proxy; mkdir -p "$out"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

nginx_conf "$out"
taskset -c 0 target/release/examples/floor 127.0.0.1:18081 & pids+=($!)
taskset -c 1 nginx -c "$PWD/$out/nginx.conf" & pids+=($!)
PERF_PORT=18085 RUST_LOG=warn taskset -c 1 target/release/portcullis --config perf/proxy.yaml & pids+=($!)
wait_ports 18081 18085 18086
# A session on the gateway (its backend session with the floor is sealed inside).
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"perf","version":"1"}}}'
MCP_SESSION=$(curl -s -D - -o /dev/null http://127.0.0.1:18085/mcp -H 'content-type: application/json' \
  -H 'accept: application/json, text/event-stream' -d "$init" | sed -nE 's/^mcp-session-id: ([^\r]*).*/\1/ip')
export MCP_SESSION
[ -n "$MCP_SESSION" ] || { echo "no session from the gateway"; exit 1; }

busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
declare -A RPS CPU PORT=([nginx]=18086 [gateway]=18085)
names=(nginx gateway)
for name in "${names[@]}"; do
  taskset -c 0 wrk -t1 -c"$CONNS" -d2s -s perf/wrk/tools_call_session.lua "http://127.0.0.1:${PORT[$name]}/mcp" >/dev/null
done
for round in $(seq "$ROUNDS"); do
  for name in "${names[@]}"; do
    b0=$(busy)
    line=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}"s -s perf/wrk/tools_call_session.lua "http://127.0.0.1:${PORT[$name]}/mcp" | grep '^RESULT')
    b1=$(busy)
    req=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line"); dur=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$line")
    rps=$(( req * 1000000 / dur ))
    cpu=$(awk -v j=$((b1 - b0)) -v r="$req" 'BEGIN{printf "%.2f", j*10000/r}')
    echo "round=$round $name rps=$rps cpu_us_per_req=$cpu $line" | tee -a "$out/runs.txt"
    RPS[$name]+="$rps "; CPU[$name]+="$cpu "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)] " (min " a[1] ", max " a[NR] ")"}'; }
echo "== medians over $ROUNDS rounds, ${DURATION}s each, $CONNS connections"
for name in "${names[@]}"; do echo "$name rps $(median <<<"${RPS[$name]}") cpu_us/req $(median <<<"${CPU[$name]}")"; done
metrics=$(curl -s http://127.0.0.1:18087/metrics)
opened=$(sed -nE 's/^portcullis_upstream_connections_total ([0-9]+)/\1/p' <<<"$metrics")
reused=$(sed -nE 's/^portcullis_upstream_reused_total ([0-9]+)/\1/p' <<<"$metrics")
echo "== gateway upstream: $opened connection(s) opened, $reused request(s) on pooled connections"
awk -v o="$opened" -v r="$reused" 'BEGIN{printf "   reuse %.5f%%\n", 100*r/(o+r)}'
