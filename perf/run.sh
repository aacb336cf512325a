#!/usr/bin/env bash
# Saturation throughput and CPU per request: the gateway (io_uring and epoll drivers) against the
# floor responder, method of shared/reference/PERF.md: systems under test alone on cpu1, wrk on
# cpu0, runs interleaved (A B C A B C ...), median of ROUNDS with the spread.
# Usage: bash perf/run.sh   (env: DURATION=10 CONNS=64 ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
cargo build --release --example floor --bin portcullis >/dev/null 2>&1
mkdir -p perf/out
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

taskset -c 1 target/release/examples/floor 127.0.0.1:18081 & pids+=($!)
PERF_PORT=18080 RUST_LOG=warn taskset -c 1 target/release/portcullis --config perf/gateway.yaml & pids+=($!)
PERF_PORT=18082 RUST_LOG=warn MONOIO_FORCE_LEGACY_DRIVER=1 taskset -c 1 target/release/portcullis --config perf/gateway.yaml & pids+=($!)
for port in 18080 18081 18082; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
declare -A RPS CPU
names=(floor gateway-uring gateway-epoll)
declare -A PORT=([floor]=18081 [gateway-uring]=18080 [gateway-epoll]=18082)
for name in "${names[@]}"; do # warm-up
  taskset -c 0 wrk -t1 -c"$CONNS" -d2s -s perf/wrk/tools_call.lua "http://127.0.0.1:${PORT[$name]}/mcp" >/dev/null
done
for round in $(seq "$ROUNDS"); do
  for name in "${names[@]}"; do
    b0=$(busy)
    line=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}"s -s perf/wrk/tools_call.lua "http://127.0.0.1:${PORT[$name]}/mcp" | grep '^RESULT')
    b1=$(busy)
    req=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
    dur=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$line")
    err=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$line")
    rps=$(( req * 1000000 / dur ))
    # jiffies are 10 ms: whole-machine busy CPU per request in microseconds (wrk included).
    cpu=$(awk -v j=$((b1 - b0)) -v r="$req" 'BEGIN{printf "%.2f", j*10000/r}')
    echo "round=$round $name rps=$rps cpu_us_per_req=$cpu errors=$err $line" | tee -a perf/out/runs.txt
    RPS[$name]+="$rps "
    CPU[$name]+="$cpu "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)] " (min " a[1] ", max " a[NR] ")"}'; }
echo "== medians over $ROUNDS rounds, ${DURATION}s each, $CONNS connections"
for name in "${names[@]}"; do
  echo "$name rps $(median <<<"${RPS[$name]}") cpu_us/req $(median <<<"${CPU[$name]}")"
done
