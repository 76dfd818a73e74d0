"""ringmcp as an OAuth 2.1 resource server, checked against a real OpenID provider.

Run by scripts/auth.sh with SSL_CERT_FILE naming the test CA (httpx and ssl trust it from there).

  auth_check.py sdk MCP_URL ISSUER WORK CLIENT_ID ADMIN_TOOL
      The official Python SDK's ClientCredentialsOAuthProvider over https: the first request
      gets 401, the client fetches the Protected Resource Metadata (RFC 9728) named in the
      challenge and the provider's metadata, gets a token for this resource, lists and calls
      tools; a call of ADMIN_TOOL then gets 403 insufficient_scope and the client steps up.
  auth_check.py table MCP_URL ISSUER WORK ADMIN_TOOL NODE MINT_JS
      The refusals a resource server owes (MCP authorization, RFC 6750, RFC 9068), one line per
      case: `case | expected | got | PASS/FAIL`, plus controls that show the same request
      passes with a good token.
  auth_check.py opaque MCP_URL ISSUER WORK
      The introspection path (RFC 7662): an opaque token passes, one for another resource and
      an unknown one do not.

WORK is the folder scripts/peers/oidc.mjs wrote clients.json, signing-key.json and jwks.json to.
Exit status 1 if any check failed.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from urllib.parse import urljoin, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization

BASE_SCOPE = "mcp:tools"
ADMIN_SCOPE = "mcp:admin"
OTHER_RESOURCE = "https://other.example/mcp"
EVIL_ISSUER = "http://evil.example"
META_2026 = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    "io.modelcontextprotocol/clientInfo": {"name": "ringmcp-auth-check", "version": "1.0.0"},
}
# The fixture tool that answers input_required with a sealed requestState (MCP 2026-07-28).
STATE_TOOL = "test_input_required_result_request_state"


def prm_url_for(mcp_url):
    """RFC 9728 §3.1: the well-known string goes between the host and the path."""
    u = urlsplit(mcp_url)
    return f"{u.scheme}://{u.netloc}/.well-known/oauth-protected-resource{u.path.rstrip('/')}"


def b64u_json(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


# ------------------------------------------------------------------ the authorization server
class AuthServer:
    def __init__(self, issuer, work=None):
        self.issuer = issuer
        with httpx.Client(timeout=10) as c:
            r = c.get(f"{issuer}/.well-known/openid-configuration")
            r.raise_for_status()
            self.meta = r.json()
        self.secrets = json.load(open(os.path.join(work, "clients.json"))) if work else {}

    def token(self, client_id, resource, scope=BASE_SCOPE):
        with httpx.Client(timeout=10) as c:
            r = c.post(self.meta["token_endpoint"], auth=(client_id, self.secrets[client_id]),
                       data={"grant_type": "client_credentials", "resource": resource, "scope": scope})
        if r.status_code != 200:
            raise SystemExit(f"token for {client_id} at {resource}: {r.status_code} {r.text}")
        return r.json()["access_token"]

    def introspect(self, token):
        with httpx.Client(timeout=10) as c:
            r = c.post(self.meta["introspection_endpoint"],
                       auth=("ringmcp-rs", self.secrets["ringmcp-rs"]), data={"token": token})
        r.raise_for_status()
        return r.json()


# ------------------------------------------------------------------ HTTP helpers
TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"


def parse_challenge(header):
    """`Bearer k="v", k2=v2` -> (scheme, {k: v}, [duplicated names]) (RFC 9110 §11.2)."""
    m = re.match(rf"\s*({TOKEN})\s*(.*)$", header or "", re.S)
    if not m:
        return None, {}, []
    params, dups = {}, []
    for pm in re.finditer(rf'\s*({TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|{TOKEN})\s*(?:,|$)', m.group(2)):
        k, v = pm.group(1).lower(), pm.group(2)
        if v.startswith('"'):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        if k in params:
            dups.append(k)
        params[k] = v
    return m.group(1).lower(), params, dups


def rpc_body(resp):
    """The JSON-RPC response in a JSON or SSE body (None if there is none)."""
    ctype = resp.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        return resp.json()
    if ctype.startswith("text/event-stream"):
        found = None
        for line in resp.text.splitlines():
            if line.startswith("data:"):
                msg = json.loads(line[5:].strip())
                if "id" in msg and ("result" in msg or "error" in msg):
                    found = msg
        return found
    return None


def headers_2026(method, token=None, name=None):
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream",
         "mcp-protocol-version": "2026-07-28", "mcp-method": method}
    if name:
        h["mcp-name"] = name
    if token:
        h["authorization"] = f"Bearer {token}"
    return h


def call_2026(client, url, method, params, token=None, rid=1):
    name = params.get("name") if method == "tools/call" else None
    body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": {**params, "_meta": META_2026}}
    return client.post(url, headers=headers_2026(method, token, name), json=body)


def initialize_2025(client, url, token):
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "ringmcp-auth-check", "version": "1.0.0"}}}
    return client.post(url, json=body, headers={
        "authorization": f"Bearer {token}", "content-type": "application/json",
        "accept": "application/json, text/event-stream"})


def ws_upgrade(mcp_url, token=None):
    """Status line and headers of a WebSocket upgrade to MCP_URL over TLS (nothing else is sent)."""
    u = urlsplit(mcp_url)
    ctx = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"))
    lines = [f"GET {u.path} HTTP/1.1", f"Host: {u.netloc}", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: mcp"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    with socket.create_connection((u.hostname, u.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=u.hostname) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1]) if head and len(head[0].split()) > 1 else 0
    hdrs = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        hdrs.setdefault(k.strip().lower(), v.strip())
    return status, hdrs


# ------------------------------------------------------------------ the table
class Table:
    def __init__(self, prm_url):
        self.prm_url = prm_url
        self.failed = 0
        self.rows = []

    def row(self, case, expected, got, ok):
        self.failed += 0 if ok else 1
        line = f"{case} | {expected} | {got} | {'PASS' if ok else 'FAIL'}"
        self.rows.append(line)
        print(line, flush=True)

    @staticmethod
    def got(status, www):
        return f"{status}" + (f" WWW-Authenticate: {www}" if www else " (no WWW-Authenticate)")

    def exact(self, case, status, www, want_status, want_www):
        self.row(case, f"{want_status} WWW-Authenticate: {want_www}", self.got(status, www),
                 status == want_status and www == want_www)

    def challenge(self, case, status, www, want_status, error, scope=None, metadata=False):
        scheme, params, dups = parse_challenge(www)
        want = [f'error="{error}"']
        ok = status == want_status and scheme == "bearer" and params.get("error") == error and not dups
        if scope is not None:
            want.append(f'scope="{scope}"')
            ok = ok and params.get("scope") == scope
        if metadata:
            want.append(f'resource_metadata="{self.prm_url}"')
            ok = ok and params.get("resource_metadata") == self.prm_url
        got = self.got(status, www) + (f" (repeated: {','.join(dups)})" if dups else "")
        self.row(case, f"{want_status} Bearer {', '.join(want)}", got, ok)

    def bare(self, case, status, www, want_status):
        self.row(case, f"{want_status}, no WWW-Authenticate", self.got(status, www),
                 status == want_status and not www)


def verify_forgeries(tokens, real, signing_key, jwks_text, now):
    """Each forged token must be what it claims, or the table would test nothing."""
    pub = jwt.PyJWK(json.loads(signing_key)).key.public_key()
    pub_jwk = next(k for k in json.loads(jwks_text)["keys"] if k["kid"] == json.loads(signing_key)["kid"])
    no_checks = {"verify_exp": False, "verify_aud": False, "verify_iss": False, "verify_nbf": False}
    real_claims = b64u_json(real.split(".")[1])

    def es256_ok(t):
        try:
            jwt.decode(t, pub, algorithms=["ES256"], options=no_checks)
            return True
        except jwt.InvalidTokenError:
            return False

    def hs256_ok(t, secret):
        h, p, s = t.split(".")
        mac = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
        return hmac.compare_digest(base64.urlsafe_b64encode(mac).rstrip(b"=").decode(), s)

    def part(t, i):
        return b64u_json(t.split(".")[i])

    pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    checks = {
        "expired": es256_ok(tokens["expired"]) and part(tokens["expired"], 1)["exp"] <= now - 120
        and part(tokens["expired"], 0)["typ"] == "at+jwt",
        "wrong_issuer": es256_ok(tokens["wrong_issuer"]) and part(tokens["wrong_issuer"], 1)["iss"] == EVIL_ISSUER,
        "bad_signature": not es256_ok(tokens["bad_signature"])
        and tokens["bad_signature"].split(".")[:2] == real.split(".")[:2],
        "alg_none": part(tokens["alg_none"], 0)["alg"] == "none" and tokens["alg_none"].endswith(".")
        and part(tokens["alg_none"], 1) == real_claims,
        "hs256_jwk": part(tokens["hs256_jwk"], 0)["alg"] == "HS256"
        and hs256_ok(tokens["hs256_jwk"], json.dumps(pub_jwk, separators=(",", ":")).encode()),
        "hs256_pem": part(tokens["hs256_pem"], 0)["alg"] == "HS256" and hs256_ok(tokens["hs256_pem"], pem),
        "typ_jwt": es256_ok(tokens["typ_jwt"]) and part(tokens["typ_jwt"], 0)["typ"] == "JWT",
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise SystemExit(f"forged tokens are not what they claim: {bad}")
    print(f"forged tokens verified: {', '.join(checks)}")


def table(mcp_url, issuer, work, admin_tool, node, mint_js):
    prm = prm_url_for(mcp_url)
    t = Table(prm)
    auth = AuthServer(issuer, work)
    tok_a = auth.token("mcp-jwt", mcp_url)               # principal A: mcp:tools
    tok_b = auth.token("mcp-tools-only", mcp_url)        # principal B: another client, mcp:tools
    tok_other = auth.token("mcp-jwt", OTHER_RESOURCE)    # real, but for another resource
    claims_a = b64u_json(tok_a.split(".")[1])
    assert claims_a["aud"] == mcp_url and b64u_json(tok_a.split(".")[0])["typ"] == "at+jwt", claims_a

    now = int(time.time())
    spec = json.dumps({"real": tok_a, "now": now, "evil_issuer": EVIL_ISSUER})
    minted = subprocess.run([node, mint_js, os.path.join(work, "signing-key.json"), os.path.join(work, "jwks.json")],
                            input=spec, capture_output=True, text=True, timeout=30, check=True)
    forged = json.loads(minted.stdout)
    verify_forgeries(forged, tok_a, open(os.path.join(work, "signing-key.json")).read(),
                     open(os.path.join(work, "jwks.json")).read(), now)

    print("case | expected | got | verdict")
    with httpx.Client(timeout=10) as c:
        # Controls: the requests below are refused only for the reason each case names.
        r = call_2026(c, mcp_url, "tools/list", {}, tok_a)
        body = rpc_body(r) or {}
        t.row("control: valid token (mcp:tools) lists tools", "200 with tools", f"{r.status_code}",
              r.status_code == 200 and bool(body.get("result", {}).get("tools")))
        r = call_2026(c, mcp_url, "tools/call", {"name": "echo", "arguments": {"message": "hi"}}, tok_b)
        body = rpc_body(r) or {}
        t.row("control: mcp:tools-only token calls echo", "200, echo result", f"{r.status_code} {json.dumps(body)[:120]}",
              r.status_code == 200 and "result" in body and not body["result"].get("isError"))
        for path in (prm, f"{urlsplit(mcp_url).scheme}://{urlsplit(mcp_url).netloc}/.well-known/oauth-protected-resource"):
            r = c.get(path)
            doc = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            ok = (r.status_code == 200 and doc.get("resource") == mcp_url
                  and doc.get("authorization_servers") == [issuer]
                  and {BASE_SCOPE, ADMIN_SCOPE} <= set(doc.get("scopes_supported") or [])
                  and doc.get("bearer_methods_supported") == ["header"])
            t.row(f"PRM {urlsplit(path).path}",
                  f"200 resource={mcp_url} authorization_servers=[{issuer}] scopes_supported>={{{BASE_SCOPE},{ADMIN_SCOPE}}} bearer_methods_supported=[header]",
                  f"{r.status_code} {json.dumps(doc)}", ok)

        # The refusals.
        r = call_2026(c, mcp_url, "tools/list", {})
        t.exact("no token", r.status_code, r.headers.get("www-authenticate"), 401,
                f'Bearer resource_metadata="{prm}", scope="{BASE_SCOPE}"')
        for case, token, metadata in [
            ("expired (exp = now-120 s, real key)", forged["expired"], True),
            ("wrong audience (real token for another resource)", tok_other, False),
            (f"wrong issuer (real key, iss={EVIL_ISSUER})", forged["wrong_issuer"], False),
            ("bad signature (one byte flipped)", forged["bad_signature"], False),
            ("alg: none", forged["alg_none"], False),
            ("HS256 keyed with the public JWK", forged["hs256_jwk"], False),
            ("HS256 keyed with the public key PEM", forged["hs256_pem"], False),
            ("typ JWT instead of at+jwt", forged["typ_jwt"], False),
        ]:
            r = call_2026(c, mcp_url, "tools/list", {}, token)
            t.challenge(case, r.status_code, r.headers.get("www-authenticate"), 401, "invalid_token", metadata=metadata)

        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META_2026}}
        r = c.post(f"{mcp_url}?access_token={tok_a}", headers=headers_2026("tools/list"), json=body)
        t.challenge("token in query (POST /mcp?access_token=)", r.status_code, r.headers.get("www-authenticate"),
                    400, "invalid_request")

        r = call_2026(c, mcp_url, "tools/call", {"name": admin_tool, "arguments": {}}, tok_b)
        t.challenge(f"insufficient scope (mcp:tools token calls {admin_tool})", r.status_code,
                    r.headers.get("www-authenticate"), 403, "insufficient_scope",
                    scope=f"{BASE_SCOPE} {ADMIN_SCOPE}", metadata=True)

        # A 2025 session belongs to whoever opened it (MCP security best practices: bind session
        # ids to the user); another principal's request for it is answered as an unknown session.
        r = initialize_2025(c, mcp_url, tok_a)
        sid = r.headers.get("mcp-session-id")
        if r.status_code != 200 or not sid:
            t.row("another principal's Mcp-Session-Id", "404", f"initialize as A failed: {r.status_code}", False)
        else:
            list_req = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
            h = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                 "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
            c.post(mcp_url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                   headers={**h, "authorization": f"Bearer {tok_a}"})
            r = c.post(mcp_url, json=list_req, headers={**h, "authorization": f"Bearer {tok_b}"})
            t.bare("another principal's Mcp-Session-Id (B reuses A's)", r.status_code,
                   r.headers.get("www-authenticate"), 404)
            r = c.post(mcp_url, json=list_req, headers={**h, "authorization": f"Bearer {tok_a}"})
            t.row("control: A uses its own session", "200", f"{r.status_code}", r.status_code == 200)
            c.delete(mcp_url, headers={**h, "authorization": f"Bearer {tok_a}"})

        legacy(c, t, mcp_url, tok_a, tok_b)

        status, hdrs = ws_upgrade(mcp_url)
        t.exact("WebSocket upgrade to /mcp without a token", status, hdrs.get("www-authenticate"), 401,
                f'Bearer resource_metadata="{prm}", scope="{BASE_SCOPE}"')
        status, hdrs = ws_upgrade(mcp_url, tok_a)
        t.row("control: WebSocket upgrade with A's token", "101", f"{status}", status == 101)

        request_state(c, t, mcp_url, tok_a, tok_b)

    print(f"{len(t.rows) - t.failed} of {len(t.rows)} cases passed")
    return t.failed


def legacy(c, t, mcp_url, tok_a, tok_b):
    """HTTP+SSE (2024-11-05): the session a GET /sse opened is its opener's alone."""
    u = urlsplit(mcp_url)
    base = f"{u.scheme}://{u.netloc}"
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2024-11-05", "capabilities": {},
                       "clientInfo": {"name": "ringmcp-auth-check", "version": "1.0.0"}}}
    with c.stream("GET", f"{base}/sse", headers={"authorization": f"Bearer {tok_a}",
                                                 "accept": "text/event-stream"}) as stream:
        endpoint = None
        # The line iterator stays referenced: leaving a `for` over it closes the generator,
        # and httpcore then closes the connection, which ends the legacy session.
        lines = stream.iter_lines() if stream.status_code == 200 else iter(())
        for line in lines:
            if line.startswith("data:") and "sessionId=" in line:
                endpoint = urljoin(base, line[5:].strip())
                break
        if not endpoint:
            t.row("legacy: B posts to A's /messages?sessionId=", "404", f"GET /sse as A: {stream.status_code}", False)
            return
        r = c.post(endpoint, json=init, headers={"authorization": f"Bearer {tok_b}"})
        t.bare("legacy: GET /sse as A, POST /messages?sessionId= as B", r.status_code,
               r.headers.get("www-authenticate"), 404)
        r = c.post(endpoint, json=init, headers={"authorization": f"Bearer {tok_a}"})
        t.row("control: legacy POST /messages as A", "202", f"{r.status_code}", r.status_code == 202)


