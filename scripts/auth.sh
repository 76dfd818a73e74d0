#!/usr/bin/env bash
# TLS and OAuth 2.1 authorization end to end: ringmcp as a resource server behind a real OpenID
# provider (panva/oidc-provider, scripts/peers/oidc.mjs), driven by the official SDK clients.
#
# Makes a test CA and a server certificate (openssl, ECDSA P-256), starts the provider on
# 127.0.0.1 (plain http: see oidc.mjs) and two ringmcp servers on TLS ports:
#   jwt     --shards 2, keys from --auth-jwks-file, resource left at its default (https://<bind>/mcp)
#   opaque  --shards 1, keys from --auth-jwks-url and opaque tokens through --auth-introspection-url
# both with --auth-scope mcp:tools and --auth-tool-scope $ADMIN_TOOL=mcp:admin, then runs:
#   python-sdk jwt/opaque   the Python SDK's ClientCredentialsOAuthProvider over https: 401 ->
#                           PRM -> token -> tools -> 403 insufficient_scope -> step-up; mcp-jwt
#                           against both servers, mcp-opaque (introspection) against opaque
#   introspection refusals  opaque tokens for another resource or unknown to the provider
#   refusal table           every refusal the resource server owes, one `case | expected | got |
#                           verdict` line each (scripts/auth_check.py table), with controls
#   ts-sdk jwt              the TypeScript SDK v2's ClientCredentialsProvider over https
#   autobahn over wss://    Autobahn|Testsuite cases 1-10 (scripts/autobahn.sh --tls)
# Every process is started by this script, bound to 127.0.0.1 and stopped by PID on exit.
# Exit status: 0 when every part passed, 1 otherwise.
#
# Env:
#   RINGMCP_BIN            server binary (default: target/release/ringmcp); it needs --tls-cert and
#                          --auth-issuer
#   AUTH_SKIP_AUTOBAHN=1   leave out the wss:// Autobahn run
#   AUTH_INSTALL_ONLY=1    install and exit
# Installs into .cache/auth (Node 22, oidc-provider, jose, the TypeScript SDK client) and
# .cache/python-sdk (the Python SDK), and Autobahn through scripts/autobahn.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

AUTH_DIR="$CACHE_DIR/auth"
OIDC_PROVIDER_VERSION="9.13.3"
# oidc-provider asks for jose ^6; pinned here and through "overrides" so the provider and
# mint.mjs sign with the same release.
JOSE_VERSION="6.2.19"
# The tool that needs mcp:admin on top of mcp:tools: a fixture tool that changes the catalogue.
ADMIN_TOOL="test_trigger_tool_change"
# A resource the provider also serves, for real tokens meant for someone else (the same in
# auth_check.py).
OTHER_RESOURCE="https://other.example/mcp"
STEP_TIMEOUT=120

