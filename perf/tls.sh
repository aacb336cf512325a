#!/usr/bin/env bash
# TLS termination cost: the gateway answering perf/wrk/tools_call.lua over plain HTTP and over
# TLS (same config, perf/gateway-tls.yaml), and nginx proxy_pass to the floor responder over
# plain HTTP and over TLS with the same certificate (ECDSA P-256, TLS 1.3, keep-alive: the
# handshake is amortized, the records are not). PERF.md placement: systems under test alone on
# cpu1, wrk and the floor on cpu0; runs interleaved, median of ROUNDS.
# Usage: bash perf/tls.sh   (env: DURATION=10 CONNS=64 ROUNDS=3); needs wrk, nginx and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
for c in wrk nginx openssl; do command -v $c >/dev/null || { echo "needs $c"; exit 1; }; done
cargo build --release --example floor --bin portcullis >/dev/null 2>&1
out=perf/out/tls; mkdir -p "$out"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$out/key.pem" -out "$out/cert.pem" 2>/dev/null
nginx_conf "$out"
# The same nginx also terminates TLS on 18096 with the gateway's certificate.
sed -i "s|^  server {|  server {\n    listen 127.0.0.1:18096 ssl;\n    ssl_certificate $PWD/$out/cert.pem;\n    ssl_certificate_key $PWD/$out/key.pem;\n    ssl_protocols TLSv1.3;|" "$out/nginx.conf"
taskset -c 0 target/release/examples/floor 127.0.0.1:18081 & pids+=($!)
taskset -c 1 nginx -c "$PWD/$out/nginx.conf" & pids+=($!)
PERF_PORT=18080 RUST_LOG=warn taskset -c 1 target/release/portcullis --config perf/gateway.yaml & pids+=($!)
PERF_PORT=18090 PERF_CERT="$PWD/$out/cert.pem" PERF_KEY="$PWD/$out/key.pem" RUST_LOG=warn \
  taskset -c 1 target/release/portcullis --config perf/gateway-tls.yaml & pids+=($!)
wait_ports 18080 18081 18086 18090 18096

declare -A RPS URL=([gateway]=http://127.0.0.1:18080/mcp [gateway-tls]=https://127.0.0.1:18090/mcp
  [nginx]=http://127.0.0.1:18086/mcp [nginx-tls]=https://127.0.0.1:18096/mcp)
names=(gateway gateway-tls nginx nginx-tls)
run() { taskset -c 0 wrk -t1 -c"$CONNS" -d"$2"s -s perf/wrk/tools_call.lua "${URL[$1]}"; }
rounds "$out/runs.txt" "${names[@]}"
echo "== medians over $ROUNDS rounds, ${DURATION}s each, $CONNS connections"
declare -A M
for name in "${names[@]}"; do M[$name]=$(median <<<"${RPS[$name]}"); echo "$name rps ${M[$name]} (${RPS[$name]})"; done
awk -v t="${M[gateway-tls]}" -v p="${M[gateway]}" -v nt="${M[nginx-tls]}" -v np="${M[nginx]}" 'BEGIN{
  printf "gateway tls/plain %.3f; nginx tls/plain %.3f; gateway-tls/nginx-tls %.3f\n", t/p, nt/np, t/nt }'
