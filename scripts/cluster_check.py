"""Checks of several ringmcp nodes behind HAProxy (deploy/haproxy.cfg), for scripts/cluster.sh.

Usage: cluster_check.py CHECK BASE_URL [ARG...]    (BASE_URL: http://127.0.0.1:PORT, HAProxy)
  routing NODES LB2   initialize through HAProxy: the session id's node part is the node that
                      answered (X-Ringmcp-Node); 20 follow-ups of that session (POST
                      tools/list, GET stream), every other one through a second HAProxy at
                      LB2 that shares nothing with the first, all answered by it; 30
                      initializes reach every node of NODES (comma separated); a session
                      naming a node HAProxy does not know is balanced (answered by some node,
                      which does not have it)
  legacy NODES        the 2024-11-05 transport: GET /sse, then POST /messages?sessionId=...,
                      answered by the node that opened the stream, for a session on each node
  websocket NODES     MCP over WebSocket through HAProxy (subprotocol mcp): initialize and
                      echo on sessions that together reach every node (needs `websockets`)
  chaos JSON KILLED LB2
                      a ringmcp-load sse-resume run through HAProxy during which node KILLED
                      was SIGKILLed: every event exactly once and in order on every stream,
                      every stream answered, no error (no request hung), the killed node's
                      sessions answered elsewhere, each by one node, and no other node's; the
                      second HAProxy at LB2 sends them to the same nodes
Prints one line per step and exits 1 on the first failure.
"""
import http.client
import json
import sys
import time
import urllib.parse

NODE_HEADER = "x-ringmcp-node"
VERSION = "2025-11-25"
TIMEOUT = 10


def fail(what):
    print(f"  FAIL: {what}")
    sys.exit(1)


def node_of(session_id):
    """The node part of a session id: the text before its first dot."""
    node, dot, _ = session_id.partition(".")
    return node if dot and node else "-"


class Lb:
    """Requests to HAProxy, one connection each (so every request is balanced on its own)."""

    def __init__(self, base):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80

    def request(self, method, path, body=None, headers=None, read=True):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        hdrs = {"accept": "application/json, text/event-stream"}
        if body is not None:
            hdrs["content-type"] = "application/json"
            body = json.dumps(body).encode()
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read() if read else None
        return conn, resp, data


def close(conn, resp):
    """Closes a connection whose response is still streaming (a FIN, as clients do)."""
    # The response holds the socket too: both must let go of it before it closes.
    resp.close()
    conn.close()


def sse_messages(data):
    """The JSON messages of an SSE body (or a plain JSON body)."""
    text = data.decode()
    if text.lstrip().startswith("{"):
        return [json.loads(text)]
    out = []
    for event in text.split("\n\n"):
        lines = [l[5:].lstrip() for l in event.split("\n") if l.startswith("data:")]
        if lines and "".join(lines):
            out.append(json.loads("\n".join(lines)))
    return out


def initialize(lb, client="cluster-check"):
    params = {"protocolVersion": VERSION, "capabilities": {},
              "clientInfo": {"name": client, "version": "1"}}
    _, resp, data = lb.request("POST", "/mcp", {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                                                "params": params})
    if resp.status != 200:
        fail(f"initialize: HTTP {resp.status}: {data[:200]!r}")
    sid = resp.getheader("mcp-session-id")
    node = resp.getheader(NODE_HEADER)
    if not sid or not node:
        fail(f"initialize: session id {sid!r}, {NODE_HEADER} {node!r}")
    headers = {"mcp-session-id": sid, "mcp-protocol-version": VERSION}
    _, resp, _ = lb.request("POST", "/mcp", {"jsonrpc": "2.0", "method": "notifications/initialized"},
                            headers)
    if resp.status != 202:
        fail(f"notifications/initialized: HTTP {resp.status}")
    return sid, node, headers


