#!/usr/bin/env bash
# HTTP benchmark of the in-memory catalogue (issue #4): loads GET /v1/errors/102 (lookup) and
# GET /v1/errors?q=password%20changed (search) with wrk, next to GET /healthz (trivial baseline)
# of the same server in the same run, and reports requests/s, p50 and p99 for each, plus the
# ratios lookup/healthz and search/healthz. Targets (issue #14, pooled over the rounds): lookup
# >= 0.9 of healthz throughput, search >= 0.5 (issue #4 had set lookup >= 0.8).
# Beside them, in the same rounds, `body_floor` (bench/catalog/body_floor.rs), a minimal axum
# server answering two static bodies of healthz's and the lookup's sizes: its ratio is what the
# lookup's body size alone costs here, and the "body cost" line compares the time per request it
# adds with the time the lookup adds over healthz.
# Last in each round, healthz_gzip and lookup_gzip load /healthz and the lookup again with the
# Accept-Encoding every browser sends (the web front end and the helpdesk console): the lookup
# then answers its entry compressed once (session 15), and their ratio is the lookup's cost for
# those callers. healthz's 15 bytes are below the compression layer's floor and stay identity.
#
# Usage: bench/catalog/run.sh
# Knobs (environment):
#   CARGO_TARGET_DIR    where to build (default: the repo's target/)
#   BENCH_REV           build this git revision (exported with `git archive` to a directory under
#                       /tmp) instead of the working tree, e.g. when the tree is mid-edit
#   FEEDWATCH_BIN       use this binary instead of building one
#   BODY_FLOOR_BIN      use this body_floor binary (default: examples/ beside the feedwatch binary)
#   BENCH_THREADS       wrk threads            (default 2)
#   BENCH_CONNECTIONS   wrk connections        (default 32)
#   BENCH_DURATION      measured run per endpoint (default 10s)
#   BENCH_WARMUP        warm-up per endpoint, discarded (default 2s)
#   BENCH_ROUNDS        rounds of the three endpoints (default 2)
# Writes bench/catalog/last-run.json (not meant to be committed).
set -euo pipefail
export LC_ALL=C

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

threads="${BENCH_THREADS:-2}"
connections="${BENCH_CONNECTIONS:-32}"
duration="${BENCH_DURATION:-10s}"
warmup="${BENCH_WARMUP:-2s}"
rounds="${BENCH_ROUNDS:-2}"
target_ratio="0.90"
browser_encoding="gzip, deflate, br, zstd"
search_target_ratio="0.50"
out_json="$here/last-run.json"

source "$root/bench/lib.sh"
bench_name=catalog-bench

# --- load generator ------------------------------------------------------------------------
ensure_command wrk
require_commands curl

# --- binary --------------------------------------------------------------------------------
if [[ -n ${FEEDWATCH_BIN:-} ]]; then
  bin="$FEEDWATCH_BIN"
  log "using FEEDWATCH_BIN=$bin (not building)"
else
  target_dir="${CARGO_TARGET_DIR:-$root/target}"
  src_dir="$root"
  if [[ -n ${BENCH_REV:-} ]]; then
    rev="$(git rev-parse --verify "${BENCH_REV}^{commit}")"
    # A stable directory per revision, so a second run rebuilds nothing.
    src_dir="${TMPDIR:-/tmp}/feedwatch-bench-src-$rev"
    if [[ ! -f $src_dir/Cargo.toml ]]; then
      log "exporting revision ${rev:0:12} to $src_dir"
      rm -rf "$src_dir.partial" && mkdir -p "$src_dir.partial"
      git archive "$rev" | tar -x -C "$src_dir.partial"
      mv "$src_dir.partial" "$src_dir"
    fi
  fi
  log "building the release binary from $src_dir (target dir: $target_dir)"
  (cd "$src_dir" && CARGO_TARGET_DIR="$target_dir" cargo build --release --locked --bin feedwatch --example body_floor)
  bin="$target_dir/release/feedwatch"
fi
floor_bin="${BODY_FLOOR_BIN:-${bin%/*}/examples/body_floor}"
[[ -x $bin ]] || { log "no executable at $bin"; exit 1; }
[[ -x $floor_bin ]] || { log "no body_floor executable at $floor_bin (set BODY_FLOOR_BIN)"; exit 1; }

