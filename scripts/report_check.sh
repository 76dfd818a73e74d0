#!/usr/bin/env bash
# The HTML report in a real browser (a test.sh stage): two short real runs (a fresh
# `ringmcp --shards 1 --echo` each, ringmcp-load ws-mcp at 100 connections for 3 s with
# --server-pid, --server-metrics, --json and --report), and their A/B page (ringmcp-load
# compare --report). Headless Chromium (Debian's, installed as scripts/browser.sh does) loads
# each page; scripts/report_check.py holds the DOM it parsed against the JSON: five plots per
# run, each drawing as many points as its data-points says and as the JSON holds, nothing
# outside the page. Chromium must log no console message, and takes a screenshot of each.
# Then a copy of the run's page with one plot cut out must fail the same check.
# Servers bind 127.0.0.1 and, like Chromium, are stopped on exit. Bounded: ~30 s.
#
# Env:
#   RINGMCP_BIN        server binary (default: $CARGO_TARGET_DIR or target, /release/ringmcp)
#   RINGMCP_LOAD_BIN   load generator (default: the same directory's ringmcp-load)
#   CHROMIUM           browser binary (default: /usr/bin/chromium, apt-installed if missing)
#   REPORT_CHECK_OUT   a directory to keep the pages, their JSON and screenshots in
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

RELEASE="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
export RINGMCP_BIN="${RINGMCP_BIN:-$RELEASE/ringmcp}"
LOAD_BIN="${RINGMCP_LOAD_BIN:-$(dirname "$RINGMCP_BIN")/ringmcp-load}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[[ -x "$LOAD_BIN" ]] || die "load generator not found: $LOAD_BIN (cargo build --release -p loadtest)"

make_tmpdir WORK
if [[ "$CHROMIUM" != /usr/bin/chromium && ! -x "$CHROMIUM" ]]; then
    die "CHROMIUM=$CHROMIUM is not executable"
fi
debian_install "$CHROMIUM" chromium "$WORK"
log "$(timeout 10 "$CHROMIUM" --version 2>/dev/null | tail -n 1)"

# one_run NAME: a fresh server and a 3 s ws-mcp load against it; NAME.json and NAME.html.
one_run() {
    local name=$1
    start_server "$WORK/server-$name.log" --shards 1 --echo
    timeout -k 5 60 "$LOAD_BIN" --scenario ws-mcp --target "ws://127.0.0.1:$SERVER_PORT/mcp" \
        --connections 100 --rate 2000 --duration 3 --ramp 200 --server-pid "$SERVER_PID" \
        --server-metrics "$SERVER_URL/metrics" --json "$WORK/$name.json" --report "$WORK/$name.html" \
        >"$WORK/load-$name.txt" || { cat "$WORK/load-$name.txt" >&2; die "ringmcp-load failed ($name)"; }
    stop_server
}
one_run base
one_run new
# Exit status 1 is a verdict (a regression between two runs of one build is noise), 2 a failure.
rc=0
"$LOAD_BIN" compare --base "$WORK/base.json" --new "$WORK/new.json" --report "$WORK/compare.html" \
    >"$WORK/compare.txt" || rc=$?
(( rc <= 1 )) || die "ringmcp-load compare failed (exit $rc)"

# browse PAGE: headless Chromium parses PAGE (file://) into PAGE.dom and screenshots it to
# PAGE.png, each within 60 s; fails if the page logged to the console.
browse() {
    local page=$1 what t0 deadline
    for what in dom png; do
        local args=(--dump-dom)
        [[ $what == png ]] && args=(--screenshot="$page.png" --window-size=1200,2400)
        # The DOM goes to stdout, the browser's log (console messages too) to stderr.
        start_group "$page.$what.log" sh -c 'exec "$@" >"$0"' "$page.$what.out" "$CHROMIUM" \
            "${HEADLESS_CHROMIUM_FLAGS[@]}" --user-data-dir="$WORK/profile" \
            --enable-logging=stderr --v=0 "${args[@]}" "file://$page"
        t0=$SECONDS deadline=$(( SECONDS + 60 ))
        while kill -0 "$GROUP" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
        kill -0 "$GROUP" 2>/dev/null && warn "chromium still running after 60 s on $page"
        stop_group "$GROUP"
        log "chromium: $(basename "$page") $what in $(( SECONDS - t0 )) s"
    done
    mv "$page.dom.out" "$page.dom"
    [[ -s "$page.png" ]] || { tail -n 20 "$page.png.log" >&2; warn "no screenshot of $page"; return 1; }
    if grep -h 'CONSOLE' "$page.dom.log" "$page.png.log"; then
        warn "$page logged to the console"
        return 1
    fi
}

fail=0
for page in base new compare; do browse "$WORK/$page.html" || fail=1; done
log "check: run page"
python3 scripts/report_check.py runs "$WORK/base.html.dom" "$WORK/base.json" || fail=1
log "check: A/B page"
python3 scripts/report_check.py compare "$WORK/compare.html.dom" \
    --base "$WORK/base.json" --new "$WORK/new.json" || fail=1

# The check must catch a page with a plot missing.
python3 - "$WORK/base.html" "$WORK/cut.html" <<'EOF'
import re, sys
page = open(sys.argv[1], encoding="utf-8").read()
cut = re.sub(r'<svg data-plot="latency-distribution".*?</svg>', "", page, count=1, flags=re.S)
assert cut != page, "no latency-distribution plot to cut"
open(sys.argv[2], "w", encoding="utf-8").write(cut)
EOF
browse "$WORK/cut.html" || fail=1
# Its lines are marked: unmarked, its FAIL lines read as failures of the CI run.
log "check: a page with a plot cut out (must fail)"
if python3 scripts/report_check.py runs "$WORK/cut.html.dom" "$WORK/base.json" 2>&1 |
    sed 's/^/    (must fail) /'; then
    warn "the check passed a page with a plot missing"
    fail=1
fi

if [[ -n "${REPORT_CHECK_OUT:-}" ]]; then
    mkdir -p "$REPORT_CHECK_OUT"
    cp "$WORK"/{base,new}.json "$WORK"/{base,new,compare}.html{,.png} "$REPORT_CHECK_OUT"/
    log "kept the pages in $REPORT_CHECK_OUT"
fi
if (( fail )); then
    echo "REPORT: FAIL"
    exit 1
fi
echo "REPORT: PASS"
