#!/usr/bin/env bash
# Fault test (a test.sh stage): abusive clients next to well-behaved ones; see faults.py.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
make_tmpdir WORK
# Short timeouts so half-open and abandoned connections are reaped within the run; an inbound
# budget of 16 MiB per shard so the partial-message attack (40 x 1 MiB) reaches it.
start_server "$WORK/server.log" --echo --shards 2 --header-timeout-ms 1000 --close-timeout-ms 500 \
    --slow-reader-timeout-ms 1000 --max-inbound-bytes-per-shard 16777216
python3 scripts/faults.py "$SERVER_URL" "$SERVER_PID" "${FAULT_ROUNDS:-450}"
log "FAULTS: PASS"