# --- server --------------------------------------------------------------------------------
key="$(new_api_key)"
auth="Authorization: Bearer $key"

tmp="$(mktemp -d /tmp/feedwatch-bench.XXXXXX)"
# When run as root the private PostgreSQL runs as `postgres`, which must traverse this directory.
chmod 711 "$tmp"
server_pid="" floor_pid=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  stop_process "$floor_pid"
  stop_process "$server_pid"
  if [[ $status -ne 0 && -s $tmp/server.err ]]; then
    log "last lines of the server's stderr:"
    tail -n 20 "$tmp/server.err" >&2 || true
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting feedwatch with a throwaway PostgreSQL under $tmp"
start_feedwatch "$bin" "$key" "$tmp"
log "feedwatch ready at $base"

names=(healthz lookup search)
declare -A path=(
  [healthz]="/healthz"
  [lookup]="/v1/errors/102"
  [search]="/v1/errors?q=password%20changed"
)
declare -A url
for name in "${names[@]}"; do url[$name]="$base${path[$name]}"; done

# Each endpoint must answer 200 before it is loaded; note the (uncompressed) body size, which
# is what wrk receives since it sends no Accept-Encoding.
declare -A size
for name in "${names[@]}"; do
  read -r code bytes < <(curl -sS -o /dev/null -w '%{http_code} %{size_download}\n' -H "$auth" "${url[$name]}")
  [[ $code == 200 ]] || { log "GET ${path[$name]} answered $code, expected 200"; exit 1; }
  size[$name]=$bytes
done
"$floor_bin" --small "${size[healthz]}" --large "${size[lookup]}" >"$tmp/floor.out" 2>"$tmp/floor.err" &
floor_pid=$!
floor_addr="$(wait_for_address "$tmp/floor.out" body_floor "$floor_pid")"
path[floor_small]="/small (body_floor)"; url[floor_small]="http://$floor_addr/small"; size[floor_small]="${size[healthz]}"
path[floor_large]="/large (body_floor)"; url[floor_large]="http://$floor_addr/large"; size[floor_large]="${size[lookup]}"
names+=(floor_small floor_large)

# The browsers' rows: the lookup must answer gzip to them, or the row measures something else.
declare -A accept=([healthz_gzip]="$browser_encoding" [lookup_gzip]="$browser_encoding")
path[healthz_gzip]="/healthz (browser)"; url[healthz_gzip]="${url[healthz]}"
path[lookup_gzip]="/v1/errors/102 (browser, gzip)"; url[lookup_gzip]="${url[lookup]}"
declare -A coding
for name in healthz_gzip lookup_gzip; do
  read -r code bytes "coding[$name]" < <(curl -sS -o /dev/null -w '%{http_code} %{size_download} %header{content-encoding}\n' \
    -H "$auth" -H "Accept-Encoding: ${accept[$name]}" "${url[$name]}")
  [[ $code == 200 ]] || { log "GET ${path[$name]} answered $code, expected 200"; exit 1; }
  size[$name]=$bytes
done
[[ ${coding[lookup_gzip]:-} == gzip ]] || { log "the lookup answered Content-Encoding '${coding[lookup_gzip]:-}' to a browser, expected gzip"; exit 1; }
names+=(healthz_gzip lookup_gzip)

# --- load ----------------------------------------------------------------------------------
wrk_version="$(wrk -v 2>&1 | head -n1 | awk '{print $1, $2}' || true)"
cpu_model="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || true)"
started_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
if [[ -n ${FEEDWATCH_BIN:-} ]]; then
  commit="unknown (FEEDWATCH_BIN)"
  dirty=false
elif [[ -n ${BENCH_REV:-} ]]; then
  commit="${rev:0:7}"
  dirty=false
else
  commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  dirty=false
  [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null || true)" ]] && dirty=true
fi

log "wrk -t$threads -c$connections -d$duration (warm-up $warmup per endpoint), $rounds round(s), $(nproc) CPU(s) shared by server and wrk"

