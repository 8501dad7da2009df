#!/usr/bin/env bash
# HTTP benchmark of feedwatch's connection reads (issue #17) against a floor measured in the
# same run: `api_baseline` (bench/api/api_baseline.rs), a minimal axum + sqlx service reading the
# same connection row by primary key from the same database and serialising it.
#   baseline  GET /connections/{id}        on api_baseline
#   get       GET /v1/connections/{id}     the connection, its accounts and shared account names
#   list      GET /v1/connections?limit=20
#   summary   GET /v1/health/summary
# Targets: get >= 0.8 x baseline; list and summary >= 0.5 x baseline (requests/s, pooled over
# the rounds, which alternate the four endpoints so load from elsewhere falls on all alike).
#
# Usage: bench/api/run.sh
# Knobs (environment):
#   CARGO_TARGET_DIR      where to build (default: the repo's target/)
#   FEEDWATCH_BIN         use this feedwatch binary instead of building one
#   API_BASELINE_BIN      use this api_baseline binary instead of building one
#   BENCH_THREADS (2)  BENCH_CONNECTIONS (32)  BENCH_DURATION (4s)  BENCH_WARMUP (1s)  BENCH_ROUNDS (6)
# Writes bench/api/last-run.json (not committed).
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

threads="${BENCH_THREADS:-2}"
connections="${BENCH_CONNECTIONS:-32}"
duration="${BENCH_DURATION:-4s}"
warmup="${BENCH_WARMUP:-1s}"
rounds="${BENCH_ROUNDS:-6}"
out_json="$here/last-run.json"

source "$root/bench/lib.sh"
bench_name=api-bench
ensure_command wrk
require_commands curl jq

target_dir="${CARGO_TARGET_DIR:-$root/target}"
if [[ -z ${FEEDWATCH_BIN:-} || -z ${API_BASELINE_BIN:-} ]]; then
  build_release --bin feedwatch --example api_baseline
fi
bin="${FEEDWATCH_BIN:-$target_dir/release/feedwatch}"
baseline_bin="${API_BASELINE_BIN:-$target_dir/release/examples/api_baseline}"
[[ -x $bin && -x $baseline_bin ]] || { log "no executable at $bin or $baseline_bin"; exit 1; }

key="$(new_api_key)"
auth="Authorization: Bearer $key"
tmp="$(mktemp -d /tmp/feedwatch-api-bench.XXXXXX)"
chmod 711 "$tmp"   # the private PostgreSQL runs as `postgres` when we are root
server_pid="" baseline_pid=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_process "$baseline_pid"
  stop_process "$server_pid"
  if [[ $status -ne 0 && -s $tmp/server.err ]]; then tail -n 20 "$tmp/server.err" >&2 || true; fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting feedwatch (demo tenant, private PostgreSQL under $tmp)"
start_feedwatch "$bin" "$key" "$tmp"

# The demo's first connection to the healthy sandbox bank, once its first refresh stored accounts.
id=""
for _ in $(seq 1 240); do
  id="$(curl -fsS -H "$auth" "$base/v1/connections?limit=20" \
    | jq -r '[.items[] | select(.display_name == "Operating account" and .state == "healthy")][0].id // empty')"
  if [[ -n $id ]] && [[ "$(curl -fsS -H "$auth" "$base/v1/connections/$id" | jq '.accounts | length')" -gt 0 ]]; then break; fi
  id=""
  sleep 0.25
done
[[ -n $id ]] || { log "the demo connection was not refreshed within a minute"; exit 1; }

pid_file="$(find "$tmp" -name postmaster.pid -print -quit)"
password_file="$(dirname "$pid_file").password"
db_url="postgres://postgres:$(tr -d '[:space:]' <"$password_file")@127.0.0.1:$(sed -n 4p "$pid_file")/feedwatch"
"$baseline_bin" --url "$db_url" >"$tmp/baseline.out" 2>"$tmp/baseline.err" &
baseline_pid=$!
baseline_addr="$(wait_for_address "$tmp/baseline.out" api_baseline "$baseline_pid")"

names=(baseline get list summary)
declare -A url=(
  [baseline]="http://$baseline_addr/connections/$id"
  [get]="$base/v1/connections/$id"
  [list]="$base/v1/connections?limit=20"
  [summary]="$base/v1/health/summary"
)
declare -A size pid_of=([baseline]="" [get]="" [list]="" [summary]="")
for name in "${names[@]}"; do
  read -r code bytes < <(curl -sS -o /dev/null -w '%{http_code} %{size_download}\n' -H "$auth" "${url[$name]}")
  [[ $code == 200 ]] || { log "GET ${url[$name]} answered $code, expected 200"; exit 1; }
  size[$name]=$bytes
