#!/usr/bin/env bash
# The example servers (examples/*.rs), each started as `cargo run --example NAME` would start
# it (test.sh builds them in the `ci` profile: release code without cross-crate LTO) and called by the official Python SDK 1.x client
# (scripts/examples.py): typed tools and their schemas, a resource and its subscribers, a
# tool with progress and elicitation. Then the server of docs/comparison.md, with the client
# that checked the rmcp and TypeScript ones (docs/comparison/check.py).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

python_venv "$PYTHON_SDK_DIR" "$PYTHON_SDK_PIN"
make_tmpdir WORK
for name in calculator counter confirm; do
    RINGMCP_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/ci/examples/$name"
    [[ -x "$RINGMCP_BIN" ]] || die "no example binary at $RINGMCP_BIN (cargo build --profile ci --examples)"
    export RINGMCP_BIN
    start_server "$WORK/$name.log"
    "$PYTHON_SDK_DIR/bin/python" scripts/examples.py "$name" "$SERVER_URL/mcp" \
        || { tail -n 20 "$WORK/$name.log" >&2; die "$name: the Python SDK client failed"; }
    stop_server
done
# The server of docs/comparison.md, checked as the rmcp and TypeScript ones were.
RINGMCP_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/ci/examples/comparison"
start_server "$WORK/comparison.log"
"$PYTHON_SDK_DIR/bin/python" docs/comparison/check.py "$SERVER_URL/mcp" \
    || { tail -n 20 "$WORK/comparison.log" >&2; die "comparison: docs/comparison/check.py failed"; }
stop_server
log "EXAMPLES: PASS"
