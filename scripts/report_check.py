"""The page check of scripts/report_check.sh (Python 3 stdlib only).

Usage:
  report_check.py runs DOM RUN.json...
  report_check.py compare DOM --base A.json... --new B.json...
      DOM is the page as headless Chromium parsed it (--dump-dom). Checks that the page is
      self-contained (no script, no external reference), that it holds the five plots per run
      (one set for a compare page), every one with points, that each plot's polylines draw
      exactly its data-points vertices, and that data-points is what the JSON reports hold.
      Prints one line per plot; exits 1 on any mismatch.
"""
import json
import re
import sys
from html.parser import HTMLParser

PLOTS = ["latency-by-second", "latency-distribution", "throughput", "server-rss",
         "connection-ramp"]


def expected(report):
    """The points each plot of one report draws, by plot name."""
    seconds = report.get("latency_by_second", [])
    answered = [s for s in seconds if s.get("count") != 0]
    return {
        "latency-by-second": 3 * len(answered),
        "latency-distribution": len(report.get("latency_distribution", [])),
        "throughput": 2 * len(seconds),
        "server-rss": len(report.get("server_rss", {}).get("series", [])),
        "connection-ramp": len(report.get("connection_ramp", [])),
    }


class Plots(HTMLParser):
    """Each <svg data-plot> in order: its name, data-points and polyline vertices; and any
    element that would reach outside the page."""

    def __init__(self):
        super().__init__()
        self.plots = []  # [name, data_points, vertices]
        self.outside = []
        self.inside = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "link", "iframe", "object", "embed", "img"):
            self.outside.append(tag)
        for name in ("src", "href"):
            if name in attrs:
                self.outside.append("%s %s=" % (tag, name))
        if tag == "svg" and "data-plot" in attrs:
            self.plots.append([attrs["data-plot"], int(attrs.get("data-points", "-1")), 0])
            self.inside = True
        elif tag == "polyline" and self.inside:
            self.plots[-1][2] += len(attrs.get("points", "").split())

    def handle_endtag(self, tag):
        if tag == "svg":
            self.inside = False


def main(argv):
    mode, dom_path = argv[1], argv[2]
    if mode == "runs":
        sides = [argv[3:]]
    elif mode == "compare" and "--base" in argv and "--new" in argv:
        rest = argv[3:]
        b, n = rest.index("--base"), rest.index("--new")
        sides = [rest[b + 1:n], rest[n + 1:]] if b < n else [rest[b + 1:], rest[n + 1:b]]
    else:
        sys.exit(__doc__)
    with open(dom_path, encoding="utf-8") as f:
        dom = f.read()
    parser = Plots()
    parser.feed(dom)
    failures = []
    if parser.outside or re.search(r"url\(|@import", dom):
        failures.append("the page reaches outside itself: %s" % sorted(set(parser.outside)))
    # The plots the page must hold, in order, with their points.
    want = []
    if mode == "runs":
        for path in sides[0]:
            with open(path, encoding="utf-8") as f:
                counts = expected(json.load(f))
            want += [(name, counts[name]) for name in PLOTS]
    else:
        total = dict.fromkeys(PLOTS, 0)
        for path in sides[0] + sides[1]:
            with open(path, encoding="utf-8") as f:
                for name, count in expected(json.load(f)).items():
                    total[name] += count
        want = [(name, total[name]) for name in PLOTS]
    got = [(name, points) for name, points, _ in parser.plots]
    if [name for name, _ in got] != [name for name, _ in want]:
        failures.append("plots %s, want %s" % ([n for n, _ in got], [n for n, _ in want]))
    for (name, points, vertices), (_, json_points) in zip(parser.plots, want):
        ok = points == vertices == json_points and points > 0
        print("%-4s %-22s data-points %5d drawn %5d json %5d"
              % ("ok" if ok else "FAIL", name, points, vertices, json_points))
        if not ok:
            failures.append("%s: data-points %d, drawn %d, json %d"
                            % (name, points, vertices, json_points))
    for failure in failures:
        print("FAIL: " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
