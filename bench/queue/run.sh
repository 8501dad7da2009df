#!/usr/bin/env bash
# Queue ceiling benchmark (issue #8): no-op jobs claimed and completed per second by feedwatch's
# WorkerPool, beside two references measured in the same run on the same PostgreSQL cluster
# (private, durable settings: fsync on, synchronous_commit on):
#   - raw ceiling: pgbench running claim.sql (claim 50 with FOR UPDATE SKIP LOCKED and mark them
#     succeeded, one statement) with 4 clients; jobs/s = tps x 50;
#   - graphile-worker (npm) in the configuration of its performance page (concurrentJobs 24,
#     localQueue 500, completeJobBatchDelay 0), with 1 and with 4 instances, and in its defaults.
# Targets: feedwatch >= 60% of the raw ceiling, and ahead of graphile-worker's fastest row.
#
# Usage: bench/queue/run.sh        (about 3 minutes after the build)
# Rounds are interleaved (round 1 of every row, then round 2 ...), so every row sees the same
# share of whatever else the machine is doing; the best round of each row counts.
# Knobs (environment):
#   CARGO_TARGET_DIR          where to build (default: the repo's target/)
#   QUEUE_BENCH_BIN           use this queue_bench binary instead of building it
#   BENCH_JOBS                jobs per feedwatch / graphile round      (default 50000)
#   BENCH_POOLS               WorkerPool rows as CONCURRENCY/PREFETCH/IN_FLIGHT (IN_FLIGHT: claim
#                             and completion statements in flight each); the best counts
#                             (default "64/0/1 256/0/1 256/1000/2")
#   BENCH_GENERIC_POOL        diagnostic row: this pool with the database set to
#                             plan_cache_mode=force_generic_plan (not counted; "" skips) (default 256/1000/2)
#   BENCH_POLL_MS             WorkerPool poll interval                 (default 10)
#   BENCH_ROUNDS              rounds of each measurement; best counts  (default 2)
#   BENCH_PGBENCH_SECONDS     pgbench duration per round               (default 10)
#   BENCH_PGBENCH_CLIENTS     pgbench clients                          (default 4)
#   BENCH_PGBENCH_ROWS        rows pre-filled for each pgbench round   (default 600000)
#   BENCH_GRAPHILE_INSTANCES  graphile-worker fast-mode instance counts (default "1 4")
#   BENCH_GRAPHILE_DEFAULT_JOBS  jobs for graphile's default mode, 0 skips (default 20000)
# Writes bench/queue/last-run.json (not committed).
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

jobs="${BENCH_JOBS:-50000}"
pools="${BENCH_POOLS:-service 64/0/1 256/1000/2}"
generic_pool="${BENCH_GENERIC_POOL-256/1000/2}"
poll_ms="${BENCH_POLL_MS:-10}"
rounds="${BENCH_ROUNDS:-2}"
pgbench_seconds="${BENCH_PGBENCH_SECONDS:-10}"
pgbench_clients="${BENCH_PGBENCH_CLIENTS:-4}"
pgbench_rows="${BENCH_PGBENCH_ROWS:-600000}"
graphile_instances="${BENCH_GRAPHILE_INSTANCES:-1 4}"
graphile_default_jobs="${BENCH_GRAPHILE_DEFAULT_JOBS:-20000}"
out_json="$here/last-run.json"

source "$root/bench/lib.sh"
bench_name=queue-bench
ensure_command jq
ensure_command pgbench postgresql-contrib
ensure_command psql postgresql-client

# --- binary --------------------------------------------------------------------------------
if [[ -n ${QUEUE_BENCH_BIN:-} ]]; then
  bin="$QUEUE_BENCH_BIN"
else
  build_release --example queue_bench
  bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/queue_bench"
fi

