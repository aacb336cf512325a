#!/usr/bin/env bash
# Before/after A/B of two portcullis builds on one workload, nginx proxy_pass as the baseline, in
# one run. Default workload (PERF.md's headline): a proxied tools/call on the 2026-07-28
# (stateless) wire with an RS256 bearer (verified-token cache hit) through perf/proxy-authz.yaml
# (JWT + a rule with a `matches` condition over the arguments) to the floor responder.
#   1. Throughput: before, after and nginx (perf/lib.sh's nginx_conf) alone on cpu1, wrk and the
#      floor on cpu0; ROUNDS interleaved runs of DURATION s, CONNS connections, the order rotating
#      each round (before after nginx, after nginx before, ...; ROTATE=0 keeps it fixed). Per run:
#      rps, and busy jiffies from /proc/stat over the run divided by the requests (cpu1 alone -
#      the proxy's core - and the whole machine). Medians with min/max, ratios of the medians and
#      medians of the per-round ratios.
#   2. Instructions per request (perf/e2e_instructions.sh's method with this workload): callgrind
#      on each gateway (epoll driver), N and 3N requests on one keep-alive connection from
#      perf/e2e_client.py, the floor outside valgrind, (Ir(3N) - Ir(N)) / 2N. User space only.
# Builds nothing: give it the binaries (build each tree with its own CARGO_TARGET_DIR first).
# Usage:
#   BEFORE_BIN=/tmp/a/target/release/portcullis AFTER_BIN=/tmp/b/target/release/portcullis \
#     bash perf/compare.sh
# env: DURATION=10 CONNS=64 ROUNDS=5 ROTATE=1 N=2000 (N=0 skips callgrind) IR_REPEAT=1 (odd)
#      CONFIG=perf/proxy-authz.yaml (BEFORE_CONFIG, AFTER_CONFIG: one per side; default CONFIG)
#      PREPARE (a command run once the floor is up, before the gateways start)
#      WRK_SCRIPT=perf/wrk/tools_call.lua
#      FLOOR, TOKEN_BIN (default: examples/floor and examples/instructions beside AFTER_BIN)
#      OUT=perf/out/compare (runs log; relative to the repo root, as nginx_conf expects)
# Needs wrk, nginx (nginx-light), valgrind, python3, curl. Everything listens on 127.0.0.1:
# floor 18081, nginx 18086, before 18092, after 18093, callgrind gateway 18090.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
: "${BEFORE_BIN:?path of the BEFORE portcullis binary}" "${AFTER_BIN:?path of the AFTER portcullis binary}"
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-5}
N=${N:-2000}
IR_REPEAT=${IR_REPEAT:-1}
CONFIG=${CONFIG:-perf/proxy-authz.yaml}
BEFORE_CONFIG=${BEFORE_CONFIG:-$CONFIG}
AFTER_CONFIG=${AFTER_CONFIG:-$CONFIG}
WRK_SCRIPT=${WRK_SCRIPT:-perf/wrk/tools_call.lua}
FLOOR=${FLOOR:-$(dirname "$AFTER_BIN")/examples/floor}
TOKEN_BIN=${TOKEN_BIN:-$(dirname "$AFTER_BIN")/examples/instructions}
OUT=${OUT:-perf/out/compare}
for tool in wrk nginx valgrind python3 curl taskset; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y wrk nginx-light valgrind)"; exit 1; }
done
for bin in "$BEFORE_BIN" "$AFTER_BIN" "$FLOOR" "$TOKEN_BIN"; do [ -x "$bin" ] || { echo "not executable: $bin"; exit 1; }; done
. perf/lib.sh
begin_runs "$OUT"

MCP_AUTH="Bearer $("$TOKEN_BIN" print-token)"
export MCP_AUTH
echo "== $(date -u '+%F %T') UTC; before $BEFORE_BIN ($BEFORE_CONFIG); after $AFTER_BIN ($AFTER_CONFIG); wrk $WRK_SCRIPT" | tee -a "$log"

nginx_conf "$OUT"
taskset -c 0 "$FLOOR" 127.0.0.1:18081 & pids+=($!)
taskset -c 1 nginx -c "$PWD/$OUT/nginx.conf" & pids+=($!)
if [ -n "${PREPARE:-}" ]; then wait_ports 18081; bash -c "$PREPARE"; fi
PERF_PORT=18092 RUST_LOG=warn taskset -c 1 "$BEFORE_BIN" --config "$BEFORE_CONFIG" & pids+=($!)
PERF_PORT=18093 RUST_LOG=warn taskset -c 1 "$AFTER_BIN" --config "$AFTER_CONFIG" & pids+=($!)
wait_ports 18081 18086 18092 18093

