#!/usr/bin/env bash
# Several ringmcp nodes behind HAProxy with Redis as their shared event store (a test.sh stage;
# docs/operations.md, "Several nodes"). On 127.0.0.1, free ports: one redis-server without
# persistence, three ringmcp nodes (--node-id n1, n2, n3, one shard each, --event-store on that
# Redis), and two HAProxys with deploy/haproxy.cfg (addresses through its environment
# variables) that share nothing: the checks go through the first, and the second must route
# the same sessions to the same nodes.
# Debian's redis-server and haproxy are installed with apt-get when missing (as root).
# Checks, one PASS/FAIL line each; the script exits 1 if any failed:
#   config      haproxy -c accepts deploy/haproxy.cfg with its variables set, and refuses it
#               with a node address unset
#   routing     initialize through HAProxy answered by the node its session id names
#               (X-Ringmcp-Node); 20 follow-ups of that session (POST tools/list, GET stream),
#               half through the second HAProxy, answered by it; 30 initializes reach all
#               three nodes; a session naming a node HAProxy does not know is balanced
#               (scripts/cluster_check.py)
#   legacy      GET /sse, then POST /messages?sessionId=... on the node that holds the stream
#   websocket   MCP over WebSocket (subprotocol mcp) through HAProxy, sessions on every node
#   python-sdk  the official Python SDK 1.x over Streamable HTTP, legacy SSE and WebSocket, and
#               the 2.x SDK (MCP 2026-07-28), through HAProxy (scripts/python_sdk*.py)
#   conformance the MCP conformance suite through HAProxy: --requirements 2025-11-25 and
#               server-sse-polling (scripts/conformance.sh with CONFORMANCE_URL)
#   chaos       ringmcp-load sse-resume through HAProxy (CLUSTER_STREAMS streams, CLUSTER_RATE
#               events/s in total, CLUSTER_DURATION s, CLUSTER_DISCONNECTS planned disconnects)
#               while n2 is SIGKILLed CLUSTER_KILL_AT s into the run: HAProxy marks it down,
#               every event arrives exactly once and in order on every stream (across resumes
#               on the adopting nodes and calls retried after -31000), every stream is
#               answered, no request hangs, only n2's sessions move, each to one node, and
#               the second HAProxy sends each of them to that node too
#   redis       the tests that need a real redis-server: the Redis client's
#               (cargo test --profile ci --workspace --lib shard::redis -- --ignored) and two
#               nodes sharing an event store (cargo test --profile ci --workspace --test cluster
#               -- --ignored); --workspace, as test.sh builds, so nothing is compiled again
# Everything it started is stopped on exit. Logs and results: .cache/cluster/<run>/ (the five
# newest runs are kept).
#
# Env:
#   CLUSTER_CHECKS          the checks to run (default: all, in the order above)
#   CLUSTER_STREAMS [1000]  CLUSTER_RATE [2000]  CLUSTER_DURATION [30]  CLUSTER_DISCONNECTS [200]
#   CLUSTER_KILL_AT [10]    CLUSTER_PATIENCE [15] (ringmcp-load --patience)
#   RINGMCP_BIN, RINGMCP_LOAD_BIN   the binaries (default: $CARGO_TARGET_DIR or target, release/)
#   HAPROXY [/usr/sbin/haproxy]  REDIS_SERVER [/usr/bin/redis-server]  (apt-installed if missing)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

ALL_CHECKS="config routing legacy websocket python-sdk conformance chaos redis"
CHECKS=${CLUSTER_CHECKS:-$ALL_CHECKS}
STREAMS=${CLUSTER_STREAMS:-1000}
RATE=${CLUSTER_RATE:-2000}
DURATION=${CLUSTER_DURATION:-30}
DISCONNECTS=${CLUSTER_DISCONNECTS:-200}
KILL_AT=${CLUSTER_KILL_AT:-10}
PATIENCE=${CLUSTER_PATIENCE:-15}
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
RINGMCP=${RINGMCP_BIN:-$TARGET_DIR/release/ringmcp}
LOAD=${RINGMCP_LOAD_BIN:-$TARGET_DIR/release/ringmcp-load}
NODES=(n1 n2 n3)
KILLED=n2

for check in $CHECKS; do
    [[ " $ALL_CHECKS " == *" $check "* ]] || die "unknown check '$check' in CLUSTER_CHECKS (known: $ALL_CHECKS)"
