#!/usr/bin/env bash
# The HTTP gateway benchmark: one release-built node, 64 connections calling the counter (ephemeral) and the
# durable counter over POST /v1/actors/{type}/{key}, spread over 64 keys: wrk over HTTP/1.1, then h2load over
# HTTP/2 (h2c, one stream at a time per connection, then ten), GET /healthz (Hummingbird's own per-request path), and four
# bare NIO baselines on the counter's load (`plex-bench http-baseline`: a fixed reply, the same JSON actor call
# without Hummingbird, a fixed reply without NIOHTTP1, and the JSON call without NIOHTTP1). Prints `name value unit` lines: requests/s and p50/p99 latency, the median of 3 runs each. Installs wrk and h2load (Debian's wrk and nghttp2-client) if they are
# missing. Not part of CI; run it on a quiet machine and quote ../shared/limits/run.sh beside it.
#
#   scripts/bench-http.sh [SECONDS]      # default 10 s per run
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
if ! command -v wrk >/dev/null || ! command -v h2load >/dev/null; then
  echo "installing wrk and h2load" >&2
  apt-get install -y -qq wrk nghttp2-client >&2 || { apt-get update -qq && apt-get install -y -qq wrk nghttp2-client >&2; }
fi
swift build -c release --product plex >&2
plex="$(swift build -c release --show-bin-path)/plex"
work="$(mktemp -d)"
pid=""
baseline=""
cleanup() {
  for p in $pid $baseline; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

PLEX_CLUSTER_SECRET="bench-secret-0123456789" "$plex" node --data-dir "$work/node" --bootstrap \
  --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --http2-listen 127.0.0.1:0 --log-level warning >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 100); do grep -q '"event":"ready"' "$work/out" 2>/dev/null && break; sleep 0.1; done
http=$(sed -n 's/.*"http":"\([^"]*\)".*/\1/p' "$work/out")
http2=$(sed -n 's/.*"http2":"\([^"]*\)".*/\1/p' "$work/out")
[ -n "$http" ] || { cat "$work/err" >&2; echo "the node did not start" >&2; exit 1; }

echo "machine $(nproc) cores, $(uname -r); wrk 2 threads, 64 connections, ${seconds}s per run" >&2
for type in counter durable-counter; do
  case "$type" in
  counter) body='{"increment":{}}' ;;
  *) body='{"increment":{"by":1}}' ;;
  esac
  load=(-s scripts/http-load.lua "http://$http" -- "$type" "$body")
  wrk -t2 -c64 -d2s "${load[@]}" >/dev/null  # warm-up: activations, JIT-free caches
  : >"$work/$type.results"
  for _ in 1 2 3; do
    wrk -t2 -c64 -d"${seconds}s" "${load[@]}" | sed -n 's/^RESULT //p' >>"$work/$type.results"
  done
  sort -n -k2 "$work/$type.results" | sed -n 2p | while read -r _ rate p50 p99 errors; do
    echo "http_${type//-/_}_requests_per_second $rate req/s"
    echo "http_${type//-/_}_p50 $p50 us"
    echo "http_${type//-/_}_p99 $p99 us"
    echo "http_${type//-/_}_errors $errors count"
  done
done

# The HTTP server's own ceiling on this machine in this sitting: GET /healthz through Hummingbird's router and
# the gateway's middleware, no actor. Quote the counter's rate beside it (their ratio compares across days).
cat >"$work/healthz.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.0f\n", summary.requests / (summary.duration / 1e6)))
end
LUA
: >"$work/healthz.results"
for _ in 1 2 3; do
  wrk -t2 -c64 -d"${seconds}s" -s "$work/healthz.lua" "http://$http/healthz" | sed -n 's/^RESULT //p' >>"$work/healthz.results"
done
echo "http_healthz_requests_per_second $(sort -n "$work/healthz.results" | sed -n 2p) req/s"

