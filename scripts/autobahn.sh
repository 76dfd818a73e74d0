#!/usr/bin/env bash
# Autobahn|Testsuite (fuzzingclient) against `ringmcp --echo`.
#
# usage: scripts/autobahn.sh [--tls | --deflate | --url URL]
#
# Installs wstest (Python 2.7 only) into .cache/autobahn/, starts the server on a free
# port, runs the WebSocket cases against ws://127.0.0.1:PORT/echo and fails unless every
# case is OK / NON-STRICT / INFORMATIONAL (scripts/autobahn_report.py).
#   --tls      serve the echo over TLS (a test CA and certificate made with openssl, the server
#              started with --tls-cert/--tls-key) and run the cases against wss://…/echo.
#              wstest 0.8.2 speaks wss:// itself (Twisted + pyOpenSSL, both in the pins below);
#              it does not verify the server's certificate, the handshake is real TLS.
#   --deflate  start the server with --ws-deflate and run the permessage-deflate (RFC 7692)
#              cases of 12 and 13 too (1.*-10.* do not offer the extension, so they check
#              that nothing changes for clients that do not ask for it); see below for which.
#   --url URL  run the cases against a WebSocket echo server that is already running at URL
#              (ws:// or wss://); nothing is started, the caller owns that server.
#
# Env:
#   RINGMCP_BIN      server binary (default: target/release/ringmcp)
#   AUTOBAHN_CASES   comma/space separated case patterns (default: 1.* .. 10.*, no 8;
#                    with --deflate also 12.1.* and the cases up to 16 KiB of 12.2-13.7)
#                    e.g. AUTOBAHN_CASES='1.*,2.*' scripts/autobahn.sh
#   PYTHON27         CPython 2.7 interpreter (default: $(pyenv root)/versions/2.7.18/bin/python2.7)
#   AUTOBAHN_TIMEOUT  cap for the whole wstest run in seconds (default 900)
#   AUTOBAHN_SERVER_ARGS  extra server flags, split on spaces (e.g. --readiness-recv)
#   AUTOBAHN_INSTALL_ONLY=1   install and exit
# Report (HTML + JSON): .cache/autobahn/reports/index.html (reports-tls/ with --tls,
# reports-deflate/ with --deflate, reports-url/ with --url)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

AB_DIR="$CACHE_DIR/autobahn"
AB_VENV3="$AB_DIR/venv3"      # Python 3 venv that only hosts virtualenv
AB_PY2="$AB_DIR/py2"          # Python 2.7 virtualenv with wstest

# virtualenv 20.21.x is the last line that can create Python 2.7 environments; it seeds
# pip 20.3.4 / setuptools 44.1.1 / wheel 0.37.1 (the last releases supporting 2.7).
VIRTUALENV_PIN="virtualenv==20.21.1"

# Complete, closed dependency set for autobahntestsuite 0.8.2 on CPython 2.7, installed
# with --no-deps so nothing floats. These are the newest releases of each package that
# still support Python 2.7 and satisfy autobahntestsuite's own pins
# (autobahn[twisted,accelerate]==0.10.9, txaio<=2.1.0).
AB_REQUIREMENTS="\
autobahntestsuite==0.8.2
autobahn==0.10.9
txaio==2.1.0
wsaccel==0.6.6
ujson==2.0.3
Twisted==20.3.0
zope.interface==5.5.2
Automat==22.10.0
attrs==21.4.0
constantly==15.1.0
hyperlink==21.0.0
idna==2.10
typing==3.10.0.0
incremental==22.10.0
PyHamcrest==1.10.1
six==1.17.0
klein==20.6.0
Tubes==0.2.1
Werkzeug==1.0.1
enum34==1.1.10
Jinja2==2.11.3
MarkupSafe==1.1.1
pyOpenSSL==21.0.0
cryptography==3.3.2
cffi==1.15.1
pycparser==2.21
ipaddress==1.0.23
service-identity==21.1.0
pyasn1==0.5.1
pyasn1-modules==0.3.0
unittest2==1.1.0
argparse==1.4.0
traceback2==1.4.0
linecache2==1.0.0
"

