#!/usr/bin/env bash
# Load generator end to end (a test.sh stage): every ringmcp-load scenario through
# scripts/bench.sh at small scale against the release server, then checks the JSON of each:
# every connection up, no errors, every request answered at the asked rate, the phase's
# server and load samples present, and for sse-resume every event exactly once and in order
# across every planned disconnect; then http-mcp and ws-mcp once more as MCP 2026-07-28
# (stateless requests, BENCH_PROTOCOL), checked the same way and for the protocol their JSON
# records, and listen (5 tool-list changes to every stream, each heard by every stream); then
# ws-mcp and http-mcp over TLS (BENCH_TLS: wss:// and https:// at 100 connections against the
# test certificate), checked the same way and for the "tls" their JSON records.
# Bounded: ~60 s.
#
# Env: LOADGEN_CONNECTIONS [200], LOADGEN_DURATION [3] (seconds per scenario).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
make_tmpdir WORK

SCENARIOS="idle-hold-ws idle-hold-http idle-hold-echo ws-echo ws-mcp http-mcp sse-resume slow-readers"
export BENCH_NO_BUILD=1 BENCH_CONNECTIONS="${LOADGEN_CONNECTIONS:-200}" \
    BENCH_DURATION="${LOADGEN_DURATION:-3}" BENCH_HOLD=2 BENCH_WS_RATE=4000 BENCH_HTTP_RATE=2000 \
    BENCH_SSE_RATE=400 BENCH_DISCONNECTS=40 BENCH_LISTEN_CHANGES=5 BENCH_LISTEN_RATE=5
BENCH_RESULTS="$WORK/2025" BENCH_SCENARIOS="$SCENARIOS" scripts/bench.sh
STATELESS_SCENARIOS="http-mcp ws-mcp listen"
BENCH_RESULTS="$WORK/2026" BENCH_SCENARIOS="$STATELESS_SCENARIOS" BENCH_PROTOCOL=2026-07-28 scripts/bench.sh
TLS_SCENARIOS="ws-mcp http-mcp"
BENCH_RESULTS="$WORK/tls" BENCH_SCENARIOS="$TLS_SCENARIOS" BENCH_TLS=1 BENCH_CONNECTIONS=100 scripts/bench.sh

python3 scripts/check_runs.py "$WORK"/2025/*/ $SCENARIOS
python3 scripts/check_runs.py "$WORK"/2026/*/ $STATELESS_SCENARIOS
python3 scripts/check_runs.py "$WORK"/tls/*/ $TLS_SCENARIOS
# Each run says which revision it spoke, and whether over TLS.
for run in "$WORK"/2025/*/ "$WORK"/2026/*/ "$WORK"/tls/*/; do
    want=$([[ $run == "$WORK/2026/"* ]] && echo 2026-07-28 || echo 2025-11-25)
    want+=" $([[ $run == "$WORK/tls/"* ]] && echo True || echo False)"
    for json in "$run"*.json; do
        got=$(python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))["settings"]; print(s["protocol"], s["tls"])' "$json")
        [[ "$got" == "$want" ]] || die "$json: protocol and TLS $got, not $want"
    done
done
log "LOADGEN: PASS"
