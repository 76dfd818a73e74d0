#!/usr/bin/env bash
# Socket-level benchmark: builds release, then for each standard scenario starts a fresh
# server (--shards 1, pinned to core 0) and the load generator (--shards 1, pinned to core 1),
# prints a table and writes one JSON per scenario under results/<timestamp>/, and report.html
# (every scenario's plots on one self-contained page).
#
# Scenarios (all at BENCH_CONNECTIONS connections):
#   idle-hold-ws     initialized MCP WebSocket sessions held open: server RSS per connection
#   idle-hold-http   Streamable HTTP sessions with a held GET stream, each after a 100-event
#                    (BENCH_FILL_EVENTS) ring of 256-byte events (stream tool notifications
#                    with 129 bytes of text): RSS per session
#   idle-hold-echo   raw WebSocket connections to /echo held open, no subprotocol and no
#                    messages: RSS per connection (named in BENCH_SCENARIOS only)
#   ws-mcp           tools/call echo over WebSocket at BENCH_WS_RATE for BENCH_DURATION
#   http-mcp         tools/call echo over Streamable HTTP at BENCH_HTTP_RATE
#   sse-resume       stream tool events at BENCH_SSE_RATE with BENCH_DISCONNECTS forced
#                    disconnects and Last-Event-ID resumes: lost / duplicated / out of order
# and, named in BENCH_SCENARIOS only:
#   listen           MCP 2026-07-28 subscriptions/listen streams (BENCH_PROTOCOL=2026-07-28):
#                    the time to open them all, then BENCH_LISTEN_CHANGES tool-list changes at
#                    BENCH_LISTEN_RATE a second, each one's delivery to every stream
#                    (docs/benchmarks.md#listen-streams); also ws-echo and slow-readers
#
# Env (defaults in brackets):
#   BENCH_CONNECTIONS [15000]  BENCH_DURATION [30]  BENCH_RAMP [5000] (connections/s)
#   BENCH_WS_RATE [100000]  BENCH_HTTP_RATE [50000]  BENCH_SSE_RATE [15000] (events/s)
#   BENCH_DISCONNECTS [1500]  BENCH_HOLD [10] (idle-hold seconds)  BENCH_PAYLOAD [64]
#   BENCH_LISTEN_CHANGES [10]  BENCH_LISTEN_RATE [1] (changes/s; listen runs for
#                             changes / rate + 1 s, not BENCH_DURATION)
#   BENCH_SCENARIOS ["idle-hold-ws idle-hold-http ws-mcp http-mcp sse-resume"]
#   BENCH_RESULTS [results]   BENCH_SERVER_CPU [0]  BENCH_LOAD_CPU [1]
#   BENCH_NO_BUILD=1          use the binaries already in target/release
#   BENCH_SERVER_BIN, BENCH_LOAD_BIN  the ringmcp server and load generator to run (default
#                             target/release/ringmcp and ringmcp-load); either one set implies
#                             BENCH_NO_BUILD. The server may be a script that execs a server
#                             (scripts/regress.sh uses both)
#   BENCH_PEER [ringmcp]      the server under load: ringmcp, or for comparison a peer
#                             (scripts/peers/) built only from an official MCP SDK, python-sdk
#                             (Streamable HTTP, MCP over WebSocket, WebSocket echo) or
#                             typescript-sdk (Streamable HTTP), or from the usual Rust
#                             WebSocket stack, tokio-tungstenite (WebSocket echo; cargo builds
#                             it into .cache/); scenarios a peer does not serve are skipped,
#                             and BENCH_FILL_EVENTS must be 0 (the stream tool is ringmcp's)
#   BENCH_FILL_EVENTS [100]   idle-hold-http: events in each session's ring before it idles
#   BENCH_PROTOCOL [2025-11-25]  the MCP revision of the load (ringmcp-load --protocol):
#                             2026-07-28 sends http-mcp's and ws-mcp's calls with no
#                             initialize, each with its _meta (and over HTTP the
#                             Mcp-Method/Mcp-Name headers), and runs listen; ws-mcp's is
#                             ringmcp's own WebSocket binding and listen's trigger a ringmcp
#                             fixture, so those two run against ringmcp only; the other
#                             scenarios have no 2026 client and are skipped, as listen is in
#                             2025-11-25. Each JSON records it (settings.protocol)
#   BENCH_TLS [0]             1: ringmcp serves every endpoint over TLS with the test certificate
#                             (tests/data/tls/server.pem and server.key) and the load goes to
#                             https:// and wss:// targets (--server-metrics too), verified with
#                             --tls-ca tests/data/tls/ca.pem; each JSON records it (settings.tls)
#                             and the run folder's `tls` file says true. ringmcp only: the peers
#                             are refused. Compare the server's busy share with a plain run's,
#                             not the load generator's: over TLS it wakes a task per WebSocket
#                             request (loadtest/src/sender.rs)
#   BENCH_WS_DEFLATE [0]      1: ringmcp runs with --ws-deflate and the load generator offers
#                             permessage-deflate (--ws-deflate) on its WebSocket scenarios, so
#                             replies and requests from 512 bytes on travel compressed; each
#                             JSON records it (settings.ws_deflate). ringmcp only
#   BENCH_DEMOTE [""]         PIDs of other processes whose threads run SCHED_IDLE for the
#                             benchmark (restored at exit; needs root): a background process
#                             that shares the pinned cores then runs only when they idle.
#                             Each run reports its "core wait" either way (docs/benchmarks.md).
# Quick run: BENCH_CONNECTIONS=100 BENCH_DURATION=5 BENCH_WS_RATE=5000 BENCH_HTTP_RATE=2000 scripts/bench.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

