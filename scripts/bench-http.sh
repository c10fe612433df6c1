#!/usr/bin/env bash
# The HTTP gateway benchmark: one release-built node, 64 connections from wrk (HTTP/1.1) calling the counter
# (ephemeral) and the durable counter over POST /v1/actors/{type}/{key}, spread over 64 keys. Prints
# `name value unit` lines: requests/s and p50/p99 latency, the median of 3 runs each. Installs wrk
# (Debian's package) if it is missing. Not part of CI; run it on a quiet machine and quote
# ../shared/limits/run.sh beside it.
#
#   scripts/bench-http.sh [SECONDS]      # default 10 s per run
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
if ! command -v wrk >/dev/null; then
  echo "installing wrk" >&2
  apt-get install -y -qq wrk >&2 || { apt-get update -qq && apt-get install -y -qq wrk >&2; }
fi
swift build -c release --product plex >&2
plex="$(swift build -c release --show-bin-path)/plex"
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

PLEX_CLUSTER_SECRET="bench-secret-0123456789" "$plex" node --data-dir "$work/node" --bootstrap \
  --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --log-level warning >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 100); do grep -q '"event":"ready"' "$work/out" 2>/dev/null && break; sleep 0.1; done
http=$(sed -n 's/.*"http":"\([^"]*\)".*/\1/p' "$work/out")
[ -n "$http" ] || { cat "$work/err" >&2; echo "the node did not start" >&2; exit 1; }

echo "machine $(nproc) cores, $(uname -r); wrk 2 threads, 64 connections, ${seconds}s per run" >&2
for type in counter durable-counter; do
  case "$type" in
  counter) body='{"increment":{}}' ;;
  *) body='{"increment":{"by":1}}' ;;
  esac
  cat >"$work/$type.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/actors/$type/bench-" .. (n % 64))
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f %.0f %.0f %d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), summary.errors.status + summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
  wrk -t2 -c64 -d2s -s "$work/$type.lua" "http://$http" >/dev/null  # warm-up: activations, JIT-free caches
  : >"$work/$type.results"
  for _ in 1 2 3; do
    wrk -t2 -c64 -d"${seconds}s" -s "$work/$type.lua" "http://$http" | sed -n 's/^RESULT //p' >>"$work/$type.results"
  done
  sort -n "$work/$type.results" | sed -n 2p | while read -r rate p50 p99 errors; do
    echo "http_${type//-/_}_requests_per_second $rate req/s"
    echo "http_${type//-/_}_p50 $p50 us"
    echo "http_${type//-/_}_p99 $p99 us"
    echo "http_${type//-/_}_errors $errors count"
  done
done
