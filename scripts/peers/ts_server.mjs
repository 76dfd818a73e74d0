// A peer server for ringmcp-load comparisons, built only from the official TypeScript MCP SDK
// (npm `@modelcontextprotocol/sdk`) and Node's http module: MCP Streamable HTTP on
// http://127.0.0.1:PORT/mcp with stateful sessions, as the SDK's own example server does
// (one McpServer and StreamableHTTPServerTransport per session), and the tool the load
// generator calls: echo(message) -> message.
// Usage: node ts_server.mjs PORT  (run from a folder whose node_modules holds the SDK)
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

const MAX_BODY_BYTES = 4 * 1024 * 1024;
const transports = new Map();

function sessionServer() {
  const server = new McpServer({ name: "typescript-sdk-peer", version: "1.0.0" });
  server.registerTool(
    "echo",
    { description: "Returns its message.", inputSchema: { message: z.string() } },
    async ({ message }) => ({ content: [{ type: "text", text: message }] }),
  );
  return server;
}

function refuse(res, status, message) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error("body too large");
    chunks.push(chunk);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

createServer(async (req, res) => {
  if (new URL(req.url, "http://peer").pathname !== "/mcp") return refuse(res, 404, "Not Found");
  let body;
  if (req.method === "POST") {
    try {
      body = await readJson(req);
    } catch {
      return refuse(res, 400, "Parse error");
    }
  }
  const sessionId = req.headers["mcp-session-id"];
  let transport = sessionId ? transports.get(sessionId) : undefined;
  if (!transport) {
    if (sessionId) return refuse(res, 404, "Session not found");
    if (req.method !== "POST" || !isInitializeRequest(body)) {
      return refuse(res, 400, "Bad Request: no session id");
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => transports.set(id, transport),
    });
    transport.onclose = () => transports.delete(transport.sessionId);
    await sessionServer().connect(transport);
  }
  await transport.handleRequest(req, res, body);
}).listen(Number(process.argv[2]), "127.0.0.1");
