#!/usr/bin/env bash
# The main job: builds plex, launches the 3-node local cluster from cluster/local/, sends requests to actors
# through different nodes (printing each reply with the node that hosted the actor), shows the cluster
# status, and stops the cluster.
# With --tls, the same cluster over mutual TLS instead (scripts/demo-tls.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--tls" ]; then exec scripts/demo-tls.sh; fi
trap 'scripts/cluster-down.sh local' EXIT
# The payment scenario's stand-in card processor keeps its state here (outside the nodes, so it counts across them).
export PLEX_EXAMPLE_PAYMENT_API="$PWD/cluster/local/.data/payment-api"
scripts/cluster-up.sh local
plex="$(swift build --show-bin-path)/plex"
cfg=cluster/local/node-1.toml
echo
echo "== counters, called through each node in turn =="
for key in alpha epsilon eta theta iota kappa; do
  for port in 7101 7102 7103; do
    printf 'via 127.0.0.1:%s  counter/%-6s increment -> ' "$port" "$key"
    "$plex" call "counter/$key" '{"increment":{}}' --node "127.0.0.1:$port" --config "$cfg"
  done
done
echo
echo "== echo actors =="
for key in alpha gamma delta; do
  printf 'echo/%s -> ' "$key"
  "$plex" call "echo/$key" "{\"text\":\"hello $key\"}" --node 127.0.0.1:7102 --config "$cfg"
done
echo
echo "== the HTTP gateway: every node answers JSON over HTTP (ports 7181-7183) and routes to the owner =="
if command -v curl >/dev/null; then
  for port in 7181 7182 7183; do
    echo "curl -X POST 127.0.0.1:$port/v1/actors/counter/web -d '{\"increment\":{}}'"
    curl -sS -X POST "127.0.0.1:$port/v1/actors/counter/web" -d '{"increment":{}}'
    echo
  done
  echo "curl -X POST 127.0.0.1:7181/v1/actors/durable-counter/web -H 'Idempotency-Key: visit-1' -d '{\"increment\":{\"by\":1}}'   (twice)"
  for attempt in 1 2; do
    curl -sS -X POST 127.0.0.1:7181/v1/actors/durable-counter/web -H 'Idempotency-Key: visit-1' \
      -d '{"increment":{"by":1}}'
    echo
  done
  echo "curl -X POST 127.0.0.1:7182/v1/actors/counter/web -d '{\"increment\": }'   (malformed: 400)"
  curl -sS -w '  [HTTP %{http_code}]\n' -X POST 127.0.0.1:7182/v1/actors/counter/web -d '{"increment": }'
  echo "curl -X POST 127.0.0.1:7183/v1/actors/ledger/web -d '{\"withdraw\":{\"amount\":5}}'   (actor failure: 500)"
  curl -sS -w '  [HTTP %{http_code}]\n' -X POST 127.0.0.1:7183/v1/actors/ledger/web -d '{"withdraw":{"amount":5}}'
  echo "curl 127.0.0.1:7181/readyz"
  curl -sS 127.0.0.1:7181/readyz
  echo
  if curl -V | grep -q HTTP2; then
    echo "curl --http2-prior-knowledge -X POST 127.0.0.1:7191/v1/actors/counter/web -d '{\"increment\":{}}'   (HTTP/2, h2c)"
    curl -sS --http2-prior-knowledge -X POST 127.0.0.1:7191/v1/actors/counter/web -d '{"increment":{}}'
    echo
  fi
else
  echo "(curl is not installed: skipped; apt-get install curl to see it)"
fi
echo
echo "== a durable ledger survives a restart of the whole cluster =="
for amount in 10 20 30; do
  printf 'ledger/acct-1 deposit %s -> ' "$amount"
  "$plex" call ledger/acct-1 "{\"deposit\":{\"amount\":$amount}}" --node 127.0.0.1:7101 --config "$cfg" \
    --idempotency-key "demo-deposit-$amount-$(date +%s%N)"
done
echo
echo "== scenario 4: a counter durable object (durable, an alarm resets it) =="
for port in 7101 7102 7103; do
  printf 'via 127.0.0.1:%s  durable-counter/visits increment by 2 -> ' "$port"
  "$plex" call durable-counter/visits '{"increment":{"by":2}}' --node "127.0.0.1:$port" --config "$cfg"
done
printf 'durable-counter/visits decrement by 100 -> '
"$plex" call durable-counter/visits '{"decrement":{"by":100}}' --node 127.0.0.1:7102 --config "$cfg" 2>&1 || true
printf 'durable-counter/visits resetAfter 1 s -> '
"$plex" call durable-counter/visits '{"resetAfter":{"seconds":1}}' --node 127.0.0.1:7103 --config "$cfg" |
  sed 's/"resetAt":[0-9]*/"resetAt":…/'
for attempt in $(seq 1 50); do
  reply=$("$plex" call durable-counter/visits '{"get":{}}' --node 127.0.0.1:7101 --config "$cfg")
  case "$reply" in *'"value":0'*) break ;; esac
  sleep 0.2
done
printf 'durable-counter/visits after the alarm -> %s\n' "$reply"
echo
echo "== scenario 3: an idempotent payment processor (a repeated order is not charged again) =="
payment_order="o-$(date +%s)"
for port in 7101 7102; do
  printf 'via 127.0.0.1:%s  payment-processor/shop-1 process %s 25 -> ' "$port" "$payment_order"
  "$plex" call payment-processor/shop-1 "{\"process\":{\"order\":\"$payment_order\",\"amount\":25}}" \
    --node "127.0.0.1:$port" --config "$cfg"
