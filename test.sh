#!/usr/bin/env bash
# Runs every RGI test on a fresh Debian machine with the Rust toolchain:
# installs what the tests need (curl, nginx, lighttpd, apache2, redis-server, h2load…, cargo-deny) when missing,
# builds once, tests many.
# The tests start and stop their own servers (loopback only) and stop every process by PID.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v lighttpd >/dev/null 2>&1 || [ -x /usr/sbin/lighttpd ] || need+=(lighttpd)
command -v apache2 >/dev/null 2>&1 || [ -x /usr/sbin/apache2 ] || need+=(apache2)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts a system nginx/lighttpd/apache2/redis after install; the tests run their own.
  for svc in nginx lighttpd apache2 redis-server; do
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi
export PATH="$PATH:/usr/sbin:/sbin"

# Build every binary once; the end-to-end tests run them.
cargo build --workspace --bins --quiet
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo fmt --all -- --check
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# Licences, banned crates and sources (offline). Advisories need the RustSec database from GitHub,
# which is not checked here: see SECURITY.md.
command -v cargo-deny >/dev/null 2>&1 || cargo install --locked --quiet cargo-deny
cargo fetch --quiet   # every platform's crates, so cargo-deny's metadata needs no network
cargo deny --offline check licenses bans sources
# Every test, the fuzz corpus replay (fuzz/targets) included.
cargo test --workspace --no-fail-fast
