#!/usr/bin/env bash
# Statement import benchmark (issue #16, item 6): a 100,000-transaction OFX file and a
# 100,000-row CSV, each imported over HTTP into an account that already holds half of them
# (every second transaction, imported first from a half file), beside a plain `COPY` of the
# same 100,000 rows into the same table (`feed_transaction`) on the same database in the same
# run; then a ~50 MB OFX file (370,000 transactions) into an empty account, for peak memory.
# Reported: transactions per second (rows in the file / wall time of the request), ratio to
# the COPY rate, and the service's peak RSS during each request (VmHWM of the feedwatch
# process, reset before each request through /proc/PID/clear_refs; PostgreSQL not counted).
# Targets: import >= 0.5 x COPY rate; peak RSS < 100 MB for the 50 MB file.
#
# The release binary, the service's default settings (`feedwatch serve` with its private
# PostgreSQL, 1 MiB API body limit, 64 MiB import limit, 30 s request timeout, 120 s import
# timeout), loopback only.
#
# Usage: bench/import/run.sh
# Knobs (environment):
#   CARGO_TARGET_DIR   where to build (default: the repo's target/)
#   FEEDWATCH_BIN      use this feedwatch binary instead of building one
#   BENCH_ROWS (100000)  BENCH_LARGE_ROWS (370000, about 50 MB of OFX)
#   BENCH_LISTEN (127.0.0.1:0)  where feedwatch listens (a fixed port where ports are shared out)
# Writes bench/import/last-run.json (not committed).
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

rows="${BENCH_ROWS:-100000}"
large_rows="${BENCH_LARGE_ROWS:-370000}"
large_csv_rows="${BENCH_LARGE_CSV_ROWS:-960000}"   # about 50 MB of CSV, into the CSV account (its first 100,000 rows present)
out_json="$here/last-run.json"

bench_name="import-bench"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
require_commands curl jq psql python3 bc

target_dir="${CARGO_TARGET_DIR:-$root/target}"
[[ -n ${FEEDWATCH_BIN:-} ]] || build_release --bin feedwatch
bin="${FEEDWATCH_BIN:-$target_dir/release/feedwatch}"
[[ -x $bin ]] || { log "no executable at $bin"; exit 1; }

key="$(new_api_key)"
auth="Authorization: Bearer $key"
tmp="$(mktemp -d /tmp/feedwatch-import-bench.XXXXXX)"
chmod 711 "$tmp"   # the private PostgreSQL runs as `postgres` when we are root
server_pid=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_process "$server_pid"
  if [[ $status -ne 0 && -s $tmp/server.err ]]; then tail -n 20 "$tmp/server.err" >&2 || true; fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "generating the files ($rows transactions, halves, $large_rows for the large file)"
gen() { python3 "$here/generate.py" "$@"; }
gen ofx "$rows" >"$tmp/full.ofx"
gen ofx "$rows" --half >"$tmp/half.ofx"
gen csv "$rows" >"$tmp/full.csv"
gen csv "$rows" --half >"$tmp/half.csv"
gen ofx "$large_rows" >"$tmp/large.ofx"
gen csv "$large_csv_rows" >"$tmp/large.csv"

log "starting feedwatch (demo tenant, private PostgreSQL under $tmp)"
start_feedwatch "$bin" "$key" "$tmp"

# The first account of a healthy demo connection, once its first refresh stored accounts.
account_of() {   # account_of DISPLAY_NAME -> "CONNECTION_ID ACCOUNT_ID"
  local id account
  for _ in $(seq 1 240); do
    id="$(curl -fsS -H "$auth" "$base/v1/connections?limit=20" \
      | jq -r --arg n "$1" '[.items[] | select(.display_name == $n and .state == "healthy")][0].id // empty')"
    if [[ -n $id ]]; then
      account="$(curl -fsS -H "$auth" "$base/v1/connections/$id/accounts" | jq -r '.[0].id // empty')"
      [[ -n $account ]] && { echo "$id $account"; return 0; }
    fi
    sleep 0.25
  done
  log "the demo connection $1 was not refreshed within a minute"
  return 1
}
read -r ofx_conn ofx_account < <(account_of "Operating account")
read -r csv_conn csv_account < <(account_of "Payroll account")
read -r large_conn large_account < <(account_of "Company card")

pid_file="$(find "$tmp" -name postmaster.pid -print -quit)"
password_file="$(dirname "$pid_file").password"
db_url="postgres://postgres:$(tr -d '[:space:]' <"$password_file")@127.0.0.1:$(sed -n 4p "$pid_file")/feedwatch"

hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
runs="$tmp/runs.jsonl"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
log "load before: $load_before"