def check_routing(base, nodes, second):
    lb, lb2 = Lb(base), Lb(second)
    sid, node, headers = initialize(lb)
    if node_of(sid) != node:
        fail(f"initialize answered by {node}, but the session id {sid} names {node_of(sid)}")
    print(f"  initialize answered by {node}, session {sid}")
    served = []
    waits = 0
    for i in range(20):
        # Every other request through the second HAProxy.
        via = lb2 if i % 4 >= 2 else lb
        if i % 2 == 0:
            _, resp, data = via.request("POST", "/mcp", {"jsonrpc": "2.0", "id": i + 1,
                                                         "method": "tools/list"}, headers)
            if resp.status != 200:
                fail(f"tools/list: HTTP {resp.status}")
            reply = [m for m in sse_messages(data) if m.get("id") == i + 1]
            if not reply or "tools" not in reply[0].get("result", {}):
                fail(f"tools/list: no tool list in {data[:200]!r}")
        else:
            # The session's GET stream: its head is enough, then the client closes it. A
            # session has one GET stream at a time (409 for a second); the node frees it when
            # HAProxy closes the node's side, which it does at once only with "option
            # abortonclose" (without it, at its next write to the client: up to 15 s).
            for wait in range(50):
                conn, resp, _ = via.request("GET", "/mcp",
                                            headers={**headers, "accept": "text/event-stream"},
                                            read=False)
                if resp.status != 409:
                    break
                close(conn, resp)
                time.sleep(0.02)
            if resp.status != 200:
                fail(f"GET stream: HTTP {resp.status} (the previous stream was not released within 1 s)")
            close(conn, resp)
            waits += wait
        served.append(resp.getheader(NODE_HEADER))
    if set(served) != {node}:
        fail(f"follow-ups answered by {served}, not all by {node}")
    print(f"  20 follow-ups (10 POST tools/list, 10 GET stream; half through the second "
          f"HAProxy) all answered by {node} "
          f"({waits} GETs waited 20 ms for the previous stream to be freed)")
    reached = {}
    for _ in range(30):
        sid, answered, _ = initialize(lb)
        if node_of(sid) != answered:
            fail(f"initialize answered by {answered}, but the session id {sid} names {node_of(sid)}")
        reached[answered] = reached.get(answered, 0) + 1
    if set(reached) != set(nodes):
        fail(f"30 initializes reached {reached}, not every node of {nodes}")
    print(f"  30 initializes spread: {dict(sorted(reached.items()))}")
    stranger = "zz." + sid.partition(".")[2]
    answered = set()
    for _ in range(3):
        _, resp, _ = lb.request("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                {"mcp-session-id": stranger, "mcp-protocol-version": VERSION})
        if resp.status != 404 or resp.getheader(NODE_HEADER) not in nodes:
            fail(f"a session of an unknown node: HTTP {resp.status} from {resp.getheader(NODE_HEADER)}")
        answered.add(resp.getheader(NODE_HEADER))
    print(f"  a session naming an unknown node is balanced: 404 from {sorted(answered)}")


def read_event(resp):
    """The next SSE event of a streaming response: (event name, data)."""
    name, data = "message", []
    while True:
        line = resp.readline()
        if not line:
            fail("the SSE stream ended")
        line = line.decode().rstrip("\r\n")
        if line == "":
            if data:
                return name, "\n".join(data)
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)


def check_legacy(base, nodes):
    lb = Lb(base)
    seen = set()
    for attempt in range(len(nodes) * 3):
        conn, resp, _ = lb.request("GET", "/sse", headers={"accept": "text/event-stream"}, read=False)
        if resp.status != 200:
            fail(f"GET /sse: HTTP {resp.status}")
        stream_node = resp.getheader(NODE_HEADER)
        name, endpoint = read_event(resp)
        if name != "endpoint" or "sessionId=" not in endpoint:
            fail(f"GET /sse: first event {name} {endpoint!r}")
        sid = urllib.parse.parse_qs(urllib.parse.urlsplit(endpoint).query)["sessionId"][0]
        if node_of(sid) != stream_node:
            fail(f"GET /sse answered by {stream_node}, but its session {sid} names {node_of(sid)}")
        params = {"protocolVersion": "2024-11-05", "capabilities": {},
                  "clientInfo": {"name": "cluster-check", "version": "1"}}
        _, post, _ = lb.request("POST", endpoint, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                                   "params": params})
        if post.status != 202 or post.getheader(NODE_HEADER) != stream_node:
            fail(f"POST {endpoint}: HTTP {post.status} from {post.getheader(NODE_HEADER)}, "
                 f"the stream is on {stream_node}")
        name, data = read_event(resp)
        reply = json.loads(data)
        if name != "message" or reply.get("id") != 1 or "result" not in reply:
            fail(f"the initialize reply on the stream: {name} {data[:200]!r}")
        conn.close()
        seen.add(stream_node)
        if seen == set(nodes):
            break
    if seen != set(nodes):
        fail(f"legacy sessions reached only {sorted(seen)}")
    print(f"  GET /sse then POST /messages?sessionId=... on the same node, on each of {sorted(seen)}")


def check_websocket(base, nodes):
    from websockets.sync.client import connect

    ws_base = base.replace("http://", "ws://", 1)
    seen = {}
    for i in range(len(nodes) * 2):
        with connect(f"{ws_base}/mcp", subprotocols=["mcp"], open_timeout=TIMEOUT) as ws:
            node = ws.response.headers.get(NODE_HEADER)
            if ws.subprotocol != "mcp" or not node:
                fail(f"WebSocket upgrade: subprotocol {ws.subprotocol!r}, {NODE_HEADER} {node!r}")
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": VERSION, "capabilities": {},
                "clientInfo": {"name": "cluster-check", "version": "1"}}}))
            init = json.loads(ws.recv(timeout=TIMEOUT))
            if init.get("result", {}).get("protocolVersion") != VERSION:
                fail(f"WebSocket initialize: {init}")
            ws.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                "params": {"name": "echo", "arguments": {"message": f"ws {i}"}}}))
            echo = json.loads(ws.recv(timeout=TIMEOUT))
            text = echo.get("result", {}).get("content", [{}])[0].get("text")
            if text != f"ws {i}":
                fail(f"WebSocket echo: {echo}")
        seen[node] = seen.get(node, 0) + 1
    if set(seen) != set(nodes):
        fail(f"WebSocket sessions reached {seen}, not every node of {nodes}")
    print(f"  WebSocket sessions (initialize, echo) spread: {dict(sorted(seen.items()))}")