declare -A res   # res[round:name] = "requests duration_us bytes rps p50 p90 p99 max non2xx sockerr"
declare -A cpu   # cpu[round:name] = the server process's own CPU time (user+system) per request, µs
clk_tck="$(getconf CLK_TCK)"
server_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
invalid=0
run_wrk() {   # run_wrk DURATION URL [extra wrk args...]
  local d="$1" url="$2"; shift 2
  wrk -t"$threads" -c"$connections" -d"$d" --timeout 5s -H "$auth" "$@" "$url"
}
headers_of() {   # headers_of NAME: the wrk arguments of the endpoint's own request headers
  [[ -n ${accept[$1]:-} ]] && printf '%s\0' -H "Accept-Encoding: ${accept[$1]}"
  return 0
}
for round in $(seq 1 "$rounds"); do
  for name in "${names[@]}"; do
    pid="$server_pid"; [[ $name == floor_* ]] && pid="$floor_pid"
    mapfile -d '' own < <(headers_of "$name")
    run_wrk "$warmup" "${url[$name]}" "${own[@]}" >/dev/null
    ticks_before="$(server_ticks "$pid")"
    line="$(run_wrk "$duration" "${url[$name]}" "${own[@]}" -s "$here/report.lua" | grep '^BENCH_RESULT ')" \
      || { log "wrk produced no result for $name"; exit 1; }
    ticks_after="$(server_ticks "$pid")"
    res[$round:$name]="${line#BENCH_RESULT }"
    read -r reqs _ _ rps _ _ p99 _ non2xx sockerr <<<"${res[$round:$name]}"
    cpu[$round:$name]="$(awk -v t="$((ticks_after - ticks_before))" -v hz="$clk_tck" -v n="$reqs" \
      'BEGIN{printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0)}')"
    log "round $round $name: $rps req/s, p99 $(awk -v u="$p99" 'BEGIN{printf "%.2f", u/1000}') ms, server CPU ${cpu[$round:$name]} µs/request"
    if (( non2xx > 0 || sockerr > 0 )); then
      log "WARNING: $name had $non2xx non-2xx/3xx responses and $sockerr socket errors: figures not valid"
      invalid=1
    fi
  done
done
finished_at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# --- report --------------------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN{printf "%.2f", u/1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b > 0 ? a / b : 0)}'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a >= b)}'; }

met_all=true
echo
echo "feedwatch catalogue benchmark  $started_at  commit $commit$([[ $dirty == true ]] && echo ' (dirty tree)')"
echo "wrk -t$threads -c$connections -d$duration, warm-up $warmup; $(nproc) CPUs shared by server and load generator"
echo "response bodies: healthz ${size[healthz]} B, lookup ${size[lookup]} B, search ${size[search]} B"
echo "with Accept-Encoding: $browser_encoding: healthz ${size[healthz_gzip]} B (${coding[healthz_gzip]:-identity}), lookup ${size[lookup_gzip]} B (${coding[lookup_gzip]})"
for round in $(seq 1 "$rounds"); do
  echo
  printf '%-6s %-12s %-34s %12s %9s %9s %9s %13s\n' round endpoint path 'requests/s' 'p50 ms' 'p99 ms' 'x base' 'srv CPU us/req'
  read -r _ _ _ base_rps _ <<<"${res[$round:healthz]}"
  read -r _ _ _ floor_base_rps _ <<<"${res[$round:floor_small]}"
  read -r _ _ _ browser_base_rps _ <<<"${res[$round:healthz_gzip]}"
  for name in "${names[@]}"; do
    read -r _ _ _ rps p50 _ p99 _ <<<"${res[$round:$name]}"
    against="$base_rps"; [[ $name == floor_* ]] && against="$floor_base_rps"; [[ $name == *_gzip ]] && against="$browser_base_rps"
    printf '%-6s %-12s %-34s %12.1f %9s %9s %9s %13s\n' "$round" "$name" "${path[$name]}" "$rps" \
      "$(ms "$p50")" "$(ms "$p99")" "$(ratio "$rps" "$against")" "${cpu[$round:$name]}"
  done
  read -r _ _ _ lookup_rps _ <<<"${res[$round:lookup]}"
  read -r _ _ _ search_rps _ <<<"${res[$round:search]}"
  lr="$(ratio "$lookup_rps" "$base_rps")"; sr="$(ratio "$search_rps" "$base_rps")"
  if ge "$lr" "$target_ratio" && ge "$sr" "$search_target_ratio"; then verdict="met"; else verdict="MISSED"; met_all=false; fi
  echo "round $round: lookup/healthz = $lr, search/healthz = $sr; targets lookup >= $target_ratio, search >= $search_target_ratio: $verdict"
  read -r _ _ _ lookup_gzip_rps _ <<<"${res[$round:lookup_gzip]}"
  echo "round $round, with browsers' Accept-Encoding: lookup_gzip/healthz_gzip = $(ratio "$lookup_gzip_rps" "$browser_base_rps")"