def request_state(c, t, mcp_url, tok_a, tok_b):
    """MCP 2026-07-28 multi-round: a requestState is bound to the principal it was issued to."""
    def first_round(token, rid):
        r = call_2026(c, mcp_url, "tools/call", {"name": STATE_TOOL, "arguments": {}}, token, rid)
        res = (rpc_body(r) or {}).get("result", {})
        return r, res.get("requestState"), next(iter(res.get("inputRequests") or {"": None}))

    def retry(token, state, key, rid):
        params = {"name": STATE_TOOL, "arguments": {}, "requestState": state,
                  "inputResponses": {key: {"action": "accept", "content": {"ok": True}}}}
        r = call_2026(c, mcp_url, "tools/call", params, token, rid)
        return r, rpc_body(r) or {}

    r, state, key = first_round(tok_a, 10)
    if not state:
        t.row("2026-07-28: A's requestState retried by B", "200 JSON-RPC error -32602",
              f"{STATE_TOOL} as A gave no requestState: {r.status_code} {r.text[:120]}", False)
        return
    r, body = retry(tok_b, state, key, 11)
    code = body.get("error", {}).get("code")
    t.row("2026-07-28: A's requestState retried by B", "200 JSON-RPC error -32602, no WWW-Authenticate",
          f"{r.status_code} {json.dumps(body.get('error') or body.get('result'))[:160]}"
          + ("" if not r.headers.get("www-authenticate") else f" WWW-Authenticate: {r.headers['www-authenticate']}"),
          r.status_code == 200 and code == -32602 and not r.headers.get("www-authenticate"))
    r, state, key = first_round(tok_a, 12)
    r, body = retry(tok_a, state, key, 13)
    t.row("control: A retries its own requestState", "200 resultType complete",
          f"{r.status_code} {json.dumps(body.get('result') or body.get('error'))[:120]}",
          r.status_code == 200 and body.get("result", {}).get("resultType") == "complete")