# --- one cluster for everything ------------------------------------------------------------
work="$(mktemp -d /var/tmp/feedwatch-queue-bench.XXXXXX)"
chmod 755 "$work"
db_pid=""
cleanup() {
  exec 3>&- 2>/dev/null || true
  if [[ -n $db_pid ]]; then wait "$db_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkfifo "$work/lifeline"
# serve-db keeps the cluster up until its stdin (the FIFO we hold open on fd 3) closes.
"$bin" serve-db --dir "$work/pg" <"$work/lifeline" >"$work/db.json" 2>"$work/db.log" &
db_pid=$!
exec 3>"$work/lifeline"
for _ in $(seq 1 600); do
  [[ -s $work/db.json ]] && break
  kill -0 "$db_pid" 2>/dev/null || { cat "$work/db.log" >&2; exit 1; }
  sleep 0.1
done
url="$(jq -r .url "$work/db.json")"
settings="$(jq -c .settings "$work/db.json")"
log "PostgreSQL up: $(jq -r '.settings | to_entries | map("\(.key)=\(.value)") | join(" ")' "$work/db.json")"
psql_q() { psql "$url" -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"; }

# --- the rows, one round of each per pass ----------------------------------------------------
feedwatch_row() { # round concurrency/prefetch/in_flight|service [jq filter]
  local round="$1" concurrency prefetch in_flight
  if [[ $2 == service ]]; then
    # The service's default pool (`feedwatch serve`): 16 workers, prefetch 16/4 adapting up to
    # 1 000 where the binary has it, one statement of each in flight, 5 worker connections.
    local ceiling=()
    "$bin" run --help | grep -q -- --prefetch-ceiling && ceiling=(--prefetch-ceiling 1000)
    log "feedwatch WorkerPool round $round: $jobs no-op jobs, the service's defaults (16/4${ceiling:+ adapting to 1000}/1, 5 connections)"
    "$bin" run --url "$url" --jobs "$jobs" --concurrency 16 --prefetch 4 "${ceiling[@]}" --claims-in-flight 1 \
      --completions-in-flight 1 --db-connections 5 --poll-ms "$poll_ms" --rounds 1 \
      | jq -c --argjson round "$round" "${3:-.} + {round: \$round, pool: \"service\"}"
    return
  fi
  IFS=/ read -r concurrency prefetch in_flight <<<"$2"
  log "feedwatch WorkerPool round $round: $jobs no-op jobs, concurrency $concurrency, prefetch $prefetch," \
    "$in_flight claim(s) and completion(s) in flight, poll ${poll_ms}ms"
  "$bin" run --url "$url" --jobs "$jobs" --concurrency "$concurrency" --prefetch "$prefetch" \
    --claims-in-flight "$in_flight" --completions-in-flight "$in_flight" --poll-ms "$poll_ms" --rounds 1 \
    | jq -c --argjson round "$round" "${3:-.} + {round: \$round}"
}

pgbench_row() { # round
  local round="$1"
  log "raw ceiling round $round: pgbench -n -c $pgbench_clients -j 2 -T $pgbench_seconds -f claim.sql ($pgbench_rows rows)"
  psql_q "truncate job"
  psql_q "insert into job (kind, args, trigger) select 'bench_noop', '{}'::jsonb, 'bench' from generate_series(1, $pgbench_rows)"
  psql_q "vacuum analyze job"
  psql_q "checkpoint"
  pgbench -n -c "$pgbench_clients" -j 2 -T "$pgbench_seconds" -f "$here/claim.sql" "$url" >"$work/pgbench.txt" 2>&1 \
    || { cat "$work/pgbench.txt" >&2; exit 1; }
  local tps left done_rows
  tps="$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$work/pgbench.txt")"
  left="$(psql_q "select count(*) from job where state = 'available'")"
  done_rows="$(psql_q "select count(*) from job where state = 'succeeded'")"
  if [[ $left -eq 0 ]]; then
    log "WARNING: the job table ran dry during pgbench; raise BENCH_PGBENCH_ROWS (the tps then overstates)"
  fi
  psql_q "truncate job"
  jq -nc --argjson tps "$tps" --argjson left "$left" --argjson done "$done_rows" --argjson secs "$pgbench_seconds" \
    --argjson clients "$pgbench_clients" --argjson round "$round" \
    '{bench: "pgbench_claim50", round: $round, clients: $clients, seconds: $secs, tps: $tps,
      jobs_per_s: (($tps * 50) | round), jobs_done: $done, rows_left: $left}'
}

graphile_row() { # round mode instances jobs
  log "graphile-worker round $1: $2 configuration, $3 instance(s), $4 jobs"
  node "$here/graphile.mjs" --url "$url" --jobs "$4" --mode "$2" --instances "$3" | jq -c --argjson round "$1" '. + {round: $round}'
}

graphile_note=""
if ! command -v node >/dev/null 2>&1; then
  graphile_note="node is not installed: graphile-worker skipped"
elif [[ ! -d $here/node_modules/graphile-worker ]] \
  && ! (cd "$here" && npm install --no-audit --no-fund --silent >"$work/npm.log" 2>&1); then
  graphile_note="npm install graphile-worker failed: $(tail -n 3 "$work/npm.log" | tr '\n' ' ')"
fi
[[ -z $graphile_note ]] || log "$graphile_note"

: >"$work/feedwatch.jsonl"
: >"$work/generic.jsonl"
: >"$work/pgbench.jsonl"
: >"$work/graphile.jsonl"
for round in $(seq 1 "$rounds"); do
  for pool in $pools; do
    feedwatch_row "$round" "$pool" | tee -a "$work/feedwatch.jsonl" >&2
  done
  if [[ -n $generic_pool ]]; then
    # Diagnostic only: the same pool when PostgreSQL plans every prepared statement generically,
    # which is what it does on its own after five runs (see bench/README.md).
    psql_q "alter database feedwatch set plan_cache_mode = force_generic_plan"
    feedwatch_row "$round" "$generic_pool" '. + {diagnostic: "plan_cache_mode=force_generic_plan"}' \
      | tee -a "$work/generic.jsonl" >&2
    psql_q "alter database feedwatch reset plan_cache_mode"
  fi
  pgbench_row "$round" | tee -a "$work/pgbench.jsonl" >&2
  if [[ -z $graphile_note ]]; then
    for n in $graphile_instances; do
      graphile_row "$round" fast "$n" "$jobs" | tee -a "$work/graphile.jsonl" >&2 \
        || graphile_note="graphile-worker run failed (see above)"
    done
  fi
