#!/usr/bin/env bash
# ringmcp from a real browser (a test.sh stage): headless Chromium (Debian's `chromium`,
# installed with apt-get when /usr/bin/chromium is missing) opens scripts/browser_page.html on
# two loopback origins served by scripts/browser_pages.py. The server is started with
# --allow-origin for origin A only.
#   origin A (http://127.0.0.1:PA, allowed): Streamable HTTP initialize, initialized, an echo
#     call with the session headers, DELETE and a 404 after it (2025-11-25); two MCP 2026-07-28
#     stateless calls with Mcp-Method/Mcp-Name (one with Mcp-Param-Region); the legacy
#     transport through EventSource; MCP over WebSocket with subprotocol `mcp` and the
#     permessage-deflate extension (the server runs with --ws-deflate; Chromium offers it
#     always) carrying a 16 KiB reply and request compressed. All cross-origin:
#     preflights, exposed mcp-session-id, the DELETE method.
#   origin B (http://localhost:PB, not allowed): the same requests must be refused (fetch
#     TypeError, EventSource closed, WebSocket handshake failed), and the server must have
#     answered 403 to them.
# Each page POSTs its steps to its own origin; the reports are checked step by step and
# printed as one table. Chromium, the page server and ringmcp are stopped by PID on exit.
#
# Env:
#   RINGMCP_BIN                 server binary (default: target/release/ringmcp)
#   CHROMIUM                    browser binary (default: /usr/bin/chromium, apt-installed if missing)
#   BROWSER_TIMEOUT=N           seconds to wait for each page's report (default 30)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
TIMEOUT="${BROWSER_TIMEOUT:-30}"

make_tmpdir WORK

if [[ "$CHROMIUM" != /usr/bin/chromium && ! -x "$CHROMIUM" ]]; then
    die "CHROMIUM=$CHROMIUM is not executable"
fi
debian_install "$CHROMIUM" chromium "$WORK"
# The Debian launcher prints a shell warning on some /dev/shm layouts; the version is its last line.
log "$(timeout 10 "$CHROMIUM" --version 2>/dev/null | tail -n 1)"

start_group "$WORK/pages.log" python3 scripts/browser_pages.py serve scripts/browser_page.html "$WORK"
PAGES_PID=$GROUP
for (( i=0; i<100; i++ )); do
    [[ -f "$WORK/ports" ]] && break
    kill -0 "$PAGES_PID" 2>/dev/null || { cat "$WORK/pages.log" >&2; die "the page server exited"; }
    sleep 0.1
done
[[ -f "$WORK/ports" ]] || die "the page server did not start within 10 s"
read -r PORT_A PORT_B <"$WORK/ports"
ORIGIN_A="http://127.0.0.1:$PORT_A"
ORIGIN_B="http://localhost:$PORT_B"

start_server "$WORK/server.log" --shards 1 --allow-origin "$ORIGIN_A" --ws-deflate
# responses_403: the server's count of 403 answers, all shards.
responses_403() {
    curl -s -m 5 "$SERVER_URL/metrics" \
        | awk '/^ringmcp_http_responses_total\{.*status="403"/ { n += $2 } END { print n + 0 }'
}
refused_before="$(responses_403)"

# run_page LABEL URL: one headless Chromium with a fresh profile opens URL (headless mode takes
# one target) until the page has reported or BROWSER_TIMEOUT has passed, then is stopped.
run_page() {
    local label=$1 url=$2 pid t0=$SECONDS deadline=$(( SECONDS + TIMEOUT ))
    log "chromium: $url"
    start_group "$WORK/chromium-$label.log" "$CHROMIUM" "${HEADLESS_CHROMIUM_FLAGS[@]}" \
        --user-data-dir="$WORK/profile-$label" "$url"
    pid=$GROUP
    until [[ -f "$WORK/report-$label.json" ]]; do
        if (( SECONDS >= deadline )); then
            warn "no report from page $label within $TIMEOUT s; chromium's log:"
            tail -n 40 "$WORK/chromium-$label.log" >&2 || true
            break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            warn "chromium exited before page $label reported; its log:"
            tail -n 40 "$WORK/chromium-$label.log" >&2 || true
            break
        fi
        sleep 0.2
    done
    [[ -f "$WORK/report-$label.json" ]] && log "page $label reported after $(( SECONDS - t0 )) s"
    stop_group "$pid"
}
run_page A "$ORIGIN_A/?label=A&expect=allow&mcp=$SERVER_URL"
run_page B "$ORIGIN_B/?label=B&expect=refuse&mcp=$SERVER_URL"

rc=0
python3 scripts/browser_pages.py check "$WORK" || rc=1

# The refusals must be the server's: a 403 to origin B's preflights, GET /sse and WebSocket
# handshake (4 at least; a browser may retry some).
refused=$(( $(responses_403) - refused_before ))
if (( refused >= 4 )); then
    log "the server answered 403 $refused times to origin B"
else
    warn "the server answered 403 only $refused times (want at least 4: two preflights, /sse, the WebSocket handshake)"
    rc=1
fi
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    warn "the server died during the run; its log:"
    tail -n 40 "$WORK/server.log" >&2 || true
    rc=1
fi
if (( rc )); then
    echo "BROWSER: FAIL"
    exit 1
fi
echo "BROWSER: PASS"