DEFAULT_CASES="1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*"

mode=plain
target_url=""
while (( $# )); do
    case "$1" in
        --tls) mode=tls ;;
        --deflate) mode=deflate ;;
        --url) shift; mode=url; target_url="${1:?--url needs a ws:// or wss:// URL}" ;;
        -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
    shift
done
case "$mode" in
    plain) AB_REPORTS="$AB_DIR/reports" ;;
    tls)   AB_REPORTS="$AB_DIR/reports-tls" ;;
    deflate) AB_REPORTS="$AB_DIR/reports-deflate"
           # Every case of 12 and 13 takes wstest (Python 2, the slow side) about 8 minutes:
           # 1000 messages each, up to 128 KiB. By default 12.1 runs in full (every size,
           # whole and fragmented) and the other payload kinds (12.2-12.5) and every offer
           # (13.1-13.7) up to 16 KiB, whole and fragmented (cases 1-7, 11, 12): about 2 minutes.
           # AUTOBAHN_CASES='1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*,12.*,13.*' runs them all.
           DEFAULT_CASES="$DEFAULT_CASES,12.1.*"
           for group in 12.{2..5} 13.{1..7}; do
               for i in 1 2 3 4 5 6 7 11 12; do DEFAULT_CASES+=",$group.$i"; done
           done ;;
    url)   AB_REPORTS="$AB_DIR/reports-url"
           [[ "$target_url" == ws://* || "$target_url" == wss://* ]] || die "--url needs a ws:// or wss:// URL, not $target_url" ;;
esac

find_python27() {
    if [[ -n "${PYTHON27:-}" ]]; then printf '%s' "$PYTHON27"; return; fi
    local root
    root="$(pyenv root 2>/dev/null || printf '%s' "${PYENV_ROOT:-$HOME/.pyenv}")"
    printf '%s' "$root/versions/2.7.18/bin/python2.7"
}

install_autobahn() {
    local py2 key
    py2="$(find_python27)"
    [[ -x "$py2" ]] || die "CPython 2.7 not found at $py2 (set PYTHON27)"
    key="$(printf '%s\n%s\n%s\n' "$VIRTUALENV_PIN" "$("$py2" -c 'import sys; print(sys.version.split()[0])' 2>&1)" "$AB_REQUIREMENTS")"
    if stamp_matches "$AB_DIR" "$key" && [[ -x "$AB_PY2/bin/wstest" ]]; then
        log "autobahn testsuite already installed in $AB_DIR"
        return 0
    fi
    log "installing Autobahn|Testsuite into $AB_DIR"
    local t0=$SECONDS
    rm -rf "$AB_VENV3" "$AB_PY2" "$AB_DIR/.installed"
    mkdir -p "$AB_DIR"
    python3 -m venv "$AB_VENV3"
    "$AB_VENV3/bin/python" -m pip install --quiet --disable-pip-version-check "$VIRTUALENV_PIN"
    "$AB_VENV3/bin/python" -m virtualenv --quiet --no-periodic-update -p "$py2" "$AB_PY2"
    printf '%s' "$AB_REQUIREMENTS" >"$AB_DIR/requirements-py2.txt"
    PYTHONWARNINGS=ignore "$AB_PY2/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-python-version-warning --no-deps -r "$AB_DIR/requirements-py2.txt"
    PYTHONWARNINGS=ignore "$AB_PY2/bin/python" -m pip check --no-python-version-warning >&2 \
        || die "pip check failed: the pinned Python 2.7 dependency set is inconsistent"
    PYTHONWARNINGS=ignore "$AB_PY2/bin/wstest" -a >&2 || die "wstest does not start"
    write_stamp "$AB_DIR" "$key"
    log "autobahn testsuite installed in $(( SECONDS - t0 )) s"
}

install_autobahn
[[ "${AUTOBAHN_INSTALL_ONLY:-0}" == 1 ]] && exit 0

# ---------------------------------------------------------------- run
cases_json="$(python3 - "${AUTOBAHN_CASES:-$DEFAULT_CASES}" <<'PY'
import json, re, sys
cases = [c for c in re.split(r"[,\s]+", sys.argv[1]) if c]
if not cases:
    sys.exit("AUTOBAHN_CASES is empty")
print(json.dumps(cases))
PY
)"

make_tmpdir WORK
# Autobahn's 9.x cases send messages of up to 16 MiB; the default limit is 1 MiB.
# AUTOBAHN_SERVER_ARGS adds server flags (test.sh runs the cases again with --readiness-recv).
read -r -a EXTRA_SERVER_ARGS <<< "${AUTOBAHN_SERVER_ARGS:-}"
ECHO_ARGS=(--shards 1 --echo --max-message-bytes 16777216 "${EXTRA_SERVER_ARGS[@]}")
case "$mode" in
    plain|deflate)
        [[ "$mode" == deflate ]] && ECHO_ARGS+=(--ws-deflate)
        start_server "$WORK/server.log" "${ECHO_ARGS[@]}"
        target_url="ws://127.0.0.1:$SERVER_PORT/echo" ;;
    tls)
        make_test_certs "$WORK/tls"
        SERVER_SCHEME=https HTTP_CA_FILE="$WORK/tls/ca.pem" start_server "$WORK/server.log" "${ECHO_ARGS[@]}" \
            --tls-cert "$WORK/tls/server.pem" --tls-key "$WORK/tls/server.key"
        target_url="wss://127.0.0.1:$SERVER_PORT/echo" ;;
