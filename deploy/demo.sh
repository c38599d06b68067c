#!/usr/bin/env bash
# Runs the whole sdash pipeline on this machine with the embedded default database (SQLite):
# nats-server with JetStream (own port, data in var/demo), the simulator with a demo fleet (and
# two years of its capacity history, imported with `sdash-writer import --from-csv`),
# the writer, two collectors sharing the fleet, the API with the dashboard, and, where Debian's
# prometheus-alertmanager is installed, an Alertmanager fed by sdash-notify.
# Ctrl-C stops everything cleanly. Settings: SDASH_DEMO_SYSTEMS (24), SDASH_DEMO_PORT (8080),
# SDASH_DEMO_NATS_PORT (14222), SDASH_DEMO_SIM_PORT (18443), SDASH_DEMO_ADMIN_PORT (19101; the
# collectors take the next two), SDASH_DEMO_DIR (var/demo), SDASH_DEMO_PROFILE (debug|release,
# default release), SDASH_DEMO_BIN_DIR (use binaries built already instead of building).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
data="${SDASH_DEMO_DIR:-$root/var/demo}"
systems="${SDASH_DEMO_SYSTEMS:-24}"
api_port="${SDASH_DEMO_PORT:-8080}"
nats_port="${SDASH_DEMO_NATS_PORT:-14222}"
sim_port="${SDASH_DEMO_SIM_PORT:-18443}"
profile="${SDASH_DEMO_PROFILE:-release}"
admin_port="${SDASH_DEMO_ADMIN_PORT:-19101}"
alertmanager_port="${SDASH_DEMO_ALERTMANAGER_PORT:-19093}"

say() { printf '\033[1msdash demo:\033[0m %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

command -v cargo >/dev/null || die "cargo is missing: install Rust (https://rustup.rs) and run this again"

nats_bin="${SDASH_NATS_SERVER_BIN:-$(command -v nats-server || true)}"
[ -z "$nats_bin" ] && [ -x /usr/sbin/nats-server ] && nats_bin=/usr/sbin/nats-server
if [ -z "$nats_bin" ]; then
  say "nats-server is not installed; it comes from Debian's 'nats-server' package."
  if command -v apt-get >/dev/null && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    say "installing it with apt-get"
    $sudo_cmd apt-get install -y -q nats-server >/dev/null 2>&1 || { $sudo_cmd apt-get update -q >/dev/null && $sudo_cmd apt-get install -y -q nats-server >/dev/null; } \
      || die "apt-get could not install nats-server; install it yourself and run this again"
    nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  else
    die "install it (sudo apt-get install nats-server) or set SDASH_NATS_SERVER_BIN, then run this again"
  fi
fi

if [ -n "${SDASH_DEMO_BIN_DIR:-}" ]; then
  bin="$SDASH_DEMO_BIN_DIR"   # binaries built already (the test suite uses this)
else
  say "building sdash ($profile)"
  flag=""; [ "$profile" = release ] && flag="--release"
  cargo build $flag -q --bin sdash-collector --bin sdash-writer --bin sdash-api --bin sdash-sim --bin sdash-notify
  bin="${CARGO_TARGET_DIR:-$root/target}/$profile"
fi

mkdir -p "$data/nats" "$data/sim"
pids=()
cleanup() {
  trap - INT TERM EXIT
  say "stopping"
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  say "stopped; data kept in $data"
}
# Ctrl-C, kill, or a closed terminal stop every service; a lost stderr must not kill the script
# before it can do so (an ignored SIGPIPE turns into a failed write, then the EXIT trap).
trap 'cleanup; exit 0' INT TERM HUP
trap '' PIPE
trap cleanup EXIT
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; die "$2 did not come up on port $1 (logs in $data)"; }

"$nats_bin" -a 127.0.0.1 -p "$nats_port" -js -sd "$data/nats" >"$data/nats.log" 2>&1 & pids+=($!)
wait_port "$nats_port" nats-server
nats="nats://127.0.0.1:$nats_port"

"$bin/sdash-sim" --systems "$systems" --mix pure=40,ontap=30,storagegrid=15,datadomain=15 --seed 7 \
  --listen "127.0.0.1:$sim_port" --inventory-out "$data/sim/inventory.toml" --interval 15s \
  --history-out "$data/sim/history.csv" >"$data/sim.log" 2>&1 & pids+=($!)
