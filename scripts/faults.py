"""Fault test: abusive clients next to well-behaved ones.

Usage: faults.py BASE_URL SERVER_PID [ROUNDS]
Abusers disconnect at random points, leave half-open connections, reset in the middle of a
frame, send oversized frames, invalid UTF-8 split across fragments and pipelined garbage after
a valid request. Meanwhile good clients run WebSocket echo, MCP over WebSocket and Streamable
HTTP calls and must see no error at all. Afterwards the server must still answer and its RSS
must return near the baseline.

A second phase runs the memory attacks of issue 16 (bugs 2-7), each one client that asks for
far more than the bounds allow and never reads: WebSocket replies to a frame of 1 MiB payload
calls, a batch whose reply would be 60 MiB, pipelined 1 MiB JSON replies, 5,000 requests in
flight, 5,000 subscriptions of 4 KB URIs, and WebSocket messages left one byte short. The
server's RSS must stay under MEMORY_BOUND_MIB above the baseline while they are held, the good
clients must see no error, and each attack must show in ringmcp_limit_hits_total.
Every loop is bounded; exits non-zero on any failure.
"""
import json, os, random, socket, struct, sys, threading, time
from urllib.parse import urlparse

url = urlparse(sys.argv[1]); PID = int(sys.argv[2]); ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 300
ADDR = (url.hostname, url.port)
rng = random.Random(1234)
errors = []

def rss_kib():
    for line in open(f"/proc/{PID}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def sock(timeout=5):
    s = socket.create_connection(ADDR, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed")
        buf += chunk
    return buf

def read_head(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(1)
        if not chunk:
            raise EOFError("closed in head")
        buf += chunk
    return buf.decode("latin1")

UPGRADE = ("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n")

def ws_open(path, extra=""):
    s = sock()
    s.sendall(UPGRADE.format(path=path, extra=extra).encode())
    head = read_head(s)
    assert head.startswith("HTTP/1.1 101"), head
    return s

def frame(opcode, payload, fin=True, mask=b"\x01\x02\x03\x04", length=None):
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | opcode
    if n < 126: head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536: head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else: head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    masked = payload if mask == ZERO_MASK else bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return head + mask + masked

# A valid mask that leaves the payload as it is: the memory attacks send megabytes.
ZERO_MASK = b"\x00\x00\x00\x00"

def read_frame(s):
    b0, b1 = recv_exact(s, 2)
    n = b1 & 0x7F
    if n == 126: n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127: n = struct.unpack("!Q", recv_exact(s, 8))[0]
    return b0 & 0x0F, recv_exact(s, n)

def reset(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

# ---- abusers
def abuse_once(kind, held):
    try:
        if kind == "disconnect-in-head":
            s = sock(); s.sendall(b"GET /healthz HTTP/1.1\r\nHo"); s.close()
        elif kind == "disconnect-in-body":
            s = sock(); s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"js"); s.close()
        elif kind == "half-open":
            s = sock(); s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"); s.shutdown(socket.SHUT_WR); held.append(s)
        elif kind == "rst-mid-frame":
            s = ws_open("/echo"); s.sendall(frame(2, b"x" * 1000)[:300]); reset(s)
        elif kind == "oversized-frame":
            s = ws_open("/echo"); s.sendall(frame(2, b"", length=1 << 40)[:14]); read_frame(s); s.close()
        elif kind == "bad-utf8-fragments":
            s = ws_open("/echo"); s.sendall(frame(1, b"\xce", fin=False) + frame(0, b"\x41")); read_frame(s); s.close()
        elif kind == "pipelined-garbage":
            s = sock(); s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\x00\xff garbage \r\n\r\n"); s.recv(4096); s.close()
        elif kind == "ws-mcp-drop":
            s = ws_open("/mcp", "Sec-WebSocket-Protocol: mcp\r\n")
            s.sendall(frame(1, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "f", "version": "1"}}}).encode()))
            reset(s)
        elif kind == "sse-drop":
            s = sock()
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "f", "version": "1"}}})
            s.sendall((f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
            reset(s)
    except (OSError, EOFError, AssertionError, ValueError):
        pass  # the abuser's own failures do not matter; the server's behaviour does

KINDS = ["disconnect-in-head", "disconnect-in-body", "half-open", "rst-mid-frame", "oversized-frame",
         "bad-utf8-fragments", "pipelined-garbage", "ws-mcp-drop", "sse-drop"]

# ---- well-behaved clients
def good_ws_echo(stop):
    try:
        s = ws_open("/echo")
        n = 0
        while not stop.is_set() and n < 100000:
            payload = os.urandom(rng.randint(1, 2000)).hex().encode()
            s.sendall(frame(1, payload))
            op, got = read_frame(s)
            if op != 1 or got != payload:
                errors.append(f"echo mismatch at {n}"); return
            n += 1
        s.sendall(frame(8, struct.pack("!H", 1000))); read_frame(s); s.close()
    except Exception as e:
        errors.append(f"good ws echo: {e!r}")

def good_http_mcp(stop):
    try:
        s = sock()
        def post(body, session=None):
            extra = f"Mcp-Session-Id: {session}\r\n" if session else ""
            s.sendall((f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       f"Accept: application/json, text/event-stream\r\n{extra}Content-Length: {len(body)}\r\n\r\n{body}").encode())
            head = read_head(s)
            length = int([l for l in head.split("\r\n") if l.lower().startswith("content-length")][0].split(":")[1])
            return head, recv_exact(s, length)
        head, _ = post(json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "g", "version": "1"}}}))
        session = [l.split(":")[1].strip() for l in head.split("\r\n") if l.lower().startswith("mcp-session-id")][0]
        n = 0
        while not stop.is_set() and n < 100000:
            msg = f"m{n}"
            head, body = post(json.dumps({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                                          "params": {"name": "echo", "arguments": {"message": msg}}}), session)
            if not head.startswith("HTTP/1.1 200") or json.loads(body)["result"]["content"][0]["text"] != msg:
                errors.append(f"http mcp bad answer at {n}: {head.splitlines()[0]}"); return
            n += 1
    except Exception as e:
        errors.append(f"good http mcp: {e!r}")