esac

rm -rf "$AB_REPORTS"
mkdir -p "$AB_REPORTS"
python3 - "$WORK/spec.json" "$AB_REPORTS" "$target_url" "$cases_json" "$mode" <<'PY'
import json, sys
path, outdir, url, cases, mode = sys.argv[1:6]
spec = {
    "outdir": outdir,
    "servers": [{"agent": {"plain": "ringmcp", "tls": "ringmcp-tls", "deflate": "ringmcp-deflate"}.get(mode, "target"), "url": url}],
    "cases": json.loads(cases),
    "exclude-cases": [],
    "exclude-agent-cases": {},
}
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
PY
log "spec: $(tr -d '\n' <"$WORK/spec.json")"

t0=$SECONDS
# wstest writes its report files relative to the cwd for some outputs; run it in WORK.
# It exits 0 even when cases fail; the report parser decides.
wstest_rc=0
# A hung server makes every case wait for wstest's own per-case timeouts, so cap the run.
( cd "$WORK" && PYTHONWARNINGS=ignore timeout --kill-after=10 "${AUTOBAHN_TIMEOUT:-900}" \
    "$AB_PY2/bin/wstest" -m fuzzingclient -s "$WORK/spec.json" ) >"$WORK/wstest.log" 2>&1 || wstest_rc=$?
(( wstest_rc != 124 )) || warn "wstest hit AUTOBAHN_TIMEOUT (${AUTOBAHN_TIMEOUT:-900} s)"
log "wstest finished in $(( SECONDS - t0 )) s (rc $wstest_rc)"

if [[ "$mode" != url ]] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
    warn "the server died during the run; last log lines:"
    tail -n 40 "$WORK/server.log" >&2 || true
fi
stop_server
if (( wstest_rc != 0 )) || [[ ! -s "$AB_REPORTS/index.json" ]]; then
    tail -n 40 "$WORK/wstest.log" >&2 || true
    die "wstest failed (rc $wstest_rc) or wrote no $AB_REPORTS/index.json"
fi

python3 "$REPO_ROOT/scripts/autobahn_report.py" "$AB_REPORTS/index.json"
