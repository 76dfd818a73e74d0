#!/usr/bin/env bash
# Real MCP clients against the server: the official Python SDK 1.x (PyPI `mcp`) lists and
# calls tools over Streamable HTTP, the legacy HTTP+SSE transport and WebSocket (also with
# permessage-deflate, against a server started with --ws-deflate); the 2.x SDK,
# which probes server/discover first, must speak MCP 2026-07-28 to it without falling back.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

python_venv "$PYTHON_SDK_DIR" "$PYTHON_SDK_PIN"
python_venv "$PYTHON_SDK2_DIR" "$PYTHON_SDK2_PIN"

make_tmpdir WORK
start_server "$WORK/server.log"
# The SDK marks its WebSocket client deprecated; it is still what WebSocket MCP clients use.
"$PYTHON_SDK_DIR/bin/python" -W ignore::DeprecationWarning scripts/python_sdk.py "$SERVER_URL"
"$PYTHON_SDK2_DIR/bin/python" scripts/python_sdk2.py "$SERVER_URL/mcp"
stop_server
# permessage-deflate (RFC 7692): the SDK's WebSocket client offers it by default.
start_server "$WORK/server-deflate.log" --ws-deflate
"$PYTHON_SDK_DIR/bin/python" -W ignore::DeprecationWarning scripts/python_sdk.py "$SERVER_URL" --deflate
log "PYTHON SDK: PASS"
