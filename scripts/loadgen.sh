#!/usr/bin/env bash
# Load generator end to end (a test.sh stage): every ringmcp-load scenario through
# scripts/bench.sh at small scale against the release server, then checks the JSON of each:
# every connection up, no errors, every request answered at the asked rate, the phase's
# server and load samples present, and for sse-resume every event exactly once and in order
# across every planned disconnect. Bounded: ~30 s.
#
# Env: LOADGEN_CONNECTIONS [200], LOADGEN_DURATION [3] (seconds per scenario).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
make_tmpdir WORK

SCENARIOS="idle-hold-ws idle-hold-http ws-echo ws-mcp http-mcp sse-resume slow-readers"
BENCH_NO_BUILD=1 BENCH_RESULTS="$WORK" BENCH_SCENARIOS="$SCENARIOS" \
    BENCH_CONNECTIONS="${LOADGEN_CONNECTIONS:-200}" BENCH_DURATION="${LOADGEN_DURATION:-3}" \
    BENCH_HOLD=2 BENCH_WS_RATE=4000 BENCH_HTTP_RATE=2000 BENCH_SSE_RATE=400 BENCH_DISCONNECTS=40 \
    scripts/bench.sh

python3 scripts/check_runs.py "$WORK"/*/ $SCENARIOS
log "LOADGEN: PASS"