done
echo
echo "== scenario 2: a payment with journaled side effects (validate, charge with an idempotency key, record) =="
payment="pay-$(date +%s)"
for port in 7101 7102; do
  echo "via 127.0.0.1:$port  plex workflow start payment $payment --input '{\"account\":\"acct-7\",\"amount\":25}'"
  "$plex" workflow start payment "$payment" --input '{"account":"acct-7","amount":25}' \
    --node "127.0.0.1:$port" --config "$cfg" >/dev/null
  printf 'result -> '
  "$plex" workflow result "$payment" --node "127.0.0.1:$port" --config "$cfg"
done
printf 'charge requests the payment API received for %s: %s\n' "$payment" \
  "$(grep -c "^$payment/" "$PLEX_EXAMPLE_PAYMENT_API/received.log")"
"$plex" workflow history "$payment" --node 127.0.0.1:7103 --config "$cfg"
echo
echo "== scenario 1: order orchestration: steps retried against services that fail half of all calls; an order above"
echo "   1,000 waits for a manager's approval, then ships in a child workflow (reserve, label, dispatch) =="
order="order-$(date +%s)"
echo "plex workflow start order $order --input '{\"order\":\"$order\",\"amount\":1500,\"failureRate\":0.5}'"
"$plex" workflow start order "$order" --input "{\"order\":\"$order\",\"amount\":1500,\"failureRate\":0.5}" \
  --node 127.0.0.1:7101 --config "$cfg" >/dev/null
for attempt in $(seq 1 50); do
  "$plex" workflow status "$order" --node 127.0.0.1:7102 --config "$cfg" | grep -q approval && break
  sleep 0.1
done
"$plex" workflow status "$order" --node 127.0.0.1:7102 --config "$cfg"
printf 'plex workflow query %s progress -> ' "$order"
"$plex" workflow query "$order" progress --node 127.0.0.1:7102 --config "$cfg"
echo "plex workflow signal $order approval --payload true"
"$plex" workflow signal "$order" approval --payload true --node 127.0.0.1:7103 --config "$cfg"
printf 'result -> '
"$plex" workflow result "$order" --node 127.0.0.1:7101 --config "$cfg"
"$plex" workflow history "$order" --node 127.0.0.1:7101 --config "$cfg"
"$plex" workflow history "$order-shipping" --node 127.0.0.1:7101 --config "$cfg"
echo "plex workflow list --limit 5"
for attempt in $(seq 1 50); do
  "$plex" workflow list --status completed --node 127.0.0.1:7102 --config "$cfg" | grep -q "$order-shipping" && break
  sleep 0.1
done
"$plex" workflow list --limit 5 --node 127.0.0.1:7102 --config "$cfg"
echo
echo "== scenario 5: an OCFL object update (a durable workflow in its own process, journal beside the object) =="
ocfl=cluster/local/.data/ocfl-demo
rm -rf "$ocfl" && mkdir -p "$ocfl/source/data"
printf 'the first file\n' >"$ocfl/source/data/file1.txt"
printf 'the second file\n' >"$ocfl/source/file2.txt"
echo "plex ocfl update $ocfl/source $ocfl/object"
"$plex" ocfl update "$ocfl/source" "$ocfl/object" --id urn:example:demo
echo "plex ocfl update $ocfl/source $ocfl/object   (again)"
"$plex" ocfl update "$ocfl/source" "$ocfl/object" --id urn:example:demo
printf 'the second file, changed\n' >"$ocfl/source/file2.txt"
echo "plex ocfl update $ocfl/source $ocfl/object   (file2.txt changed)"
"$plex" ocfl update "$ocfl/source" "$ocfl/object" --id urn:example:demo
echo
"$plex" cluster status --node 127.0.0.1:7101 --config "$cfg"
echo
echo "== restarting every node =="
scripts/cluster-down.sh local
scripts/cluster-up.sh local
printf 'ledger/acct-1 balance after the restart -> '
"$plex" call ledger/acct-1 '{"balance":{}}' --node 127.0.0.1:7103 --config "$cfg"
echo
echo "== a graceful stop hands the ledger to another node, and a restart takes it back =="
owner=$("$plex" call ledger/acct-1 '{"balance":{}}' --node 127.0.0.1:7101 --config "$cfg" |
  sed -n 's/.*"node":"\([^"]*\)".*/\1/p')
owner_port=$((7100 + ${owner#node-}))
other_port=$([ "$owner_port" = 7101 ] && echo 7102 || echo 7101)
echo "plex node stop --node 127.0.0.1:$owner_port   ($owner hosts ledger/acct-1)"
"$plex" node stop --node "127.0.0.1:$owner_port" --config "$cfg"
printf 'ledger/acct-1 balance with %s gone -> ' "$owner"
"$plex" call ledger/acct-1 '{"balance":{}}' --node "127.0.0.1:$other_port" --config "$cfg"
# The stopped node's process exits right after it answered; wait for that, then start it again.
pid=$(cat "cluster/local/.run/$owner.pid")
for attempt in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
scripts/cluster-up.sh local >/dev/null
for attempt in $(seq 1 50); do
  reply=$("$plex" call ledger/acct-1 '{"balance":{}}' --node "127.0.0.1:$other_port" --config "$cfg" 2>/dev/null || true)
  case "$reply" in *"\"node\":\"$owner\""*) break ;; esac
  sleep 0.2
done
printf 'ledger/acct-1 balance after %s rejoined -> %s\n' "$owner" "$reply"
