// A browser-like WebSocket client (Node's built-in WebSocket, the WHATWG API browsers have)
// against a server started with --ws-deflate: permessage-deflate must be negotiated, and MCP
// must work through it with a 16 KiB tool result and a large request, both compressed.
// Usage: node ws_deflate.mjs WS_URL   (e.g. ws://127.0.0.1:8080/mcp; run by scripts/ts_sdk.sh)
const ws = new WebSocket(process.argv[2], "mcp");
const replies = new Map();
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  replies.get(m.id)?.(m);
};
await new Promise((resolve, reject) => {
  ws.onopen = resolve;
  ws.onerror = () => reject(new Error("WebSocket error before open"));
});
if (!ws.extensions.startsWith("permessage-deflate")) {
  throw new Error(`permessage-deflate not negotiated: extensions "${ws.extensions}"`);
}
const call = (id, method, params) => {
  const got = new Promise((resolve) => replies.set(id, resolve));
  ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
  return got;
};
const text = (m) => {
  if (!m.result) throw new Error(`no result: ${JSON.stringify(m).slice(0, 200)}`);
  return m.result.content[0].text;
};
const init = await call(1, "initialize", {
  protocolVersion: "2025-11-25",
  capabilities: {},
  clientInfo: { name: "ringmcp-ws-deflate-check", version: "1.0.0" },
});
if (!init.result) throw new Error(`initialize: ${JSON.stringify(init)}`);
ws.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
const payload = text(await call(2, "tools/call", { name: "payload", arguments: { bytes: 16384 } }));
if (payload.length !== 16384) throw new Error(`payload: ${payload.length} characters`);
const big = "compress me ".repeat(1500);
const echoed = text(await call(3, "tools/call", { name: "echo", arguments: { message: big } }));
if (echoed !== big) throw new Error(`echo: ${echoed.length} characters back`);
ws.close(1000);
console.log(`node ${process.version} WebSocket: extensions "${ws.extensions}", 16 KiB result and 18000-character echo ok`);
