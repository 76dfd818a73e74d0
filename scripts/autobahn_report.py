#!/usr/bin/env python3
"""Summarise an Autobahn|Testsuite fuzzingclient report and gate on it.

usage: autobahn_report.py <outdir>/index.json [--agent NAME] [--expect-min N]

Exit status 0 only if every case's `behavior` and `behaviorClose` is one of
OK / NON-STRICT / INFORMATIONAL. Anything else (FAILED, WRONG CODE, UNCLEAN,
UNIMPLEMENTED, ...) fails. Prints a count per behavior, every failing case, and
every NON-STRICT / INFORMATIONAL case id with its description.
"""
import argparse
import collections
import json
import os
import sys

ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}
LISTED = ("NON-STRICT", "INFORMATIONAL")


def case_key(case_id):
    out = []
    for part in case_id.split("."):
        out.append((0, int(part), "") if part.isdigit() else (1, 0, part))
    return out


def one_line(text, limit=240):
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_case(base, entry):
    name = entry.get("reportfile")
    if not name:
        return {}
    try:
        with open(os.path.join(base, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index_json")
    ap.add_argument("--agent", help="agent to check (default: every agent in the report)")
    ap.add_argument("--expect-min", type=int, default=1,
                    help="fail if fewer cases than this were run (default 1)")
    args = ap.parse_args()

    base = os.path.dirname(os.path.abspath(args.index_json))
    try:
        with open(args.index_json) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        print("autobahn_report: cannot read %s: %s" % (args.index_json, e), file=sys.stderr)
        return 2

    agents = [args.agent] if args.agent else sorted(index)
    if not agents or any(a not in index for a in agents):
        print("autobahn_report: agent(s) %s not in report (has: %s)"
              % (agents, sorted(index)), file=sys.stderr)
        return 2

    ok = True
    for agent in agents:
        cases = index[agent]
        ids = sorted(cases, key=case_key)
        counts = collections.Counter()
        close_counts = collections.Counter()
        failures, listed = [], {k: [] for k in LISTED}
        for cid in ids:
            e = cases[cid]
            b, bc = e.get("behavior", "?"), e.get("behaviorClose", "?")
            counts[b] += 1
            close_counts[bc] += 1
            if b not in ACCEPTED or bc not in ACCEPTED:
                failures.append((cid, b, bc, e))
            for k in LISTED:
                if b == k or bc == k:
                    listed[k].append((cid, b, bc, e))

        print("Autobahn|Testsuite report for agent %r: %d cases (%s)" % (agent, len(ids), args.index_json))
        print("  behavior:      " + ", ".join("%s=%d" % kv for kv in sorted(counts.items())))
        print("  behaviorClose: " + ", ".join("%s=%d" % kv for kv in sorted(close_counts.items())))
        slowest = sorted(ids, key=lambda c: -(cases[c].get("duration") or 0))[:5]
        print("  slowest (ms):  " + ", ".join("%s=%s" % (c, cases[c].get("duration")) for c in slowest))

        for k in LISTED:
            print("\n%s cases (%d):" % (k, len(listed[k])))
            for cid, b, bc, e in listed[k]:
                d = load_case(base, e)
                print("  %-8s behavior=%s behaviorClose=%s: %s"
                      % (cid, b, bc, one_line(d.get("description"))))
                if d.get("result"):
                    print("           result: %s" % one_line(d.get("result")))

        if failures:
            ok = False
            print("\nFAILING cases (%d):" % len(failures))
            for cid, b, bc, e in failures:
                d = load_case(base, e)
                print("  %-8s behavior=%s behaviorClose=%s remoteCloseCode=%s: %s"
                      % (cid, b, bc, e.get("remoteCloseCode"), one_line(d.get("description"))))
                for field in ("result", "resultClose"):
                    if d.get(field):
                        print("           %s: %s" % (field, one_line(d.get(field))))
        if len(ids) < args.expect_min:
            ok = False
            print("\nonly %d cases were run, expected at least %d" % (len(ids), args.expect_min))

    print("\nHTML report: %s" % os.path.join(base, "index.html"))
    print("AUTOBAHN: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
