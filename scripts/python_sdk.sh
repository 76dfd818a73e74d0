#!/usr/bin/env bash
# A real MCP client against the server: the official Python SDK (PyPI `mcp`) lists and calls
# tools over Streamable HTTP, the legacy HTTP+SSE transport and WebSocket.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

python_venv "$PYTHON_SDK_DIR" "$PYTHON_SDK_PIN"

make_tmpdir WORK
start_server "$WORK/server.log"
# The SDK marks its WebSocket client deprecated; it is still what WebSocket MCP clients use.
"$PYTHON_SDK_DIR/bin/python" -W ignore::DeprecationWarning scripts/python_sdk.py "$SERVER_URL"
log "PYTHON SDK: PASS"
