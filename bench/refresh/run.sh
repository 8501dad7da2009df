#!/usr/bin/env bash
# End-to-end refresh benchmark (issue #8): refreshes per second of feedwatch's refresh worker
# pool against the sandbox bank answering after 50 ms, at concurrency C (64 and 256), and the
# resident memory of the refreshing process. Each run starts its own private PostgreSQL
# (durable settings), seeds K = 4 x C connections to the healthy sandbox bank, enqueues one
# refresh each and times two rounds: "first" (every connection's first refresh, 90 days) and
# "repeat" (the bank's clock a day on, every connection refreshed again, as the daily
# scheduled refresh of a synced connection is). Each round also reports bank exchanges per
# refresh and the CPU milliseconds per refresh of the refresher, the bank and PostgreSQL.
# Targets: refreshes/s >= 0.7 x C / latency; peak RSS at C=256 < 150 MB.
#
# Usage: bench/refresh/run.sh
# Knobs (environment):
#   CARGO_TARGET_DIR         where to build (default: the repo's target/)
#   REFRESH_BENCH_BIN        use this refresh_bench binary instead of building it
#   BENCH_CONCURRENCIES      concurrency levels                  (default "64 256")
#   BENCH_PER_SLOT           connections per slot, K = C x this  (default 4)
#   BENCH_LATENCY_MS         sandbox bank latency                (default 50)
#   BENCH_DB_CONNECTIONS     worker pool database connections    (default 5, the service's default)
#   BENCH_PREFETCH           jobs claimed ahead of free slots    (default C / 4, the service's default)
#   BENCH_ROUNDS             runs per concurrency                (default 1)
#   BENCH_BANK               child (separate process) | in-process (default child)
#   BENCH_PGBENCH_SECONDS    length of the pgbench -N reference  (default 10; 0 skips it)
#   BENCH_PGBENCH_CLIENTS    its clients                          (default 16)
#   BENCH_FLOOR_SECONDS      length of the first refresh's floor  (default 10; 0 skips it)
#   BENCH_PG_SETTINGS        more cluster settings, for experiments (e.g. "autovacuum=off");
#                            figures that count use none
# Every run uses one PostgreSQL cluster this script starts (the private cluster's durable settings,
# with pg_stat_statements loaded, planning tracked too), a fresh database per run, and `pgbench -N` (one small durable
# write per transaction) on the same cluster first: issue #17 compares refreshes/s to its TPS.
# After the first run, in its database, the first refresh's floor: what PostgreSQL spends to
# insert a first refresh's 232 transactions (one transaction each, one statement, sequence
# numbers and time-ordered ids as the writer makes them) into a copy of `feed_transaction` with
# its indexes and its statement's check of the accounts (migration 0026), and nothing else: no lookup, no account, no
# outcome. A first refresh cannot cost PostgreSQL less than this. Beside it, the same inserts into
# a copy with no index at all (the heap and its WAL alone) and one with only the (account_id,
# fitid) key that makes refreshes idempotent: what the table's other indexes and check add.
# Writes bench/refresh/last-run.json (not committed).
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

concurrencies="${BENCH_CONCURRENCIES:-64 256}"
per_slot="${BENCH_PER_SLOT:-4}"
latency_ms="${BENCH_LATENCY_MS:-50}"
db_connections="${BENCH_DB_CONNECTIONS:-5}"
rounds="${BENCH_ROUNDS:-1}"
prefetch_args=()
if [[ -n ${BENCH_PREFETCH:-} ]]; then prefetch_args=(--prefetch "$BENCH_PREFETCH"); fi
bank="${BENCH_BANK:-child}"
out_json="$here/last-run.json"

bench_name="refresh-bench"
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
ensure_command jq

if [[ -n ${REFRESH_BENCH_BIN:-} ]]; then
  bin="$REFRESH_BENCH_BIN"
else
  build_release --example refresh_bench
  bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/refresh_bench"
fi

runs="$(mktemp /tmp/refresh-bench.XXXXXX.jsonl)"
cluster="$(mktemp -d /var/tmp/refresh-bench-pg.XXXXXX)"
cleanup() {
  stop_cluster "$cluster"
  rm -rf "$cluster" "$runs"
}
trap cleanup EXIT
# The private cluster's durable settings, plus statement statistics.
start_cluster "$cluster" shared_preload_libraries=pg_stat_statements pg_stat_statements.track_planning=on ${BENCH_PG_SETTINGS:-}
[[ -x $pg_bin/pgbench ]] || { log "pgbench not found beside $pg_bin/initdb"; exit 1; }
port=$pg_port
server="postgres://postgres@127.0.0.1:$port"
sql() { "$pg_bin/psql" -qAtX -v ON_ERROR_STOP=1 "$server/$1" -c "$2"; }