# ---- memory attacks (phase 2): each returns the sockets it holds open, never reading them
MEMORY_BOUND_MIB = 128

def ws_mcp_session():
    s = ws_open("/mcp", "Sec-WebSocket-Protocol: mcp\r\n")
    s.sendall(frame(1, json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "m", "version": "1"}}}).encode()))
    read_frame(s)
    return s

def call(i, name, arguments):
    return {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": name, "arguments": arguments}}

def http_post(s, body, session=None):
    extra = f"Mcp-Session-Id: {session}\r\n" if session else ""
    s.sendall((f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Accept: application/json, text/event-stream\r\n{extra}Content-Length: {len(body)}\r\n\r\n{body}").encode())

def http_session(version):
    s = sock()
    http_post(s, json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "m", "version": "1"}}}))
    head = read_head(s)
    s.close()
    return [l.split(":")[1].strip() for l in head.split("\r\n") if l.lower().startswith("mcp-session-id")][0]

def attack_ws_unread_replies():      # bug 2
    s = ws_mcp_session()
    s.sendall(frame(1, "\n".join(json.dumps(call(i, "payload", {"bytes": 1 << 20})) for i in range(1, 201)).encode(),
                   mask=ZERO_MASK))
    return [s]

def attack_batch_reply():            # bugs 3 and 4
    session = http_session("2025-03-26")
    s = sock()
    http_post(s, json.dumps([call(i, "payload", {"bytes": 1 << 20}) for i in range(1, 61)]), session)
    return [s]

def attack_pipelined_replies():      # bug 4
    session = http_session("2025-11-25")
    s = sock()
    for i in range(100):
        http_post(s, json.dumps(call(i, "payload", {"bytes": 1 << 20})), session)
    return [s]

def attack_in_flight():              # bug 5
    s = ws_mcp_session()
    s.sendall(b"".join(frame(1, json.dumps(call(i, "stream", {"count": 2, "interval_ms": 60000})).encode(),
                             mask=ZERO_MASK) for i in range(1, 5001)))
    return [s]

def attack_subscriptions():          # bug 6
    s = ws_mcp_session()
    for start in range(0, 5000, 500):
        s.sendall(b"".join(frame(1, json.dumps({"jsonrpc": "2.0", "id": i, "method": "resources/subscribe",
                                                 "params": {"uri": f"test://template/{i}{'x' * 4000}/data"}}).encode(),
                                 mask=ZERO_MASK) for i in range(start, start + 500)))
    return [s]