done

clk_tck="$(getconf CLK_TCK)"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
log "wrk -t$threads -c$connections -d$duration (warm-up $warmup), $rounds rounds; connection $id; load $load_before"

runs="$tmp/runs.jsonl"
invalid=0
for round in $(seq 1 "$rounds"); do
  for name in "${names[@]}"; do
    server=$server_pid; [[ $name == baseline ]] && server=$baseline_pid
    wrk -t"$threads" -c"$connections" -d"$warmup" --timeout 5s -H "$auth" "${url[$name]}" >/dev/null
    t0="$(ticks "$server")"; p0="$(postgres_cpu_ticks "$pid_file")"
    line="$(wrk -t"$threads" -c"$connections" -d"$duration" --timeout 5s -H "$auth" -s "$here/report.lua" "${url[$name]}" \
      | grep '^BENCH_RESULT ')" || { log "wrk produced no result for $name"; exit 1; }
    t1="$(ticks "$server")"; p1="$(postgres_cpu_ticks "$pid_file")"
    read -r reqs _ _ rps p50 _ p99 _ non2xx sockerr <<<"${line#BENCH_RESULT }"
    (( non2xx > 0 || sockerr > 0 )) && { log "WARNING: $name: $non2xx non-2xx, $sockerr socket errors"; invalid=1; }
    jq -nc --arg name "$name" --argjson round "$round" --argjson reqs "$reqs" --argjson rps "$rps" \
      --argjson p50 "$p50" --argjson p99 "$p99" --argjson server_ticks "$((t1 - t0))" --argjson pg_ticks "$((p1 - p0))" \
      --argjson hz "$clk_tck" --argjson bytes "${size[$name]}" \
      '{name: $name, round: $round, requests: $reqs, rps: $rps, p50_ms: ($p50 / 1000), p99_ms: ($p99 / 1000), body_bytes: $bytes,
        server_cpu_us: (if $reqs > 0 then $server_ticks * 1e6 / $hz / $reqs else 0 end),
        postgres_cpu_us: (if $reqs > 0 then $pg_ticks * 1e6 / $hz / $reqs else 0 end)}' >>"$runs"
    log "round $round $name: $rps req/s, p50 $(awk -v u="$p50" 'BEGIN{printf "%.2f", u/1000}') ms"
  done
done

jq -s --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg load "$load_before" --arg cpus "$(nproc)" '
  . as $runs
  | def pooled($n): ([$runs[] | select(.name == $n) | .requests] | add);
    def ratios($n): [range(1; ($runs | map(.round) | max) + 1) as $r
      | ([$runs[] | select(.name == $n and .round == $r)][0].rps) / ([$runs[] | select(.name == "baseline" and .round == $r)][0].rps)];
  {date: $date, git_rev: $rev, load_before: $load, cpus: ($cpus | tonumber), runs: $runs,
   pooled_ratio: ({get: (pooled("get") / pooled("baseline")), list: (pooled("list") / pooled("baseline")),
                   summary: (pooled("summary") / pooled("baseline"))}),
   round_ratios: ({get: ratios("get"), list: ratios("list"), summary: ratios("summary")})}' "$runs" >"$out_json"

jq -r '
  def r2: . * 1000 | round / 1000;
  def r1: . * 10 | round / 10;
  "",
  "connection reads, \(.date) (rev \(.git_rev), \(.cpus) CPUs, load before \(.load_before)); wrk and both servers share the CPUs",
  "round  endpoint   req/s     p50 ms  p99 ms  x baseline  server CPU us/req  PostgreSQL CPU us/req  body B",
  (.runs[] as $x | (.runs[] | select(.name == "baseline" and .round == $x.round) | .rps) as $b
    | "\($x.round)      \($x.name | . + " " * (9 - length))  \($x.rps | round)  \($x.p50_ms | r2)  \($x.p99_ms | r2)  \($x.rps / $b | r2)  \($x.server_cpu_us | r1)  \($x.postgres_cpu_us | r1)  \($x.body_bytes)"),
  "pooled over the rounds (requests of all rounds / baseline requests): get \(.pooled_ratio.get | r2) (target 0.8), list \(.pooled_ratio.list | r2) (0.5), summary \(.pooled_ratio.summary | r2) (0.5)"
' "$out_json"
[[ $invalid -eq 0 ]] || { log "some requests failed: the figures are not valid"; exit 1; }
