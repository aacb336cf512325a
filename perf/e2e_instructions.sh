#!/usr/bin/env bash
# User-space instructions per template-tool tools/call in the real gateway: callgrind on the
# gateway (epoll driver, one worker, access log off), N and 3N requests on one keep-alive
# connection, (Ir(3N) - Ir(N)) / 2N. Deterministic for a given binary. Usage: [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
cargo build --release --bin portcullis >/dev/null 2>&1
run() {
  local out; out=$(mktemp)
  PERF_PORT=18090 RUST_LOG=warn MONOIO_FORCE_LEGACY_DRIVER=1 valgrind --tool=callgrind \
    --callgrind-out-file=/dev/null target/release/portcullis --config perf/gateway.yaml 2>"$out" &
  local pid=$!
  for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/18090) 2>/dev/null && break; sleep 0.1; done
  python3 perf/e2e_client.py 127.0.0.1 18090 "$1"
  kill -TERM "$pid"; wait "$pid" || true
  sed -nE 's/.*Collected : ([0-9]+).*/\1/p' "$out"; rm -f "$out"
}
a=$(run "$N"); b=$(run $((3 * N)))
echo "gateway tools/call (template tool, 2026-07-28 wire): $(( (b - a) / (2 * N) )) instructions/request (N=$N: Ir $a, 3N: Ir $b)"
