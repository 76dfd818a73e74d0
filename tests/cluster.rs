//! Two nodes sharing a real Redis event store (`--event-store`): a stream outlives the node
//! that served it, and announcements cross nodes. They need `redis-server` on PATH, so they
//! are ignored by a plain `cargo test`; the cluster stage (`scripts/cluster.sh`) runs them
//! with `cargo test --profile ci --test cluster -- --ignored`.

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use common::*;
use redis_server::RedisServer;
use ringmcp::store::sessions::NodeId;
use std::io::Write;
use std::time::{Duration, Instant};

/// A redis-server and nodes `a` and `b` storing into it, their connections up; `edit` tweaks
/// both configurations.
fn two_nodes(edit: impl Fn(&mut ringmcp::Config)) -> (RedisServer, TestServer, TestServer) {
    let redis = RedisServer::on_a_free_port(&[]);
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let node = |name: &str| {
        let node = server(|c| {
            c.node_id = Some(NodeId::parse(name).unwrap());
            c.event_store = Some(url.parse().unwrap());
            edit(c);
        });
        store_up(&node);
        node
    };
    let (a, b) = (node("a"), node("b"));
    (redis, a, b)
}

/// Waits until `node`'s store connection is up (its metrics say so).
fn store_up(node: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        let (_, _, body) = http(node.addr, request.as_bytes());
        if String::from_utf8_lossy(&body).contains("ringmcp_event_store_up{shard=\"0\"} 1") {
            return;
        }
        assert!(Instant::now() < deadline, "the event store did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn open_sse(addr: std::net::SocketAddr, request: &str) -> SseReader {
    let mut socket = connect(addr);
    socket.write_all(request.as_bytes()).unwrap();
    SseReader::open(socket).0
}

#[test]
#[ignore = "needs redis-server: scripts/cluster.sh runs it"]
fn a_stream_of_a_node_that_stopped_resumes_on_another_with_the_retry_error() {
    let (_redis, a, b) = two_nodes(|_| {});
    let session = http_session(a.addr);
    assert!(session.starts_with("a."), "{session}");
    // Ten notifications 100 ms apart: the node stops after the third.
    let call = r#"{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"stream","arguments":{"count":10,"interval_ms":100}}}"#;
    let mut stream = open_sse(a.addr, &mcp_post(call, Some(&session), ""));
    let mut last = None;
    for expected in 1..=3 {
        let (id, note) = stream.next_json().expect("a notification");
        assert_eq!(note["params"]["data"]["seq"], expected);
        last = id;
    }
    let last = last.expect("event ids");
    drop(a);

    // The balancer sends the resume to b: the session is adopted, the events a stored after
    // `last` are replayed, and the request whose handler died gets the retry error.
    let resume = format!(
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\
         Mcp-Session-Id: {session}\r\nLast-Event-ID: {last}\r\n\r\n"
    );
    let mut resumed = open_sse(b.addr, &resume);
    let mut seqs = Vec::new();
    let answer = loop {
        let (_, message) = resumed.next_json().expect("the request's answer");
        if message["method"] == "notifications/message" {
            seqs.push(message["params"]["data"]["seq"].as_u64().unwrap());
        } else {
            break message;
        }
    };
    assert!(
        seqs.iter().copied().eq(4..4 + seqs.len() as u64),
        "events after {last} in order, once: {seqs:?}"
    );
    assert_eq!(answer["id"], "call-1");
    assert_eq!(answer["error"]["code"], -31000);
    assert_eq!(answer["error"]["data"]["retry"], true);
    assert!(resumed.next().is_none(), "the stream ends with the answer");

    // The session goes on at b.
    let ping = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    let (status, head, _) = http(b.addr, mcp_post(ping, Some(&session), "").as_bytes());
    assert_eq!(status, 200, "{head}");
}

#[test]
#[ignore = "needs redis-server: scripts/cluster.sh runs it"]
fn a_resource_update_on_one_node_reaches_a_subscriber_on_another() {
    let (_redis, a, b) = two_nodes(|_| {});
    let subscriber = http_session(b.addr);
    let open = format!(
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\
         Mcp-Session-Id: {subscriber}\r\n\r\n"
    );
    let mut standalone = open_sse(b.addr, &open);
    let subscribe = r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"test://watched-resource"}}"#;
    let (status, _, _) = http(
        b.addr,
        mcp_post(subscribe, Some(&subscriber), "").as_bytes(),
    );
    assert_eq!(status, 200);
    // b's reader starts at the newest announcement: give it a moment to be listening.
    std::thread::sleep(Duration::from_millis(300));
    let toucher = http_session(a.addr);
    let touch = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"touch_resource","arguments":{"uri":"test://watched-resource"}}}"#;
    let (status, _, _) = http(a.addr, mcp_post(touch, Some(&toucher), "").as_bytes());
    assert_eq!(status, 200);
    let (_, note) = standalone.next_json().expect("the update");
    assert_eq!(note["method"], "notifications/resources/updated");
    assert_eq!(note["params"]["uri"], "test://watched-resource");
}

/// One MCP 2026-07-28 `tools/call` of `tool` to `addr`: its JSON-RPC reply.
fn call_2026(
    addr: std::net::SocketAddr,
    tool: &str,
    params: serde_json::Value,
) -> serde_json::Value {
    let mut params = params;
    params["name"] = tool.into();
    params["_meta"] = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    });
    let body =
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
    let extra = format!(
        "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: {tool}\r\n"
    );
    let mut socket = connect(addr);
    socket
        .write_all(mcp_post(&body.to_string(), None, &extra).as_bytes())
        .unwrap();
    let (status, head) = read_head(&mut socket);
    assert_eq!(status, 200, "{head}");
    // Answered at once in JSON, or, when the answer waited (on the shared ledger), as SSE.
    if header(&head, "content-type") == Some("text/event-stream") {
        let mut events = SseReader::after_head(socket);
        return events.next_json().expect("the reply").1;
    }
    let length: usize = header(&head, "content-length").unwrap().parse().unwrap();
    let mut reply = vec![0; length];
    std::io::Read::read_exact(&mut socket, &mut reply).unwrap();
    serde_json::from_slice(&reply).unwrap()
}

#[test]
#[ignore = "needs redis-server: scripts/cluster.sh runs it"]
fn a_request_state_used_on_one_node_is_refused_on_another() {
    let key = std::env::temp_dir().join(format!("ringmcp-cluster-state-{}", std::process::id()));
    std::fs::write(&key, [7u8; 32]).unwrap();
    let (_redis, a, b) = two_nodes(|c| c.state_key_file = Some(key.clone()));
    let tool = "test_input_required_result_request_state";
    let first = call_2026(a.addr, tool, serde_json::json!({"arguments": {}}));
    let state = first["result"]["requestState"]
        .as_str()
        .expect("a requestState")
        .to_owned();
    let input = first["result"]["inputRequests"]
        .as_object()
        .and_then(|requests| requests.keys().next())
        .expect("an input request")
        .clone();
    let retry = serde_json::json!({
        "arguments": {},
        "requestState": state,
        "inputResponses": {input: {"action": "accept", "content": {"ok": true}}},
    });
    let done = call_2026(a.addr, tool, retry.clone());
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    // The same state again, on the other node: single use across nodes.
    let replayed = call_2026(b.addr, tool, retry);
    let message = replayed["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("already used"), "{replayed}");
    let _ = std::fs::remove_file(&key);
}
