"""Prints the table of scripts/bench.sh runs: one row per scenario of each run folder.

Usage: results_table.py RUN_DIR...

Each folder holds bench.sh's `scenarios` list, its `server` name (and `tls`, true for a
BENCH_TLS=1 run) and one JSON per scenario. Given several folders (e.g. the same scenarios
against different servers, or with and without TLS), the table gets a server column ("+tls"
after the name of a TLS run) and its rows are grouped by scenario.
"""
import json, os, sys

runs = sys.argv[1:]
several = len(runs) > 1
cols = ["scenario"] + (["server"] if several else []) + [
    "up", "ok", "rate/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors",
    "srv B/conn", "heap B/conn", "srv cpu", "srv busy", "load cpu", "load busy", "lag p99",
    "core wait ms", "sse lost/dup/resumes"]
f = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"
pct = lambda v: "-" if v is None else f"{v:.0f}%"
rows = []
for run in runs:
    server = open(os.path.join(run, "server")).read().strip()
    tls = os.path.join(run, "tls")
    if os.path.exists(tls) and open(tls).read().strip() == "true":
        server += "+tls"
    for n in open(os.path.join(run, "scenarios")).read().split():
        head = [n] + ([server] if several else [])
        path = os.path.join(run, n + ".json")
        if not os.path.exists(path):
            rows.append(head + ["(no result)"] + [""] * (len(cols) - len(head) - 1))
            continue
        r = json.load(open(path))
        l = r["latency"]
        sse = r.get("sse")
        rows.append(head + [
            f"{r['connected']}/{r['attempted']}", str(r["ok"]), f(r["achieved_rate"], 0),
            f(l["p50_ms"], 3), f(l["p99_ms"], 3), f(l["p999_ms"], 3), f(l["max_ms"], 3),
            str(r["error_total"]), f(r["server_bytes_per_connection"], 0),
            f(r.get("server_heap_bytes_per_connection"), 0),
            pct(r["server_cpu_percent"]), pct(r["server_busy_percent"]), pct(r["load_cpu_percent"]),
            pct(r["load_busy_percent"]), f(r["send_lag"]["p99_ms"], 3),
            f"{f(r['server_core_wait_ms'], 0)}/{f(r['load_core_wait_ms'], 0)}",
            f"{sse['lost']}/{sse['duplicated']}/{sse['resumes']}" if sse else "-",
        ])
if several:
    rows.sort(key=lambda row: row[0])
widths = [max(len(str(x)) for x in col) for col in zip(cols, *rows)]
line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))
print("\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows]))
