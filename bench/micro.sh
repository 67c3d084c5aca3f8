#!/usr/bin/env bash
# RGI's criterion micro-benchmarks of the hot path (gateway-spec/benches/environ.rs: environ from an
# HTTP request, environ from CGI/FastCGI variables, a hello application call), run once; their
# numbers are appended to bench/RESULTS.md (BENCH_RESULTS=- to only print them).
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS="${BENCH_RESULTS:-bench/RESULTS.md}"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT

# Before anything is appended: RESULTS.md itself must not count as an uncommitted change.
VERSION="RGI $(git rev-parse --short HEAD)$(git status --porcelain --untracked-files=no | grep -q . && echo ' (+ uncommitted changes)')"

cargo bench -p rgi --quiet 2>&1 | tee "$LOG"

{
  echo
  echo "## $(date -u '+%Y-%m-%d %H:%M') UTC — criterion micro-benchmarks (cargo bench -p rgi)"
  echo
  echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- versions: $VERSION, $(rustc --version)"
  echo
  echo "| benchmark | time per iteration (criterion low / estimate / high) |"
  echo "|---|---|"
  # criterion prints "name  time:   [low est high]" on one line, or the name alone on the line
  # before when it is long.
  awk '
    /time:/ {
      name = $1
      if ($1 == "time:") { name = prev }
      line = $0
      sub(/.*time: +\[/, "", line)
      sub(/\].*/, "", line)
      printf "| %s | %s |\n", name, line
    }
    { prev = $1 }
  ' "$LOG"
} | if [ "$RESULTS" = "-" ]; then cat; else tee -a "$RESULTS"; fi
