#!/usr/bin/env bash
# Soak benchmark (issue #18): the release `feedwatch serve`, with its default settings and the
# demo sandbox bank on its own loopback listener, against a PostgreSQL cluster this script owns,
# under mixed API load and continuous refreshes of a few hundred connections to healthy, flaky,
# slow, maintenance and failing sandbox banks, while PostgreSQL is restarted (`pg_ctl restart -m
# fast`) every few minutes. bench/soak/driver.py makes the load, the restarts and the records.
# Reports p50/p99 overall and per kind of request, the 5xx count inside and outside the restart
# windows (a window runs from the restart's start to /readyz answering 200 again, plus a grace),
# feedwatch's RSS sampled each minute, and jobs lost: after the load the queue drains, then every
# refresh the API acknowledged (202) is looked up by id, and jobs still running past their lease
# or due and unclaimed for a minute count as stuck.
# Targets: 0 5xx outside the windows; RSS flat from start to end; 0 jobs lost.
# Everything is on loopback; the cluster and the processes go when the script exits.
#
# Usage: bench/soak/run.sh
# Knobs (environment):
#   CARGO_TARGET_DIR       where to build (default: the repo's target/)
#   FEEDWATCH_BIN          use this feedwatch binary instead of building one
#   SOAK_MINUTES (20)  SOAK_RESTART_EVERY (4, minutes)  SOAK_RATE (100 requests/s)  SOAK_WORKERS (16)
#   SOAK_CONNECTIONS (300, at set-up)  SOAK_TENANTS (4)  SOAK_WINDOW_GRACE (5 s)
#   SOAK_DUE_CYCLE (300 s: every connection's schedule is made due about this often)
#   SOAK_DRAIN_SECONDS (180: longest wait for the queue to drain after the load)
#   SOAK_FIXED_FLEET (0; 1: each create is paired with an admin purge of another connection,
#                     so the fleet keeps its set-up size and RSS can be compared start to end)
#   SOAK_PORT_BASE (unset: free ports; N: PostgreSQL on N, feedwatch on N+1, the sandbox bank on
#                   N+2, so runs side by side stay inside a given range)
#   SOAK_SAMPLE_SECONDS (60: how often RSS is sampled)  SOAK_OUT (bench/soak/last-run.json)
# Writes bench/soak/last-run.json (not committed).
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

minutes="${SOAK_MINUTES:-20}"
restart_every="${SOAK_RESTART_EVERY:-4}"
out_json="${SOAK_OUT:-$here/last-run.json}"

bench_name="soak"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
require_commands curl jq python3 setpriv

target_dir="${CARGO_TARGET_DIR:-$root/target}"
[[ -n ${FEEDWATCH_BIN:-} ]] || build_release --bin feedwatch
bin="${FEEDWATCH_BIN:-$target_dir/release/feedwatch}"
[[ -x $bin ]] || { log "no executable at $bin"; exit 1; }

key="$(new_api_key)"
tmp="$(mktemp -d /tmp/feedwatch-soak.XXXXXX)"
cluster="$(mktemp -d /var/tmp/feedwatch-soak-pg.XXXXXX)"
server_pid=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_process "$server_pid"
  stop_cluster "$cluster"
  if [[ $status -ne 0 && -s $tmp/server.err ]]; then tail -n 20 "$tmp/server.err" >&2 || true; fi
  rm -rf "$tmp" "$cluster"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A cluster of our own, so the benchmark can restart it.
if [[ -n ${SOAK_PORT_BASE:-} ]]; then
  listen=127.0.0.1:$((SOAK_PORT_BASE + 1)) sandbox=127.0.0.1:$((SOAK_PORT_BASE + 2))
  BENCH_PG_PORT=$SOAK_PORT_BASE start_cluster "$cluster"
else
  listen=127.0.0.1:0 sandbox=127.0.0.1:0
  start_cluster "$cluster"