def opaque(mcp_url, issuer, work):
    """Opaque tokens go through introspection; its `aud` must name this resource (RFC 8707 §2)."""
    t = Table(prm_url_for(mcp_url))
    auth = AuthServer(issuer, work)
    good = auth.token("mcp-opaque", mcp_url)
    other = auth.token("mcp-opaque", OTHER_RESOURCE)
    info = auth.introspect(good)
    assert "." not in good and info.get("active") and info.get("aud") == mcp_url, info
    print(f"opaque token introspected by ringmcp-rs: {json.dumps(info)}")
    print("case | expected | got | verdict")
    with httpx.Client(timeout=10) as c:
        r = call_2026(c, mcp_url, "tools/call", {"name": "echo", "arguments": {"message": "opaque"}}, good)
        body = rpc_body(r) or {}
        t.row("opaque token for this resource calls echo", "200, echo result", f"{r.status_code}",
              r.status_code == 200 and "result" in body)
        r = call_2026(c, mcp_url, "tools/list", {}, other)
        t.challenge("opaque token for another resource", r.status_code, r.headers.get("www-authenticate"),
                    401, "invalid_token")
        r = call_2026(c, mcp_url, "tools/list", {}, base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode())
        t.challenge("unknown opaque token (introspection: active=false)", r.status_code,
                    r.headers.get("www-authenticate"), 401, "invalid_token")
    print(f"{len(t.rows) - t.failed} of {len(t.rows)} cases passed")
    return t.failed


