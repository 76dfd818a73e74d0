#!/usr/bin/env bash
# ringmcp-load against other MCP servers (a test.sh stage): the same scenarios, settings and
# core pinning (scripts/bench.sh) against ringmcp and against peer servers built only from the
# official SDKs (scripts/peers/): the Python SDK (Streamable HTTP, MCP over WebSocket,
# WebSocket echo) and the TypeScript SDK (Streamable HTTP). Checks every run like loadgen.sh
# (scripts/check_runs.py) and prints one comparison table. The SDKs install into .cache/.
#
# Env: PEERS_CONNECTIONS [50]  PEERS_RATE [200] (requests/s)  PEERS_DURATION [3] (seconds)
#      PEERS_HOLD [2] (idle-hold seconds)  PEERS_RESULTS [a temporary folder]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

if [[ -n "${PEERS_RESULTS:-}" ]]; then RESULTS=$PEERS_RESULTS; else make_tmpdir RESULTS; fi
SCENARIOS="idle-hold-ws idle-hold-http ws-echo ws-mcp http-mcp"
PEERS="ringmcp python-sdk typescript-sdk"
RATE=${PEERS_RATE:-200}

failed=0
for peer in $PEERS; do
    # Rings stay empty in idle-hold-http: the peers have no tool to fill them.
    BENCH_PEER=$peer BENCH_NO_BUILD=1 BENCH_RESULTS="$RESULTS/$peer" BENCH_SCENARIOS="$SCENARIOS" \
        BENCH_CONNECTIONS="${PEERS_CONNECTIONS:-50}" BENCH_DURATION="${PEERS_DURATION:-3}" \
        BENCH_HOLD="${PEERS_HOLD:-2}" BENCH_WS_RATE="$RATE" BENCH_HTTP_RATE="$RATE" \
        BENCH_FILL_EVENTS=0 scripts/bench.sh >&2
    # bench.sh's newest run (timestamped folders sort by time).
    runs=("$RESULTS/$peer"/*/)
    out=${runs[-1]}
    peer_flag=()
    [[ "$peer" == ringmcp ]] || peer_flag=(--peer)
    # shellcheck disable=SC2046 # the scenario list bench.sh ran
    python3 scripts/check_runs.py "${peer_flag[@]}" "$out" $(cat "$out/scenarios") \
        || { warn "$peer: checks failed"; failed=1; }
done

python3 - "$RESULTS" $PEERS <<'PY'
import json, os, sys
results, peers = sys.argv[1], sys.argv[2:]
cols = ["scenario", "server", "up", "ok", "rate/s", "p50 ms", "p99 ms", "max ms", "errors",
        "srv B/conn", "srv cpu"]
rows = []
for peer in peers:
    run = os.path.join(results, peer, max(os.listdir(os.path.join(results, peer))))
    for name in open(os.path.join(run, "scenarios")).read().split():
        path = os.path.join(run, name + ".json")
        if not os.path.exists(path):
            continue
        r = json.load(open(path))
        l = r["latency"]
        f = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"
        idle = name.startswith("idle-hold")
        rows.append([name, peer, f"{r['connected']}/{r['attempted']}", str(r["ok"]),
                     "-" if idle else f(r["achieved_rate"], 0),
                     "-" if idle else f(l["p50_ms"], 3), "-" if idle else f(l["p99_ms"], 3),
                     "-" if idle else f(l["max_ms"], 3), str(r["error_total"]),
                     f(r["server_bytes_per_connection"], 0),
                     "-" if r["server_cpu_percent"] is None else f"{r['server_cpu_percent']:.0f}%"])
rows.sort(key=lambda row: row[0])
widths = [max(len(str(x)) for x in col) for col in zip(cols, *rows)]
line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))
print("\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]))
PY
(( failed == 0 )) || die "PEERS: FAIL"
log "PEERS: PASS"
