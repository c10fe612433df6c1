-- The gateway benchmarks' wrk load (scripts/bench-http.sh, scripts/profile-http.sh): POST the JSON body to
-- /v1/actors/TYPE/KEY over 64 keys, then print one line:
--   RESULT requests requests_per_second p50_us p99_us errors
--
--   wrk -t2 -c64 -d5s -s scripts/http-load.lua http://HOST:PORT -- TYPE 'BODY'
local actor, n = "counter", 0

function init(args)
  actor = args[1] or actor
  wrk.method = "POST"
  wrk.body = args[2] or '{"increment":{}}'
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  return wrk.format(nil, "/v1/actors/" .. actor .. "/bench-" .. (n % 64))
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format("RESULT %d %.0f %.0f %.0f %d\n", summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), errors))
end
