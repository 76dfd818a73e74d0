// A real OpenID provider (panva's oidc-provider) for scripts/auth.sh: it issues the access
// tokens ringmcp's authorization is tested with, so the server is checked against tokens and
// metadata from an implementation it was not written next to.
//
// usage: node oidc.mjs PORT OUTDIR RESOURCE [OTHER_RESOURCE...]
//   PORT      binds 127.0.0.1:PORT; the issuer is http://127.0.0.1:PORT
//   OUTDIR    receives, before the port opens:
//               signing-key.json   the private ES256 JWK (kid, alg, use), to mint forged tokens
//               jwks.json          the public JWKS, what GET /jwks serves (for --auth-jwks-file)
//               clients.json       {client_id: client_secret} for the clients below
//               ringmcp-rs.secret  the resource server's own secret (--auth-client-secret-file)
//   RESOURCE  the MCP server's resource URI (RFC 8707), e.g. https://127.0.0.1:P/mcp; the other
//             resources are accepted too, for tokens that are valid but meant for someone else
//
// Plain http on loopback is deliberate: the MCP authorization spec requires https for
// authorization servers in production, but this provider only ever talks to processes on the
// same machine during a test, and the client SDKs accept an http issuer.
//
// What it issues (all through the client_credentials grant, RFC 6749 §4.4):
//   mcp-jwt         scopes mcp:tools mcp:admin   JWT access tokens (RFC 9068: typ at+jwt, ES256)
//   mcp-tools-only  scope  mcp:tools             JWT access tokens (asking for mcp:admin fails)
//   mcp-opaque      scopes mcp:tools mcp:admin   opaque access tokens (the introspection path)
//   ringmcp-rs      the resource server itself: it authenticates to /token/introspection
// Every token's aud is exactly the resource the client asked for with `resource=`; a request
// without `resource` gets an opaque token with no audience, which ringmcp must refuse.
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import Provider, { errors } from "oidc-provider";

const [portArg, outdir, ...resources] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port <= 0 || !outdir || resources.length === 0) {
  console.error("usage: node oidc.mjs PORT OUTDIR RESOURCE [OTHER_RESOURCE...]");
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const SCOPES = ["mcp:tools", "mcp:admin"];

// A fresh signing key per run: nothing outside this run can hold a token it accepts.
const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
const kid = `ringmcp-test-${randomBytes(4).toString("hex")}`;
const meta = { kid, alg: "ES256", use: "sig" };
const privateJwk = { ...(await exportJWK(privateKey)), ...meta };
const publicJwk = { ...(await exportJWK(publicKey)), ...meta };

const secrets = {};
const client = (clientId, extra = {}) => {
  secrets[clientId] = randomBytes(24).toString("base64url");
  return {
    client_id: clientId,
    client_secret: secrets[clientId],
    grant_types: ["client_credentials"],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: "client_secret_basic",
    ...extra,
  };
};
const clients = [
  client("mcp-jwt", { scope: "mcp:tools mcp:admin" }),
  client("mcp-tools-only", { scope: "mcp:tools" }),
  client("mcp-opaque", { scope: "mcp:tools mcp:admin" }),
  client("ringmcp-rs"),
];

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [privateJwk] },
  // A client's `scope` only restricts the scopes listed here (validateClientScope).
  scopes: ["openid", ...SCOPES],
  clientDefaults: { id_token_signed_response_alg: "ES256" },
  cookies: { keys: [randomBytes(32).toString("base64url")] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // RFC 7662 §2.1: the endpoint must authenticate its caller; only the resource server
      // (and a client asking about its own token) learns what a token means.
      allowedPolicy: (ctx, caller, token) =>
        caller.clientId === "ringmcp-rs" || caller.clientId === token.clientId,
    },
    resourceIndicators: {
      enabled: true,
      // No default resource: a client that forgets `resource=` must not get an audience.
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      getResourceServerInfo: (_ctx, resource, client) => {
        if (!resources.includes(resource)) throw new errors.InvalidTarget(`unknown resource ${resource}`);
        return {
          scope: SCOPES.join(" "),
          audience: resource,
          accessTokenTTL: 300,
          accessTokenFormat: client.clientId === "mcp-opaque" ? "opaque" : "jwt",
          jwt: { sign: { alg: "ES256" } },
        };
      },
    },
  },
});
provider.on("server_error", (_ctx, err) => console.error("oidc: server_error", err));

const write = (name, text) => writeFileSync(join(outdir, name), text, { mode: 0o600 });
write("signing-key.json", JSON.stringify(privateJwk));
write("jwks.json", JSON.stringify({ keys: [publicJwk] }));
write("clients.json", JSON.stringify(secrets));
write("ringmcp-rs.secret", secrets["ringmcp-rs"]);

const server = provider.listen(port, "127.0.0.1", () => {
  console.log(`oidc-provider listening: issuer ${issuer}, resources ${resources.join(" ")}`);
});
server.on("error", (err) => {
  console.error(`oidc: ${err.message}`);
  process.exit(1);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