fi
port=$pg_port
db_url="postgres://postgres@127.0.0.1:$port/feedwatch"
"$pg_bin/psql" -qAtX -v ON_ERROR_STOP=1 "postgres://postgres@127.0.0.1:$port/postgres" -c "create database feedwatch"
# -l again: without it the restarted postmaster would write to (and hold open) the caller's pipe.
restart_cmd="${as_postgres[*]} $pg_bin/pg_ctl -D $cluster/data -l $cluster/log -m fast -w restart"

log "starting feedwatch (default settings, demo mode) against PostgreSQL on port $port"
env -u RUST_LOG -u FEEDWATCH_DATA_DIR -u FEEDWATCH_LISTEN \
  DATABASE_URL="$db_url" FEEDWATCH_CREDENTIALS_KEYS="$("$bin" keys new-credentials-key)" \
  FEEDWATCH_BOOTSTRAP_ADMIN_KEY="$key" \
  "$bin" serve --demo --listen "$listen" --sandbox-addr "$sandbox" >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
addr="$(wait_for_address "$tmp/server.out" feedwatch "$server_pid")"
base="http://$addr"
curl -fsS --retry 60 --retry-connrefused --retry-delay 1 -o /dev/null "$base/readyz"
grep -m1 'sandbox bank' "$tmp/server.out" >&2 || { log "no sandbox bank: demo mode is off"; exit 1; }

python3 "$here/driver.py" run --base "$base" --admin-key "$key" --server-pid "$server_pid" \
  --psql "$pg_bin/psql" --db-url "$db_url" --restart-cmd "$restart_cmd" \
  --minutes "$minutes" --restart-every "$restart_every" --rate "${SOAK_RATE:-100}" --workers "${SOAK_WORKERS:-16}" \
  --connections "${SOAK_CONNECTIONS:-300}" --tenants "${SOAK_TENANTS:-4}" --window-grace "${SOAK_WINDOW_GRACE:-5}" \
  --due-cycle "${SOAK_DUE_CYCLE:-300}" --drain-seconds "${SOAK_DRAIN_SECONDS:-180}" --sample-seconds "${SOAK_SAMPLE_SECONDS:-60}" --out "$tmp/run.json" \
  $([ "${SOAK_FIXED_FLEET:-0}" = 1 ] && echo --fixed-fleet)

alive=false
kill -0 "$server_pid" 2>/dev/null && alive=true
sed 's/\x1b\[[0-9;]*m//g' "$tmp/server.err" >"$tmp/server.log"   # without colour codes
count() { grep -c -E "$1" "$tmp/server.log" || true; }
jq --arg rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" --arg cpus "$(nproc)" \
  --argjson alive "$alive" --argjson errors "$(count ' ERROR ')" --argjson warns "$(count ' WARN ')" \
  --argjson panics "$(count 'panicked')" --argjson bytes "$(stat -c %s "$tmp/server.err")" \
  '. + {git_rev: $rev, cpus: ($cpus | tonumber), server_alive_at_end: $alive,
        server_log: {error_lines: $errors, warn_lines: $warns, panics: $panics, bytes: $bytes}}' \
  "$tmp/run.json" >"$out_json"
python3 "$here/driver.py" table "$out_json"
jq -r '"feedwatch alive at the end: \(.server_alive_at_end); its log: \(.server_log.error_lines) ERROR, \(.server_log.warn_lines) WARN lines, \(.server_log.panics) panics"' "$out_json"
# The log's ERROR lines by where they come from and what they say (request spans and ids cut).
grep -E ' ERROR ' "$tmp/server.log" | sed -E 's/^[^ ]+ +ERROR +//; s/^[a-z_]+\{[^}]*\}: //; s/(request_id|trace_id|job\.id|id)=[^ ]+//g; s/latency=[0-9.]+ [a-zµ]+//' \
  | cut -c1-150 | sort | uniq -c | sort -rn | head -n 10 >&2 || true
[[ $alive == true ]] || { log "feedwatch exited during the soak"; exit 1; }
