"""The table of scripts/event_store_bench.sh: each pair's memory-only and Redis runs side by
side, the Redis/memory ratios with their median and spread, and Redis memory per stored event.

Usage: event_store_table.py OUT_DIR PAIRS BASELINE_USED_MEMORY
"""
import json
import os
import statistics
import sys

out, pairs, baseline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def load(name):
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def figures(run):
    sse = run.get("sse") or {}
    return {
        "events/s": round(run["achieved_rate"]),
        "p50 ms": run["latency"]["p50_ms"],
        "p99 ms": run["latency"]["p99_ms"],
        "busy %": run.get("server_busy_percent") or 0.0,
        "CPU %": run.get("server_cpu_percent") or 0.0,
        "lost": sse.get("lost", 0) + sse.get("duplicated", 0) + sse.get("out_of_order", 0),
        "errors": run["error_total"],
    }


COLUMNS = ["events/s", "p50 ms", "p99 ms", "busy %", "CPU %", "lost", "errors"]
print("| pair | store | " + " | ".join(COLUMNS) + " |")
print("|---|---|" + "---|" * len(COLUMNS))
ratios = {c: [] for c in ("p99 ms", "busy %", "CPU %")}
for i in range(1, pairs + 1):
    memory, redis = figures(load(f"memory-{i}.json")), figures(load(f"redis-{i}.json"))
    for name, f in (("memory", memory), ("redis", redis)):
        cells = [f"{f[c]:.4g}" if isinstance(f[c], float) else str(f[c]) for c in COLUMNS]
        print(f"| {i} | {name} | " + " | ".join(cells) + " |")
    for c in ratios:
        if memory[c]:
            ratios[c].append(redis[c] / memory[c])

print()
print("| Redis / memory | median | min | max |")
print("|---|---|---|---|")
for c, values in ratios.items():
    if values:
        print(f"| {c} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")

print()
print("| pair | events in Redis | sessions | Redis memory over empty | bytes per stored event (sessions included) |")
print("|---|---|---|---|---|")
for i in range(1, pairs + 1):
    stored = load(f"redis-{i}.redis.json")
    grown = stored["used_memory"] - baseline
    per_event = grown / stored["events"] if stored["events"] else float("nan")
    print(f"| {i} | {stored['events']} | {stored['sessions']} | {grown} | {per_event:.0f} |")
