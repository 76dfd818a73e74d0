#!/usr/bin/env bash
# Initialize flood (a test.sh stage): 10,000 sessions nobody comes back for; see flood.py.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
make_tmpdir WORK
start_server "$WORK/server.log" --shards 1 --session-idle-timeout-secs 3
python3 scripts/flood.py "$SERVER_URL" "$SERVER_PID" "${FLOOD_SESSIONS:-10000}"
log "FLOOD: PASS"
