#!/usr/bin/env bash
# Profiles the HTTP gateway under load, for the next optimisation: one release-built node, wrk with 64
# connections on the counter's (or the durable counter's) route over 64 keys for SECONDS, and meanwhile either
# `perf stat` of the node (syscalls, context switches and CPU per request: deterministic enough to compare two
# builds where requests/s are within noise) or `perf record -g` (where the node's CPU goes). Not part of CI.
#
#   scripts/profile-http.sh [--h2] [counter|durable-counter] [SECONDS] [stat|record] [PLEX_BINARY]
#
# `--h2` loads the h2c listener with h2load (64 connections, one stream at a time each) instead of wrk.
# `record` writes perf.data in the current directory; read it with `perf report --no-children`.
set -euo pipefail
h2=false
if [ "${1:-}" = "--h2" ]; then h2=true; shift; fi
type=${1:-counter}
seconds=${2:-5}
mode=${3:-stat}
cd "$(dirname "$0")/.."
if [ -n "${4:-}" ]; then
  plex=$4
else
  swift build -c release --product plex >&2
  plex="$(swift build -c release --show-bin-path)/plex"
fi
if ! command -v wrk >/dev/null || ! command -v h2load >/dev/null; then
  apt-get install -y -qq wrk nghttp2-client >&2 || { apt-get update -qq && apt-get install -y -qq wrk nghttp2-client >&2; }
fi
command -v perf >/dev/null || { echo "perf is not installed" >&2; exit 1; }
work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
PLEX_CLUSTER_SECRET="profile-secret-0123456789" "$plex" node --data-dir "$work/node" --bootstrap \
  --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --http2-listen 127.0.0.1:0 --log-level warning >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 100); do grep -q '"event":"ready"' "$work/out" 2>/dev/null && break; sleep 0.1; done
http=$(sed -n 's/.*"http":"\([^"]*\)".*/\1/p' "$work/out")
http2=$(sed -n 's/.*"http2":"\([^"]*\)".*/\1/p' "$work/out")
[ -n "$http" ] || { cat "$work/err" >&2; echo "the node did not start" >&2; exit 1; }
case "$type" in
counter) body='{"increment":{}}' ;;
durable-counter) body='{"increment":{"by":1}}' ;;
*) echo "type must be counter or durable-counter" >&2; exit 2 ;;
esac
load=(-s scripts/http-load.lua "http://$http" -- "$type" "$body")
printf '%s' "$body" >"$work/body"
uris=()
for i in $(seq 0 63); do uris+=("http://$http2/v1/actors/$type/bench-$i"); done
# Runs the load for $1 seconds; prints `requests rate p50 p99` (latencies in microseconds; h2load gives none).
run_load() {
  if $h2; then
    h2load -c64 -m1 -t2 -D "$1" -d "$work/body" -H 'content-type: application/json' "${uris[@]}" |
      sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p; s/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' |
      paste -sd' ' | awk '{print $2, $1, "-", "-"}'
  else
    wrk -t2 -c64 -d"${1}s" "${load[@]}" | sed -n 's/^RESULT //p'
  fi
}
run_load 2 >/dev/null  # warm-up: activations
case "$mode" in
stat)
  events=task-clock,context-switches,syscalls:sys_enter_read,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait
  events=$events,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_futex,syscalls:sys_enter_fdatasync
  perf stat -e "$events" -p "$pid" -o "$work/stat" -- sleep "$((seconds + 1))" &
  ;;
record) perf record -F 2000 -g -p "$pid" -o perf.data -- sleep "$seconds" >/dev/null 2>&1 & ;;
*) echo "mode must be stat or record" >&2; exit 2 ;;
esac
profiler=$!
sleep 0.5
read -r requests rate p50 p99 _ < <(run_load "$seconds")
wait "$profiler"
echo "$type: $requests requests, $rate req/s, p50 $p50 us, p99 $p99 us (machine: $(nproc) cores)"
if [ "$mode" = stat ]; then
  # Per request: task-clock in microseconds of CPU, the rest as counts.
  grep -E '^ +[0-9]' "$work/stat" | awk -v n="$requests" '{
    gsub(",", "", $1)
    if ($2 == "seconds") next
    if ($2 == "msec") printf "node CPU per request %.1f us\n", $1 * 1000 / n
    else printf "%s per request %.3f\n", $2, $1 / n
  }'
else
  echo "perf.data written: perf report --no-children -i perf.data"
fi
