#!/usr/bin/env bash
# Where a proxied call's instructions go: callgrind on the gateway (epoll driver, one worker),
# N and 3N calls on one keep-alive connection (perf/e2e_client.py), the callgrind files kept so
# perf/cgdiff.py can take (3N - N) / 2N per function and compare two runs. The floor answers
# as the backend, outside valgrind.
# Usage: bash perf/profile.sh TAG [N]    -> perf/out/profile/TAG-N.out and TAG-3N.out
# env: BIN=target/release/portcullis CONFIG=perf/proxy-authz.yaml MODE=stateless (or session:
#      the 2025-11-25 wire in a session). Builds nothing but what is missing.
# Then: python3 perf/cgdiff.py per TAG N [K] [incl]   or   python3 perf/cgdiff.py diff A B N [K] [incl]
# Needs valgrind, python3. Listens on 127.0.0.1: floor 18081, gateway 18090, admin 18091.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:?a tag for the output files}
N=${2:-1000}
BIN=${BIN:-target/release/portcullis}
CONFIG=${CONFIG:-perf/proxy-authz.yaml}
MODE=${MODE:-stateless}
EX=target/release/examples
[ -x "$EX/floor" ] && [ -x "$EX/instructions" ] && [ -x "$BIN" ] ||
  cargo build --release --bin portcullis --example floor --example instructions >/dev/null 2>&1
OUT=perf/out/profile
mkdir -p "$OUT"
floor=""
trap '[ -n "$floor" ] && kill "$floor" 2>/dev/null || true' EXIT
"$EX/floor" 127.0.0.1:18081 & floor=$!
MCP_AUTH="Bearer $("$EX/instructions" print-token)"
export MCP_AUTH
for n in "$N" $((3 * N)); do
  PERF_PORT=18090 PERF_ADMIN=18091 RUST_LOG=warn MONOIO_FORCE_LEGACY_DRIVER=1 valgrind --tool=callgrind \
    --callgrind-out-file="$OUT/$TAG-$n.out" "$BIN" --config "$CONFIG" 2>/dev/null &
  pid=$!
  for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/18090) 2>/dev/null && break; sleep 0.1; done
  python3 perf/e2e_client.py 127.0.0.1 18090 "$n" "$MODE" >/dev/null
  kill -TERM "$pid"; wait "$pid" || true
done
echo "$OUT/$TAG-$N.out $OUT/$TAG-$((3 * N)).out"
