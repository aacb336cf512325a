#!/usr/bin/env bash
# Memory per idle client connection: the gateway (one worker, CONFIG) holds N idle TCP
# connections (default 10,000, opened by perf/idle_clients.py on loopback); the growth of its
# resident set divided by N. Also checks that a request is still served while they are open and
# that the connection bound (limits.maxConnectionsPerWorker) holds.
# With MODE=request, each connection first sends one tools/call and reads the answer (what an
# agent's idle keep-alive connection looks like). TARGET=nginx measures nginx's worker the same
# way (one worker, `proxy_pass` to the floor, which answers the tools/call): the baseline of
# issue 21.
# Usage: bash perf/idle.sh   (env: N=10000, MODE=open|request, TARGET=gateway|nginx,
# CONFIG=perf/gateway.yaml, BIN=a built gateway, FLOOR=a built floor); needs python3, `ulimit -n`
# above N, and nginx for TARGET=nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
source perf/lib.sh
N=${N:-10000}
MODE=${MODE:-open}
TARGET=${TARGET:-gateway}
CONFIG=${CONFIG:-perf/gateway.yaml}
(( $(ulimit -n) > N + 100 )) || { echo "ulimit -n must exceed $N"; exit 1; }
BIN=${BIN:-}
FLOOR=${FLOOR:-}
if [[ -z $BIN ]]; then cargo build --release --bin portcullis >/dev/null 2>&1; BIN=target/release/portcullis; fi
if [[ -z $FLOOR ]]; then cargo build --release --example floor >/dev/null 2>&1; FLOOR=target/release/examples/floor; fi
out=perf/out/idle; mkdir -p "$out"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
"$FLOOR" 127.0.0.1:18081 & pids+=($!)
if [[ $TARGET == nginx ]]; then
  port=18086
  nginx_conf "$out"
  sed -i -e "s/worker_connections 4096;/worker_connections $((N + 200));/" \
    -e "s/^worker_processes 1;/worker_processes 1;\nworker_rlimit_nofile $((N + 400));/" \
    -e "s/^  access_log off;/  access_log off;\n  keepalive_timeout 300s;\n  keepalive_requests 100000;/" "$out/nginx.conf"
  nginx -c "$PWD/$out/nginx.conf" & pids+=($!)
  wait_ports 18081 $port
  master=$(cat "$out/nginx.pid")
  proc=$(pgrep -P "$master" | head -1)
else
  port=18080
  PERF_PORT=$port RUST_LOG=warn "$BIN" --config "$CONFIG" & pids+=($!)
  proc=$!
  wait_ports 18081 $port
fi
rss() { awk '/^VmRSS/{print $2}' "/proc/$proc/status"; }
call() {
  curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/mcp" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H 'mcp-protocol-version: 2026-07-28' \
    -H 'mcp-method: tools/call' -H 'mcp-name: hello' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello","arguments":{"who":"Ada"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
}
for _ in $(seq 200); do call >/dev/null; done # warm: buffers and allocator arenas in use
before=$(rss)
rm -f "$out/ready"
python3 perf/idle_clients.py 127.0.0.1 "$port" "$N" "$out/ready" "$MODE" & pids+=($!)
for _ in $(seq 600); do [[ -f "$out/ready" ]] && break; sleep 0.1; done
sleep 5 # the spare buffers are trimmed each second; the allocator gives pages back 1 s after they were freed
after=$(rss)
status=$(call)
echo "== $TARGET, $N idle connections ($MODE): RSS ${before} KiB -> ${after} KiB, $(( (after - before) * 1024 / N )) bytes per connection; a request meanwhile: HTTP $status"
rm -f "$out/ready"
