// The official TypeScript SDK v2 client against ringmcp over https with OAuth (scripts/auth.sh).
// usage: node auth_ts.mjs MCP_URL ISSUER WORK CLIENT_ID ADMIN_TOOL
//   (NODE_EXTRA_CA_CERTS names the test CA; WORK/clients.json holds the client secrets)
// Its ClientCredentialsProvider gets its own token: the first request is answered 401, the
// client follows the challenge to the Protected Resource Metadata and the provider, asks for a
// token for MCP_URL, and lists and calls tools over MCP 2026-07-28 (auto mode, which probes
// server/discover, and pinned); a call of ADMIN_TOOL is answered 403 insufficient_scope and the
// client steps up. Fails on anything else.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Client, ClientCredentialsProvider, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const [mcpUrl, issuer, work, clientId, adminTool] = process.argv.slice(2);
const secrets = JSON.parse(readFileSync(join(work, "clients.json"), "utf8"));
const url = new URL(mcpUrl);
const prmUrl = `${url.origin}/.well-known/oauth-protected-resource${url.pathname.replace(/\/$/, "")}`;
const claims = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));

for (const mode of ["auto", { pin: "2026-07-28" }]) {
  const label = typeof mode === "string" ? mode : `pin ${mode.pin}`;
  const seen = [];
  const logged = async (input, init) => {
    const response = await fetch(input, init);
    seen.push({ method: init?.method ?? "GET", url: String(input), status: response.status,
      www: response.headers.get("www-authenticate") });
    return response;
  };
  const provider = new ClientCredentialsProvider({ clientId, clientSecret: secrets[clientId], expectedIssuer: issuer });
  const client = new Client({ name: "ringmcp-auth-ts-check", version: "1.0.0" }, { versionNegotiation: { mode } });
  await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: logged }));
  const fail = (what) => {
    for (const s of seen) console.error(`  ${s.method} ${s.url} -> ${s.status}${s.www ? `  WWW-Authenticate: ${s.www}` : ""}`);
    throw new Error(`${label}: ${what}`);
  };
  if (client.getNegotiatedProtocolVersion() !== "2026-07-28") fail(`negotiated ${client.getNegotiatedProtocolVersion()}`);
  const tools = await client.listTools();
  if (!tools.tools.some((t) => t.name === "echo")) fail("no echo tool");
  const echo = await client.callTool({ name: "echo", arguments: { message: "hello over https" } });
  if (echo.isError || echo.content[0].text !== "hello over https") fail(`echo returned ${JSON.stringify(echo)}`);
  const first = provider.tokens().access_token;
  const admin = await client.callTool({ name: adminTool, arguments: {} });
  if (admin.isError) fail(`${adminTool} returned ${JSON.stringify(admin)}`);
  const last = provider.tokens().access_token;
  await client.close();

  if (seen[0]?.status !== 401 || !seen[0].www?.includes(`resource_metadata="${prmUrl}"`)) fail("the first answer was not the 401 challenge");
  if (!seen.some((s) => s.url === prmUrl && s.status === 200)) fail("no Protected Resource Metadata fetch");
  if (!seen.some((s) => s.status === 403 && s.www?.includes('error="insufficient_scope"'))) fail("no 403 insufficient_scope");
  for (const [token, admin] of [[first, false], [last, true]]) {
    const c = claims(token);
    if (c.aud !== mcpUrl) fail(`token audience ${c.aud}, not ${mcpUrl}`);
    if (c.scope.split(" ").includes("mcp:admin") !== admin) fail(`token scope ${c.scope}`);
  }
  const tokenRequests = seen.filter((s) => s.url.startsWith(issuer) && s.method === "POST").length;
  console.log(`typescript sdk v2 (${label}, ${clientId}): 2026-07-28 over https, 401 -> PRM -> ` +
    `${tokenRequests} tokens from ${issuer}, ${tools.tools.length} tools, echo ok, ${adminTool} after a step-up ok`);
}
