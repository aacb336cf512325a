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
export MCP_AUTH="Bearer $TOKEN"
run() { taskset -c 0 wrk -t1 -c"$CONNS" -d"$2"s -s perf/wrk/tools_call.lua "http://127.0.0.1:$1/mcp"; }
run 18088 2 >/dev/null
run 18089 2 >/dev/null
declare -A RPS
declare -A PORT=([jwt]=18088 [rules]=18089)
for round in $(seq "$ROUNDS"); do
  for name in jwt rules; do
    line=$(run "${PORT[$name]}" "$DURATION" | grep '^RESULT')
    req=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
    dur=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$line")
    err=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$line")
    ((err == 0)) || { echo "$name: $err errors (a denied call?)" >&2; exit 1; }
    rps=$((req * 1000000 / dur))
    echo "round=$round $name rps=$rps $line" | tee -a perf/out/authz-runs.txt
    RPS[$name]+="$rps "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
a=$(median <<<"${RPS[jwt]}")
b=$(median <<<"${RPS[rules]}")
echo "== medians over $ROUNDS rounds, ${DURATION}s each, $CONNS connections"
echo "jwt-only rps $a (${RPS[jwt]})"
echo "jwt+rules rps $b (${RPS[rules]})"
awk -v a="$b" -v b="$a" 'BEGIN{printf "rules/jwt-only ratio %.3f\n", a/b}'
