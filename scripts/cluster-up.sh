#!/usr/bin/env bash
# Starts the nodes described by cluster/<name>/node-*.toml (default: local), one `plex node` process each.
# PIDs go to cluster/<name>/.run/<node>.pid, logs to .run/<node>.log; waits for every ready line.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-local}
dir=cluster/$name
run=$dir/.run
mkdir -p "$run"
plex=${PLEX_BIN:-}
if [ -z "$plex" ]; then
  swift build --product plex >&2
  plex="$(swift build --show-bin-path)/plex"
fi
# A TLS cluster's certificates: made on first start with plex certs (a CA, one certificate per node, and two
# client certificates: "operator" with the admin role, "script" with the caller role).
if grep -q '^tls_ca_file' "$dir/cluster.toml" 2>/dev/null && [ ! -f "$dir/certs/ca.pem" ]; then
  "$plex" certs init --out "$dir/certs" --name "$name" >&2
  for config in "$dir"/node-*.toml; do
    "$plex" certs issue "$(basename "$config" .toml)" --ca "$dir/certs" >&2
  done
  "$plex" certs client operator --role admin --ca "$dir/certs" >&2
  "$plex" certs client script --role caller --ca "$dir/certs" >&2
fi
for config in "$dir"/node-*.toml; do
  node=$(basename "$config" .toml)
  if [ -f "$run/$node.pid" ] && kill -0 "$(cat "$run/$node.pid")" 2>/dev/null; then
    echo "$node already running (pid $(cat "$run/$node.pid"))"
    continue
  fi
  (cd "$dir" && exec "$plex" node --config "$(basename "$config")") >"$run/$node.out" 2>"$run/$node.log" &
  echo $! >"$run/$node.pid"
done
deadline=$((SECONDS + 60))
for config in "$dir"/node-*.toml; do
  node=$(basename "$config" .toml)
  until grep -q '"event":"ready"' "$run/$node.out" 2>/dev/null; do
    if ! kill -0 "$(cat "$run/$node.pid")" 2>/dev/null; then
      echo "$node exited; its log:" >&2
      cat "$run/$node.log" >&2
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "$node did not report ready in 60 s" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "$node ready: $(cat "$run/$node.out" | head -1)"
done
