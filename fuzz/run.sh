#!/usr/bin/env bash
# Fuzz every target for SECONDS each (default 60) with cargo-fuzz on nightly, starting from the
# committed corpus (new inputs go to a scratch copy, so the repository is not touched), and print the
# executions per target. A crash stops with the input in fuzz/artifacts/TARGET/.
#   fuzz/run.sh 120            # every target, 2 minutes each
#   fuzz/run.sh 600 router     # one target
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
shift || true
command -v cargo-fuzz >/dev/null || { echo "run.sh: cargo install cargo-fuzz" >&2; exit 1; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build -a >/dev/null   # -a: debug assertions (overflow checks) on
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch" /tmp/rgi-fuzz-*' EXIT
status=0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "artifacts/$t"
  log="$scratch/$t.log"
  if cargo +nightly fuzz run -a "$t" "$scratch/$t" "$PWD/corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
      -artifact_prefix="$PWD/artifacts/$t/" >"$log" 2>&1; then
    result="ok"
  else
    result="CRASH (see fuzz/artifacts/$t/)"; status=1
    tail -40 "$log" >&2
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "$t: ${execs} executions in ${seconds}s: $result"
done
exit $status
