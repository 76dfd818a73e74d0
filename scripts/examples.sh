#!/usr/bin/env bash
# The example servers (examples/*.rs), each started as `cargo run --example NAME` would start
# it (the release build test.sh made) and called by the official Python SDK 1.x client
# (scripts/examples.py): typed tools and their schemas, a resource and its subscribers, a
# tool with progress and elicitation.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

python_venv "$PYTHON_SDK_DIR" "$PYTHON_SDK_PIN"
make_tmpdir WORK
for name in calculator counter confirm; do
    RINGMCP_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/examples/$name"
    [[ -x "$RINGMCP_BIN" ]] || die "no example binary at $RINGMCP_BIN (cargo build --release --examples)"
    export RINGMCP_BIN
    start_server "$WORK/$name.log"
    "$PYTHON_SDK_DIR/bin/python" scripts/examples.py "$name" "$SERVER_URL/mcp" \
        || { tail -n 20 "$WORK/$name.log" >&2; die "$name: the Python SDK client failed"; }
    stop_server
done
log "EXAMPLES: PASS"
