#!/usr/bin/env bash
# The test of scripts/regress.sh (a test.sh stage): a short regression run of ws-mcp must
#   1. flag a deliberately slowed server (the same binary with RINGMCP_TEST_ECHO_SPIN_US=100:
#      the echo tool busy-waits 100 µs per call, a few times the CPU a call takes) as a
#      regression, with the server's busy time per request `slower` (the latency figures of
#      such short runs are too noisy to require); and
#   2. pass two identical builds (the same binary on both sides): no regression detected.
# Both use the release binaries already built (target/release) and take about a minute each.
#
# Env: REGRESS_CHECK_PAIRS [4] pairs per run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
SERVER="$CARGO_TARGET_DIR/release/ringmcp"
[[ -x "$SERVER" ]] || die "missing $SERVER (cargo build --release)"
make_tmpdir WORK

SLOWED="$WORK/ringmcp-slowed"
printf '#!/bin/sh\nRINGMCP_TEST_ECHO_SPIN_US=100 exec %q "$@"\n' "$SERVER" >"$SLOWED"
chmod +x "$SLOWED"

export REGRESS_PAIRS="${REGRESS_CHECK_PAIRS:-4}" REGRESS_SCENARIOS=ws-mcp
export BENCH_CONNECTIONS=100 BENCH_RAMP=1000 BENCH_DURATION=3 BENCH_WS_RATE=2000

# check NAME EXPECTED_STATUS BASE NEW: one regress.sh run and its exit status.
check() {
    local name=$1 expected=$2 status=0
    log "$name: scripts/regress.sh $3 $4"
    REGRESS_RESULTS="$WORK/$name" scripts/regress.sh "$3" "$4" >"$WORK/$name.out" 2>"$WORK/$name.log" \
        || status=$?
    cat "$WORK/$name.out"
    (( status == expected )) || {
        tail -n 20 "$WORK/$name.log" >&2
        die "$name: regress.sh exited $status, expected $expected"
    }
}

check slowed 1 "$SERVER" "$SLOWED"
grep -Eq '^server busy per 1,000 requests/s .* slower$' "$WORK/slowed.out" \
    || die "slowed: the server's busy time per request is not 'slower'"
check identical 0 "$SERVER" "$SERVER"
grep -q '^no regression  ws-mcp$' "$WORK/identical.out" || die "identical: no verdict line for ws-mcp"
log "regress.sh flags the slowed server and passes identical builds"