CONNS=${BENCH_CONNECTIONS:-15000}
DURATION=${BENCH_DURATION:-30}
RAMP=${BENCH_RAMP:-5000}
WS_RATE=${BENCH_WS_RATE:-100000}
HTTP_RATE=${BENCH_HTTP_RATE:-50000}
SSE_RATE=${BENCH_SSE_RATE:-15000}
DISCONNECTS=${BENCH_DISCONNECTS:-1500}
HOLD=${BENCH_HOLD:-10}
PAYLOAD=${BENCH_PAYLOAD:-64}
LISTEN_CHANGES=${BENCH_LISTEN_CHANGES:-10}
LISTEN_RATE=${BENCH_LISTEN_RATE:-1}
SCENARIOS=${BENCH_SCENARIOS:-"idle-hold-ws idle-hold-http ws-mcp http-mcp sse-resume"}
PEER=${BENCH_PEER:-ringmcp}
FILL_EVENTS=${BENCH_FILL_EVENTS:-100}
PROTOCOL=${BENCH_PROTOCOL:-2025-11-25}
TLS=${BENCH_TLS:-0}
WS_DEFLATE=${BENCH_WS_DEFLATE:-0}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
OUT="${BENCH_RESULTS:-$REPO_ROOT/results}/$(date +%Y%m%d-%H%M%S)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"

command -v taskset >/dev/null || die "taskset (util-linux) is needed to pin the server and the load generator"
case "$TLS" in
    0) WS_SCHEME=ws HTTP_SCHEME=http TLS_DIR="" ;;
    1)
        [[ "$PEER" == ringmcp ]] || die "BENCH_TLS=1: only ringmcp is started with TLS; BENCH_PEER=$PEER serves plain HTTP (unset BENCH_TLS)"
        WS_SCHEME=wss HTTP_SCHEME=https
        TLS_DIR="$REPO_ROOT/tests/data/tls" ;;
    *) die "BENCH_TLS must be 0 or 1, not '$TLS'" ;;
esac
case "$WS_DEFLATE" in
    0) ;;
    1) [[ "$PEER" == ringmcp ]] || die "BENCH_WS_DEFLATE=1: only ringmcp is started with --ws-deflate (unset it for BENCH_PEER=$PEER)" ;;
    *) die "BENCH_WS_DEFLATE must be 0 or 1, not '$WS_DEFLATE'" ;;
esac
if [[ -z "${BENCH_NO_BUILD:-}${BENCH_SERVER_BIN:-}${BENCH_LOAD_BIN:-}" ]]; then
    log "building release binaries"
    cargo build --release -p ringmcp -p loadtest --bins >&2
fi
SERVER_BIN="${BENCH_SERVER_BIN:-$CARGO_TARGET_DIR/release/ringmcp}"
LOAD_BIN="${BENCH_LOAD_BIN:-$CARGO_TARGET_DIR/release/ringmcp-load}"
[[ -x "$SERVER_BIN" && -x "$LOAD_BIN" ]] || die "missing $SERVER_BIN or $LOAD_BIN"