# ------------------------------------------------------------------ the SDK client
async def sdk(mcp_url, issuer, work, client_id, admin_tool):
    from mcp import ClientSession
    from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
    from mcp.client.streamable_http import streamable_http_client

    class MemoryStorage:
        tokens = client_info = None

        async def get_tokens(self):
            return self.tokens

        async def set_tokens(self, tokens):
            self.tokens = tokens

        async def get_client_info(self):
            return self.client_info

        async def set_client_info(self, info):
            self.client_info = info

    prm = prm_url_for(mcp_url)
    client_secret = json.load(open(os.path.join(work, "clients.json")))[client_id]
    events = []

    async def on_response(resp):
        events.append((resp.request.method, str(resp.request.url), resp.status_code,
                       resp.headers.get("www-authenticate")))

    storage = MemoryStorage()
    provider = ClientCredentialsOAuthProvider(server_url=mcp_url, storage=storage, client_id=client_id,
                                              client_secret=client_secret, issuer=issuer)
    async with httpx.AsyncClient(auth=provider, event_hooks={"response": [on_response]},
                                 timeout=httpx.Timeout(30, read=60)) as http:
        async with streamable_http_client(mcp_url, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                tools = await session.list_tools()
                names = {tool.name for tool in tools.tools}
                assert "echo" in names, sorted(names)
                result = await session.call_tool("echo", {"message": "hello over https"})
                assert not result.isError and result.content[0].text == "hello over https", result
                first_token = storage.tokens.access_token
                admin = await session.call_tool(admin_tool, {})
                assert not admin.isError, admin

    meta = AuthServer(issuer).meta
    for method, url, status, www in events:
        print(f"  {method} {url} -> {status}" + (f"  WWW-Authenticate: {www}" if www else ""))
    first = events[0]
    _, params, _ = parse_challenge(first[3])
    assert first[2] == 401 and params.get("resource_metadata") == prm, f"first answer: {first}"
    assert ("GET", prm, 200) in [e[:3] for e in events], "no PRM fetch from the challenge's URL"
    tokens = [e for e in events if e[1] == meta["token_endpoint"]]
    assert [e[2] for e in tokens] == [200, 200], f"token requests: {tokens}"
    step_up = [e for e in events if e[2] == 403]
    assert len(step_up) == 1 and parse_challenge(step_up[0][3])[1].get("error") == "insufficient_scope", step_up
    final_token = storage.tokens.access_token
    kind = "opaque"
    for token, want_admin in ((first_token, False), (final_token, True)):
        if token.count(".") == 2:
            kind = "JWT"
            claims = b64u_json(token.split(".")[1])
            assert claims["aud"] == mcp_url, claims
            assert (ADMIN_SCOPE in claims.get("scope", "").split()) == want_admin, claims
    print(f"python sdk ({client_id}, {kind} tokens): protocol {init.protocolVersion}, 401 -> PRM -> "
          f"{len(tokens)} tokens from {issuer}, {len(names)} tools, echo ok, {admin_tool} after a "
          f"403 insufficient_scope step-up ok")


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "sdk" and len(argv) == 7:
        asyncio.run(asyncio.wait_for(sdk(*argv[2:7]), timeout=60))
        return 0
    if mode == "table" and len(argv) == 8:
        return 1 if table(*argv[2:8]) else 0
    if mode == "opaque" and len(argv) == 5:
        return 1 if opaque(*argv[2:5]) else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
