//! Bounds a careless or hostile client meets (issue 16, bugs 1-7): every response still
//! arrives, and what one client can make the server hold stays bounded and is counted.

mod common;

use common::*;
use ringmcp::proto::ws::OpCode;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One counter of `/metrics`, summed over shards: `name` with the label `label` (e.g. `limit="batch"`).
fn metric(addr: SocketAddr, name: &str, label: &str) -> u64 {
    let get = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let (status, _, body) = http(addr, get);
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(&format!("ringmcp_{name}{{")) && l.contains(label))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum()
}

fn limit_hits(addr: SocketAddr, limit: &str) -> u64 {
    metric(addr, "limit_hits_total", &format!("limit=\"{limit}\""))
}

fn tool_call(id: u64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":arguments}})
}

/// A Streamable HTTP session of `version`.
fn session_of_version(addr: SocketAddr, version: &str) -> String {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":version,"capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let (status, head, _) = http(addr, mcp_post(&init.to_string(), None, "").as_bytes());
    assert_eq!(status, 200, "{head}");
    header(&head, "mcp-session-id").unwrap().to_string()
}

/// POSTs `body` on `session` and reads the SSE response to its end: the JSON of each event.
fn post_stream(addr: SocketAddr, session: &str, body: &str) -> Vec<Value> {
    let mut s = connect(addr);
    s.write_all(mcp_post(body, Some(session), "").as_bytes())
        .unwrap();
    let (mut reader, _) = SseReader::open(s);
    std::iter::from_fn(|| reader.next_json().map(|(_, v)| v)).collect()
}

/// Bug 1: a handler that sends 256 or more messages before its first pause (or more bytes
/// than the replay ring keeps) still gets every message and its result to the client.
#[test]
fn a_post_stream_that_overflows_its_ring_still_delivers_everything() {
    let srv = server(|_| {});
    let id = http_session(srv.addr);
    for (count, bytes) in [(256, 10), (300, 10), (100, 3_000)] {
        let call = tool_call(
            1,
            "stream",
            json!({"count":count,"interval_ms":0,"bytes":bytes}),
        );
        let events = post_stream(srv.addr, &id, &call.to_string());
        let notifications = events
            .iter()
            .filter(|e| e["method"] == "notifications/message")
            .count();
        assert_eq!(notifications, count, "count {count} bytes {bytes}");
        let result = events.last().expect("a result");
        assert_eq!(
            result["result"]["content"][0]["text"],
            count.to_string(),
            "{result}"
        );
    }
    // A 2025-03-26 batch whose first call overflows the ring before the second one pauses.
    let old = session_of_version(srv.addr, "2025-03-26");
    let batch = json!([
        tool_call(1, "stream", json!({"count":300,"interval_ms":0})),
        tool_call(2, "stream", json!({"count":2,"interval_ms":100})),
    ]);
    let events = post_stream(srv.addr, &old, &batch.to_string());
    let replies = events
        .last()
        .and_then(Value::as_array)
        .expect("batch reply");
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0]["result"]["content"][0]["text"], "300");
}

