#!/usr/bin/env bash
# What the shared event store costs, measured side by side (docs/benchmarks.md, "The shared
# event store"): ringmcp-load sse-resume against one node with `--event-store` (a local
# redis-server) and without, alternating memory/redis, redis/memory, ... with a fresh server
# and a flushed Redis per run; the server pinned to one CPU, the load generator and Redis to
# the other. Then the Redis memory per stored event. Prints a table; the JSON of every run
# goes under .cache/bench/event-store/<date>/.
#
# Usage: scripts/event_store_bench.sh [PAIRS]   (default 3)
# Env: BENCH_CONNECTIONS [1000] BENCH_RATE [2000] BENCH_DURATION [20] BENCH_DISCONNECTS [200]
#      BENCH_PAYLOAD [64] BENCH_SERVER_CPU [0] BENCH_LOAD_CPU [1] BENCH_NO_BUILD (set: use the
#      binaries as built) REDIS_SERVER [/usr/bin/redis-server] (Debian's, apt-installed if missing)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

PAIRS=${1:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-1000}
RATE=${BENCH_RATE:-2000}
DURATION=${BENCH_DURATION:-20}
DISCONNECTS=${BENCH_DISCONNECTS:-200}
PAYLOAD=${BENCH_PAYLOAD:-64}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}
OUT="$CACHE_DIR/bench/event-store/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"

command -v taskset >/dev/null || die "taskset (util-linux) is needed to pin the server"
debian_install "$REDIS_SERVER" redis-server "$OUT"
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    cargo build --release --bins --workspace >"$OUT/build.log" 2>&1 || die "build failed: $OUT/build.log"
fi
SERVER_BIN="$(ringmcp_bin)"
LOAD_BIN="$REPO_ROOT/target/release/ringmcp-load"
REDIS_CLI="$(dirname "$REDIS_SERVER")/redis-cli"

REDIS_PORT="$(free_port)"
taskset -c "$LOAD_CPU" "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
    --appendonly no >"$OUT/redis.log" 2>&1 &
REDIS_PID=$!
on_exit stop_pid "$REDIS_PID"
redis() { "$REDIS_CLI" -p "$REDIS_PORT" "$@"; }
for _ in $(seq 100); do redis ping >/dev/null 2>&1 && break; sleep 0.1; done
redis ping >/dev/null || die "redis-server did not start: $OUT/redis.log"

# run LABEL [SERVER ARGS...]: one sse-resume run against a fresh server; its JSON is OUT/LABEL.json.
run() {
    local label=$1; shift
    local port pid
    port="$(free_port)"
    redis flushall >/dev/null
    taskset -c "$SERVER_CPU" "$SERVER_BIN" --bind "127.0.0.1:$port" --shards 1 "$@" \
        >"$OUT/$label.server.log" 2>&1 &
    pid=$!
    wait_http_ok "http://127.0.0.1:$port/healthz" 30 "$pid" || die "server did not start: $OUT/$label.server.log"
    taskset -c "$LOAD_CPU" "$LOAD_BIN" --shards 1 --target "http://127.0.0.1:$port/mcp" \
        --scenario sse-resume --connections "$CONNECTIONS" --rate "$RATE" --duration "$DURATION" \
        --disconnects "$DISCONNECTS" --payload "$PAYLOAD" --server-pid "$pid" \
        --server-metrics "http://127.0.0.1:$port/metrics" --json "$OUT/$label.json" \
        >"$OUT/$label.txt" 2>&1 || warn "$label: the load generator reported errors ($OUT/$label.txt)"
    if [[ $label == redis-* ]]; then
        # Redis memory per stored event, with this run's streams still in it.
        local streams events=0 used
        streams=$(redis --scan --pattern 'ringmcp:{*}:*')
        for key in $streams; do events=$(( events + $(redis xlen "$key") )); done
        used=$(redis info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}')
        printf '{"events": %d, "used_memory": %d, "sessions": %d}\n' "$events" "$used" \
            "$(redis --scan --pattern 'ringmcp:{*}' | grep -vc '}:' || true)" >"$OUT/$label.redis.json"
    fi
    stop_pid "$pid"
}

redis flushall >/dev/null
BASELINE=$(redis info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}')
for i in $(seq "$PAIRS"); do
    if (( i % 2 )); then order=(memory redis); else order=(redis memory); fi
    for kind in "${order[@]}"; do
        log "pair $i: $kind"
        if [[ $kind == redis ]]; then
            run "redis-$i" --event-store "redis://127.0.0.1:$REDIS_PORT"
        else
            run "memory-$i"
        fi
    done
done
python3 scripts/event_store_table.py "$OUT" "$PAIRS" "$BASELINE" | tee "$OUT/table.md"
