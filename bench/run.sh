#!/usr/bin/env bash
# The benchmark in one command: installs what it needs (apt, a Python venv, cargo builds), then runs
# every stack on 127.0.0.1 with wrk, prints the table with ratios and appends it to bench/RESULTS.md.
#
#   bench/run.sh          # the full run (4 rounds × (2 s warm-up + 8 s) per row, ~40 minutes)
#   BENCH_SUITE=framework bench/run.sh   # TechEmpower's tests, the middleware stack, todo (~25 minutes)
#   BENCH_ROUNDS=1 BENCH_DURATION=2 BENCH_WARMUP=1 BENCH_IDLE=0 BENCH_BLOCKING=0 bench/run.sh   # smoke
#
# Settings are environment variables (see bench/README.md); BENCH_SKIP_SETUP=1 skips the installs
# and builds.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH="$PWD/bench"
VENV="$BENCH/.venv"
export PATH="$PATH:/usr/sbin:/sbin"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

setup_apt() {
  local need=()
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
  command -v lighttpd >/dev/null 2>&1 || need+=(lighttpd)
  command -v spawn-fcgi >/dev/null 2>&1 || need+=(spawn-fcgi)
  command -v fcgiwrap >/dev/null 2>&1 || need+=(fcgiwrap)
  command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
  [ -e /usr/include/fcgi_stdio.h ] || need+=(libfcgi-dev)
  compgen -G "/usr/sbin/php-fpm*" >/dev/null || need+=(php-fpm)
  compgen -G "/etc/php/*/mods-available/apcu.ini" >/dev/null || need+=(php-apcu)
  # The framework rows' database (TechEmpower's tables, todo on PostgreSQL); psql loads the tables.
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
  command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
  if [ ${#need[@]} -gt 0 ]; then
    echo "bench: installing ${need[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # Debian may start system nginx/lighttpd/php-fpm services on install; the benchmark runs its own.
    local svc
    for svc in nginx lighttpd php-fpm postgresql; do
      $SUDO service "$svc" stop >/dev/null 2>&1 || true
    done
    for svc in /etc/init.d/php*-fpm; do
      if [ -e "$svc" ]; then
        $SUDO "$svc" stop >/dev/null 2>&1 || true
      fi
    done
  fi
}

setup_python() {
  local stamp="$VENV/.requirements"
  if [ ! -x "$VENV/bin/pip" ]; then
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
      # Debian keeps ensurepip in a package of its own.
      rm -rf "$VENV"
      echo "bench: installing python3-venv" >&2
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      python3 -m venv "$VENV"
    fi
  fi
  if ! cmp -s "$BENCH/python/requirements.txt" "$stamp"; then
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$BENCH/python/requirements.txt"
    cp "$BENCH/python/requirements.txt" "$stamp"
  fi
}

setup_c() {
  mkdir -p "$BENCH/.build"
  cc -O2 -Wall -o "$BENCH/.build/hello-fcgi" "$BENCH/c/hello-fcgi.c" -lfcgi
  cc -O2 -Wall -o "$BENCH/.build/hello-cgi" "$BENCH/c/hello-cgi.c"
}

setup_rust() {
  if [ "${BENCH_SUITE:-all}" = framework ]; then
    # Only what the framework rows run (each binary is a fat-LTO link of its own).
    cargo build --release --quiet -p example-hello -p example-techempower -p example-todo -p rgi-tests \
      --bin hello --bin techempower --bin todo --bin stackhello
  else
    # RGI's hello (and every other binary: the same feature set as the rest of the team's builds).
    cargo build --release --bins --quiet
  fi
  # The reference servers: a separate cargo project with its own lock file and target folder.
  cargo build --release --quiet --manifest-path "$BENCH/refs/Cargo.toml"
  if [ "${BENCH_SUITE:-all}" = framework ]; then
    return
  fi
  # hello again, built as a CGI program should be (statically linked, LTO, stripped): the
  # rgi-cgi-static row. Its own target folder, so the shared one keeps its usual flags.
  local host
  host="$(rustc -vV | sed -n 's/^host: //p')"
  CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=true RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --quiet -p example-hello --target "$host" --target-dir "$BENCH/.build/static-target"
  cp "$BENCH/.build/static-target/$host/release/hello" "$BENCH/.build/static-target/hello"
}

if [ "${BENCH_SKIP_SETUP:-0}" != 1 ]; then
  setup_apt
  setup_python
  setup_c
  setup_rust
fi

exec "$VENV/bin/python" "$BENCH/bench.py"
