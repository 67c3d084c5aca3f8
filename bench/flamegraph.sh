#!/usr/bin/env bash
# A flamegraph of RGI's HTTP hello path: target/release/hello --threads 2 under wrk (-t2 -c50),
# sampled with perf for a few seconds, folded and drawn with inferno (installed with cargo into
# bench/.tools). Writes bench/flamegraph-http-hello.svg and bench/flamegraph-http-hello.txt (the
# hottest functions as text).
#
# Where perf cannot sample (no perf_event_open in the container), it falls back to
# valgrind --tool=callgrind under a short, light load and writes bench/callgrind-http-hello.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH="$PWD/bench"
export PATH="$PATH:/usr/sbin:/sbin:$BENCH/.tools/bin"
PORT="${BENCH_FLAME_PORT:-20990}"
SECONDS_SAMPLED="${BENCH_FLAME_SECONDS:-8}"
OUT="$BENCH/.run/flamegraph"
HELLO="${CARGO_TARGET_DIR:-$PWD/target}/release/hello"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
need=()
command -v perf >/dev/null 2>&1 || need+=(linux-perf)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v inferno-flamegraph >/dev/null 2>&1 ||
  cargo install inferno --locked --quiet --root "$BENCH/.tools"
cargo build --release --bins --quiet

rm -rf "$OUT"
mkdir -p "$OUT"
SERVER_PID=""
WRK_PID=""
cleanup() {
  for pid in $WRK_PID $SERVER_PID; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $WRK_PID $SERVER_PID; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

wait_ready() {
  local _
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "flamegraph: hello did not listen on 127.0.0.1:$PORT" >&2
  return 1
}

if perf record -e cpu-clock -o "$OUT/probe.data" -- true >/dev/null 2>&1; then
  "$HELLO" --bind "127.0.0.1:$PORT" --threads 2 >"$OUT/hello.log" 2>&1 &
  SERVER_PID=$!
  wait_ready
  wrk -t2 -c50 -d"$((SECONDS_SAMPLED + 4))s" "http://127.0.0.1:$PORT/hello" >"$OUT/wrk.txt" 2>&1 &
  WRK_PID=$!
  sleep 2
  perf record -e cpu-clock -F 499 --call-graph dwarf,32768 -p "$SERVER_PID" -o "$OUT/perf.data" \
    -- sleep "$SECONDS_SAMPLED" >"$OUT/perf-record.log" 2>&1
  wait "$WRK_PID" || true
  WRK_PID=""
  perf script -i "$OUT/perf.data" 2>/dev/null | inferno-collapse-perf >"$OUT/folded.txt"
  inferno-flamegraph --title "RGI HTTP hello (hello --threads 2, wrk -t2 -c50), perf cpu-clock" \
    <"$OUT/folded.txt" >"$BENCH/flamegraph-http-hello.svg"
  {
    echo "# RGI HTTP hello under wrk -t2 -c50 ($(date -u '+%Y-%m-%d %H:%M UTC'); $(grep -E 'Requests/sec' "$OUT/wrk.txt" | tr -s ' ' || true) while sampled)"
    echo
    echo "## Inclusive share of the samples (a frame counted once per stack)"
    awk '
      {
        n = $NF; total += n
        sub(/ [0-9]+$/, "")
        split($0, frames, ";")
        delete seen
        for (i in frames) {
          f = frames[i]
          gsub(/<[^<>]*>/, "", f); gsub(/<[^<>]*>/, "", f)
          if (f ~ /^(rgi|hyper::proto::h1::dispatch::Dispatcher::poll_(read|write|flush)$|.*__GI___writev|__libc_recv|epoll_wait$|.*futex)/ && !(f in seen)) {
            seen[f] = 1; share[f] += n
          }
        }
      }
      END { for (f in share) printf "%6.1f%%  %s\n", 100 * share[f] / total, f }
    ' "$OUT/folded.txt" | sort -rn | head -30
    echo
    echo "## Hottest functions (self time, perf report)"
    perf report -i "$OUT/perf.data" --no-children --sort symbol --stdio --percent-limit 0.7 2>/dev/null |
      grep -E '^ +[0-9.]+%' | sed -E 's/ +- +- *$//; s/ +$//' | head -40
  } >"$BENCH/flamegraph-http-hello.txt"
  echo "flamegraph: wrote bench/flamegraph-http-hello.svg and bench/flamegraph-http-hello.txt"
else
  echo "flamegraph: perf cannot sample here; using callgrind" >&2
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
    "$HELLO" --bind "127.0.0.1:$PORT" --threads 2 >"$OUT/hello.log" 2>&1 &
  SERVER_PID=$!
  wait_ready
  wrk -t1 -c4 -d"${SECONDS_SAMPLED}s" "http://127.0.0.1:$PORT/hello" >"$OUT/wrk.txt" 2>&1
  kill -INT "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
  callgrind_annotate "$OUT/callgrind.out" 2>/dev/null | head -60 >"$BENCH/callgrind-http-hello.txt"
  echo "flamegraph: wrote bench/callgrind-http-hello.txt"
fi