/// Bug 1, the bound: a handler that sends faster than its client reads has notifications
/// withheld (and counted) while the response queues the outbound bound; its result arrives.
#[test]
fn a_stream_over_its_queue_withholds_notifications_not_the_result() {
    let srv = server(|c| c.max_outbound_bytes = 16 * 1024);
    let id = http_session(srv.addr);
    // More than the kernel's socket buffers can take (the send buffer grows to tcp_wmem's 4 MiB,
    // and an unset receive buffer to tcp_rmem's, 32 MiB here: with 2 MB in a default socket the
    // bound was sometimes never reached), so the rest must wait in the server's queue.
    let mut s = small_window_socket(srv.addr);
    const COUNT: usize = 10_000;
    let call = tool_call(
        1,
        "stream",
        json!({"count":COUNT,"interval_ms":0,"bytes":1_000}),
    );
    s.write_all(mcp_post(&call.to_string(), Some(&id), "").as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (mut reader, _) = SseReader::open(s);
    let events: Vec<Value> = std::iter::from_fn(|| reader.next_json().map(|(_, v)| v)).collect();
    let result = events.last().expect("result");
    let sent: usize = result["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(sent < COUNT, "{sent} sent to a client that was not reading");
    assert_eq!(
        events.len(),
        sent + 1,
        "every message counted as sent arrived"
    );
    assert!(limit_hits(srv.addr, "notification_queue") > 0);
}

fn mcp_ws(addr: SocketAddr) -> TcpStream {
    let mut s = raw_ws(addr, "/mcp");
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    s.write_all(&client_frame(
        OpCode::Text,
        true,
        init.to_string().as_bytes(),
    ))
    .unwrap();
    let (opcode, _, reply) = read_frame(&mut s);
    assert_eq!(opcode, 1, "{}", String::from_utf8_lossy(&reply));
    s
}

fn ws_json(s: &mut TcpStream) -> Value {
    loop {
        let (opcode, _, payload) = read_frame(s);
        if opcode == 1 {
            return serde_json::from_slice(&payload).unwrap();
        }
    }
}

/// Bug 2: replies to requests already read do not pile up for a client that does not read:
/// dispatch stops at the outbound bound, and every reply still arrives once it reads.
#[test]
fn websocket_dispatch_stops_at_the_outbound_bound() {
    let srv = server(|_| {});
    let mut s = mcp_ws(srv.addr);
    const CALLS: u64 = 40;
    let lines: Vec<String> = (1..=CALLS)
        .map(|id| tool_call(id, "payload", json!({"bytes": 1 << 20})).to_string())
        .collect();
    let before = metric(srv.addr, "messages_out_total", "shard");
    s.write_all(&client_frame(
        OpCode::Text,
        true,
        lines.join("\n").as_bytes(),
    ))
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let queued = metric(srv.addr, "messages_out_total", "shard") - before;
    assert!(
        queued < 16,
        "{queued} MiB replies queued for a client that does not read"
    );
    assert!(limit_hits(srv.addr, "outbound_queue") > 0);
    let mut ids: Vec<u64> = (0..CALLS)
        .map(|_| ws_json(&mut s)["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=CALLS).collect::<Vec<_>>());
}

/// Bug 3: a batch has a bounded reply: too many items are refused whole, and requests past the
/// reply bound are answered with -32000 without running.
#[test]
fn batch_replies_are_bounded() {
    let srv = server(|c| c.max_batch_items = 8);
    let id = session_of_version(srv.addr, "2025-03-26");
    let too_many: Vec<Value> = (1..=9)
        .map(|i| tool_call(i, "echo", json!({"message":"x"})))
        .collect();
    let (status, _, body) = http(
        srv.addr,
        mcp_post(&Value::from(too_many).to_string(), Some(&id), "").as_bytes(),
    );
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    let big: Vec<Value> = (1..=8)
        .map(|i| tool_call(i, "payload", json!({"bytes": 1 << 20})))
        .collect();
    let (_, _, body) = http(
        srv.addr,
        mcp_post(&Value::from(big).to_string(), Some(&id), "").as_bytes(),
    );
    assert!(body.len() < 6 << 20, "batch reply of {} bytes", body.len());
    let replies: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(replies.len(), 8, "every request is answered");
    let refused = replies
        .iter()
        .filter(|r| r["error"]["code"] == -32000)
        .count();
    assert!(refused >= 3, "{refused} refused");
    assert!(limit_hits(srv.addr, "batch") >= 2);
}

/// Bug 4: a plain JSON reply that the client never reads is given up after the write timeout.
#[test]
fn unread_http_replies_hit_the_write_timeout() {
    let srv = server(|c| c.slow_reader_timeout_ms = 300);
    let id = http_session(srv.addr);
    let mut s = connect(srv.addr);
    // Pipelined 1 MiB replies, far more than the socket buffers hold.
    let call = tool_call(1, "payload", json!({"bytes": 1 << 20})).to_string();
    let request = mcp_post(&call, Some(&id), "");
    for _ in 0..64 {
        s.write_all(request.as_bytes()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while limit_hits(srv.addr, "write_timeout") == 0 {
        assert!(
            Instant::now() < deadline,
            "the unread connection was never dropped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(closed_by_server(&mut s));
}

/// Bug 5: requests in flight per session are capped; over the cap a request gets -32000 at
/// once, and the connection stays usable (cancellations and pings still get through).
#[test]
fn requests_in_flight_are_capped() {
    let srv = server(|c| c.max_in_flight = 20);
    let mut s = mcp_ws(srv.addr);
    for id in 1..=25 {
        let slow = tool_call(id, "stream", json!({"count":2,"interval_ms":60_000}));
        s.write_all(&client_frame(
            OpCode::Text,
            true,
            slow.to_string().as_bytes(),
        ))
        .unwrap();
    }
    // The stream tool logs its first message at once: skip those notifications.
    let mut refused = Vec::new();
    while refused.len() < 5 {
        let message = ws_json(&mut s);
        if message.get("id").is_some() {
            assert_eq!(message["error"]["code"], -32000, "{message}");
            refused.push(message["id"].as_u64().unwrap());
        }
    }
    refused.sort_unstable();
    assert_eq!(refused, vec![21, 22, 23, 24, 25]);
    assert_eq!(limit_hits(srv.addr, "in_flight"), 5);
    let cancel =
        json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}});
    let ping = json!({"jsonrpc":"2.0","id":99,"method":"ping"});
    let retry = tool_call(100, "echo", json!({"message":"again"}));
    for message in [cancel, ping, retry] {
        s.write_all(&client_frame(
            OpCode::Text,
            true,
            message.to_string().as_bytes(),
        ))
        .unwrap();
        // The cancelled handler ends on its own task turn, after the notification was read.
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut replies = Vec::new();
    while replies.len() < 2 {
        let message = ws_json(&mut s);
        if message.get("id").is_some() {
            replies.push(message);
        }
    }
    assert_eq!(replies[0]["id"], 99);
    assert_eq!(
        replies[1]["id"], 100,
        "a slot freed by the cancellation is used"
    );
    assert!(replies[1].get("result").is_some(), "{}", replies[1]);
}

/// Bug 6: subscriptions per session are capped.
#[test]
fn subscriptions_per_session_are_capped() {
    let srv = server(|c| c.max_subscriptions = 3);
    let mut s = mcp_ws(srv.addr);
    let codes: Vec<Value> = (1..=4)
        .map(|i| {
            let subscribe = json!({"jsonrpc":"2.0","id":i,"method":"resources/subscribe",
                "params":{"uri":format!("test://template/{i}/data")}});
            s.write_all(&client_frame(
                OpCode::Text,
                true,
                subscribe.to_string().as_bytes(),
            ))
            .unwrap();
            ws_json(&mut s)["error"]["code"].clone()
        })
        .collect();
    assert_eq!(
        codes,
        vec![Value::Null, Value::Null, Value::Null, Value::from(-32000)]
    );
    assert_eq!(limit_hits(srv.addr, "subscriptions"), 1);
}

/// Bug 7: partly received messages are bounded per shard, not only per connection.
#[test]
fn partial_messages_share_one_inbound_budget_per_shard() {
    let srv = server(|c| {
        c.max_message_bytes = 1 << 20;
        c.max_inbound_bytes_per_shard = 1 << 20;
    });
    let partial = |s: &mut TcpStream| {
        // A 900 KB binary message, all but its last byte.
        let mut frame = client_frame(OpCode::Binary, true, &vec![7u8; 900_000]);
        frame.pop();
        s.write_all(&frame).unwrap();
    };
    let mut first = raw_ws(srv.addr, "/echo");
    partial(&mut first);
    std::thread::sleep(Duration::from_millis(200));
    let mut second = raw_ws(srv.addr, "/echo");
    partial(&mut second);
    assert_eq!(read_close_code(&mut second), Some(1009));
    assert_eq!(limit_hits(srv.addr, "inbound_budget"), 1);
    // The first connection keeps its share and completes its message.
    first.write_all(&[7]).unwrap();
    let (opcode, _, echoed) = read_frame(&mut first);
    assert_eq!((opcode, echoed.len()), (2, 900_000));
    // An HTTP body that would pass the budget is refused with 503.
    let body = "x".repeat(500_000);
    let mut s = connect(srv.addr);
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len() + 1
    );
    partial(&mut first);
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let (status, head, _) = read_response(&mut s);
    assert_eq!(status, 503, "{head}");
    assert!(header(&head, "retry-after").is_some());
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

/// A connection to `addr` whose receive buffer is a few KiB, so what the server sends piles up
/// in its own queue rather than in the kernel's.
fn small_window_socket(addr: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Open HTTP connections, this scrape's own included.
fn http_connections(addr: SocketAddr) -> u64 {
    metric(addr, "connections", "transport=\"http\"")
}

/// An SSE reader that takes a byte now and then keeps a full queue: before the hysteresis each
/// byte reset the slow-reader clock and the stream was never ended. It is ended (resumably)
/// after the slow-reader timeout.
#[test]
fn an_sse_reader_trickling_bytes_is_ended_after_the_slow_reader_timeout() {
    let srv = server(|c| {
        c.max_outbound_bytes = 16 * 1024;
        c.slow_reader_timeout_ms = 500;
    });
    let id = http_session(srv.addr);
    let mut s = small_window_socket(srv.addr);
    let call = tool_call(
        1,
        "stream",
        json!({"count":5_000,"interval_ms":1,"bytes":1_000}),
    );
    s.write_all(mcp_post(&call.to_string(), Some(&id), "").as_bytes())
        .unwrap();
    assert_eq!(http_connections(srv.addr), 2);
    let started = Instant::now();
    let mut byte = [0u8; 1];
    while http_connections(srv.addr) > 1 {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "a trickling SSE reader is never ended"
        );
        let _ = s.read(&mut byte);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(metric(srv.addr, "backpressure_events_total", "shard") > 0);
}

/// The same for a WebSocket: a client that takes a byte every 100 ms while a handler's
/// notifications pile up keeps the queue above half its bound; it is closed after the
/// slow-reader timeout (and dropped after the close timeout, as it reads no Close either).
#[test]
fn a_websocket_reader_trickling_bytes_is_closed_after_the_slow_reader_timeout() {
    let srv = server(|c| {
        c.max_outbound_bytes = 16 * 1024;
        c.slow_reader_timeout_ms = 500;
        c.close_timeout_ms = 500;
    });
    let mut s = small_window_socket(srv.addr);
    s.write_all(upgrade_request("/mcp", "").as_bytes()).unwrap();
    let (status, head, _) = read_response(&mut s);
    assert_eq!(status, 101, "{head}");
    let call = tool_call(
        1,
        "stream",
        json!({"count":5_000,"interval_ms":1,"bytes":1_000}),
    );
    for message in [
        json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
        call,
    ] {
        s.write_all(&client_frame(
            OpCode::Text,
            true,
            message.to_string().as_bytes(),
        ))
        .unwrap();
    }
    let ws_connections = || metric(srv.addr, "connections", "transport=\"ws_mcp\"");
    assert_eq!(ws_connections(), 1);
    let started = Instant::now();
    let mut byte = [0u8; 1];
    while ws_connections() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "a trickling WebSocket reader is never closed"
        );
        let _ = s.read(&mut byte);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(metric(srv.addr, "backpressure_events_total", "shard") > 0);
    assert!(limit_hits(srv.addr, "notification_queue") > 0);
}
