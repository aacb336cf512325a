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
run() { # name port auth
  MCP_AUTH=$3 taskset -c 0 wrk -t1 -c"$CONNS" -d"$4"s -s perf/wrk/tools_call.lua "http://127.0.0.1:$2/mcp"
}
run off 18080 "Bearer $TOKEN" 2 >/dev/null
run jwt 18083 "Bearer $TOKEN" 2 >/dev/null
declare -A RPS
for round in $(seq "$ROUNDS"); do
  for name in off jwt; do
    if [[ $name == off ]]; then line=$(run off 18080 "Bearer $TOKEN" "$DURATION" | grep '^RESULT')
    else line=$(run jwt 18083 "Bearer $TOKEN" "$DURATION" | grep '^RESULT'); fi
    req=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
    dur=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$line")
    err=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$line")
    ((err == 0)) || { echo "$name: $err errors (a refused token?)" >&2; exit 1; }
    rps=$((req * 1000000 / dur))
    echo "round=$round auth-$name rps=$rps $line" | tee -a perf/out/auth-runs.txt
    RPS[$name]+="$rps "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
off=$(median <<<"${RPS[off]}")
jwt=$(median <<<"${RPS[jwt]}")
echo "== medians over $ROUNDS rounds, ${DURATION}s each, $CONNS connections"
echo "auth-off rps $off (${RPS[off]})"
echo "auth-jwt rps $jwt (${RPS[jwt]})"
awk -v a="$jwt" -v b="$off" 'BEGIN{printf "jwt/off ratio %.3f\n", a/b}'
