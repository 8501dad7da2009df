#!/usr/bin/env bash
# Fleet-view benchmark (issue #7): GET /v1/health/summary and the dashboard's filtered
# connection lists at 10 thousand and 1 million connections, in one run on one private
# PostgreSQL (durable settings). Target: p50 at 1M / p50 at 10k < 3 for the summary.
#
# Usage: bench/health/run.sh
# Knobs (environment):
#   CARGO_TARGET_DIR      where to build (default: the repo's target/)
#   HEALTH_BENCH_BIN      use this health_bench binary instead of building it
#   BENCH_SIZES           fleet sizes, comma-separated (default 10000,1000000)
#   BENCH_REQUESTS        measured requests per endpoint, size and round (default 300)
#   BENCH_ROUNDS          rounds; sizes alternate within each (default 3)
# Writes bench/health/last-run.json (not committed).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

source "$root/bench/lib.sh"
bench_name=health-bench

if [[ -n ${HEALTH_BENCH_BIN:-} ]]; then
  bin="$HEALTH_BENCH_BIN"
else
  build_release --example health_bench
  bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/health_bench"
fi

"$bin" --sizes "${BENCH_SIZES:-10000,1000000}" --requests "${BENCH_REQUESTS:-300}" --rounds "${BENCH_ROUNDS:-3}" \
  | tee "$here/last-run.json"
python3 - "$here/last-run.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
print("\nconnections  endpoint             p50 ms   p99 ms")
for fleet in run["fleets"]:
    for name, figures in sorted(fleet["endpoints"].items()):
        print(f"{fleet['connections']:>11}  {name:<19} {figures['p50_ms']:>7}  {figures['p99_ms']:>7}")
print("\np50 ratio, largest fleet to smallest:", run["p50_ratio_largest_to_smallest"])
print("target: summary ratio < 3")
PY