# The scenarios each server serves, and its installs.
case "$PEER" in
    ringmcp) PEER_SCENARIOS="idle-hold-ws idle-hold-http idle-hold-echo ws-echo ws-mcp http-mcp sse-resume slow-readers listen" ;;
    python-sdk)
        PEER_SCENARIOS="idle-hold-ws idle-hold-http idle-hold-echo ws-echo ws-mcp http-mcp"
        python_venv "$PYTHON_SDK_DIR" "$PYTHON_SDK_PIN" ;;
    typescript-sdk)
        PEER_SCENARIOS="idle-hold-http http-mcp"
        command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for BENCH_PEER=typescript-sdk"
        TS_SDK_DIR="$CACHE_DIR/typescript-sdk"
        TS_SDK_PINS="@modelcontextprotocol/sdk@1.32.2 zod@4.6.7"
        if ! stamp_matches "$TS_SDK_DIR" "$TS_SDK_PINS"; then
            log "installing $TS_SDK_PINS into $TS_SDK_DIR"
            rm -rf "$TS_SDK_DIR" && mkdir -p "$TS_SDK_DIR"
            # shellcheck disable=SC2086 # a list of pins
            npm install --prefix "$TS_SDK_DIR" --no-audit --no-fund --loglevel=error $TS_SDK_PINS >&2 \
                || die "npm install failed"
            write_stamp "$TS_SDK_DIR" "$TS_SDK_PINS"
        fi
        # ESM resolves packages from the script's folder, so the script runs from there.
        cp scripts/peers/ts_server.mjs "$TS_SDK_DIR/" ;;
    tokio-tungstenite)
        PEER_SCENARIOS="idle-hold-echo ws-echo"
        log "building the tokio + tokio-tungstenite echo peer (scripts/peers/tokio_echo)"
        cargo build --release --locked --manifest-path scripts/peers/tokio_echo/Cargo.toml \
            --target-dir "$CACHE_DIR/tokio-echo" >&2 || die "building the tokio echo peer failed"
        TOKIO_ECHO_BIN="$CACHE_DIR/tokio-echo/release/tokio-echo-peer" ;;
    *) die "unknown BENCH_PEER '$PEER' (ringmcp, python-sdk, typescript-sdk, tokio-tungstenite)" ;;
esac
# The scenarios that have a client for each revision (2026 over WebSocket is ringmcp's own
# binding, and listen's trigger a ringmcp fixture).
case "$PROTOCOL" in
    2025-11-25) REVISION_SCENARIOS="idle-hold-ws idle-hold-http idle-hold-echo ws-echo ws-mcp http-mcp sse-resume slow-readers" ;;
    2026-07-28)
        REVISION_SCENARIOS="http-mcp"
        [[ "$PEER" != ringmcp ]] || REVISION_SCENARIOS+=" ws-mcp listen" ;;
    *) die "unknown BENCH_PROTOCOL '$PROTOCOL' (2025-11-25, 2026-07-28)" ;;
esac
kept=""
for scenario in $PEER_SCENARIOS; do
    [[ " $REVISION_SCENARIOS " != *" $scenario "* ]] || kept+=" $scenario"
done
PEER_SCENARIOS=$kept
if [[ "$PEER" != ringmcp ]] && (( FILL_EVENTS > 0 )) && [[ " $SCENARIOS " == *" idle-hold-http "* ]]; then
    die "BENCH_PEER=$PEER: idle-hold-http fills rings with ringmcp's stream tool; set BENCH_FILL_EVENTS=0"
fi

# 15,000 connections need ~15,000 descriptors in each process; the hard limit here is 20,000.
ulimit -n "$(ulimit -Hn)" || true
(( $(ulimit -n) > CONNS + 100 )) || die "open-files limit $(ulimit -n) is too small for $CONNS connections"
mkdir -p "$OUT"
log "results in $OUT"

