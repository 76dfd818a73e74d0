#!/usr/bin/env bash
# A real MCP client against the server: the official Python SDK (PyPI `mcp`) lists and calls
# tools over Streamable HTTP, the legacy HTTP+SSE transport and WebSocket.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

SDK_DIR="$REPO_ROOT/.cache/python-sdk"
python_venv "$SDK_DIR" "mcp[ws]==1.30.0"

make_tmpdir WORK
start_server "$WORK/server.log"
# The SDK marks its WebSocket client deprecated; it is still what WebSocket MCP clients use.
"$SDK_DIR/bin/python" -W ignore::DeprecationWarning scripts/python_sdk.py "$SERVER_URL"
log "PYTHON SDK: PASS"
