// Forged and broken access tokens for scripts/auth.sh, made from a real one (RFC 9068, as
// scripts/peers/oidc.mjs issues it) with the provider's own signing key, so that each differs
// from a token ringmcp must accept in exactly one way.
//
// usage: node mint.mjs SIGNING_KEY_JSON JWKS_JSON <spec.json >tokens.json
//   spec.json: {"real": "<a valid JWT access token>", "now": <unix seconds>,
//               "evil_issuer": "http://evil.example"}
//   tokens.json: {case name: token}; each case is described below.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { exportSPKI, importJWK, SignJWT } from "jose";

const [keyPath, jwksPath] = process.argv.slice(2);
if (!keyPath || !jwksPath) {
  console.error("usage: node mint.mjs SIGNING_KEY_JSON JWKS_JSON <spec.json");
  process.exit(2);
}
const privateJwk = JSON.parse(readFileSync(keyPath, "utf8"));
const jwksText = readFileSync(jwksPath, "utf8");
const publicJwk = JSON.parse(jwksText).keys.find((k) => k.kid === privateJwk.kid);
const spec = JSON.parse(readFileSync(0, "utf8"));

const b64u = (s) => Buffer.from(s).toString("base64url");
const decode = (part) => JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
const [realHeader, realClaims, realSig] = spec.real.split(".");
const claims = decode(realClaims);
const header = decode(realHeader);
if (header.typ !== "at+jwt" || header.kid !== privateJwk.kid) {
  throw new Error(`spec.real is not an at+jwt from this key: ${JSON.stringify(header)}`);
}
const jti = () => randomBytes(16).toString("base64url");
const key = await importJWK(privateJwk, "ES256");
const sign = (payload, protectedHeader, signingKey = key) =>
  new SignJWT(payload).setProtectedHeader(protectedHeader).sign(signingKey);
const es256 = { alg: "ES256", typ: "at+jwt", kid: privateJwk.kid };

// The signature with one byte changed: what an attacker who edits a token in transit sends.
const sig = Buffer.from(realSig, "base64url");
sig[sig.length >> 1] ^= 0x01;

const tokens = {
  // Signed by the real key, right audience and issuer, but expired 120 s ago (past the 30 s leeway).
  expired: await sign({ ...claims, jti: jti(), iat: spec.now - 420, exp: spec.now - 120 }, es256),
  // Signed by the real key, but naming another issuer.
  wrong_issuer: await sign({ ...claims, jti: jti(), iss: spec.evil_issuer }, es256),
  // The real token, one signature byte flipped.
  bad_signature: `${realHeader}.${realClaims}.${sig.toString("base64url")}`,
  // RFC 7519 §6 unsecured JWT: no signature at all.
  alg_none: `${b64u(JSON.stringify({ alg: "none", typ: "at+jwt", kid: privateJwk.kid }))}.${realClaims}.`,
  // Key confusion: HMAC with the public key as the shared secret, once as the JWK's JSON as
  // jwks.json holds it and once as the SPKI PEM file's bytes, trailing newline included (the
  // classic form of the attack).
  hs256_jwk: await sign({ ...claims, jti: jti() }, { alg: "HS256", typ: "at+jwt", kid: privateJwk.kid },
    new TextEncoder().encode(JSON.stringify(publicJwk))),
  hs256_pem: await sign({ ...claims, jti: jti() }, { alg: "HS256", typ: "at+jwt", kid: privateJwk.kid },
    new TextEncoder().encode(`${await exportSPKI(await importJWK(publicJwk, "ES256"))}\n`)),
  // Signed by the real key, but an ID-token-style `typ: JWT` (RFC 9068 §4: reject any other typ).
  typ_jwt: await sign({ ...claims, jti: jti() }, { ...es256, typ: "JWT" }),
};
process.stdout.write(JSON.stringify(tokens));
