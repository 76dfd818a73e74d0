"""Checks the JSON results of ringmcp-load runs written by scripts/bench.sh.

Usage: check_runs.py [--peer] RESULTS_DIR SCENARIO...

Every connection up, no errors, the phase's server and load samples present; request/response
scenarios: every request answered at the asked rate; idle-hold: bytes per connection measured;
slow-readers: the slow clients were written to; sse-resume: every event exactly once and in
order across every planned disconnect; listen: every planned change triggered and heard by
every stream. --peer: the server is not ringmcp, so it has no busy
counter. Exits 1 with one line per failure.
"""
import json, os, sys

args = sys.argv[1:]
peer = args[:1] == ["--peer"]
out, names = (args[1:] if peer else args)[0], (args[1:] if peer else args)[1:]
failures = []

def check(name, ok, what):
    if not ok:
        failures.append(f"{name}: {what}")

for name in names:
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        failures.append(f"{name}: no JSON written")
        continue
    r = json.load(open(path))
    want = r["settings"]["connections"]
    check(name, r["attempted"] == want and r["connected"] == want,
          f"{r['connected']} of {want} connections up")
    check(name, r["error_total"] == 0, f"errors {r['errors']}")
    keys = ["server_cpu_percent", "load_busy_percent", "server_core_wait_ms", "load_core_wait_ms"]
    if not peer:
        keys.append("server_busy_percent")
    for key in keys:
        check(name, r[key] is not None, f"{key} missing")
    check(name, r["server_rss"]["end"] is not None, "server RSS at the phase's end missing")
    if name.startswith("idle-hold"):
        check(name, (r["server_bytes_per_connection"] or 0) > 0, "no bytes per connection")
        if not peer:
            # Every held connection keeps at least its task and its socket's I/O source.
            heap = r["server_heap_bytes_per_connection"]
            check(name, heap is not None and heap >= 256,
                  f"heap in use per connection {heap}, not the 256 B or more each holds")
        continue
    check(name, r["latency"]["count"] == r["ok"], "latency samples != answers")
    if name == "slow-readers":
        # The slow clients' own requests go unanswered while they do not read.
        slow = r["slow_readers"] or {}
        check(name, r["ok"] > 0, "no answers to the clients that read")
        check(name, slow.get("clients", 0) > 0 and slow.get("bytes_written", 0) > 0,
              f"no slow readers at work: {slow}")
    elif name == "listen":
        l = r["listen"]
        check(name, 0 < l["changes_sent"] == l["changes_planned"],
              f"{l['changes_sent']} of {l['changes_planned']} changes triggered")
        check(name, l["streams"] == want and l["streams_missing_changes"] == 0,
              f"{l['streams_missing_changes']} of {l['streams']} streams missed a change")
        check(name, r["ok"] == r["sent"] == want * l["changes_sent"],
              f"{r['ok']} of {r['sent']} deliveries heard")
        late = [c["change"] for c in l["changes"] if c["last_stream_ms"] is None]
        check(name, not late, f"changes {late} never reached every stream")
    else:
        check(name, r["sent"] > 0 and r["ok"] == r["sent"], f"ok {r['ok']} of {r['sent']} sent")
        rate = r["settings"]["rate"]
        check(name, abs(r["achieved_rate"] - rate) <= 0.05 * rate,
              f"achieved {r['achieved_rate']:.0f}/s of {rate:.0f}/s")
    if name == "sse-resume":
        s = r["sse"]
        check(name, s["lost"] == 0 and s["duplicated"] == 0 and s["out_of_order"] == 0,
              f"lost {s['lost']} duplicated {s['duplicated']} out of order {s['out_of_order']}")
        check(name, s["completed"] == s["streams"] == want, f"{s['completed']} of {want} streams completed")
        check(name, s["received"] == s["expected"], f"{s['received']} of {s['expected']} events")
        planned = r["settings"]["disconnects"]
        check(name, s["disconnects"] == planned and s["resumes"] == planned and s["resume_refused"] == 0,
              f"disconnects {s['disconnects']} resumes {s['resumes']} refused {s['resume_refused']} of {planned} planned")
        # One server and no failures: nothing but the planned disconnects may cut a stream.
        check(name, not s.get("cuts") and not s.get("retried_calls") and not s.get("unanswered_calls"),
              f"streams cut without a planned disconnect: {s.get('cuts')}, -31000 {s.get('retried_calls')}, "
              f"cut before their first event {s.get('unanswered_calls')}")

for f in failures:
    print("FAIL:", f, file=sys.stderr)
sys.exit(1 if failures else 0)