wait_port "$sim_port" sdash-sim
for _ in $(seq 1 50); do [ -s "$data/sim/inventory.toml" ] && break; sleep 0.1; done

db="sqlite://$data/sdash.db"
"$bin/sdash-writer" --nats-url "$nats" --database-url "$db" --admin-listen "127.0.0.1:$admin_port" >"$data/writer.log" 2>&1 & pids+=($!)
for n in 1 2; do
  "$bin/sdash-collector" --nats-url "$nats" --inventory "$data/sim/inventory.toml" --collector-id "demo-$n" \
    --admin-listen "127.0.0.1:$((admin_port + n))" >"$data/collector-$n.log" 2>&1 & pids+=($!)
done
for _ in $(seq 1 100); do [ -f "$data/sdash.db" ] && break; sleep 0.1; done

# Two years of daily history per array, in the old dashboard's history CSV format (written by the
# simulator), imported through the bus like a team moving from the old dashboard would: the
# capacity page, the forecasts and the group history show real lines on the first run. Running
# the demo again imports nothing twice.
for _ in $(seq 1 50); do [ -s "$data/sim/history.csv" ] && break; sleep 0.1; done
imported=""
for _ in 1 2 3 4 5; do
  if "$bin/sdash-writer" --nats-url "$nats" --database-url "$db" import --from-csv "$data/sim/history.csv" \
       --inventory "$data/sim/inventory.toml" --wait 60s >"$data/import.log" 2>&1; then
    imported=yes; break
  fi
  sleep 1   # the writer is still creating the database
done
if [ -n "$imported" ]; then
  say "imported the simulated fleet's history: $(grep -m1 'capacity days' "$data/import.log" | sed 's/^ *//; s/  */ /g')"
else
  say "the history import failed (see $data/import.log); the dashboard starts without it"
fi
"$bin/sdash-api" --nats-url "$nats" --database-url "$db" --listen "127.0.0.1:$api_port" >"$data/api.log" 2>&1 & pids+=($!)
wait_port "$api_port" sdash-api

# The notifier needs somewhere to send: a local Alertmanager that notifies nobody, where one is
# installed (the alerts, the systems down and the capacity crossings show in its web UI).
alertmanager_bin="${SDASH_DEMO_ALERTMANAGER_BIN:-$(command -v prometheus-alertmanager || command -v alertmanager || true)}"
if [ -n "$alertmanager_bin" ]; then
  mkdir -p "$data/alertmanager"
  cat >"$data/alertmanager.yml" <<YAML
route: { receiver: nobody, group_by: [system] }
receivers: [ { name: nobody } ]
YAML
  "$alertmanager_bin" --config.file="$data/alertmanager.yml" --storage.path="$data/alertmanager" \
    --web.listen-address="127.0.0.1:$alertmanager_port" --cluster.listen-address= >"$data/alertmanager.log" 2>&1 & pids+=($!)
  wait_port "$alertmanager_port" alertmanager
  cat >"$data/notify.toml" <<TOML
group_window = "5s"
[[receiver]]
name = "alertmanager"
type = "alertmanager"
url = "http://127.0.0.1:$alertmanager_port"
resend_interval = "1m"
[[route]]
receivers = ["alertmanager"]
TOML
  "$bin/sdash-notify" --nats-url "$nats" --config "$data/notify.toml" --replay-history \
    --admin-listen "127.0.0.1:$((admin_port + 3))" >"$data/notify.log" 2>&1 & pids+=($!)
else
  say "notifier not started: no Alertmanager here (install Debian's prometheus-alertmanager to see"
  say "alerts routed, or set SDASH_DEMO_ALERTMANAGER_BIN)"
fi

say "running: $systems simulated arrays, 2 collectors, 1 writer (SQLite at $data/sdash.db)"
say "dashboard:  http://127.0.0.1:$api_port/"
say "API:        http://127.0.0.1:$api_port/api/v1/systems"
say "metrics:    writer http://127.0.0.1:$admin_port/metrics, collectors :$((admin_port + 1)) and :$((admin_port + 2))"
[ -n "$alertmanager_bin" ] && say "alerts:     http://127.0.0.1:$alertmanager_port/ (Alertmanager, fed by sdash-notify, admin :$((admin_port + 3)))"
say "logs in $data/*.log; press Ctrl-C to stop"
while true; do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || die "a service exited (pid $pid); see the logs in $data"
  done
  sleep 2
done