(( $# == 0 )) || { sed -n '2,27p' "${BASH_SOURCE[0]}"; exit 2; }

# ---------------------------------------------------------------- install
t_install=$SECONDS
python_venv "$PYTHON_SDK_DIR" "$PYTHON_SDK_PIN"
npm_project "$AUTH_DIR" "$(cat <<EOF
{
  "name": "ringmcp-auth-stage",
  "private": true,
  "type": "module",
  "dependencies": {
    "$NODE_PKG": "$NODE_VERSION",
    "oidc-provider": "$OIDC_PROVIDER_VERSION",
    "jose": "$JOSE_VERSION",
    "@modelcontextprotocol/client": "$TS_CLIENT_VERSION"
  },
  "overrides": { "jose": "$JOSE_VERSION" }
}
EOF
)" node_modules/oidc-provider/package.json node_modules/@modelcontextprotocol/client/package.json
# The scripts run from the install folder so that their imports resolve there.
cp scripts/peers/oidc.mjs scripts/peers/mint.mjs scripts/auth_ts.mjs "$AUTH_DIR/"
[[ -n "${AUTH_SKIP_AUTOBAHN:-}" ]] || AUTOBAHN_INSTALL_ONLY=1 scripts/autobahn.sh
log "installs ready in $(( SECONDS - t_install )) s"
[[ "${AUTH_INSTALL_ONLY:-0}" == 1 ]] && exit 0

BIN="$(ringmcp_bin)"
if ! "$BIN" --help 2>/dev/null | grep -q -- '--auth-issuer' || ! "$BIN" --help 2>/dev/null | grep -q -- '--tls-cert'; then
    die "$BIN has no --tls-cert/--auth-issuer flags: this stage needs a server with TLS and authorization"
fi
PY="$PYTHON_SDK_DIR/bin/python"

# ---------------------------------------------------------------- setup
t_stage=$SECONDS
make_tmpdir WORK
make_test_certs "$WORK/tls"
CA="$WORK/tls/ca.pem"
mkdir -p "$WORK/as"

# Three distinct free ports, chosen up front: the provider must know the resources (which
# name the ports) before the servers start.
while :; do
    JWT_PORT="$(free_port)"; OPAQUE_PORT="$(free_port)"; AS_PORT="$(free_port)"
    [[ "$JWT_PORT" != "$OPAQUE_PORT" && "$JWT_PORT" != "$AS_PORT" && "$OPAQUE_PORT" != "$AS_PORT" ]] && break
done
JWT_URL="https://127.0.0.1:$JWT_PORT/mcp"
OPAQUE_URL="https://127.0.0.1:$OPAQUE_PORT/mcp"
ISSUER="http://127.0.0.1:$AS_PORT"

"$NODE_BIN" "$AUTH_DIR/oidc.mjs" "$AS_PORT" "$WORK/as" "$JWT_URL" "$OPAQUE_URL" "$OTHER_RESOURCE" \
    >"$WORK/oidc.log" 2>&1 </dev/null &
AS_PID=$!
on_exit stop_pid "$AS_PID" oidc-provider
if ! wait_http_ok "$ISSUER/.well-known/openid-configuration" 30 "$AS_PID"; then
    tail -n 20 "$WORK/oidc.log" >&2 || true
    die "the OpenID provider did not come up on $ISSUER"
fi
INTROSPECTION_URL="$(curl -s -m 5 "$ISSUER/.well-known/openid-configuration" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["introspection_endpoint"])')"
log "OpenID provider up: issuer $ISSUER (pid $AS_PID), introspection at $INTROSPECTION_URL"

# start_ringmcp NAME PORT ARGS...: ringmcp on a TLS port; up once /healthz answers anything over
# TLS (with authorization on it may want a token there too). Sets LAST_PID.
start_ringmcp() {
    local name=$1 port=$2 code deadline
    shift 2
    log "starting $name: $BIN --bind 127.0.0.1:$port $*"
    "$BIN" --bind "127.0.0.1:$port" "$@" >"$WORK/$name.log" 2>&1 </dev/null &
    LAST_PID=$!
    on_exit stop_pid "$LAST_PID" "ringmcp $name"
    deadline=$(( SECONDS + 30 ))
    while (( SECONDS < deadline )); do
        if ! kill -0 "$LAST_PID" 2>/dev/null; then
            tail -n 20 "$WORK/$name.log" >&2 || true
            die "ringmcp $name exited during startup"
        fi
        code="$(HTTP_CA_FILE="$CA" http_status "https://127.0.0.1:$port/healthz")"
        if [[ "$code" != 000 ]]; then
            log "ringmcp $name up (pid $LAST_PID, https://127.0.0.1:$port, /healthz: $code)"
            return 0
        fi
        sleep 0.2
    done
    tail -n 20 "$WORK/$name.log" >&2 || true
    die "ringmcp $name did not answer over TLS on 127.0.0.1:$port within 30 s"
}

COMMON=(--tls-cert "$WORK/tls/server.pem" --tls-key "$WORK/tls/server.key"
        --auth-issuer "$ISSUER" --auth-scope mcp:tools --auth-tool-scope "$ADMIN_TOOL=mcp:admin")
start_ringmcp jwt "$JWT_PORT" --shards 2 "${COMMON[@]}" --auth-jwks-file "$WORK/as/jwks.json"
JWT_PID=$LAST_PID
start_ringmcp opaque "$OPAQUE_PORT" --shards 1 "${COMMON[@]}" --auth-resource "$OPAQUE_URL" \
    --auth-jwks-url "$ISSUER/jwks" --auth-introspection-url "$INTROSPECTION_URL" \
    --auth-client-id ringmcp-rs --auth-client-secret-file "$WORK/as/ringmcp-rs.secret"
OPAQUE_PID=$LAST_PID

# ---------------------------------------------------------------- the checks
RESULTS=()
failed=0
# part NAME SECONDS CMD...: run one check with a time cap; record PASS/FAIL and go on.
part() {
    local name=$1 cap=$2 t0=$SECONDS rc=0
    shift 2
    printf '\n--- %s\n' "$name" >&2
    timeout --kill-after=5 "$cap" "$@" </dev/null || rc=$?
    if (( rc == 0 )); then
        RESULTS+=("PASS  $name ($(( SECONDS - t0 )) s)")
    else
        RESULTS+=("FAIL  $name (exit $rc, $(( SECONDS - t0 )) s)")
        failed=1
    fi
}
CHECK=(env SSL_CERT_FILE="$CA" "$PY" scripts/auth_check.py)
T=$STEP_TIMEOUT
part "python-sdk jwt (JWKS file)" "$T" "${CHECK[@]}" sdk "$JWT_URL" "$ISSUER" "$WORK/as" mcp-jwt "$ADMIN_TOOL"
part "python-sdk jwt (JWKS URL)" "$T" "${CHECK[@]}" sdk "$OPAQUE_URL" "$ISSUER" "$WORK/as" mcp-jwt "$ADMIN_TOOL"
part "python-sdk opaque (introspection)" "$T" "${CHECK[@]}" sdk "$OPAQUE_URL" "$ISSUER" "$WORK/as" mcp-opaque "$ADMIN_TOOL"
part "introspection refusals" "$T" "${CHECK[@]}" opaque "$OPAQUE_URL" "$ISSUER" "$WORK/as"
part "refusal table" "$T" "${CHECK[@]}" table "$JWT_URL" "$ISSUER" "$WORK/as" "$ADMIN_TOOL" \
    "$NODE_BIN" "$AUTH_DIR/mint.mjs"
part "ts-sdk jwt" "$T" env NODE_EXTRA_CA_CERTS="$CA" "$NODE_BIN" "$AUTH_DIR/auth_ts.mjs" \
    "$JWT_URL" "$ISSUER" "$WORK/as" mcp-jwt "$ADMIN_TOOL"

for pid_name in "$JWT_PID:jwt" "$OPAQUE_PID:opaque"; do
    if ! kill -0 "${pid_name%%:*}" 2>/dev/null; then
        RESULTS+=("FAIL  ringmcp ${pid_name#*:} died during the run")
        failed=1
        tail -n 40 "$WORK/${pid_name#*:}.log" >&2 || true
    fi
done
stop_pid "$JWT_PID" "ringmcp jwt"
stop_pid "$OPAQUE_PID" "ringmcp opaque"
stop_pid "$AS_PID" oidc-provider
log "authorization checks took $(( SECONDS - t_stage )) s"

if [[ -z "${AUTH_SKIP_AUTOBAHN:-}" ]]; then
    # Its own ringmcp --echo with --tls-cert/--tls-key and no authorization.
    part "autobahn over wss://" "${AUTOBAHN_TIMEOUT:-900}" scripts/autobahn.sh --tls
fi

printf '\n'
printf '%s\n' "${RESULTS[@]}"
log "auth stage took $(( SECONDS - t_stage )) s (installs $(( t_stage - t_install )) s)"
if (( failed )); then echo "AUTH: FAIL"; exit 1; fi
echo "AUTH: PASS"