done

# Rounds alternate the endpoints, so over several short rounds load from elsewhere falls on all
# of them alike: the pooled ratio (all requests over all rounds) and the median round are the
# figures to judge by on a shared machine.
pooled() { local sum=0; for round in $(seq 1 "$rounds"); do read -r _ _ _ rps _ <<<"${res[$round:$1]}"; sum="$(awk -v a="$sum" -v b="$rps" 'BEGIN{print a + b}')"; done; echo "$sum"; }
median_ratio() {
  for round in $(seq 1 "$rounds"); do
    read -r _ _ _ a _ <<<"${res[$round:$1]}"; read -r _ _ _ b _ <<<"${res[$round:healthz]}"; ratio "$a" "$b"; echo
  done | sort -n | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'
}
pooled_lookup="$(ratio "$(pooled lookup)" "$(pooled healthz)")"
pooled_search="$(ratio "$(pooled search)" "$(pooled healthz)")"
if ge "$pooled_lookup" "$target_ratio" && ge "$pooled_search" "$search_target_ratio"; then pooled_verdict="met"; else pooled_verdict="MISSED"; fi
echo "pooled over $rounds rounds: lookup/healthz = $pooled_lookup, search/healthz = $pooled_search (targets $target_ratio and $search_target_ratio: $pooled_verdict); median round: lookup/healthz = $(median_ratio lookup)"
pooled_browser="$(ratio "$(pooled lookup_gzip)" "$(pooled healthz_gzip)")"
echo "pooled over $rounds rounds, with browsers' Accept-Encoding ($browser_encoding): lookup_gzip/healthz_gzip = $pooled_browser (lookup body ${size[lookup_gzip]} B gzip against ${size[lookup]} B)"
# What the lookup's body size alone costs: the same two sizes from a server that does nothing
# else. Times are the machine's per request (1 / requests/s, pooled), wrk's reading included.
us_per_request() { awk -v n="$rounds" -v sum="$(pooled "$1")" 'BEGIN{printf "%.1f", (sum > 0 ? 1e6 * n / sum : 0)}'; }
pooled_floor="$(ratio "$(pooled floor_large)" "$(pooled floor_small)")"
floor_body_us="$(awk -v a="$(us_per_request floor_large)" -v b="$(us_per_request floor_small)" 'BEGIN{printf "%.1f", a - b}')"
lookup_extra_us="$(awk -v a="$(us_per_request lookup)" -v b="$(us_per_request healthz)" 'BEGIN{printf "%.1f", a - b}')"
headroom_us="$(awk -v b="$(us_per_request healthz)" -v t="$target_ratio" 'BEGIN{printf "%.1f", b / t - b}')"
echo "body floor (${size[lookup]} B vs ${size[healthz]} B from body_floor): large/small = $pooled_floor; the body alone adds $floor_body_us us per request, the lookup adds $lookup_extra_us us over healthz, and the lookup target allows $headroom_us us"
echo