def check_chaos(path, killed, second):
    r = json.load(open(path))
    s, nodes = r["sse"], r["nodes"]["by_node"]
    want = r["settings"]["connections"]
    problems = []

    def need(ok, what):
        if not ok:
            problems.append(what)

    need(r["connected"] == want, f"{r['connected']} of {want} streams set up")
    need(s["streams"] == want and s["completed"] == want, f"{s['completed']} of {want} streams answered")
    need(s["received"] == s["expected"] and s["lost"] == 0,
         f"{s['received']} of {s['expected']} events, {s['lost']} lost")
    need(s["duplicated"] == 0 and s["out_of_order"] == 0,
         f"{s['duplicated']} duplicated, {s['out_of_order']} out of order")
    need(r["error_total"] == 0, f"errors {r['errors']} (hung: a request that neither completed nor "
                                f"got -31000 within --patience)")
    planned = r["settings"]["disconnects"]
    need(s["disconnects"] == planned, f"{s['disconnects']} of {planned} planned disconnects")
    need(s["resume_refused"] == 0, f"{s['resume_refused']} resumes refused")
    # The kill must have done something, and only to the killed node's sessions.
    moved_out = nodes.get(killed, {}).get("moved_out", 0)
    need(moved_out > 0, f"no session of {killed} was answered by another node: the kill did nothing")
    need(s["retried_calls"] > 0, "no call ended with -31000: the kill cut no handler")
    moves = r["nodes"]["moved_sessions"]
    others = {m["from"] for m in moves} - {killed}
    need(not others, f"sessions of live nodes moved: {sorted(others)}")
    adopters = {}
    for m in moves:
        adopters.setdefault(m["session"], set()).add(m["to"])
    split = {s: sorted(t) for s, t in adopters.items() if len(t) > 1}
    need(not split, f"{len(split)} sessions answered by more than one node, e.g. "
                    f"{next(iter(split.items()), None)}")
    # The second HAProxy never saw these sessions: it must send each to the node that took
    # it over through the first.
    lb2, agreed = Lb(second), 0
    for session, (to, *_) in ((s, sorted(t)) for s, t in adopters.items()):
        _, resp, _ = lb2.request("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                 {"mcp-session-id": session, "mcp-protocol-version": VERSION})
        got = resp.getheader(NODE_HEADER)
        need(resp.status == 200 and got == to,
             f"the second HAProxy sent {session} to {got} (HTTP {resp.status}), the first to {to}")
        agreed += resp.status == 200 and got == to
    gap = r["failover_gap"]
    print(f"  {s['streams']} streams, {s['received']} of {s['expected']} events, lost {s['lost']}, "
          f"duplicated {s['duplicated']}, out of order {s['out_of_order']}; "
          f"disconnects {s['disconnects']}/{planned}, resumes {s['resumes']}, cuts {s['cuts']}")
    print(f"  {killed}'s sessions answered elsewhere: {moved_out}, each by one node; the second "
          f"HAProxy sent {agreed} of them to the same node; calls ended by -31000 and "
          f"called again: {s['retried_calls']}; cut before their first event and called again: "
          f"{s['unanswered_calls']}; tried again: {s['retried']}")
    print(f"  failover gap over {gap['count']} cut streams: p50 {gap['p50_ms']:.0f} ms, "
          f"p99 {gap['p99_ms']:.0f} ms, max {gap['max_ms']:.0f} ms; errors {r['errors'] or 'none'}")
    for name, t in sorted(nodes.items()):
        print(f"  node {name}: sessions {t['sessions']} events {t['events']} resumes {t['resumes']} "
              f"adopted {t['moved_in']} moved away {t['moved_out']}")
    if problems:
        fail("; ".join(problems))


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    check, arg = argv[1], argv[2]
    rest = argv[3:]
    if check == "chaos" and len(rest) == 2:
        check_chaos(arg, rest[0], rest[1])
    elif check == "routing" and len(rest) == 2:
        check_routing(arg, rest[0].split(","), rest[1])
    elif check in ("legacy", "websocket") and len(rest) == 1:
        {"legacy": check_legacy, "websocket": check_websocket}[check](arg, rest[0].split(","))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
