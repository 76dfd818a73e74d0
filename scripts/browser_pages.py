"""The page server and the report check of scripts/browser.sh (Python 3 stdlib only).

Usage:
  browser_pages.py serve PAGE OUT_DIR
      Serves PAGE at / on two fresh ports of 127.0.0.1 (origin A and origin B; the browser is
      sent to B as http://localhost:PORT, a different origin), writes "A_PORT B_PORT" to
      OUT_DIR/ports once both listen, and stores each POST /report?label=X body as
      OUT_DIR/report-X.json. Runs until SIGTERM.
  browser_pages.py check OUT_DIR
      Prints one table of both reports and exits 1 unless each holds exactly the expected
      steps, every one ok, in order.
"""
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# The steps the page reports, per label, in order (names as in scripts/browser_page.html).
EXPECTED = {
    "A": [
        "http: initialize (preflighted POST)",
        "http: notifications/initialized",
        "http: tools/call echo (session headers)",
        "http: DELETE /mcp (preflighted method)",
        "http: the deleted session is gone",
        "http 2026-07-28: tools/call echo (Mcp-Method, Mcp-Name)",
        "http 2026-07-28: tools/call with Mcp-Param-Region (mcp-param-* preflight)",
        "sse: EventSource GET /sse, endpoint event",
        "sse: POST initialize to the endpoint, reply as event: message",
        "ws: open with subprotocol mcp",
        "ws: initialize",
        "ws: tools/call echo",
        "ws: 16 KiB reply and request, compressed",
    ],
    "B": [
        "control: server reachable (no-cors GET /healthz)",
        "http: initialize (preflighted POST) refused",
        "http 2026-07-28: tools/call refused",
        "sse: EventSource GET /sse refused",
        "ws: handshake refused",
    ],
}


def serve(page_path, out_dir):
    with open(page_path, "rb") as f:
        page = f.read()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # the browser's requests, to the log file
            sys.stderr.write("%s %s\n" % (self.headers.get("Host"), fmt % args))

        def reply(self, status, body=b"", ctype="text/plain"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if urlsplit(self.path).path == "/":
                self.reply(200, page, "text/html; charset=utf-8")
            else:
                self.reply(404)

        def do_POST(self):
            url = urlsplit(self.path)
            label = parse_qs(url.query).get("label", [""])[0]
            if url.path != "/report" or label not in EXPECTED:
                self.reply(404)
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            final = os.path.join(out_dir, "report-%s.json" % label)
            with open(final + ".tmp", "wb") as f:
                f.write(body)
            os.replace(final + ".tmp", final)  # the script waits for the final name
            self.reply(204)

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(2)]
    for s in servers:
        s.daemon_threads = True
        threading.Thread(target=s.serve_forever, daemon=True).start()
    ports = " ".join(str(s.server_address[1]) for s in servers)
    with open(os.path.join(out_dir, "ports.tmp"), "w") as f:
        f.write(ports + "\n")
    os.replace(os.path.join(out_dir, "ports.tmp"), os.path.join(out_dir, "ports"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for s in servers:
        s.shutdown()


def check(out_dir):
    rows, failures = [], 0
    for label, expected in EXPECTED.items():
        path = os.path.join(out_dir, "report-%s.json" % label)
        try:
            with open(path) as f:
                report = json.load(f)
        except (OSError, ValueError) as e:
            rows.append((label, "-", "FAIL", "report", "no report: %s" % e))
            failures += 1
            continue
        where = "%s %s" % (report.get("origin"), report.get("expect"))
        got = report.get("steps", [])
        for i, name in enumerate(expected):
            step = got[i] if i < len(got) else None
            if step is None or step.get("name") != name:
                rows.append((label, where, "FAIL", name,
                             "missing (got %r)" % (step.get("name") if step else None)))
                failures += 1
                continue
            ok = step.get("ok") is True
            failures += not ok
            rows.append((label, where, "ok" if ok else "FAIL", name, step.get("detail", "")))
        for step in got[len(expected):]:
            rows.append((label, where, "FAIL", step.get("name"), "unexpected: %s" % step.get("detail")))
            failures += 1
    w_where = max(len(r[1]) for r in rows)
    w_name = max(len(r[3]) for r in rows)
    for label, where, result, name, detail in rows:
        print("%s  %-*s  %-4s  %-*s  %s" % (label, w_where, where, result, w_name, name, detail))
    print("%d steps, %d failed" % (len(rows), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    else:
        sys.exit(__doc__)