# JSON, written by hand to need nothing beyond bash and awk.
{
  printf '{\n'
  printf '  "benchmark": "catalog",\n'
  printf '  "started_at": "%s",\n  "finished_at": "%s",\n' "$started_at" "$finished_at"
  printf '  "commit": "%s",\n  "dirty_tree": %s,\n' "$commit" "$dirty"
  printf '  "machine": {"cpus": %d, "cpu_model": "%s", "loadavg_before": "%s", "note": "server and load generator share these CPUs"},\n' \
    "$(nproc)" "${cpu_model//\"/}" "$load_before"
  printf '  "load_generator": {"tool": "%s", "threads": %d, "connections": %d, "duration": "%s", "warmup": "%s", "rounds": %d},\n' \
    "$wrk_version" "$threads" "$connections" "$duration" "$warmup" "$rounds"
  printf '  "endpoints": {\n'
  for i in "${!names[@]}"; do
    name="${names[$i]}"
    printf '    "%s": {"path": "%s", "response_bytes": %d}%s\n' "$name" "${path[$name]}" "${size[$name]}" \
      "$([[ $i -lt $((${#names[@]} - 1)) ]] && echo ,)"
  done
  printf '  },\n'
  printf '  "rounds": [\n'
  for round in $(seq 1 "$rounds"); do
    read -r _ _ _ base_rps _ <<<"${res[$round:healthz]}"
    read -r _ _ _ lookup_rps _ <<<"${res[$round:lookup]}"
    read -r _ _ _ search_rps _ <<<"${res[$round:search]}"
    read -r _ _ _ browser_base_rps _ <<<"${res[$round:healthz_gzip]}"
    read -r _ _ _ lookup_gzip_rps _ <<<"${res[$round:lookup_gzip]}"
    printf '    {"round": %d, "results": {\n' "$round"
    for i in "${!names[@]}"; do
      name="${names[$i]}"
      read -r reqs dur_us bytes rps p50 p90 p99 max non2xx sockerr <<<"${res[$round:$name]}"
      printf '      "%s": {"requests": %d, "duration_s": %s, "bytes": %d, "requests_per_sec": %s, "p50_ms": %s, "p90_ms": %s, "p99_ms": %s, "max_ms": %s, "server_cpu_us_per_request": %s, "non_2xx_3xx": %d, "socket_errors": %d}%s\n' \
        "$name" "$reqs" "$(awk -v u="$dur_us" 'BEGIN{printf "%.3f", u/1e6}')" "$bytes" "$rps" \
        "$(ms "$p50")" "$(ms "$p90")" "$(ms "$p99")" "$(ms "$max")" "${cpu[$round:$name]}" "$non2xx" "$sockerr" \
        "$([[ $i -lt $((${#names[@]} - 1)) ]] && echo ,)"
    done
    printf '    }, "lookup_over_healthz": %s, "search_over_healthz": %s, "lookup_gzip_over_healthz_gzip": %s}%s\n' \
      "$(ratio "$lookup_rps" "$base_rps")" "$(ratio "$search_rps" "$base_rps")" \
      "$(ratio "$lookup_gzip_rps" "$browser_base_rps")" "$([[ $round -lt $rounds ]] && echo ,)"
  done
  printf '  ],\n'
  printf '  "body_floor": {"large_over_small": %s, "body_us_per_request": %s, "lookup_extra_us_per_request": %s, "target_allows_us_per_request": %s},\n' \
    "$pooled_floor" "$floor_body_us" "$lookup_extra_us" "$headroom_us"
  printf '  "browsers": {"accept_encoding": "%s", "lookup_content_encoding": "%s", "pooled_lookup_gzip_over_healthz_gzip": %s},\n' \
    "$browser_encoding" "${coding[lookup_gzip]}" "$pooled_browser"
  printf '  "target": {"lookup_over_healthz_at_least": %s, "search_over_healthz_at_least": %s, "pooled_lookup_over_healthz": %s, "pooled_search_over_healthz": %s, "met_pooled": %s, "met_in_every_round": %s},\n' \
    "$target_ratio" "$search_target_ratio" "$pooled_lookup" "$pooled_search" "$([[ $pooled_verdict == met ]] && echo true || echo false)" "$met_all"
  printf '  "valid": %s\n' "$([[ $invalid -eq 0 ]] && echo true || echo false)"
  printf '}\n'
} >"$out_json"
log "wrote ${out_json#"$root"/}"

if (( invalid )); then
  log "some requests failed: the figures above are not valid"
  exit 1
fi
