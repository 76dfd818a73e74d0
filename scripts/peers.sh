#!/usr/bin/env bash
# ringmcp-load against other MCP servers (a test.sh stage): the same scenarios, settings and
# core pinning (scripts/bench.sh) against ringmcp and against peer servers (scripts/peers/) built
# only from the official SDKs, the Python SDK (Streamable HTTP, MCP over WebSocket, WebSocket
# echo) and the TypeScript SDK (Streamable HTTP), or from tokio + tokio-tungstenite (WebSocket
# echo). Checks every run like loadgen.sh (scripts/check_runs.py) and prints one table of all
# runs (scripts/results_table.py). The SDKs install, and the tokio peer builds, into .cache/.
#
# Env: PEERS_CONNECTIONS [50]  PEERS_RATE [200] (requests/s)  PEERS_DURATION [3] (seconds)
#      PEERS_HOLD [2] (idle-hold seconds)  PEERS_RESULTS [a temporary folder]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

if [[ -n "${PEERS_RESULTS:-}" ]]; then RESULTS=$PEERS_RESULTS; else make_tmpdir RESULTS; fi
SCENARIOS="idle-hold-ws idle-hold-http idle-hold-echo ws-echo ws-mcp http-mcp"
PEERS="ringmcp python-sdk typescript-sdk tokio-tungstenite"
RATE=${PEERS_RATE:-200}

failed=0
newest=()
for peer in $PEERS; do
    # Rings stay empty in idle-hold-http: the peers have no tool to fill them.
    BENCH_PEER=$peer BENCH_NO_BUILD=1 BENCH_RESULTS="$RESULTS/$peer" BENCH_SCENARIOS="$SCENARIOS" \
        BENCH_CONNECTIONS="${PEERS_CONNECTIONS:-50}" BENCH_DURATION="${PEERS_DURATION:-3}" \
        BENCH_HOLD="${PEERS_HOLD:-2}" BENCH_WS_RATE="$RATE" BENCH_HTTP_RATE="$RATE" \
        BENCH_FILL_EVENTS=0 scripts/bench.sh >&2
    # bench.sh's newest run (timestamped folders sort by time).
    runs=("$RESULTS/$peer"/*/)
    out=${runs[-1]}
    newest+=("$out")
    peer_flag=()
    [[ "$peer" == ringmcp ]] || peer_flag=(--peer)
    # shellcheck disable=SC2046 # the scenario list bench.sh ran
    python3 scripts/check_runs.py "${peer_flag[@]}" "$out" $(cat "$out/scenarios") \
        || { warn "$peer: checks failed"; failed=1; }
done

python3 scripts/results_table.py "${newest[@]}"
(( failed == 0 )) || die "PEERS: FAIL"
log "PEERS: PASS"
