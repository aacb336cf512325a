#!/usr/bin/env bash
# Two gateways at once on one core: A and B both pinned to cpu1, each saturated by its own wrk
# (on cpu0, beside the floor) for the same DURATION. The kernel shares cpu1 fairly between the
# two busy workers, so B's rps / A's rps is the inverse ratio of their CPU cost per request, and
# a change of the machine's speed during a round (seen here: +-25% within minutes) touches both
# sides at once. Sequential rounds (perf/compare.sh) carry that drift into each ratio; here an
# A/A run gives 0.99-1.00. Use it for the cost of a feature: the same binary with two configs.
#   bash perf/duel.sh                   # A = perf/proxy-authz.yaml, B = perf/proxy-governance.yaml
#   A_CONFIG=... B_CONFIG=... A_BIN=... B_BIN=... ROUNDS=5 DURATION=10 CONNS=32 bash perf/duel.sh
#   B_CONFIG=nginx bash perf/duel.sh    # B = nginx proxy_pass (one worker, perf/lib.sh's config)
# Sharing the core changes the load point: each process finds more events per wake-up and so
# costs less per request than alone. Two configurations of one binary batch alike, so their
# ratio holds; the gateway against nginx (io_uring against epoll) batch differently, so that
# ratio answers "cost per request with the core shared", not PERF.md's headline method.
# B's pins are recorded first when B_CONFIG names any (`portcullis pins record`). Needs wrk; the
# bearer token comes from examples/instructions. Everything listens on 127.0.0.1:
# floor 18081, A 18092, B 18093.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
A_CONFIG=${A_CONFIG:-perf/proxy-authz.yaml}
B_CONFIG=${B_CONFIG:-perf/proxy-governance.yaml}
A_BIN=${A_BIN:-target/release/portcullis}
B_BIN=${B_BIN:-$A_BIN}
OUT=${OUT:-perf/out/duel}
for tool in wrk taskset pgrep; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y wrk nginx-light)"; exit 1; }
done
if [ "$A_BIN" = target/release/portcullis ]; then
  cargo build --release --bin portcullis --example floor --example instructions >/dev/null 2>&1
fi
. perf/lib.sh
begin_runs "$OUT"
MCP_AUTH="Bearer $(target/release/examples/instructions print-token)"
export MCP_AUTH
echo "== $(date -u '+%F %T') UTC; A $A_BIN ($A_CONFIG); B $B_BIN ($B_CONFIG); $CONNS connections each" | tee -a "$log"

taskset -c 0 target/release/examples/floor 127.0.0.1:18081 & pids+=($!)
wait_ports 18081
if [ "$B_CONFIG" != nginx ] && grep -q '^ *pins:' "$B_CONFIG"; then "$B_BIN" pins record --config "$B_CONFIG" | tee -a "$log"; fi
PERF_PORT=18092 RUST_LOG=warn taskset -c 1 "$A_BIN" --config "$A_CONFIG" & pids+=($!) apid=$!
if [ "$B_CONFIG" = nginx ]; then
  # nginx_conf: one worker relaying to the floor on 18081; its worker does the work, so its
  # ticks are the ones counted (the master sleeps).
  nginx_conf "$OUT"
  sed -i 's/listen 127.0.0.1:18086/listen 127.0.0.1:18093/' "$OUT/nginx.conf"
  taskset -c 1 nginx -c "$PWD/$OUT/nginx.conf" & pids+=($!)
  wait_ports 18093
  bpid=$(pgrep -P "${pids[-1]}" | head -1)
else
  PERF_PORT=18093 RUST_LOG=warn taskset -c 1 "$B_BIN" --config "$B_CONFIG" & pids+=($!) bpid=$!
fi
wait_ports 18092 18093
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system CPU of a process, in ticks

load() { # port seconds file: wrk's RESULT line
  taskset -c 0 wrk -t1 -c"$CONNS" -d"$2"s -s perf/wrk/tools_call.lua "http://127.0.0.1:$1/mcp" | grep '^RESULT' >"$3"
}
field() { sed -E "s/.*$1=([0-9]+).*/\\1/" "$2"; }
both() { # seconds
  load 18092 "$1" "$OUT/a" & local a=$!
  load 18093 "$1" "$OUT/b" & local b=$!
  wait "$a" "$b"
}
both 2 # warm-up
ratios="" cpus=""
for round in $(seq "$ROUNDS"); do
  a0=$(ticks "$apid") b0=$(ticks "$bpid")
  both "$DURATION"
  a1=$(ticks "$apid") b1=$(ticks "$bpid")
  for side in a b; do
    err=$(field errors "$OUT/$side")
    ((err == 0)) || { echo "$side: $err errors (a refused or denied call?)" | tee -a "$log"; exit 1; }
  done
  a=$(field requests "$OUT/a") b=$(field requests "$OUT/b")
  r=$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b/a}')
  # CPU per request of each process (what the fair share assumes equal is checked, not assumed).
  c=$(awk -v a="$a" -v b="$b" -v ca=$((a1 - a0)) -v cb=$((b1 - b0)) 'BEGIN{printf "%.3f", (cb/b)/(ca/a)}')
  ratios+="$r " cpus+="$c "
  echo "round=$round A requests=$a cpu_ticks=$((a1 - a0)) B requests=$b cpu_ticks=$((b1 - b0)) B/A rps=$r cpu/request=$c" | tee -a "$log"
done
summary() { # label values
  tr ' ' '\n' <<<"$2" | grep -v '^$' | sort -g |
    awk -v l="$1" '{a[NR]=$1} END{printf "%s: median %s (min %s, max %s) over %d rounds\n", l, a[int((NR+1)/2)], a[1], a[NR], NR}'
}
{ summary "B/A throughput" "$ratios"; summary "B/A CPU per request" "$cpus"; } | tee -a "$log"