done
if [[ -z $graphile_note && $graphile_default_jobs -gt 0 ]]; then
  graphile_row 1 default 1 "$graphile_default_jobs" | tee -a "$work/graphile.jsonl" >&2 || true
fi
if [[ -z $graphile_note ]]; then
  psql_q "delete from graphile_worker._private_jobs" >/dev/null || true
fi

# --- table ---------------------------------------------------------------------------------
jq -n --slurpfile fw "$work/feedwatch.jsonl" --slurpfile raw "$work/pgbench.jsonl" \
  --slurpfile gw "$work/graphile.jsonl" --slurpfile wi "$work/generic.jsonl" --argjson settings "$settings" --arg note "$graphile_note" \
  --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg cpus "$(nproc)" '
  def best(rows): (rows | map(.jobs_per_s) | max) // null;
  (best($fw | map(select(.pool != "service")))) as $f | (best($raw)) as $r | (best($wi)) as $w
  | (best($fw | map(select(.pool == "service")))) as $s
  | (best($gw | map(select(.mode == "fast")))) as $g
  | (best($gw | map(select(.mode == "default")))) as $gd
  | {date: $date, git_rev: $rev, cpus: ($cpus | tonumber), postgres: $settings,
     feedwatch_jobs_per_s: $f, raw_ceiling_jobs_per_s: $r, graphile_fast_jobs_per_s: $g,
     graphile_default_jobs_per_s: $gd,
     feedwatch_service_defaults_jobs_per_s: $s,
     ratio_service_defaults_to_graphile_fast: (if $s and $g then (($s / $g * 1000 | round) / 1000) else null end),
     feedwatch_best_pool: (($fw | map(select(.pool != "service")) | max_by(.jobs_per_s) | "\(.concurrency)/\(.prefetch)/\(.claims_in_flight)") // null),
     diagnostic_generic_plans_jobs_per_s: $w,
     ratio_to_raw: (if $f and $r then (($f / $r * 1000 | round) / 1000) else null end),
     target_ratio_to_raw: 0.60,
     ratio_to_graphile_fast: (if $f and $g then (($f / $g * 1000 | round) / 1000) else null end),
     target_ratio_to_graphile_fast: 1.0,
     graphile_note: (if $note == "" then null else $note end),
     runs: {feedwatch: $fw, raw: $raw, graphile: $gw, diagnostic: $wi}}' >"$out_json"

jq -r '
  def fmt: if . == null then "n/a" else tostring end;
  def verdict(ok): if ok == null then "n/a" elif ok then "met" else "NOT met" end;
  "",
  "queue ceiling, \(.date) (rev \(.git_rev), \(.cpus) CPUs, fsync=\(.postgres.fsync), synchronous_commit=\(.postgres.synchronous_commit))",
  "best of rounds, jobs/s:",
  "  feedwatch WorkerPool ............ \(.feedwatch_jobs_per_s | fmt)  (concurrency/prefetch/in flight \(.feedwatch_best_pool | fmt))",
  "  feedwatch, the service defaults . \(.feedwatch_service_defaults_jobs_per_s | fmt)  (\(.ratio_service_defaults_to_graphile_fast | fmt) of graphile-worker fastest; target above 1.0)",
  (.runs.feedwatch[] | "    round \(.round), pool \(.pool // "\(.concurrency)/\(.prefetch)/\(.claims_in_flight)"): \(.jobs_per_s) jobs/s, \(.claim_statements) claims of \(.mean_claim_batch) on average, \(.claims_while_lingering) claims in the idle second after"),
  "  raw ceiling (pgbench claim 50) .. \(.raw_ceiling_jobs_per_s | fmt)",
  (.runs.raw[] | "    round \(.round): \(.jobs_per_s) jobs/s"),
  "  graphile-worker fastest ......... \(.graphile_fast_jobs_per_s | fmt)",
  "  graphile-worker default ......... \(.graphile_default_jobs_per_s | fmt)",
  (.runs.graphile[] | "    round \(.round), \(.mode), \(.instances) instance(s): \(.jobs_per_s) jobs/s"),
  "  diagnostic, not counted: feedwatch with plan_cache_mode=force_generic_plan: \(.diagnostic_generic_plans_jobs_per_s | fmt) (pool \(.runs.diagnostic[0] | if . then "\(.concurrency)/\(.prefetch)/\(.claims_in_flight)" else "n/a" end))",
  (.runs.diagnostic[] | "    round \(.round): \(.jobs_per_s) jobs/s"),
  "ratios:",
  "  feedwatch / raw ceiling ......... \(.ratio_to_raw | fmt)  (target >= 0.60: \(verdict(if .ratio_to_raw == null then null else .ratio_to_raw >= 0.6 end)))",
  "  feedwatch / graphile fastest .... \(.ratio_to_graphile_fast | fmt)  (target > 1.0: \(verdict(if .ratio_to_graphile_fast == null then null else .ratio_to_graphile_fast > 1.0 end)))",
  (if .graphile_note then "note: \(.graphile_note)" else empty end)
' "$out_json"
