-- The REST request perf/rest.yaml's tool sends the floor, sent straight to nginx (which proxies it
-- to the same floor): what a client would send without the gateway. Same bytes every request.
wrk.method = "POST"
wrk.path = "/v1/items"
wrk.headers["Host"] = "127.0.0.1"
wrk.headers["Accept"] = "*/*"
wrk.headers["Content-Type"] = "application/json; charset=utf-8"
wrk.body = '{"id":1,"who":"Ada"}'

done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT requests=%d duration_us=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, errors, latency:percentile(50), latency:percentile(99)))
end
