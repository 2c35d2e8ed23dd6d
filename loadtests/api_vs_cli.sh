#!/usr/bin/env bash
# Kill-switch propagation, an admin-API toggle against the CLI's, on one node and one Redis, alternating:
# the script behind "API toggle against CLI toggle (issue 16)" in docs/benchmarks.md.
#
#   loadtests/api_vs_cli.sh CONNECTIONS FLIPS INTERVAL [PAIRS]
#   loadtests/api_vs_cli.sh 1000 10 0.3 2     # 1,000 server-side streams, 10 flips each, two pairs
#
# Starts a fresh redis-server on 127.0.0.1, creates the environment "prod" and a writer token (on Redis
# directly), runs `relay serve` (one worker, admin listener on ADMIN_PORT), then `relay loadtest
# propagation` with --via redis (the write path, as `relay flags toggle` on Redis) and --via api (PATCH
# {"on": …} to /api/v1/environments/prod/flags/…), PAIRS times. One line per run; reports in $OUT.
set -euo pipefail

CONNS=${1:?connections}
FLIPS=${2:?flips}
INTERVAL=${3:?interval in seconds}
PAIRS=${4:-2}
BIN=${RELAY_BIN:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin}
REDIS_PORT=${REDIS_PORT:-16392}
RELAY_PORT=${RELAY_PORT_UNDER_TEST:-8060}
ADMIN_PORT=${ADMIN_PORT:-8061}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
REDIS_SERVER=$("$BIN/python" -c "from relay.store.embedded import find_redis_server; print(find_redis_server())")
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" 2>&1 &
pids+=($!)
export RELAY_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0 RELAY_LOG_LEVEL=warning
unset RELAY_API_URL RELAY_TOKEN
for _ in $(seq 50); do "$BIN/python" -c "import redis,sys; redis.Redis.from_url('$RELAY_REDIS_URL').ping()" 2>/dev/null && break; sleep 0.1; done
KEY=$("$BIN/relay" env create prod --json | "$BIN/python" -c "import json,sys; print(json.load(sys.stdin)['sdk_key'])")
TOKEN=$("$BIN/relay" tokens create --name bench --role writer --env prod --json \
  | "$BIN/python" -c "import json,sys; print(json.load(sys.stdin)['token'])")
RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAY_PORT RELAY_ADMIN_LISTEN=127.0.0.1:$ADMIN_PORT "$BIN/relay" serve \
  >"$OUT/relay.log" 2>&1 &
pids+=($!)
for port in "$RELAY_PORT" "$ADMIN_PORT"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done

for pair in $(seq "$PAIRS"); do
  for via in redis api; do
    report="$OUT/$via-$CONNS-$pair.json"
    "$BIN/relay" loadtest propagation --target "http://127.0.0.1:$RELAY_PORT" --env prod --sdk-key "$KEY" \
      --connections "$CONNS" --flips "$FLIPS" --interval "$INTERVAL" --report "$report" \
      --via "$via" --api-url "http://127.0.0.1:$ADMIN_PORT" --token "$TOKEN" >"$OUT/$via-$CONNS-$pair.out" 2>&1 || true
    if [ ! -s "$report" ]; then
      echo "$via: no report; the tool said:"; tail -3 "$OUT/$via-$CONNS-$pair.out"; continue
    fi
    "$BIN/python" -c "
import json, sys
r = json.load(open(sys.argv[1])); e, q = r['end_to_end'], r['request_to_commit']
print(f\"{sys.argv[2]:5} {r['connections']} streams, {r['samples']} samples: commit->event p50 {r['p50_ms']} \"
      f\"p99 {r['p99_ms']} max {r['max_ms']} ms | asked->event p50 {e['p50_ms']} p99 {e['p99_ms']} \"
      f\"max {e['max_ms']} ms | asked->commit p50 {q['p50_ms']} p99 {q['p99_ms']} ms; \"
      f\"missing {r['missing']}, out of order {r['out_of_order']}, failed {r['errors']}\")" "$report" "$via"
    sleep 1
  done
done
echo "reports: $OUT"
