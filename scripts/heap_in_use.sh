#!/usr/bin/env bash
# Heap per idle connection by glibc's own count, beside RSS: a one-shard server (core 0) holds
# HEAP_CONNECTIONS idle connections from ringmcp-load (core 1), and its `/metrics` say what
# glibc counts (`ringmcp_heap_bytes`, from mallinfo2) before they open and while they are held.
#
# bench.sh's "bytes per connection" is RSS, which also counts the allocator's free space
# between chunks; that moves by tens of bytes per connection from build to build, so a step
# that shrinks a chunk class may not show in it (docs/benchmarks.md, "Smaller I/O sources").
# "In use" moves only with what the connections keep.
#
# Usage: scripts/heap_in_use.sh [echo|ws|http]   (default echo: raw WebSocket /echo; ws: an MCP
#        session over WebSocket; http: a Streamable HTTP session with its GET stream open)
# Env:   HEAP_CONNECTIONS [15000]  connections held
#        RINGMCP_BIN, LOAD_BIN     the binaries (default target/release/ringmcp, ringmcp-load;
#                                  built first when neither is set)
# Prints per connection: RSS, heap in use, and heap free (what the allocator holds free in its
# arenas), all as growth from before the connections opened.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

TRANSPORT=${1:-echo}
CONNS=${HEAP_CONNECTIONS:-15000}
case "$TRANSPORT" in
    echo) TARGET=ws:/echo ARGS=(--transport echo) ;;
    ws)   TARGET=ws:/mcp ARGS=() ;;
    http) TARGET=http:/mcp ARGS=(--transport http --fill-events 0 --payload 129 --timeout 30) ;;
    *) die "transport must be echo, ws or http, not '$TRANSPORT'" ;;
esac
make_tmpdir WORK
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO_ROOT/target}
if [[ -z "${RINGMCP_BIN:-}${LOAD_BIN:-}" ]]; then
    log "building release binaries"
    cargo build --release -p ringmcp -p loadtest --bins >&2
fi
SERVER_BIN="${RINGMCP_BIN:-$TARGET_DIR/release/ringmcp}"
LOAD_BIN="${LOAD_BIN:-$TARGET_DIR/release/ringmcp-load}"
[[ -x "$SERVER_BIN" && -x "$LOAD_BIN" ]] || die "missing $SERVER_BIN or $LOAD_BIN"

PORT="$(free_port)"
taskset -c 0 "$SERVER_BIN" --bind "127.0.0.1:$PORT" --shards 1 --echo \
    --max-connections-per-shard $(( CONNS + 1000 )) --max-sessions-per-shard $(( CONNS * 2 + 1000 )) \
    >"$WORK/server.log" 2>&1 </dev/null &
SERVER=$!
on_exit stop_pid "$SERVER" server
wait_http_ok "http://127.0.0.1:$PORT/healthz" 30 "$SERVER" || die "the server did not come up ($WORK/server.log)"

# sample: the server's RSS (kB) and glibc's heap in use and free (bytes), as "rss in_use free".
sample() {
    local rss
    rss="$(awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status")"
    curl -fsS "http://127.0.0.1:$PORT/metrics" | awk -v rss="$rss" '
        /^ringmcp_heap_bytes\{state="in_use"\}/ {in_use = $NF}
        /^ringmcp_heap_bytes\{state="free"\}/ {free = $NF}
        END {print rss, in_use, free}'
}

# open_connections: how many connections the server holds now, over all transports.
open_connections() {
    curl -fsS "http://127.0.0.1:$PORT/metrics" \
        | awk '/^ringmcp_connections\{/ {n += $NF} END {print n + 0}'
}

read -r RSS0 IN_USE0 FREE0 <<<"$(sample)"
HOLD=$(( 60 + CONNS / 500 ))
taskset -c 1 "$LOAD_BIN" --shards 1 --scenario idle-hold \
    --target "${TARGET%%:*}://127.0.0.1:$PORT${TARGET#*:}" "${ARGS[@]}" \
    --connections "$CONNS" --duration "$HOLD" >"$WORK/load.log" 2>&1 &
LOAD=$!
on_exit stop_pid "$LOAD" load
deadline=$(( SECONDS + HOLD ))
# Every connection open, plus the listener's slot and the scrape's own.
until (( $(open_connections) >= CONNS )); do
    (( SECONDS < deadline )) && kill -0 "$LOAD" 2>/dev/null \
        || { tail -n 5 "$WORK/load.log" >&2; die "the load never held $CONNS connections"; }
    sleep 1
done
sleep 2
read -r RSS1 IN_USE1 FREE1 <<<"$(sample)"
[[ -n "$IN_USE0" && -n "$IN_USE1" ]] || die "the server reports no ringmcp_heap_bytes (not glibc's allocator?)"
per() { awk -v d="$1" -v n="$CONNS" 'BEGIN {printf "%.0f", d / n}'; }
IN_USE="$(per $(( IN_USE1 - IN_USE0 )))"
printf 'transport %s, %d connections, per connection: RSS %s B, heap in use %s B, heap free %s B\n' \
    "$TRANSPORT" "$CONNS" "$(per $(( (RSS1 - RSS0) * 1024 )))" "$IN_USE" \
    "$(per $(( FREE1 - FREE0 )))"
# Every held connection keeps at least its task and its socket's I/O source.
(( IN_USE >= 256 )) || die "glibc counted $IN_USE B in use per connection: the samples are wrong"