import() {   # import NAME CONNECTION ACCOUNT FILE ROWS
  local name=$1 conn=$2 account=$3 file=$4 count=$5 rss_before answer code seconds hwm
  rss_before="$(rss_kb)"
  echo 5 >"/proc/$server_pid/clear_refs"   # VmHWM := VmRSS, so the peak is this request's
  answer="$(curl -sS -o "$tmp/$name.json" -w '%{http_code} %{time_total}' -H "$auth" \
    -H 'content-type: application/octet-stream' --data-binary "@$file" \
    "$base/v1/connections/$conn/accounts/$account/imports")"
  read -r code seconds <<<"$answer"
  hwm="$(hwm_kb)"
  [[ $code == 201 ]] || { log "$name answered $code: $(head -c 400 "$tmp/$name.json")"; exit 1; }
  jq -c --arg name "$name" --argjson rows "$count" --argjson seconds "$seconds" --argjson bytes "$(stat -c %s "$file")" \
    --argjson rss_before "$rss_before" --argjson hwm "$hwm" \
    '{name: $name, rows: $rows, bytes: $bytes, seconds: $seconds, rows_per_s: ($rows / $seconds),
      added: .accounts[0].added, already_present: .accounts[0].already_present,
      held: (.accounts[0].probable_duplicates | length), rss_before_mb: ($rss_before / 1024), peak_rss_mb: ($hwm / 1024)}' \
    "$tmp/$name.json" >>"$runs"
  log "$(tail -n1 "$runs")"
}

copy() {   # copy NAME CONNECTION ACCOUNT ROWS: the same rows, COPY'd into feed_transaction
  local name=$1 conn=$2 account=$3 count=$4 ms
  ACCOUNT="$account" CONNECTION="$conn" FITID_PREFIX="$name-" gen copy "$count" >"$tmp/$name.tsv"
  # psql's own timing of the one statement (the rows stream from the client, as a file's do).
  ms="$(psql -q -v ON_ERROR_STOP=1 "$db_url" -c '\timing on' \
    -c "\\copy feed_transaction (id, account_id, connection_id, fitid, synthetic_key, posted_at, amount, currency, name, memo, source, created_seq, change_seq) from '$tmp/$name.tsv'" \
    | awk '/^Time:/ {print $2}')"
  jq -nc --arg name "$name" --argjson rows "$count" --argjson seconds "$(echo "$ms / 1000" | bc -l)" \
    '{name: $name, rows: $rows, seconds: $seconds, rows_per_s: ($rows / $seconds)}' >>"$runs"
  log "$(tail -n1 "$runs")"
}

half=$(( (rows + 1) / 2 ))
import ofx_half "$ofx_conn" "$ofx_account" "$tmp/half.ofx" "$half"
import ofx_full "$ofx_conn" "$ofx_account" "$tmp/full.ofx" "$rows"
copy copy_a "$ofx_conn" "$ofx_account" "$rows"
import csv_half "$csv_conn" "$csv_account" "$tmp/half.csv" "$half"
import csv_full "$csv_conn" "$csv_account" "$tmp/full.csv" "$rows"
copy copy_b "$csv_conn" "$csv_account" "$rows"
import csv_50mb "$csv_conn" "$csv_account" "$tmp/large.csv" "$large_csv_rows"
import ofx_50mb "$large_conn" "$large_account" "$tmp/large.ofx" "$large_rows"

jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg load "$load_before" --arg load_after "$(cut -d' ' -f1-3 /proc/loadavg)" --arg cpus "$(nproc)" '
  (map({key: .name, value: .}) | from_entries) as $r
  | (($r.copy_a.rows_per_s + $r.copy_b.rows_per_s) / 2) as $copy
  | {date: $date, git_rev: $rev, load_before: $load, load_after: $load_after, cpus: ($cpus | tonumber), runs: .,
     copy_rows_per_s: $copy,
     ratio: {ofx: ($r.ofx_full.rows_per_s / $copy), csv: ($r.csv_full.rows_per_s / $copy)},
     peak_rss_mb_50mb_file: $r.ofx_50mb.peak_rss_mb, peak_rss_mb_50mb_csv: $r.csv_50mb.peak_rss_mb}' "$runs" >"$out_json"

jq -r '"", "statement import, \(.date) (rev \(.git_rev), \(.cpus) CPUs, load \(.load_before) before, \(.load_after) after)", ""' "$out_json"
jq -r '
  def r1: . * 10 | round / 10;
  def r2: . * 100 | round / 100;
  . as $all
  | (["step", "rows", "MB", "seconds", "rows/s", "x_COPY", "added", "present", "held", "peak_RSS_MB"] | join("\t")),
    (.runs[] | [.name, .rows, ((.bytes // 0) / 1048576 | r1), (.seconds | r2), (.rows_per_s | round),
      (.rows_per_s / $all.copy_rows_per_s | r2), (.added // "-"), (.already_present // "-"), (.held // "-"),
      (.peak_rss_mb // "-" | if type == "number" then r1 else . end)] | map(tostring) | join("\t"))
' "$out_json" | column -t -s $'\t'
jq -r '
  def r1: . * 10 | round / 10;
  def r2: . * 100 | round / 100;
  "", "COPY rate (mean of the two): \(.copy_rows_per_s | round) rows/s; import / COPY: OFX \(.ratio.ofx | r2), CSV \(.ratio.csv | r2) (target 0.5); peak RSS for the \(.runs[-1].bytes / 1048576 | r1) MB OFX file: \(.peak_rss_mb_50mb_file | r1) MB, for the 50 MB CSV: \(.peak_rss_mb_50mb_csv | r1) MB (target < 100)"
' "$out_json"
