# Sourced by the perf scripts. rounds (perf/rest.sh, perf/tls.sh): interleaved wrk runs of the
# caller's `run` over several targets. compare_rps (perf/auth.sh, perf/authz.sh, perf/logging.sh): interleaved wrk runs
# of perf/wrk/tools_call.lua (with MCP_AUTH when exported) against two gateways already
# listening, wrk on cpu0; prints each run, the medians over ROUNDS and the ratio second/first
# (needs DURATION, CONNS, ROUNDS set). nginx_conf and wait_ports (perf/proxy.sh, perf/rest.sh):
# the nginx baseline and start-up. begin_runs (perf/compare.sh, perf/duel.sh): the run log and cleanup.

# Writes $1/nginx.conf: one nginx worker on 127.0.0.1:18086 relaying everything to the floor on
# 127.0.0.1:18081 over upstream keep-alive connections (the baseline of PERF.md).
nginx_conf() {
  cat > "$1/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $PWD/$1/nginx.pid;
error_log $PWD/$1/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $PWD/$1/body;
  proxy_temp_path $PWD/$1/proxy;
  upstream floor { server 127.0.0.1:18081; keepalive 64; }
  server {
    listen 127.0.0.1:18086;
    location / { proxy_pass http://floor; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
}

# Creates the run directory $1 and an empty $1/runs.txt, sets `log` to it and `pids` to an empty
# list of background processes, which are killed when the script exits.
begin_runs() {
  mkdir -p "$1"
  log=$1/runs.txt
  : >"$log"
  pids=()
  trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
}

# Waits (up to 10 s each) until every port given accepts connections on 127.0.0.1.
wait_ports() {
  local port
  for port in "$@"; do
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  done
}

wrk_run() { # port seconds
  taskset -c 0 wrk -t1 -c"$CONNS" -d"$2"s -s perf/wrk/tools_call.lua "http://127.0.0.1:$1/mcp"
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

# Warm-up, then ROUNDS interleaved runs of `run NAME SECONDS` (defined by the caller: one wrk run
# that prints its RESULT line) for each name. Every run is printed and appended to the log; its
# rps is appended to RPS[name] (the caller declares `declare -A RPS`). Exits on any wrk error.
rounds() { # runs_log name...
  local log=$1 round name line req dur err
  shift
  for name in "$@"; do run "$name" 2 >/dev/null; done # warm-up
  for round in $(seq "$ROUNDS"); do
    for name in "$@"; do
      line=$(run "$name" "$DURATION" | grep '^RESULT')
      req=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$line")
      dur=$(sed -E 's/.*duration_us=([0-9]+).*/\1/' <<<"$line")
      err=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$line")
      ((err == 0)) || { echo "$name: $err errors (a refused or denied call?)" >&2; exit 1; }
      RPS[$name]+="$((req * 1000000 / dur)) "
      echo "round=$round $name rps=$((req * 1000000 / dur)) $line" | tee -a "$log"
    done
  done
}

compare_rps() { # name_a port_a name_b port_b runs_log
  declare -gA RPS=() CMP_PORT=([$1]=$2 [$3]=$4)
  run() { wrk_run "${CMP_PORT[$1]}" "$2"; }
  rounds "$5" "$1" "$3"
  local a b
  a=$(median <<<"${RPS[$1]}")
  b=$(median <<<"${RPS[$3]}")
  echo "== medians over $ROUNDS rounds, ${DURATION}s each, $CONNS connections"
  echo "$1 rps $a (${RPS[$1]})"
  echo "$3 rps $b (${RPS[$3]})"
  awk -v a="$b" -v b="$a" -v n="$3/$1" 'BEGIN{printf "%s ratio %.3f\n", n, a/b}'
}
