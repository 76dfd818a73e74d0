"""Measures what a cross-shard session costs: the first request on a new connection, when the
connection landed on the session's shard versus when it had to be handed over.

Usage: handoff_cost.py BASE_URL [TRIALS]   (server started with --shards 2)
Each trial opens a connection, sends one ping for the session and times it; a scrape of
ringmcp_handoffs_total before and after tells which kind of trial it was.
"""
import http.client, json, statistics, sys, time
from urllib.parse import urlparse

url = urlparse(sys.argv[1])
trials = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}

def conn():
    return http.client.HTTPConnection(url.hostname, url.port, timeout=10)

def handoffs():
    c = conn(); c.request("GET", "/metrics"); text = c.getresponse().read().decode(); c.close()
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("ringmcp_handoffs_total{"))

c = conn()
c.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "cost", "version": "1"}}}), HEADERS)
r = c.getresponse(); r.read(); session = r.getheader("mcp-session-id"); c.close()
ping = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
local, moved, follow = [], [], []
for _ in range(trials):
    before = handoffs()
    c = conn(); c.connect()
    t0 = time.perf_counter()
    c.request("POST", "/mcp", ping, dict(HEADERS, **{"mcp-session-id": session})); c.getresponse().read()
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    c.request("POST", "/mcp", ping, dict(HEADERS, **{"mcp-session-id": session})); c.getresponse().read()
    follow.append(time.perf_counter() - t1)
    c.close()
    (moved if handoffs() > before else local).append(first)

def us(xs): return f"median {statistics.median(xs)*1e6:.0f} µs, p90 {statistics.quantiles(xs, n=10)[-1]*1e6:.0f} µs (n={len(xs)})"
print(f"first request, connection on the owning shard: {us(local)}")
print(f"first request, connection handed to the owner: {us(moved)}")
print(f"second request on the same connection (always local by then): {us(follow)}")