done
for n in STREAMS RATE DURATION DISCONNECTS KILL_AT PATIENCE; do
    [[ "${!n}" =~ ^[0-9]+$ ]] || die "CLUSTER_$n must be a whole number, not '${!n}'"
done
(( KILL_AT < DURATION )) || die "CLUSTER_KILL_AT ($KILL_AT) must fall within CLUSTER_DURATION ($DURATION)"
[[ -x "$RINGMCP" ]] || die "no ringmcp binary at $RINGMCP (cargo build --release, or set RINGMCP_BIN)"
[[ -x "$LOAD" ]] || die "no ringmcp-load binary at $LOAD (cargo build --release -p loadtest, or set RINGMCP_LOAD_BIN)"
command -v taskset >/dev/null || die "taskset (util-linux) is needed to place the nodes on the cores"

RUNS="$CACHE_DIR/cluster"
RUN="$RUNS/$(date +%Y%m%d-%H%M%S)-$$"
mkdir -p "$RUN"
# Keep the five newest runs.
mapfile -t old < <(find "$RUNS" -mindepth 1 -maxdepth 1 -type d | sort | head -n -5)
(( ${#old[@]} == 0 )) || rm -rf "${old[@]}"
log "logs and results in $RUN"

# ---------------------------------------------------------------- Debian packages
# Installed with apt-get when missing (debian_install, scripts/lib.sh); apt-get cannot make a
# binary appear anywhere but where its package puts it.
[[ -x "$REDIS_SERVER" || "$REDIS_SERVER" == /usr/bin/redis-server ]] \
    || die "$REDIS_SERVER is not executable (apt-get would install redis-server at /usr/bin/redis-server)"
[[ -x "$HAPROXY" || "$HAPROXY" == /usr/sbin/haproxy ]] \
    || die "$HAPROXY is not executable (apt-get would install haproxy at /usr/sbin/haproxy)"
debian_install "$REDIS_SERVER" redis-server "$RUN"
debian_install "$HAPROXY" haproxy "$RUN"
log "$("$HAPROXY" -v | head -n 1); $("$REDIS_SERVER" --version)"

# ---------------------------------------------------------------- processes
# Each started process is stopped on exit by its PID (stop_pid: SIGTERM, then SIGKILL).
STARTED=()
stop_started() {
    local i
    for (( i=${#STARTED[@]}-1; i>=0; i-- )); do
        stop_pid "${STARTED[i]}" "${STARTED_NAMES[i]}"
    done
    STARTED=()
}
STARTED_NAMES=()
on_exit stop_started
# spawn NAME LOG CMD...: runs CMD in the background; sets SPAWNED to its PID.
spawn() {
    local name=$1 logfile=$2
    shift 2
    "$@" >"$logfile" 2>&1 </dev/null &
    SPAWNED=$!
    STARTED+=("$SPAWNED")
    STARTED_NAMES+=("$name")
}

# Redis: no snapshots, no append-only file; events live as long as this run.
REDIS_PORT="$(free_port)"
spawn redis "$RUN/redis.log" "$REDIS_SERVER" --bind 127.0.0.1 --port "$REDIS_PORT" \
    --save '' --appendonly no --dir "$RUN"
REDIS_PID=$SPAWNED
wait_listening "$REDIS_PORT" 10 "$REDIS_PID" || { tail -n 20 "$RUN/redis.log" >&2; die "redis-server did not start"; }
log "redis-server up on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"

# The shared event store every node writes to and adopts sessions from.
"$RINGMCP" --help | grep -q -- '--event-store' \
    || die "$RINGMCP has no --event-store flag: it is older than the shared event store (issue 20)"
STORE_ARGS=(--event-store "redis://127.0.0.1:$REDIS_PORT")

# One key seals MCP 2026-07-28 requestStates on every node, so a retry may land on any.
head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN/state.key"

# start_node NAME CPU: one ringmcp node pinned to CPU, on a free port. Sets NODE_PORT.
declare -A NODE_PID NODE_ADDR
start_node() {
    local name=$1 cpu=$2 attempt port
    for attempt in 1 2 3; do
        port="$(free_port)"
        spawn "$name" "$RUN/$name.log" taskset -c "$cpu" "$RINGMCP" --bind "127.0.0.1:$port" \
            --node-id "$name" --shards 1 --state-key-file "$RUN/state.key" "${STORE_ARGS[@]}"
        if wait_http_ok "http://127.0.0.1:$port/healthz" 30 "$SPAWNED"; then
            NODE_PID[$name]=$SPAWNED
            NODE_ADDR[$name]="127.0.0.1:$port"
            log "node $name up on 127.0.0.1:$port, CPU $cpu (pid $SPAWNED)"
            return 0
        fi
        warn "node $name did not start (attempt $attempt); last log lines:"
        tail -n 20 "$RUN/$name.log" >&2 || true
    done
    die "node $name did not start"
}
# Two cores: n1 and n3 share core 0, n2 and the load generator core 1; Redis and HAProxy float.
start_node n1 0
start_node n2 1
start_node n3 0

LB_PORT="$(free_port)"
STATS_PORT="$(free_port)"
export RINGMCP_LB_BIND="127.0.0.1:$LB_PORT" RINGMCP_LB_STATS="127.0.0.1:$STATS_PORT" \
    RINGMCP_N1="${NODE_ADDR[n1]}" RINGMCP_N2="${NODE_ADDR[n2]}" RINGMCP_N3="${NODE_ADDR[n3]}"
LB="http://127.0.0.1:$LB_PORT"

# node_states [STATS_BIND]: "n1=UP n2=DOWN ..." from an HAProxy's stats (default: the first's).
node_states() {
    curl -s -m 2 "http://${1:-$RINGMCP_LB_STATS}/stats;csv" \
        | awk -F, '$1 == "ringmcp" && $2 ~ /^n[0-9]+$/ { printf "%s=%s ", $2, $18 }'
}

RESULTS=()
failed=0
result() {   # result PASS|FAIL CHECK SECONDS [DETAIL]
    RESULTS+=("$(printf '%-4s  %-12s (%s s)%s' "$1" "$2" "$3" "${4:+ $4}")")
    [[ "$1" == PASS ]] || failed=1
    printf '%s: %s\n' "$2" "$1"
}
summary() {
    echo
    echo "======================== cluster checks ========================"
    if (( ${#RESULTS[@]} )); then printf '%s\n' "${RESULTS[@]}"; fi
    echo "logs: $RUN"
}
on_exit summary
wanted() { [[ " $CHECKS " == *" $1 "* ]]; }
# run_check NAME CMD...: runs CMD with its output in the log and on stderr, records PASS/FAIL.
run_check() {
    local name=$1 t0=$SECONDS
    shift
    printf '\n--- %s\n' "$name" >&2
    if "$@" 2>&1 | tee "$RUN/check-$name.log" >&2; then
        result PASS "$name" $(( SECONDS - t0 ))
    else
        result FAIL "$name" $(( SECONDS - t0 ))
    fi
}

check_config() {
    "$HAPROXY" -c -f deploy/haproxy.cfg || return 1
    if env -u RINGMCP_N3 "$HAPROXY" -c -f deploy/haproxy.cfg >"$RUN/config-unset.log" 2>&1; then
        echo "haproxy -c accepted the configuration with RINGMCP_N3 unset"
        return 1
    fi
    echo "refused with RINGMCP_N3 unset: $(grep -m1 ALERT "$RUN/config-unset.log")"
}
if wanted config; then run_check config check_config; fi

# start_haproxy NAME BIND STATS_BIND: HAProxy with deploy/haproxy.cfg, the nodes' variables
# exported above and its own listeners, until it sees every node up.
start_haproxy() {
    local name=$1 bind=$2 stats=$3 i
    spawn "$name" "$RUN/$name.log" env RINGMCP_LB_BIND="$bind" RINGMCP_LB_STATS="$stats" \
        "$HAPROXY" -db -f deploy/haproxy.cfg
    for (( i=0; i<100; i++ )); do
        [[ "$(node_states "$stats")" == "n1=UP n2=UP n3=UP " ]] && break
        kill -0 "$SPAWNED" 2>/dev/null || { tail -n 20 "$RUN/$name.log" >&2; die "$name exited"; }
        sleep 0.1
    done
    [[ "$(node_states "$stats")" == "n1=UP n2=UP n3=UP " ]] \
        || die "$name does not see every node up: $(node_states "$stats")"
    log "$name up on $bind (pid $SPAWNED), stats on http://$stats/stats: $(node_states "$stats")"
}
start_haproxy haproxy "$RINGMCP_LB_BIND" "$RINGMCP_LB_STATS"
# A second HAProxy with the same file and nothing shared with the first: a session opened
# through one must be routed the same by the other, before and after a node's death.
LB2_PORT="$(free_port)"
start_haproxy haproxy-2 "127.0.0.1:$LB2_PORT" "127.0.0.1:$(free_port)"
LB2="http://127.0.0.1:$LB2_PORT"

NODE_LIST=$(IFS=,; echo "${NODES[*]}")
if wanted routing; then run_check routing python3 scripts/cluster_check.py routing "$LB" "$NODE_LIST" "$LB2"; fi
if wanted legacy; then run_check legacy python3 scripts/cluster_check.py legacy "$LB" "$NODE_LIST"; fi
if wanted websocket || wanted python-sdk; then python_venv "$PYTHON_SDK_DIR" "$PYTHON_SDK_PIN"; fi
if wanted websocket; then
    run_check websocket "$PYTHON_SDK_DIR/bin/python" scripts/cluster_check.py websocket "$LB" "$NODE_LIST"
fi
check_sdk() {
    python_venv "$PYTHON_SDK2_DIR" "$PYTHON_SDK2_PIN"
    # The SDK marks its WebSocket client deprecated; it is still what WebSocket MCP clients use.
    "$PYTHON_SDK_DIR/bin/python" -W ignore::DeprecationWarning scripts/python_sdk.py "$LB" \
        && "$PYTHON_SDK2_DIR/bin/python" scripts/python_sdk2.py "$LB/mcp"
}
if wanted python-sdk; then run_check python-sdk check_sdk; fi
if wanted conformance; then
    run_check conformance env CONFORMANCE_URL="$LB/mcp" CONFORMANCE_OUT="$RUN/conformance" \
        scripts/conformance.sh --strict --requirements 2025-11-25 --scenario server-sse-polling
fi

check_chaos() {
    local load_pid t_kill down_after="" t0 i
    local cmd=(taskset -c 1 "$LOAD" --scenario sse-resume --target "$LB/mcp" --shards 1
               --connections "$STREAMS" --rate "$RATE" --duration "$DURATION"
               --disconnects "$DISCONNECTS" --patience "$PATIENCE" --timeout 10
               --json "$RUN/chaos.json")
    echo "${cmd[*]}"
    "${cmd[@]}" >"$RUN/chaos.txt" 2>&1 &
    load_pid=$!
    t0=$SECONDS
    while (( SECONDS - t0 < KILL_AT )); do
        kill -0 "$load_pid" 2>/dev/null || break
        sleep 0.2
    done
    if ! kill -0 "$load_pid" 2>/dev/null; then
        wait "$load_pid" || true
        cat "$RUN/chaos.txt"
        echo "the load generator ended before the kill"
        return 1
    fi
    kill -KILL "${NODE_PID[$KILLED]}"
    t_kill=$(date +%s.%N)
    echo "SIGKILLed $KILLED (pid ${NODE_PID[$KILLED]}) $(( SECONDS - t0 )) s into the run"
    for (( i=0; i<100; i++ )); do
        if [[ "$(node_states)" == *"$KILLED=DOWN"* ]]; then
            down_after=$(awk -v a="$t_kill" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
            break
        fi
        sleep 0.05
    done
    if [[ -n "$down_after" ]]; then
        echo "HAProxy marked $KILLED down after $down_after s: $(node_states)"
    else
        echo "HAProxy did not mark $KILLED down within 5 s: $(node_states)"
    fi
    local rc=0
    wait "$load_pid" || rc=$?
    cat "$RUN/chaos.txt"
    (( rc == 0 )) || { echo "ringmcp-load exited with $rc"; return 1; }
    [[ -n "$down_after" ]] || return 1
    python3 scripts/cluster_check.py chaos "$RUN/chaos.json" "$KILLED" "$LB2"
}
if wanted chaos; then run_check chaos check_chaos; fi

# The crate's own tests against a real redis-server (each starts its own, from PATH).
check_redis() {
    local path
    path="$(dirname "$REDIS_SERVER"):$PATH"
    PATH=$path cargo test --profile ci --workspace --lib shard::redis -- --ignored \
        && PATH=$path cargo test --profile ci --workspace --test cluster -- --ignored
}
if wanted redis; then run_check redis check_redis; fi

for name in "${!NODE_PID[@]}"; do
    [[ "$name" == "$KILLED" ]] && wanted chaos && continue
    if ! kill -0 "${NODE_PID[$name]}" 2>/dev/null; then
        warn "node $name died during the run; its log: $RUN/$name.log"
        result FAIL "node-$name" 0 "died during the run"
    fi
done
(( failed == 0 )) || die "CLUSTER: FAIL"
log "CLUSTER: PASS"
