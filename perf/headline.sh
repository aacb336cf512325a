#!/usr/bin/env bash
# The headline figure of issue 21's table on this machine: a proxied 2026-07-28 `tools/call`
# carrying an RS256 bearer (verified-token cache hit), checked against a rule with a CEL
# condition over the arguments (perf/proxy-authz.yaml), to the floor responder - the gateway's
# rps and CPU per request on its core against nginx proxy_pass of the same bytes, and the
# gateway's user-space instructions per request.
#
#   bash perf/headline.sh            # ROUNDS=5 DURATION=10 N=2000 (N=0 skips callgrind)
#
# It builds the release binary and the perf examples, then runs perf/compare.sh with the same
# build on both sides (so the "before" and "after" rows are two samples of the gateway): read the
# `after/nginx` line (rps and CPU ratios) and the instructions. Needs wrk, nginx, valgrind,
# python3, curl, taskset; two CPUs (load on cpu0, each system under test alone on cpu1).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin portcullis --example floor --example instructions >/dev/null
BIN=$PWD/target/release/portcullis
BEFORE_BIN=$BIN AFTER_BIN=$BIN OUT=${OUT:-perf/out/headline} ROUNDS=${ROUNDS:-5} DURATION=${DURATION:-10} \
  N=${N:-2000} bash perf/compare.sh | tee "${TMPDIR:-/tmp}/portcullis-headline.log"
echo "== headline: the gateway (rows 'after') against nginx:"
grep -E '^after/nginx|^after [0-9]+ \(' "${TMPDIR:-/tmp}/portcullis-headline.log" || true