# first_refresh_floor DATABASE: sets floor_json to the floor's figures (see the header).
floor_json=null
first_refresh_floor() {
  local database="$1" seconds="${BENCH_FLOOR_SECONDS:-10}" bare key full
  (( seconds > 0 )) || return 0
  sql "$database" "create sequence floor_seq;
    create table floor_account as select (row_number() over (order by id)) - 1 as n, id, connection_id from account;
    alter table floor_account add primary key (n);
    create table floor_bare (like feed_transaction including defaults);
    create table floor_key (like feed_transaction including defaults);
    alter table floor_key add unique (account_id, fitid);
    create table floor_transaction (like feed_transaction including defaults including constraints including indexes);
    create trigger floor_transaction_accounts_exist after insert on floor_transaction
      referencing new table as inserted for each statement execute function feed_transaction_accounts_exist();"
  full="$(floor_inserts "$database" floor_transaction "$seconds")"
  key="$(floor_inserts "$database" floor_key "$seconds")"
  bare="$(floor_inserts "$database" floor_bare "$seconds")"
  floor_json="$(jq -n --argjson bare "$bare" --argjson key "$key" --argjson full "$full" \
    '$full + {rows: 232, bare_heap_ms_per_insert: $bare.postgres_ms_per_insert,
              key_only_ms_per_insert: $key.postgres_ms_per_insert}')"
  log "first refresh's floor (232 rows into a copy of feed_transaction, one client): $floor_json"
}

# floor_inserts DATABASE TABLE SECONDS: one pgbench client inserting 232 rows per transaction
# into TABLE for SECONDS; prints {inserts, inserts_per_s, postgres_ms_per_insert}.
floor_inserts() {
  local database="$1" table="$2" seconds="$3" script before after output transactions tps
  # Each from a checkpoint, so none pays for the WAL another left to flush.
  sql "$database" "checkpoint"
  script="$(mktemp /tmp/refresh-floor.XXXXXX.sql)"
  cat >"$script" <<SQL
\\set n random(0, $(sql "$database" "select count(*) - 1 from floor_account"))
insert into $table (id, account_id, connection_id, fitid, posted_at, amount, currency, name, memo,
                    check_number, pending, created_seq, change_seq)
select lpad(to_hex(s), 32, '0')::uuid, a.id, a.connection_id, 'FIT' || s, now() - make_interval(hours => g),
       -12.34, 'USD', 'CARD PURCHASE 1234 SEATTLE WA', 'memo', '', false, s, s
from floor_account a, (select g, nextval('floor_seq') as s from generate_series(1, 232) g) rows
where a.n = :n;
SQL
  before="$(postgres_cpu_ticks_settled "$cluster/data/postmaster.pid")"
  output="$("$pg_bin/pgbench" -n -c 1 -T "$seconds" -f "$script" "$server/$database" 2>&1)"
  after="$(postgres_cpu_ticks_settled "$cluster/data/postmaster.pid")"
  rm -f "$script"
  transactions="$(awk '/number of transactions actually processed/ {print $NF}' <<<"$output")"
  tps="$(awk '/^tps = / {print $3; exit}' <<<"$output")"
  jq -n --argjson t "$transactions" --argjson tps "$tps" --argjson ticks "$((after - before))" \
    --argjson hz "$(getconf CLK_TCK)" \
    '{inserts: $t, inserts_per_s: $tps, postgres_ms_per_insert: (($ticks / $hz / $t * 1000000 | round) / 1000)}'
}

pgbench_tps=null
pgbench_seconds="${BENCH_PGBENCH_SECONDS:-10}"
if (( pgbench_seconds > 0 )); then
  sql postgres "create database pgbench"
  "$pg_bin/pgbench" -q -i -s 10 "$server/pgbench" >/dev/null 2>&1
  pgbench_tps="$("$pg_bin/pgbench" -n -N -c "${BENCH_PGBENCH_CLIENTS:-16}" -j 2 -T "$pgbench_seconds" "$server/pgbench" 2>/dev/null \
    | awk '/^tps = / {print $3; exit}')"
  log "pgbench -N -c ${BENCH_PGBENCH_CLIENTS:-16} -j 2 -T $pgbench_seconds on the same cluster: $pgbench_tps transactions/s"
  sql postgres "drop database pgbench"
fi

for round in $(seq 1 "$rounds"); do
  for c in $concurrencies; do
    database="refresh_${c}_${round}"
    sql postgres "create database $database"
    sql "$database" "create extension pg_stat_statements"
    log "round $round: C=$c, K=$((c * per_slot)) connections, latency ${latency_ms}ms, $db_connections DB connections, bank: $bank"
    "$bin" run --concurrency "$c" --per-slot "$per_slot" --latency-ms "$latency_ms" \
      --db-connections "$db_connections" --bank "$bank" "${prefetch_args[@]}" --database-url "$server/$database" \
      | jq -c --argjson round "$round" '. + {round: $round}' | tee -a "$runs" >&2
    [[ $floor_json != null ]] || first_refresh_floor "$database"
    sql postgres "drop database $database"
  done
done

jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg cpus "$(nproc)" --argjson pgbench "${pgbench_tps:-null}" --argjson floor "$floor_json" \
  '{date: $date, git_rev: $rev, cpus: ($cpus | tonumber), pgbench_n_tps: $pgbench, first_refresh_floor: $floor, runs: .}' "$runs" >"$out_json"

jq -r '
  def pad($n): tostring | (" " * ($n - length)) + .;
  "",
  "end-to-end refreshes, \(.date) (rev \(.git_rev), \(.cpus) CPUs), sandbox latency \(.runs[0].latency_ms) ms",
  "   C     K  round   refreshes/s  steady/s  target/s  ratio  steady ratio  exch/refresh  CPU ms/refresh (refresher bank postgres)  machine busy  peak RSS MB  bank RSS MB  n",
  (.runs[] as $run | ("first", "repeat", "again") as $kind | $run[$kind] // empty | . as $r |
    "\($run.concurrency | pad(4))  \($run.connections | pad(4))  \($kind | . + " " * (6 - length))  \($r.refreshes_per_s | pad(11))  \($r.steady_refreshes_per_s | pad(8))  \($r.target_per_s | pad(8))  \($r.ratio_to_target | pad(5))  \($r.steady_ratio_to_target | pad(12))  \($r.bank_exchanges_per_refresh | pad(12))  \("\($r.cpu.ms_per_refresh.refresher) \($r.cpu.ms_per_refresh.bank) \($r.cpu.ms_per_refresh.postgres)" | pad(39))  \($r.cpu.machine_busy_share | pad(12))  \($run.peak_rss_mb | pad(11))  \($run.bank_peak_rss_mb | pad(11))  \($run.round)"),
  (.runs[] as $run | ("first", "repeat", "again") as $kind | $run[$kind] // empty | select(.stage_ms_mean)
    | "C=\($run.concurrency) \($kind): a refresh\u0027s mean ms reading \(.stage_ms_mean.read), with the bank \(.stage_ms_mean.bank), storing \(.stage_ms_mean.store); handler p50 \(.handler_ms.p50)"),
  (.runs[] as $run | ("first", "repeat", "again") as $kind | $run[$kind].table_updates // empty
    | "C=\($run.concurrency) \($kind): updates (HOT) " + ([to_entries[] | "\(.key) \(.value.n_tup_upd) (\(.value.n_tup_hot_upd))"] | join(", "))),
  (.runs[] as $run | ("first", "repeat", "again") as $kind | $run[$kind].postgres_statements // empty
    | select(type == "object")
    | "C=\($run.concurrency) \($kind): \(.all.calls) statements per refresh (BEGIN/COMMIT, claims, completions included), \(.all.exec_ms) ms executing; stall read (feed::stall) \(.stall.calls) per refresh, \(.stall.exec_ms) ms"),
  "pgbench -N on the same cluster: \(.pgbench_n_tps) transactions/s",
  (.pgbench_n_tps as $tps | .runs[] as $run | $run.repeat as $r
    | "C=\($run.concurrency) repeat: refresher + PostgreSQL \(($r.cpu.ms_per_refresh.refresher + $r.cpu.ms_per_refresh.postgres) * 100 | round / 100) ms per refresh (target <= 0.8); \(if $tps then "\($r.refreshes_per_s / $tps * 1000 | round / 1000) x pgbench -N (target >= 0.5 at C=256)" else "no pgbench reference" end)"),
  (.pgbench_n_tps as $tps | .runs[] as $run | $run.again // empty | . as $r
    | "C=\($run.concurrency) again (same day, nothing new): refresher + PostgreSQL \(($r.cpu.ms_per_refresh.refresher + $r.cpu.ms_per_refresh.postgres) * 100 | round / 100) ms per refresh; \(if $tps then "\($r.refreshes_per_s / $tps * 1000 | round / 1000) x pgbench -N" else "no pgbench reference" end)"),
  (.first_refresh_floor as $floor | select($floor) | .runs[] as $run | $run.first as $r
    | "C=\($run.concurrency) first: PostgreSQL \($r.cpu.ms_per_refresh.postgres) ms per refresh = \($r.cpu.ms_per_refresh.postgres / $floor.postgres_ms_per_insert * 100 | round / 100) x the floor of inserting its 232 rows alone (\($floor.postgres_ms_per_insert) ms; target for the whole refresh, refresher included: <= 3 ms)"),
  (.first_refresh_floor | select(.) | select(.bare_heap_ms_per_insert)
    | "the 232 rows into a copy with no index: \(.bare_heap_ms_per_insert) ms of PostgreSQL; with only the (account_id, fitid) key: \(.key_only_ms_per_insert) ms; with every index and the accounts check: \(.postgres_ms_per_insert) ms"),
  "targets: ratio >= 1.0 (refreshes/s >= 0.7 x C / latency); peak RSS < 150 MB at C=256 (the refreshing process, both rounds; bank \(.runs[0].bank))"
' "$out_json"
