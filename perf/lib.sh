# Shared by perf/auth.sh and perf/authz.sh (sourced): interleaved wrk runs of
# perf/wrk/tools_call.lua (with MCP_AUTH when exported) against two gateways already listening,
# wrk on cpu0; prints each run, the medians over ROUNDS and the ratio second/first.
# Needs DURATION, CONNS, ROUNDS set.

wrk_run() { # port seconds
  taskset -c 0 wrk -t1 -c"$CONNS" -d"$2"s -s perf/wrk/tools_call.lua "http://127.0.0.1:$1/mcp"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

compare_rps() { # name_a port_a name_b port_b runs_log
  local -A port=([$1]=$2 [$3]=$4) rps=()
  local round name line req dur err
  wrk_run "$2" 2 >/dev/null # warm-up
  wrk_run "$4" 2 >/dev/null
  for round in $(seq "$ROUNDS"); do
    for name in "$1" "$3"; do
      line=$(wrk_run "${port[$name]}" "$DURATION" | grep '^RESULT')
      req=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
      dur=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$line")
      err=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$line")
      ((err == 0)) || { echo "$name: $err errors (a refused or denied call?)" >&2; exit 1; }
      rps[$name]+="$((req * 1000000 / dur)) "
      echo "round=$round $name rps=$((req * 1000000 / dur)) $line" | tee -a "$5"
    done
  done
  local a b
  a=$(median <<<"${rps[$1]}")
  b=$(median <<<"${rps[$3]}")
  echo "== medians over $ROUNDS rounds, ${DURATION}s each, $CONNS connections"
  echo "$1 rps $a (${rps[$1]})"
  echo "$3 rps $b (${rps[$3]})"
  awk -v a="$b" -v b="$a" -v n="$3/$1" 'BEGIN{printf "%s ratio %.3f\n", n, a/b}'
}
