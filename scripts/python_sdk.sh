#!/usr/bin/env bash
# A real MCP client against the server: the official Python SDK (PyPI `mcp`) lists and calls
# tools over Streamable HTTP, the legacy HTTP+SSE transport and WebSocket.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

SDK_DIR="$REPO_ROOT/.cache/python-sdk"
PINS="mcp[ws]==1.30.0"
if ! stamp_matches "$SDK_DIR" "$PINS"; then
    log "installing $PINS into $SDK_DIR"
    rm -rf "$SDK_DIR"
    python3 -m venv "$SDK_DIR"
    "$SDK_DIR/bin/pip" install --quiet --disable-pip-version-check "$PINS"
    write_stamp "$SDK_DIR" "$PINS"
fi

make_tmpdir WORK
start_server "$WORK/server.log"
# The SDK marks its WebSocket client deprecated; it is still what WebSocket MCP clients use.
"$SDK_DIR/bin/python" -W ignore::DeprecationWarning scripts/python_sdk.py "$SERVER_URL"
log "PYTHON SDK: PASS"