def attack_partial_messages():       # bug 7
    held = []
    for _ in range(40):
        try:
            s = ws_open("/echo")
            s.sendall(frame(2, b"y" * ((1 << 20) - 16), mask=ZERO_MASK)[:-1])
            held.append(s)
        except OSError:
            pass
    return held

ATTACKS = {"ws-unread-replies": (attack_ws_unread_replies, "outbound_queue"),
           "batch-reply": (attack_batch_reply, "batch"),
           "pipelined-replies": (attack_pipelined_replies, "write_timeout"),
           "in-flight": (attack_in_flight, "in_flight"),
           "subscriptions": (attack_subscriptions, "subscriptions"),
           "partial-messages": (attack_partial_messages, "inbound_budget")}

def limit_hits():
    s = sock(); s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    text = b""
    while True:
        chunk = s.recv(65536)
        if not chunk: break
        text += chunk
    hits = {}
    for line in text.decode().splitlines():
        if line.startswith("ringmcp_limit_hits_total{"):
            limit = line.split('limit="')[1].split('"')[0]
            hits[limit] = hits.get(limit, 0) + int(line.rsplit(" ", 1)[1])
    return hits

def memory_phase():
    baseline = rss_kib()
    stop = threading.Event()
    good = [threading.Thread(target=good_ws_echo, args=(stop,)), threading.Thread(target=good_http_mcp, args=(stop,))]
    for t in good: t.start()
    held, peak = [], baseline
    for name, (attack, _) in ATTACKS.items():
        try:
            held += attack()
        except (OSError, EOFError, AssertionError, ValueError, IndexError) as e:
            errors.append(f"memory attack {name} could not be mounted: {e!r}")
        for _ in range(10):
            time.sleep(0.1); peak = max(peak, rss_kib())
    # Held past the slow-reader timeout: the unread connections are dropped meanwhile.
    for _ in range(30):
        time.sleep(0.1); peak = max(peak, rss_kib())
    hits = limit_hits()
    stop.set()
    for t in good: t.join(30)
    for s in held: reset(s)
    print(f"memory attacks: {len(ATTACKS)} kinds held; RSS baseline {baseline} KiB, peak {peak} KiB "
          f"(bound +{MEMORY_BOUND_MIB} MiB); limit hits {hits}")
    if peak > baseline + MEMORY_BOUND_MIB * 1024:
        errors.append(f"RSS under memory attacks went past the bound: {baseline} -> {peak} KiB")
    for name, (_, limit) in ATTACKS.items():
        if not hits.get(limit):
            errors.append(f"memory attack {name}: limit {limit} never hit")

def healthy():
    s = sock(); s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    return read_head(s).startswith("HTTP/1.1 200")

def main():
    # Warm up so the baseline includes the allocator's steady state.
    for kind in KINDS:
        abuse_once(kind, [])
    time.sleep(0.5)
    baseline = rss_kib()
    stop = threading.Event()
    good = [threading.Thread(target=good_ws_echo, args=(stop,)), threading.Thread(target=good_http_mcp, args=(stop,))]
    for t in good: t.start()
    held = []
    deadline = time.time() + 120
    for i in range(ROUNDS):
        if time.time() > deadline: break
        abuse_once(KINDS[i % len(KINDS)], held)
    peak = rss_kib()
    stop.set()
    for t in good: t.join(30)
    for s in held: s.close()
    if not healthy():
        errors.append("server does not answer /healthz after the faults")
    time.sleep(1.5)
    after = rss_kib()
    print(f"faults: {ROUNDS} abusive clients of {len(KINDS)} kinds; RSS baseline {baseline} KiB, "
          f"peak {peak} KiB, after {after} KiB; good-client errors: {len(errors)}")
    if after > baseline + 8192:
        errors.append(f"RSS did not return near the baseline: {baseline} -> {after} KiB")
    memory_phase()
    if not healthy():
        errors.append("server does not answer /healthz after the memory attacks")
    for e in errors: print("  ERROR:", e)
    sys.exit(1 if errors else 0)

main()
