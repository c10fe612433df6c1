#!/usr/bin/env bash
# The demo over mutual TLS (scripts/demo.sh --tls): makes the cluster's certificates with plex certs on first
# use, launches the 3-node cluster of cluster/local-tls/, calls actors through each node with a client
# certificate that has the caller role, shows what that role may not do, shows a client without TLS refused,
# stops a node with the admin certificate, and stops the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'scripts/cluster-down.sh local-tls' EXIT
scripts/cluster-up.sh local-tls
plex="$(swift build --show-bin-path)/plex"
dir=cluster/local-tls
certs=$dir/certs
# Clients hold their certificate only (no cluster secret): the certificate's role decides what they may do.
caller=(--cluster-name local-tls --tls-ca "$certs/ca.pem" --tls-cert "$certs/script.pem" --tls-key "$certs/script-key.pem")
admin=(--cluster-name local-tls --tls-ca "$certs/ca.pem" --tls-cert "$certs/operator.pem" --tls-key "$certs/operator-key.pem")
echo
echo "== the certificates (plex certs show) =="
for file in ca node-1 script operator; do
  "$plex" certs show "$certs/$file.pem" | head -3
done
echo
echo "== counters over TLS, called through each node in turn by client 'script' (role caller) =="
for key in alpha beta; do
  for port in 7201 7202 7203; do
    printf 'via 127.0.0.1:%s  counter/%-5s increment -> ' "$port" "$key"
    "$plex" call "counter/$key" '{"increment":{}}' --node "127.0.0.1:$port" "${caller[@]}"
  done
done
printf 'durable-counter/tls increment by 5 -> '
"$plex" call durable-counter/tls '{"increment":{"by":5}}' --node 127.0.0.1:7202 "${caller[@]}"
echo
"$plex" cluster status --node 127.0.0.1:7201 "${caller[@]}"
echo
echo "== what a caller may not do: plex node stop (refused, the node logs it with the client's name) =="
echo "plex node stop --node 127.0.0.1:7203 --tls-cert $certs/script.pem ..."
"$plex" node stop --node 127.0.0.1:7203 "${caller[@]}" 2>&1 || true
grep 'refusing an admin request' "$dir/.run/node-3.log" | tail -1 | cut -c1-200
echo
echo "== a client without TLS (the plain local cluster's way) is refused, and told why =="
echo "plex cluster status --node 127.0.0.1:7201 --cluster-name local-tls   (no --tls-* files)"
"$plex" cluster status --node 127.0.0.1:7201 --cluster-name local-tls --secret-file cluster/local/secret 2>&1 || true
echo
echo "== the admin certificate ('operator') stops node-3: it hands its durable actors off and exits =="
"$plex" node stop --node 127.0.0.1:7203 "${admin[@]}"
printf 'durable-counter/tls get, through node-1 -> '
"$plex" call durable-counter/tls '{"get":{}}' --node 127.0.0.1:7201 "${caller[@]}"
