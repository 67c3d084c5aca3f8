#!/usr/bin/env bash
# Instructions per request of one server, counted by valgrind's callgrind (stable on a loaded
# machine, unlike req/s): the server runs under callgrind, is warmed up, its counters are zeroed,
# wrk sends requests for a few seconds, the counters are dumped; the total divided by the requests
# wrk completed is printed. The dump stays in bench/.run/callgrind/ (callgrind_annotate reads it).
#
#   bench/callgrind.sh PATH COMMAND...        # COMMAND must listen on 127.0.0.1:$BENCH_CG_PORT
#   bench/callgrind.sh /hello target/release/hello --threads 1 --bind 127.0.0.1:20970
#
# Settings: BENCH_CG_PORT (20970), BENCH_CG_SECONDS (4), BENCH_CG_CONNECTIONS (10), BENCH_CG_HEADER
# (one extra request header for wrk, e.g. a cookie).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${BENCH_CG_PORT:-20970}"
SECONDS_MEASURED="${BENCH_CG_SECONDS:-4}"
CONNECTIONS="${BENCH_CG_CONNECTIONS:-10}"
OUT="$PWD/bench/.run/callgrind"
if [ $# -lt 2 ]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
path="$1"
shift
mkdir -p "$OUT"
name="$(basename "$1")-$$"
header=()
if [ -n "${BENCH_CG_HEADER:-}" ]; then
  header=(-H "$BENCH_CG_HEADER")
fi
valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.out" "$@" >"$OUT/$name.log" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  if curl -s -o /dev/null "http://127.0.0.1:$PORT$path"; then
    break
  fi
  sleep 0.2
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT$path"
wrk -t1 -c"$CONNECTIONS" -d2s "${header[@]}" "http://127.0.0.1:$PORT$path" >/dev/null
callgrind_control --zero "$SERVER_PID" >/dev/null
requests=$(wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_MEASURED}s" "${header[@]}" "http://127.0.0.1:$PORT$path" |
  sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
callgrind_control --dump="measured" "$SERVER_PID" >/dev/null
sleep 1
dump=$(ls -t "$OUT/$name.out"* | head -1)
total=$(callgrind_annotate "$dump" 2>/dev/null | sed -n 's/^\([0-9,]*\) (100.0%) *PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "$requests requests, $total instructions: $((total / requests)) instructions per request ($dump)"