# SCHED_OTHER threads of BENCH_DEMOTE's processes, demoted to SCHED_IDLE until exit.
DEMOTED=()
restore_demoted() {
    local tid
    for tid in "${DEMOTED[@]}"; do chrt --other --pid 0 "$tid" 2>/dev/null || true; done
    DEMOTED=()
}
on_exit restore_demoted
for pid in ${BENCH_DEMOTE:-}; do
    [[ -d /proc/$pid/task ]] || die "BENCH_DEMOTE: no process $pid"
    for task in /proc/"$pid"/task/*; do
        tid=${task##*/}
        [[ "$(chrt --pid "$tid" 2>/dev/null)" == *SCHED_OTHER* ]] || continue
        if chrt --idle --pid 0 "$tid"; then
            DEMOTED+=("$tid")
        elif [[ -d $task ]]; then
            die "BENCH_DEMOTE: cannot set SCHED_IDLE on thread $tid of $pid (root needed)"
        fi
    done
    log "BENCH_DEMOTE: $pid ($(cat /proc/"$pid"/comm)) runs SCHED_IDLE for this benchmark"
done
echo "${BENCH_DEMOTE:-}" >"$OUT/demoted-pids"
echo "$PEER" >"$OUT/server"
echo "$PROTOCOL" >"$OUT/protocol"
if (( TLS )); then echo true; else echo false; fi >"$OUT/tls"

