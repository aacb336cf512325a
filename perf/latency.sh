#!/usr/bin/env bash
# Open-loop latency (issue 21): at half of nginx's maximum rate, the latency each proxy adds over
# the floor's own, from the intended send time (perf/openloop.rs: no coordinated omission).
#   1. nginx's maximum: wrk (closed loop, CONNS connections) against nginx proxy_pass, DURATION s.
#   2. RATE = half of it. ROUNDS rounds, the order rotating, of OPEN_SECONDS s of open-loop load at
#      RATE against the floor directly, nginx (in front of the floor) and the gateway (CONFIG, in
#      front of the floor); the generator and the floor on cpu0, each proxy alone on cpu1.
#   3. Per target the medians over the rounds of p50 and p99; added = target - floor; the ratio
#      gateway added / nginx added (issue 21's target: <= 0.8 for both).
# SPIN=1 keeps cpu1 awake during the runs with a `nice 19` busy loop: on a VM an idle vCPU takes
# long to wake, which penalises the proxy that idles more (the cheaper one); the spinner yields to
# the proxy at once, so the comparison is of the proxies, not of their idle time.
# EPOLL=1 adds a fourth target: the same gateway on monoio's epoll driver
# (`MONOIO_FORCE_LEGACY_DRIVER=1`), interleaved with the others at the same rate.
# Usage: bash perf/latency.sh   (builds the release binary and examples first)
# env: DURATION=5 ROUNDS=3 OPEN_SECONDS=10 CONNS=64 OPEN_CONNS=16 CONFIG=perf/proxy-authz.yaml
#      OUT=perf/out/latency SPIN=0 EPOLL=0
# Needs wrk, nginx, taskset, curl. Everything listens on 127.0.0.1: floor 18081, nginx 18086,
# gateway 18093, gateway on epoll 18094.
set -euo pipefail
cd "$(dirname "$0")/.."
source perf/lib.sh
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
OPEN_SECONDS=${OPEN_SECONDS:-10}
CONNS=${CONNS:-64}
OPEN_CONNS=${OPEN_CONNS:-16}
CONFIG=${CONFIG:-perf/proxy-authz.yaml}
OUT=${OUT:-perf/out/latency}
SPIN=${SPIN:-0}
EPOLL=${EPOLL:-0}
cargo build --release --bin portcullis --example floor --example instructions --example openloop >/dev/null 2>&1
BIN=target/release/portcullis
EX=target/release/examples
mkdir -p "$OUT"
log=$OUT/runs.log
echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC'); $BIN ($CONFIG)" | tee "$log"
MCP_AUTH="Bearer $("$EX/instructions" print-token)"
export MCP_AUTH
nginx_conf "$OUT"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
taskset -c 0 "$EX/floor" 127.0.0.1:18081 & pids+=($!)
taskset -c 1 nginx -c "$PWD/$OUT/nginx.conf" & pids+=($!)
PERF_PORT=18093 RUST_LOG=warn taskset -c 1 "$BIN" --config "$CONFIG" & pids+=($!)
declare -A PORT=([floor]=18081 [nginx]=18086 [gateway]=18093 [epoll]=18094)
targets=(floor nginx gateway)
if ((EPOLL)); then
  MONOIO_FORCE_LEGACY_DRIVER=1 PERF_PORT=18094 RUST_LOG=warn taskset -c 1 "$BIN" --config "$CONFIG" & pids+=($!)
  targets+=(epoll)
fi
for t in "${targets[@]}"; do wait_ports "${PORT[$t]}"; done
for t in "${targets[@]}"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT[$t]}/mcp" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H 'mcp-protocol-version: 2026-07-28' \
    -H 'mcp-method: tools/call' -H 'mcp-name: hello' -H "Authorization: $MCP_AUTH" \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello","arguments":{"who":"Ada"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}')
  [[ $code == 200 ]] || { echo "$t answered HTTP $code" >&2; exit 1; }
done

wrk_run 18086 2 >/dev/null # warm-up (nginx's maximum is measured without the spinner)
line=$(wrk_run 18086 "$DURATION" | grep '^RESULT')
req=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
dur=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$line")
max=$((req * 1000000 / dur))
rate=$((max / 2))
echo "nginx maximum (wrk, $CONNS connections, ${DURATION}s): $max rps; open-loop rate $rate rps, $OPEN_CONNS connections, ${OPEN_SECONDS}s per run" | tee -a "$log"

if ((SPIN)); then
  taskset -c 1 nice -n 19 sh -c 'while :; do :; done' & pids+=($!)
  echo "cpu1 kept awake by a nice-19 busy loop (SPIN=1)" | tee -a "$log"
fi

declare -A P50 P99
order=("${targets[@]}")
for t in "${order[@]}"; do taskset -c 0 "$EX/openloop" "127.0.0.1:${PORT[$t]}" "$rate" 2 "$OPEN_CONNS" >/dev/null; done
for round in $(seq "$ROUNDS"); do
  for t in "${order[@]}"; do
    out=$(taskset -c 0 "$EX/openloop" "127.0.0.1:${PORT[$t]}" "$rate" "$OPEN_SECONDS" "$OPEN_CONNS")
    err=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$out")
    ((err == 0)) || { echo "$t: $err errors" >&2; exit 1; }
    P50[$t]+="$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$out") "
    P99[$t]+="$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$out") "
    echo "round=$round $t $out" | tee -a "$log"
  done
  order=("${order[@]:1}" "${order[0]}")
done

echo "== medians over $ROUNDS rounds (us)" | tee -a "$log"
declare -A M50 M99
for t in "${targets[@]}"; do
  M50[$t]=$(median <<<"${P50[$t]}")
  M99[$t]=$(median <<<"${P99[$t]}")
  echo "$t p50 ${M50[$t]} p99 ${M99[$t]}" | tee -a "$log"
done
awk -v f50="${M50[floor]}" -v f99="${M99[floor]}" -v n50="${M50[nginx]}" -v n99="${M99[nginx]}" \
  -v g50="${M50[gateway]}" -v g99="${M99[gateway]}" 'BEGIN {
  printf "added over the floor: nginx p50 %d p99 %d | gateway p50 %d p99 %d\n", n50-f50, n99-f99, g50-f50, g99-f99
  printf "gateway added / nginx added: p50 %.3f p99 %.3f (target <= 0.8)\n", (g50-f50)/(n50-f50), (g99-f99)/(n99-f99)
}' | tee -a "$log"
if ((EPOLL)); then
  awk -v f50="${M50[floor]}" -v f99="${M99[floor]}" -v n50="${M50[nginx]}" -v n99="${M99[nginx]}" \
    -v g50="${M50[epoll]}" -v g99="${M99[epoll]}" 'BEGIN {
    printf "gateway on epoll: added p50 %d p99 %d; / nginx added: p50 %.3f p99 %.3f\n", g50-f50, g99-f99, (g50-f50)/(n50-f50), (g99-f99)/(n99-f99)
  }' | tee -a "$log"
fi