# The same request once through each target, then one the rule must refuse (lower-case name: the
# `matches` condition fails), so that a silent denial or a skipped rule cannot pass for speed.
call() { # port who
  curl -s -w ' HTTP %{http_code}' "http://127.0.0.1:$1/mcp" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
    -H 'Mcp-Method: tools/call' -H 'Mcp-Name: hello' -H "Authorization: $MCP_AUTH" \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"hello","arguments":{"who":"'"$2"'"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
}
for port in 18092 18093 18086; do echo "check :$port who=Ada -> $(call "$port" Ada)" | tee -a "$log"; done
for port in 18092 18093; do echo "check :$port who=ada -> $(call "$port" ada)" | tee -a "$log"; done

busy() { awk '/^cpu /{a=$2+$3+$4+$7+$8} /^cpu1 /{b=$2+$3+$4+$7+$8} END{print a, b}' /proc/stat; }
declare -A PORT=([before]=18092 [after]=18093 [nginx]=18086) RPS CPU1 CPUALL
names=(before after nginx)
wrk1() { taskset -c 0 wrk -t1 -c"$CONNS" -d"$2"s -s "$WRK_SCRIPT" "http://127.0.0.1:${PORT[$1]}/mcp"; }
for name in "${names[@]}"; do wrk1 "$name" 2 >/dev/null; done # warm-up
for round in $(seq "$ROUNDS"); do
  # The order rotates each round (before after nginx, after nginx before, ...) unless ROTATE=0,
  # so that no contender always runs first after a quiet spell or last before one.
  order=("${names[@]}")
  if [ "${ROTATE:-1}" = 1 ]; then r=$(((round - 1) % 3)); order=("${names[@]:r}" "${names[@]:0:r}"); fi
  for name in "${order[@]}"; do
    read -r all0 one0 < <(busy)
    line=$(wrk1 "$name" "$DURATION" | grep '^RESULT')
    read -r all1 one1 < <(busy)
    req=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
    dur=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$line")
    err=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$line")
    ((err == 0)) || { echo "$name: $err errors" | tee -a "$log"; exit 1; }
    rps=$((req * 1000000 / dur))
    c1=$(awk -v j=$((one1 - one0)) -v r="$req" 'BEGIN{printf "%.2f", j*10000/r}')
    ca=$(awk -v j=$((all1 - all0)) -v r="$req" 'BEGIN{printf "%.2f", j*10000/r}')
    echo "round=$round $name rps=$rps cpu1_us_per_req=$c1 machine_us_per_req=$ca $line" | tee -a "$log"
    RPS[$name]+="$rps "; CPU1[$name]+="$c1 "; CPUALL[$name]+="$ca "
  done
done

stats() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{printf "%s (min %s, max %s)", a[int((NR+1)/2)], a[1], a[NR]}'; }
med() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
ratios() { # "a1 a2 ..." "b1 b2 ...": per-round a/b, then their median (min, max)
  paste -d' ' <(tr ' ' '\n' <<<"$1" | grep -v '^$') <(tr ' ' '\n' <<<"$2" | grep -v '^$') |
    awk '{printf "%.3f ", $1/$2}' | stats
}
{
  echo "== medians over $ROUNDS interleaved rounds, ${DURATION}s each, $CONNS connections"
  for name in "${names[@]}"; do
    echo "$name rps $(stats <<<"${RPS[$name]}") | cpu1 us/req $(stats <<<"${CPU1[$name]}") | machine us/req $(stats <<<"${CPUALL[$name]}")"
  done
  for pair in after:before before:nginx after:nginx; do
    a=${pair%:*} b=${pair#*:}
    printf '%s/%s  rps %.3f (per round: %s)  cpu1 %.3f (per round: %s)  machine %.3f (per round: %s)\n' "$a" "$b" \
      "$(awk -v x="$(med <<<"${RPS[$a]}")" -v y="$(med <<<"${RPS[$b]}")" 'BEGIN{print x/y}')" "$(ratios "${RPS[$a]}" "${RPS[$b]}")" \
      "$(awk -v x="$(med <<<"${CPU1[$a]}")" -v y="$(med <<<"${CPU1[$b]}")" 'BEGIN{print x/y}')" "$(ratios "${CPU1[$a]}" "${CPU1[$b]}")" \
      "$(awk -v x="$(med <<<"${CPUALL[$a]}")" -v y="$(med <<<"${CPUALL[$b]}")" 'BEGIN{print x/y}')" "$(ratios "${CPUALL[$a]}" "${CPUALL[$b]}")"
  done
} | tee -a "$log"

# Throughput targets down; the floor stays up as the backend of the callgrind runs.
kill "${pids[@]:1}" 2>/dev/null || true
((N > 0)) || exit 0
ir() { # binary requests config -> Ir (user space, whole process)
  local out pid; out=$(mktemp)
  PERF_PORT=18090 RUST_LOG=warn MONOIO_FORCE_LEGACY_DRIVER=1 valgrind --tool=callgrind \
    --callgrind-out-file=/dev/null "$1" --config "$3" 2>"$out" &
  pid=$!
  for _ in $(seq 600); do (exec 3<>/dev/tcp/127.0.0.1/18090) 2>/dev/null && break; sleep 0.1; done
  python3 perf/e2e_client.py 127.0.0.1 18090 "$2" stateless
  kill -TERM "$pid"; wait "$pid" || true
  sed -nE 's/.*Collected : ([0-9]+).*/\1/p' "$out"; rm -f "$out"
}
declare -A BIN=([before]=$BEFORE_BIN [after]=$AFTER_BIN) CFG=([before]=$BEFORE_CONFIG [after]=$AFTER_CONFIG) IR
for rep in $(seq "$IR_REPEAT"); do
  for name in before after; do
    a=$(ir "${BIN[$name]}" "$N" "${CFG[$name]}"); b=$(ir "${BIN[$name]}" $((3 * N)) "${CFG[$name]}")
    per=$(((b - a) / (2 * N)))
    IR[$name]+="$per "
    echo "instructions rep=$rep $name $per/request (N=$N: Ir $a, 3N: Ir $b)" | tee -a "$log"
  done
done
{
  echo "== instructions per request (callgrind, epoll driver, user space)"
  for name in before after; do echo "$name $(stats <<<"${IR[$name]}")"; done
  x=$(med <<<"${IR[before]}") y=$(med <<<"${IR[after]}")
  awk -v x="$x" -v y="$y" 'BEGIN{printf "after - before %+d (%+.2f%%)\n", y-x, 100*(y-x)/x}'
} | tee -a "$log"
