#!/usr/bin/env bash
# A real MCP 2026-07-28 client against the server: the official TypeScript SDK v2
# (@modelcontextprotocol/client, Node 22 from npm) connects in `auto` mode (it probes
# server/discover and falls back to initialize when a server does not speak the stateless
# revision) and pinned to 2026-07-28, lists and calls a tool; scripts/ts_sdk2.mjs fails
# unless the revision was 2026-07-28. Then Node's built-in WebSocket (the browsers' API)
# against a server with --ws-deflate: scripts/ws_deflate.mjs fails unless permessage-deflate
# was negotiated and MCP works through it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

TS_SDK_DIR="$CACHE_DIR/ts-sdk2"
npm_project "$TS_SDK_DIR" "{\"name\":\"ringmcp-ts-sdk2\",\"private\":true,\"type\":\"module\",\"dependencies\":{\"$NODE_PKG\":\"$NODE_VERSION\",\"@modelcontextprotocol/client\":\"$TS_CLIENT_VERSION\"}}"
# The script is run from the install folder so that its imports resolve there.
cp scripts/ts_sdk2.mjs "$TS_SDK_DIR/check.mjs"

make_tmpdir WORK
start_server "$WORK/server.log"
"$NODE_BIN" "$TS_SDK_DIR/check.mjs" "$SERVER_URL/mcp"
stop_server
# Node's built-in WebSocket (the WHATWG API of browsers) with permessage-deflate.
start_server "$WORK/server-deflate.log" --ws-deflate
"$NODE_BIN" scripts/ws_deflate.mjs "${SERVER_URL/http:/ws:}/mcp"
log "TS SDK: PASS"
