# What every benchmark script needs, in one place: logging, tools, the release build, the
# admin key, starting and stopping feedwatch and private PostgreSQL clusters. Sourced by
# bench/*/run.sh after `set -euo pipefail`; each script keeps its own measurement and report.
# shellcheck shell=bash

bench_name="${bench_name:-bench}"   # each script sets its own before sourcing
log() { printf '[%s] %s\n' "$bench_name" "$*" >&2; }

# ensure_command COMMAND [DEBIAN_PACKAGE]: install the package with apt-get when the command is
# missing (as root, or through sudo), so a fresh machine needs no manual step.
ensure_command() {
  local command="$1" package="${2:-$1}"
  command -v "$command" >/dev/null 2>&1 && return 0
  log "$command is not installed; installing it with apt-get (Debian package \`$package\`)"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { log "not root and no sudo: install $package yourself"; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq "$package" >/dev/null
}

# require_commands COMMAND...: refuse to start without them (they are not apt-installed here
# because the machines that run benchmarks always have them).
require_commands() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { log "$tool is required"; exit 1; }
  done
}

# build_release CARGO_ARGS...: the release build every figure that counts is measured on.
build_release() {
  log "building $* (release)"
  cargo build --release --locked --quiet "$@"
}

random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }
# An admin key in the service's format, given to `serve` as FEEDWATCH_BOOTSTRAP_ADMIN_KEY.
new_api_key() { echo "fw_$(random_hex 16)_$(random_hex 32)"; }

# free_port: a loopback port nobody listens on at this moment.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# stop_process PID: SIGTERM, then SIGKILL after 30 s.
stop_process() {
  local pid=$1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop within 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# wait_for_address FILE PREFIX PID: the address a server prints as "PREFIX listening on
# http://ADDR", waiting up to 2 minutes (initdb and migrations on a busy machine).
wait_for_address() {
  local line
  for _ in $(seq 1 480); do
    if line="$(grep -m1 -o "$2 listening on http://[^[:space:]]*" "$1" 2>/dev/null)"; then
      echo "${line#"$2" listening on http://}"
      return 0
    fi
    kill -0 "$3" 2>/dev/null || { log "$2 exited during start-up"; return 1; }
    sleep 0.25
  done
  log "$2 did not report its address within 2 minutes"
  return 1
}

# start_feedwatch BIN KEY DIR: `feedwatch serve` with its default settings, the demo tenant and
# its private PostgreSQL under DIR (which must let the `postgres` user through when we are
# root). Sets server_pid and base (http://ADDR) once /readyz answers; output in DIR/server.*.
# BENCH_LISTEN (default 127.0.0.1:0) pins the address where ports are shared out. Logging is the
# service's default filter (RUST_LOG is cleared); BENCH_RUST_LOG sets one for a diagnostic run,
# whose figures do not count.
start_feedwatch() {
  local bin="$1" key="$2" dir="$3" addr
  env -u DATABASE_URL -u FEEDWATCH_DATA_DIR -u FEEDWATCH_LISTEN -u RUST_LOG ${BENCH_RUST_LOG:+RUST_LOG="$BENCH_RUST_LOG"} \
    FEEDWATCH_BOOTSTRAP_ADMIN_KEY="$key" \
    "$bin" serve --listen "${BENCH_LISTEN:-127.0.0.1:0}" --data-dir "$dir/postgres" >"$dir/server.out" 2>"$dir/server.err" &
  server_pid=$!
  addr="$(wait_for_address "$dir/server.out" feedwatch "$server_pid")"
  base="http://$addr"
  curl -fsS --retry 60 --retry-connrefused --retry-delay 1 -o /dev/null "$base/readyz"
}

# pg_bin_dir: the newest installed PostgreSQL server binaries.
pg_bin_dir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [[ -x $dir/initdb && -x $dir/pg_ctl ]] || { log "PostgreSQL server binaries not found"; return 1; }
  echo "$dir"
}

# start_cluster DIR [SETTING...]: a PostgreSQL cluster of the benchmark's own in DIR/data with
# the private cluster's durable settings (src/devdb: PostgreSQL's defaults, 300 connections)
# plus `-c SETTING` for each argument, on a free loopback port (BENCH_PG_PORT pins it). Run as
# `postgres` when we are root. Sets pg_bin, pg_port and as_postgres (the prefix for pg_ctl
# calls); stop_cluster DIR stops it.
start_cluster() {
  local dir="$1"; shift
  local options setting
  pg_bin="$(pg_bin_dir)"
  as_postgres=()
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres:postgres "$dir"
    as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
  "${as_postgres[@]}" "$pg_bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
  pg_port="${BENCH_PG_PORT:-$(free_port)}"
  options="-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=300"
  for setting in "$@"; do options+=" -c $setting"; done
  "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "$options" start >/dev/null
}
# postgres_cpu_ticks PID_FILE: a cluster's CPU so far, in clock ticks (getconf CLK_TCK): the
# postmaster with its reaped children (backends that ended) plus its live children.
postgres_cpu_ticks() {
  local postmaster sum child
  postmaster="$(sed -n 1p "$1")"
  sum="$(awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat")"
  for child in $(pgrep -P "$postmaster"); do
    sum=$((sum + $(awk '{print $14 + $15}' "/proc/$child/stat" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}
# postgres_cpu_ticks_settled PID_FILE: the same, once clients that just left are counted. A
# backend exits after its client and is neither a live child nor in the postmaster's children's
# total until the postmaster reaps it: read at once after pgbench, the refresh benchmark's floor
# missed nearly all its CPU (0.023 ms per insert against 3.4 a second later). Waits until two
# readings 0.2 s apart agree (5 s at most).
postgres_cpu_ticks_settled() {
  local last now
  last="$(postgres_cpu_ticks "$1")"
  for _ in $(seq 25); do
    sleep 0.2
    now="$(postgres_cpu_ticks "$1")"
    [[ $now == "$last" ]] && break
    last="$now"
  done
  echo "$last"
}
stop_cluster() {
  [[ -n ${pg_bin:-} && -d $1/data ]] || return 0
  "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true
}
