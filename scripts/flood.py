"""Initialize flood: N clients send `initialize` and never come back.

Usage: flood.py BASE_URL SERVER_PID [N]
Prints server RSS before, after the flood and after idle expiry, and the sessions gauge from
/metrics; exits non-zero unless the sessions expire and memory returns near where it was.
"""
import http.client, json, sys, time
from urllib.parse import urlparse

url = urlparse(sys.argv[1]); PID = int(sys.argv[2]); N = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
INIT = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "flood", "version": "1"}}})
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}

def rss_kib():
    return next(int(l.split()[1]) for l in open(f"/proc/{PID}/status") if l.startswith("VmRSS:"))

def sessions():
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    c.request("GET", "/metrics"); text = c.getresponse().read().decode(); c.close()
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("ringmcp_sessions{"))

def flood():
    c = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    statuses = {}
    for _ in range(N):
        c.request("POST", "/mcp", INIT, HEADERS)
        r = c.getresponse(); r.read()
        statuses[r.status] = statuses.get(r.status, 0) + 1
    c.close()
    flooded, live = rss_kib(), sessions()
    deadline = time.time() + 30
    while sessions() > 0 and time.time() < deadline:
        time.sleep(0.5)
    return statuses, live, flooded, sessions(), rss_kib()

# Two floods: the first finds the allocator's high-water mark (glibc keeps freed memory for
# reuse rather than returning it), the second must fit inside it: memory is bounded.
before = rss_kib()
failures = []
peaks = []
for round_ in (1, 2):
    statuses, live, flooded, left, after = flood()
    peaks.append(flooded)
    print(f"flood {round_}: {N} initialize -> statuses {statuses}; live sessions {live:.0f} -> {left:.0f} "
          f"after expiry; RSS {before} KiB -> {flooded} KiB ({(flooded - before) * 1024 / max(live, 1):.0f} B/session) "
          f"-> {after} KiB after expiry")
    if left > 0:
        failures.append(f"flood {round_}: sessions did not expire")
if peaks[1] > peaks[0] * 1.1 + 1024:
    failures.append(f"the second flood grew memory past the first: {peaks[0]} -> {peaks[1]} KiB")
for f in failures:
    print("  ERROR:", f)
sys.exit(1 if failures else 0)
