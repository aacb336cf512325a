#!/usr/bin/env bash
# Memory per idle client connection: the gateway (one worker, perf/gateway.yaml) holds N idle
# TCP connections (default 10,000, opened by perf/idle_clients.py on loopback); the growth of its
# resident set divided by N. Also checks that a request is still served while they are open and
# that the connection bound (limits.maxConnectionsPerWorker) holds.
# With MODE=request, each connection first sends one tools/call and reads the answer (what an
# agent's idle keep-alive connection looks like). Usage: bash perf/idle.sh   (env: N=10000,
# MODE=open|request, BIN=a built gateway); needs python3 and `ulimit -n` above N.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
MODE=${MODE:-open}
(( $(ulimit -n) > N + 100 )) || { echo "ulimit -n must exceed $N"; exit 1; }
BIN=${BIN:-}
if [[ -z $BIN ]]; then cargo build --release --bin portcullis >/dev/null 2>&1; BIN=target/release/portcullis; fi
out=perf/out/idle; mkdir -p "$out"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
PERF_PORT=18080 RUST_LOG=warn "$BIN" --config perf/gateway.yaml & pids+=($!)
gw=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/18080) 2>/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS/{print $2}' "/proc/$gw/status"; }
call() {
  curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18080/mcp -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H 'mcp-protocol-version: 2026-07-28' \
    -H 'mcp-method: tools/call' -H 'mcp-name: hello' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello","arguments":{"who":"Ada"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
}
for _ in $(seq 200); do call >/dev/null; done # warm: buffers and allocator arenas in use
before=$(rss)
python3 perf/idle_clients.py 127.0.0.1 18080 "$N" "$out/ready" "$MODE" & pids+=($!)
for _ in $(seq 600); do [[ -f "$out/ready" ]] && break; sleep 0.1; done
sleep 5 # the spare buffers are trimmed each second; the allocator gives pages back 1 s after they were freed
after=$(rss)
status=$(call)
echo "== $N idle connections ($MODE): RSS ${before} KiB -> ${after} KiB, $(( (after - before) * 1024 / N )) bytes per connection; a request meanwhile: HTTP $status"
rm -f "$out/ready"
