#!/usr/bin/env bash
# User and kernel CPU per request of two gateway builds, from the process's own utime and stime
# (/proc/PID/stat) over a wrk run: where compare.sh's cpu1 figure goes. The headline workload
# (CONFIG, default perf/proxy-authz.yaml) through each build alone on cpu1, wrk (64 connections)
# and the floor on cpu0; ROUNDS rounds of DURATION s, the order alternating.
# Usage: BEFORE_BIN=... AFTER_BIN=... bash perf/cpusplit.sh   (builds nothing)
# WITH_NGINX=1 adds nginx proxy_pass (perf/lib.sh's nginx_conf; its worker process is measured) to
# each round: the baseline's own split.
# env: ROUNDS=5 DURATION=10 CONFIG=perf/proxy-authz.yaml WITH_NGINX=0 OUT=perf/out/cpusplit FLOOR,
#      TOKEN_BIN (default: examples beside AFTER_BIN). Needs wrk, taskset (nginx with WITH_NGINX=1).
#      Listens on 127.0.0.1: floor 18081, nginx 18086, before 18092, after 18093.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BEFORE_BIN:?path of the BEFORE portcullis binary}" "${AFTER_BIN:?path of the AFTER portcullis binary}"
ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-10} CONFIG=${CONFIG:-perf/proxy-authz.yaml}
WITH_NGINX=${WITH_NGINX:-0} OUT=${OUT:-perf/out/cpusplit}
FLOOR=${FLOOR:-$(dirname "$AFTER_BIN")/examples/floor}
TOKEN_BIN=${TOKEN_BIN:-$(dirname "$AFTER_BIN")/examples/instructions}
MCP_AUTH="Bearer $("$TOKEN_BIN" print-token)"
export MCP_AUTH
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
taskset -c 0 "$FLOOR" 127.0.0.1:18081 & pids+=($!)
PERF_PORT=18092 RUST_LOG=warn taskset -c 1 "$BEFORE_BIN" --config "$CONFIG" & pb=$!
pids+=($pb)
PERF_PORT=18093 RUST_LOG=warn taskset -c 1 "$AFTER_BIN" --config "$CONFIG" & pa=$!
pids+=($pa)
ports=(18081 18092 18093)
if [ "$WITH_NGINX" = 1 ]; then
  . perf/lib.sh
  mkdir -p "$OUT"
  nginx_conf "$OUT"
  taskset -c 1 nginx -c "$PWD/$OUT/nginx.conf" & pids+=($!)
  ports+=(18086)
fi
for port in "${ports[@]}"; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
tck=$(getconf CLK_TCK)
pn=""
if [ "$WITH_NGINX" = 1 ]; then
  pn=$(pgrep -f "nginx: worker process" | head -1)
fi
run() { # name pid port
  local u0 s0 u1 s1 n
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$2/stat")
  n=$(taskset -c 0 wrk -t1 -c64 -d"${DURATION}"s -s perf/wrk/tools_call.lua "http://127.0.0.1:$3/mcp" |
    awk '/requests in/ {print $1}')
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$2/stat")
  awk -v n="$n" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v t="$tck" -v name="$1" -v r="$4" \
    'BEGIN {printf "round=%d %s requests=%d user_us=%.2f kernel_us=%.2f\n", r, name, n, u*1e6/t/n, s*1e6/t/n}'
}
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    run before "$pb" 18092 "$r"; run after "$pa" 18093 "$r"
  else
    run after "$pa" 18093 "$r"; run before "$pb" 18092 "$r"
  fi
  if [ -n "$pn" ]; then run nginx "$pn" 18086 "$r"; fi
done
