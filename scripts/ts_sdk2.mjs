// The official TypeScript SDK v2 client against ringmcp over MCP 2026-07-28.
// Usage: node ts_sdk2.mjs MCP_URL   (run by scripts/ts_sdk.sh)
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const url = new URL(process.argv[2]);
for (const mode of ["auto", { pin: "2026-07-28" }]) {
  const client = new Client(
    { name: "ringmcp-ts-sdk2-check", version: "1.0.0" },
    { versionNegotiation: { mode } },
  );
  await client.connect(new StreamableHTTPClientTransport(url));
  const label = typeof mode === "string" ? mode : `pin ${mode.pin}`;
  const version = client.getNegotiatedProtocolVersion();
  if (version !== "2026-07-28" || !client.getDiscoverResult()) {
    throw new Error(`${label}: negotiated ${version}, not 2026-07-28 through server/discover`);
  }
  const tools = await client.listTools();
  if (!tools.tools.some((t) => t.name === "echo")) throw new Error(`${label}: no echo tool`);
  const result = await client.callTool({ name: "echo", arguments: { message: "hello over 2026-07-28" } });
  if (result.isError || result.content[0].text !== "hello over 2026-07-28") {
    throw new Error(`${label}: echo returned ${JSON.stringify(result)}`);
  }
  console.log(`typescript sdk v2 (${label}): 2026-07-28, ${tools.tools.length} tools, echo ok`);
  await client.close();
}