BENCH_SERVER_PID=""
stop_bench_server() {
    [[ -n "$BENCH_SERVER_PID" ]] || return 0
    local pid=$BENCH_SERVER_PID i
    BENCH_SERVER_PID=""
    kill -TERM "$pid" 2>/dev/null || true
    for (( i=0; i<100; i++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
on_exit stop_bench_server

# start_bench_server NAME: a fresh server per scenario, so RSS baselines are clean.
start_bench_server() {
    local name=$1 port
    port="$(free_port)"
    case "$PEER" in
        ringmcp)
            local extra=()
            (( ! TLS )) || extra=(--tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server.key")
            (( ! WS_DEFLATE )) || extra+=(--ws-deflate)
            taskset -c "$SERVER_CPU" "$SERVER_BIN" --bind "127.0.0.1:$port" --shards 1 --echo \
                --max-connections-per-shard $(( CONNS + 1000 )) --max-sessions-per-shard $(( CONNS * 2 + 1000 )) \
                "${extra[@]}" >"$OUT/$name.server.log" 2>&1 & ;;
        python-sdk)
            taskset -c "$SERVER_CPU" "$PYTHON_SDK_DIR/bin/python" scripts/peers/python_server.py "$port" \
                >"$OUT/$name.server.log" 2>&1 & ;;
        typescript-sdk)
            (cd "$TS_SDK_DIR" && exec taskset -c "$SERVER_CPU" node ts_server.mjs "$port") \
                >"$OUT/$name.server.log" 2>&1 & ;;
        tokio-tungstenite)
            taskset -c "$SERVER_CPU" "$TOKIO_ECHO_BIN" "$port" >"$OUT/$name.server.log" 2>&1 & ;;
    esac
    BENCH_SERVER_PID=$!
    BENCH_PORT=$port
    if [[ "$PEER" == ringmcp ]]; then
        wait_http_ok "$HTTP_SCHEME://127.0.0.1:$port/healthz" 30 "$BENCH_SERVER_PID" "${TLS_DIR:+$TLS_DIR/ca.pem}"
    else
        wait_listening "$port" 30 "$BENCH_SERVER_PID"
    fi || die "$PEER did not come up for $name (log: $OUT/$name.server.log)"
    # glommio pins its executor itself; check it honoured taskset.
    local t cpus
    for t in /proc/"$BENCH_SERVER_PID"/task/*; do
        if [[ "$(cat "$t/comm" 2>/dev/null)" == ringmcp-shard* ]]; then
            cpus="$(awk '/Cpus_allowed_list/ {print $2}' "$t/status")"
            [[ "$cpus" == "$SERVER_CPU" ]] || warn "server shard runs on CPU(s) $cpus, not $SERVER_CPU: it shares a core with the load generator"
            break
        fi
    done
}

# run_load NAME ARGS...: one load run; its JSON goes to $OUT/NAME.json, its summary to stdout.
run_load() {
    local name=$1; shift
    local cmd=(taskset -c "$LOAD_CPU" "$LOAD_BIN" --shards 1 --ramp "$RAMP" --server-pid "$BENCH_SERVER_PID"
               --protocol "$PROTOCOL" --json "$OUT/$name.json" "$@")
    # The busy share (CPU use without idle spinning) is a ringmcp counter.
    [[ "$PEER" != ringmcp ]] || cmd+=(--server-metrics "$HTTP_SCHEME://127.0.0.1:$BENCH_PORT/metrics")
    (( ! TLS )) || cmd+=(--tls-ca "$TLS_DIR/ca.pem")
    (( ! WS_DEFLATE )) || cmd+=(--ws-deflate)
    printf '%q ' "${cmd[@]}" >"$OUT/$name.cmd"
    echo >>"$OUT/$name.cmd"
    log "$name: ${cmd[*]}"
    "${cmd[@]}" | tee "$OUT/$name.txt" || warn "$name: load generator exited non-zero"
}

RUN=()
for scenario in $SCENARIOS; do
    if [[ " $PEER_SCENARIOS " != *" $scenario "* ]]; then
        log "$scenario: skipped, $PEER does not serve it over MCP $PROTOCOL"
        continue
    fi
    RUN+=("$scenario")
    start_bench_server "$scenario"
    base="127.0.0.1:$BENCH_PORT"
    case "$scenario" in
        idle-hold-ws)
            run_load "$scenario" --scenario idle-hold --target "$WS_SCHEME://$base/mcp" \
                --connections "$CONNS" --duration "$HOLD" ;;
        idle-hold-echo)
            run_load "$scenario" --scenario idle-hold --transport echo --target "$WS_SCHEME://$base/echo" \
                --connections "$CONNS" --duration "$HOLD" ;;
        idle-hold-http)
            run_load "$scenario" --scenario idle-hold --transport http --target "$HTTP_SCHEME://$base/mcp" \
                --connections "$CONNS" --duration "$HOLD" --fill-events "$FILL_EVENTS" --payload 129 --timeout 30 ;;
        ws-mcp)
            run_load "$scenario" --scenario ws-mcp --target "$WS_SCHEME://$base/mcp" \
                --connections "$CONNS" --rate "$WS_RATE" --duration "$DURATION" --payload "$PAYLOAD" ;;
        http-mcp)
            run_load "$scenario" --scenario http-mcp --target "$HTTP_SCHEME://$base/mcp" \
                --connections "$CONNS" --rate "$HTTP_RATE" --duration "$DURATION" --payload "$PAYLOAD" ;;
        sse-resume)
            run_load "$scenario" --scenario sse-resume --target "$HTTP_SCHEME://$base/mcp" \
                --connections "$CONNS" --rate "$SSE_RATE" --duration "$DURATION" --payload "$PAYLOAD" \
                --disconnects "$DISCONNECTS" --timeout 30 ;;
        ws-echo)
            run_load "$scenario" --scenario ws-echo --target "$WS_SCHEME://$base/echo" \
                --connections "$CONNS" --rate "$WS_RATE" --duration "$DURATION" --payload "$PAYLOAD" ;;
        slow-readers)
            run_load "$scenario" --scenario slow-readers --target "$WS_SCHEME://$base/mcp" \
                --connections "$CONNS" --rate "$WS_RATE" --duration "$DURATION" --payload "$PAYLOAD" ;;
        listen)
            # Long enough for every change, and a second for the last one to arrive.
            listen_duration=$(awk -v c="$LISTEN_CHANGES" -v r="$LISTEN_RATE" 'BEGIN { if (r <= 0) exit 1; print c / r + 1 }') \
                || die "BENCH_LISTEN_RATE must be above 0"
            run_load "$scenario" --scenario listen --target "$HTTP_SCHEME://$base/mcp" \
                --connections "$CONNS" --rate "$LISTEN_RATE" --changes "$LISTEN_CHANGES" \
                --duration "$listen_duration" ;;
        *) die "unknown scenario $scenario" ;;
    esac
    stop_bench_server
done

echo "${RUN[*]}" >"$OUT/scenarios"
echo
python3 scripts/results_table.py "$OUT" | tee "$OUT/table.txt"
# One HTML page of the run's scenarios (docs/benchmarks.md#the-html-report).
RUN_JSON=()
for scenario in "${RUN[@]}"; do
    [[ -f "$OUT/$scenario.json" ]] && RUN_JSON+=("$OUT/$scenario.json")
done
if (( ${#RUN_JSON[@]} )); then
    if "$LOAD_BIN" report --out "$OUT/report.html" "${RUN_JSON[@]}"; then
        log "report: $OUT/report.html"
    else
        warn "could not write $OUT/report.html"
    fi
fi
log "done: $OUT"
