#!/usr/bin/env bash
# Runs the whole sdash test suite. Tests start their own nats-server (random port, temporary
# store) and create a database of their own on the PostgreSQL server named by
# SDASH_TEST_DATABASE_URL (default: postgres://postgres@127.0.0.1:5432/postgres).
# This script only makes sure those two programs are there, then runs cargo nextest.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'sdash test: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"; else return 1; fi; }
apt_install() {
  command -v apt-get >/dev/null || return 1
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 && return 0
  as_root apt-get update -q >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1
}

# nats-server: the tests spawn their own copies of it.
if [ -z "${SDASH_NATS_SERVER_BIN:-}" ] && ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
  say "nats-server is missing; installing Debian's nats-server package"
  apt_install nats-server || { say "cannot install nats-server: install it (apt-get install nats-server) or set SDASH_NATS_SERVER_BIN"; exit 1; }
fi

# Chromium and chromedriver: the dashboard's browser tests drive a real headless browser.
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
  say "installing chromium and chromium-driver (dashboard browser tests)"
  apt_install chromium chromium-driver || { say "cannot install chromium/chromium-driver: the dashboard tests need them"; exit 1; }
fi

# Prometheus and Alertmanager: the fleet-metrics and notifier tests run the real programs.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null || ! command -v prometheus-alertmanager >/dev/null; then
  say "installing prometheus and prometheus-alertmanager (fleet metrics and notifier tests)"
  apt_install prometheus prometheus-alertmanager || { say "cannot install prometheus/prometheus-alertmanager: the fleet-metrics and notifier tests need them"; exit 1; }
fi
# Debian's packages start the daemons where an init system runs; the tests start their own.

# PostgreSQL: tests need a server they may create databases on.
pg_url="${SDASH_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_up() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/5432" 2>/dev/null; }
if [ -z "${SDASH_TEST_DATABASE_URL:-}" ] && ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null; then
    say "PostgreSQL is not running on 127.0.0.1:5432; installing Debian's postgresql package"
    apt_install postgresql || { say "cannot install PostgreSQL: start one and set SDASH_TEST_DATABASE_URL"; exit 1; }
  fi
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$version" ]; then
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    # Local trust auth for the postgres user over TCP, as the tests expect.
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
  pg_up || { say "PostgreSQL is still not reachable on 127.0.0.1:5432: start one and set SDASH_TEST_DATABASE_URL"; exit 1; }
fi
# PostgreSQL's tools: the switchover test makes its own primary and replica (initdb, pg_basebackup).
if [ -z "${SDASH_PG_BIN:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  say "installing Debian's postgresql package (the switchover test runs initdb and pg_basebackup)"
  apt_install postgresql || { say "cannot install PostgreSQL's tools: install them or set SDASH_PG_BIN to their directory"; exit 1; }
fi
export SDASH_TEST_DATABASE_URL="$pg_url"

if ! cargo nextest --version >/dev/null 2>&1; then
  say "cargo-nextest is missing; installing it"
  cargo install --locked cargo-nextest >/dev/null
fi

# Build once, then run every crate's tests; the profile (retries, timeouts) is in .config/nextest.toml.
cargo nextest run --workspace --all-targets --no-fail-fast "$@"
