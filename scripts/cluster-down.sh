#!/usr/bin/env bash
# Stops exactly the processes cluster-up.sh started (by the PIDs it recorded): SIGTERM, so each node leaves
# gracefully, then waits up to 10 s before SIGKILL.
set -uo pipefail
cd "$(dirname "$0")/.."
name=${1:-local}
run=cluster/$name/.run
shopt -s nullglob
for pidfile in "$run"/*.pid; do
  pid=$(cat "$pidfile")
  node=$(basename "$pidfile" .pid)
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$node (pid $pid) did not stop; sending SIGKILL"
      kill -KILL "$pid"
    fi
    echo "$node stopped (pid $pid)"
  fi
  rm -f "$pidfile"
done