# HTTP/2: h2load cycles through the 64 URIs; its log has each request's latency in microseconds. One stream at a
# time per connection (like wrk's HTTP/1.1), then ten (HTTP/2's multiplexing, the figure's name ending `_m10`).
for streams in 1 10; do
  suffix=""
  [ "$streams" = 1 ] || suffix="_m$streams"
  for type in counter durable-counter; do
    case "$type" in
    counter) printf '%s' '{"increment":{}}' >"$work/body" ;;
    *) printf '%s' '{"increment":{"by":1}}' >"$work/body" ;;
    esac
    uris=()
    for i in $(seq 0 63); do uris+=("http://$http2/v1/actors/$type/bench-$i"); done
    run_h2load() {
      h2load -c64 -m"$streams" -t2 -D "$1" -d "$work/body" -H 'content-type: application/json' \
        --log-file="$work/h2.log" "${uris[@]}" >"$work/h2.out"
    }
    run_h2load 2
    : >"$work/$type.h2results"
    for _ in 1 2 3; do
      run_h2load "$seconds"
      rate=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$work/h2.out")
      failed=$(sed -n 's/^requests: .* \([0-9]*\) failed, \([0-9]*\) errored.*/\1 \2/p' "$work/h2.out" | awk '{print $1+$2}')
      non2xx=$(awk -F'\t' '$2 != 200' "$work/h2.log" | wc -l)
      read -r p50 p99 < <(cut -f3 "$work/h2.log" | sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.5)+1], a[int(NR*0.99)+1]}')
      echo "${rate%.*} $p50 $p99 $((failed + non2xx))" >>"$work/$type.h2results"
    done
    sort -n "$work/$type.h2results" | sed -n 2p | while read -r rate p50 p99 errors; do
      name="http2_${type//-/_}$suffix"
      echo "${name}_requests_per_second $rate req/s"
      echo "${name}_p50 $p50 us"
      echo "${name}_p99 $p99 us"
      echo "${name}_errors $errors count"
    done
  done
done

# Baselines in the same sitting, same wrk load on the counter's route: a bare NIO HTTP/1.1 pipeline (no
# Hummingbird) answering a fixed reply (NIOHTTP1's and the kernel's ceiling here), the same pipeline making the
# counter's JSON call as the gateway does (what the call costs without Hummingbird), and a fixed reply from a
# minimal HTTP/1.1 parser of its own on bare NIO, without NIOHTTP1 (`raw`: the ceiling an HTTP path of our own
# could reach), and that parser making the counter's JSON call (`raw-actor`: the ceiling of the gateway's raw path
# with this call). `plex-bench http-baseline`.
swift build -c release --product plex-bench >&2
bench="$(swift build -c release --show-bin-path)/plex-bench"
for mode in fixed actor raw raw-actor; do
  "$bench" http-baseline --mode "$mode" --data-dir "$work/$mode-node" >"$work/$mode.out" 2>"$work/$mode.err" &
  baseline=$!
  for _ in $(seq 1 100); do grep -q '"event":"ready"' "$work/$mode.out" 2>/dev/null && break; sleep 0.1; done
  address=$(sed -n 's/.*"http":"\([^"]*\)".*/\1/p' "$work/$mode.out")
  [ -n "$address" ] || { cat "$work/$mode.err" >&2; echo "the $mode baseline did not start" >&2; exit 1; }
  load=(-s scripts/http-load.lua "http://$address" -- counter '{"increment":{}}')
  wrk -t2 -c64 -d2s "${load[@]}" >/dev/null
  : >"$work/$mode.results"
  for _ in 1 2 3; do
    wrk -t2 -c64 -d"${seconds}s" "${load[@]}" | sed -n 's/^RESULT //p' >>"$work/$mode.results"
  done
  echo "http_baseline_nio_${mode//-/_}_requests_per_second $(sort -n -k2 "$work/$mode.results" | sed -n 2p | cut -d' ' -f2) req/s"
  kill "$baseline"; wait "$baseline" 2>/dev/null || true
  baseline=""
done
