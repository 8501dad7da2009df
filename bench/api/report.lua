-- wrk reporter for bench/api/run.sh: after the run, prints one machine-readable line
--   BENCH_RESULT requests duration_us bytes rps p50_us p90_us p99_us max_us non_2xx_3xx socket_errors
-- Latencies are wrk's (microseconds, coordinated omission not corrected; closed-loop load).
done = function(summary, latency, requests)
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "BENCH_RESULT %d %d %d %.1f %d %d %d %d %d %d\n",
    summary.requests, summary.duration, summary.bytes,
    summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, socket_errors))
end
