//! MCP Streamable HTTP and the legacy HTTP+SSE transport over real sockets.

mod common;

use common::*;
use serde_json::Value;
use std::io::Write;

const PING: &str = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;

#[test]
fn status_codes_of_the_transport() {
    let srv = server(|_| {});
    let no_accept = mcp_post(PING, None, "").replace(
        "Accept: application/json, text/event-stream\r\n",
        "Accept: application/json\r\n",
    );
    assert_eq!(http(srv.addr, no_accept.as_bytes()).0, 406);
    let text = mcp_post(PING, None, "")
        .replace("Content-Type: application/json", "Content-Type: text/plain");
    assert_eq!(http(srv.addr, text.as_bytes()).0, 415);
    assert_eq!(
        http(srv.addr, mcp_post(PING, None, "").as_bytes()).0,
        400,
        "no session id"
    );
    let unknown = "00".to_string() + &"a".repeat(32);
    assert_eq!(
        http(srv.addr, mcp_post(PING, Some(&unknown), "").as_bytes()).0,
        404
    );
    assert_eq!(
        http(srv.addr, mcp_post(PING, Some("garbage"), "").as_bytes()).0,
        404
    );
    let (status, _, body) = http(srv.addr, mcp_post("{oops", None, "").as_bytes());
    assert_eq!(status, 400);
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"]["code"], -32700);
    let id = http_session(srv.addr);
    let bad_version = mcp_post(PING, Some(&id), "MCP-Protocol-Version: 1999-01-01\r\n");
    assert_eq!(http(srv.addr, bad_version.as_bytes()).0, 400);
    // Any supported version is accepted on any session (clients send 2025-03-26 on newer ones).
    let old_version = mcp_post(PING, Some(&id), "MCP-Protocol-Version: 2025-03-26\r\n");
    let (status, head, body) = http(srv.addr, old_version.as_bytes());
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "content-type"), Some("application/json"));
    let pong: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (pong["id"].clone(), pong["result"].clone()),
        (Value::from(7), serde_json::json!({}))
    );
    let put = format!(
        "PUT /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nMcp-Session-Id: {id}\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(http(srv.addr, put.as_bytes()).0, 405);
    let delete = format!("DELETE /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nMcp-Session-Id: {id}\r\n\r\n");
    assert_eq!(http(srv.addr, delete.as_bytes()).0, 200);
    assert_eq!(
        http(srv.addr, mcp_post(PING, Some(&id), "").as_bytes()).0,
        404,
        "ended session"
    );
}

#[test]
fn batches_only_on_2025_03_26() {
    let srv = server(|_| {});
    let id = http_session(srv.addr);
    let batch = format!("[{PING}]");
    let (status, _, body) = http(srv.addr, mcp_post(&batch, Some(&id), "").as_bytes());
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
}

#[test]
fn get_stream_opens_once_and_resume_errors_are_explicit() {
    let srv = server(|_| {});
    let id = http_session(srv.addr);
    let get = |extra: &str| {
        format!("GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nMcp-Session-Id: {id}\r\n{extra}\r\n")
    };
    let mut first = connect(srv.addr);
    first.write_all(get("").as_bytes()).unwrap();
    let (mut stream, head) = SseReader::open(first);
    assert_eq!(header(&head, "cache-control"), Some("no-cache"));
    assert_eq!(header(&head, "x-accel-buffering"), Some("no"));
    let priming = stream.next().unwrap();
    assert!(
        priming.id.is_some() && priming.data.is_empty() && priming.retry.is_some(),
        "{priming:?}"
    );
    assert_eq!(
        http(srv.addr, get("").as_bytes()).0,
        409,
        "one standalone stream per session"
    );
    assert_eq!(
        http(srv.addr, get("Last-Event-ID: nonsense\r\n").as_bytes()).0,
        400
    );
    assert_eq!(
        http(srv.addr, get("Last-Event-ID: 0-99\r\n").as_bytes()).0,
        400,
        "an id never sent"
    );
    assert_eq!(
        http(srv.addr, get("Last-Event-ID: 77-0\r\n").as_bytes()).0,
        410,
        "no such stream"
    );
    let plain = get("").replace("Accept: text/event-stream", "Accept: application/json");
    assert_eq!(http(srv.addr, plain.as_bytes()).0, 406);
}

#[test]
fn legacy_sse_transport() {
    let srv = server(|_| {});
    let mut sse = connect(srv.addr);
    sse.write_all(b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let (mut events, _) = SseReader::open(sse);
    let endpoint = events.next().unwrap();
    assert_eq!(endpoint.event.as_deref(), Some("endpoint"));
    assert!(
        endpoint.data.starts_with("/messages?sessionId="),
        "{}",
        endpoint.data
    );
    let post = |body: &str| {
        format!(
            "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            endpoint.data,
            body.len()
        )
    };
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    assert_eq!(http(srv.addr, post(init).as_bytes()).0, 202);
    // The next event is the reply: no empty `message` event for a 2024-11-05 client to fail
    // parsing as JSON-RPC (the stream's `retry:` comes as a block that is not dispatched).
    let event = events.next().unwrap();
    assert_eq!(event.event.as_deref(), Some("message"));
    let reply = serde_json::from_str::<Value>(&event.data).unwrap();
    assert_eq!(reply["result"]["protocolVersion"], "2024-11-05");
    assert!(String::from_utf8_lossy(&events.raw).contains("\nretry: "));
    assert_eq!(http(srv.addr, post(PING).as_bytes()).0, 202);
    let (_, pong) = events.next_json().unwrap();
    assert_eq!(pong["id"], 7);
    let unknown = "POST /messages?sessionId=00ffffffffffffffffffffffffffffffff HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
    assert_eq!(http(srv.addr, unknown.as_bytes()).0, 404);
    let off = server(|c| c.no_legacy_sse = true);
    assert_eq!(
        http(off.addr, b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").0,
        404
    );
}

#[test]
fn sessions_are_served_from_any_shard() {
    let srv = server(|c| c.shards = 2);
    let id = http_session(srv.addr);
    // Each connection lands on a shard by the kernel's SO_REUSEPORT hash; with 40 of them both
    // shards see requests for this session, and every one must be answered by its owner.
    for i in 0..40 {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"m{i}"}}}}}}"#
        );
        let (status, head, reply) = http(srv.addr, mcp_post(&body, Some(&id), "").as_bytes());
        assert_eq!(status, 200, "request {i}: {head}");
        let reply: Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(reply["result"]["content"][0]["text"], format!("m{i}"));
    }
    // Pipelined requests keep their order across the handoff.
    let mut s = connect(srv.addr);
    let mut wire = String::new();
    for i in 0..3 {
        wire.push_str(&mcp_post(
            &format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"ping"}}"#),
            Some(&id),
            "",
        ));
    }
    s.write_all(wire.as_bytes()).unwrap();
    for i in 0..3 {
        let (status, _, body) = read_response(&mut s);
        assert_eq!(status, 200);
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["id"], i);
    }
}

/// Collects the progress values and the final result of a `stream` call from SSE events.
fn collect(
    events: &mut SseReader,
    progress: &mut Vec<u64>,
    limit: usize,
) -> (Option<String>, Option<Value>) {
    let mut last_id = None;
    while progress.len() < limit {
        let Some((id, message)) = events.next_json() else {
            return (last_id, None);
        };
        last_id = id.or(last_id);
        if message["method"] == "notifications/progress" {
            progress.push(message["params"]["progress"].as_f64().unwrap() as u64);
        } else if message.get("result").is_some() {
            return (last_id, Some(message));
        }
    }
    (last_id, None)
}

#[test]
fn a_dropped_stream_resumes_with_every_event_exactly_once() {
    let srv = server(|_| {});
    let id = http_session(srv.addr);
    let call = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"stream","arguments":{"count":40,"interval_ms":10},"_meta":{"progressToken":"p"}}}"#;
    let mut post = connect(srv.addr);
    post.write_all(mcp_post(call, Some(&id), "").as_bytes())
        .unwrap();
    let (mut first, _) = SseReader::open(post);
    let mut progress = Vec::new();
    let (last_id, result) = collect(&mut first, &mut progress, 12);
    assert!(result.is_none(), "the call must still be running");
    let last_id = last_id.expect("events carry ids");
    drop(first); // the client loses the connection mid-stream
    std::thread::sleep(std::time::Duration::from_millis(150)); // events keep coming meanwhile
    let resume = format!(
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nMcp-Session-Id: {id}\r\nLast-Event-ID: {last_id}\r\n\r\n"
    );
    let mut get = connect(srv.addr);
    get.write_all(resume.as_bytes()).unwrap();
    let (mut second, _) = SseReader::open(get);
    let (_, result) = collect(&mut second, &mut progress, usize::MAX);
    let result = result.expect("the result arrives on the resumed stream");
    assert_eq!(result["id"], 5);
    assert_eq!(
        progress,
        (1..=40).collect::<Vec<u64>>(),
        "no gap, no duplicate, in order"
    );
    assert!(
        second.next().is_none(),
        "the resumed stream ends after the response"
    );
}

#[test]
fn server_messages_go_on_the_get_stream_and_a_subscription_is_notified() {
    let srv = server(|_| {});
    let id = http_session(srv.addr);
    let mut get = connect(srv.addr);
    let open = format!("GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nMcp-Session-Id: {id}\r\n\r\n");
    get.write_all(open.as_bytes()).unwrap();
    let (mut standalone, _) = SseReader::open(get);
    let subscribe = r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"test://watched-resource"}}"#;
    assert_eq!(
        http(srv.addr, mcp_post(subscribe, Some(&id), "").as_bytes()).0,
        200
    );
    let touch = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"touch_resource","arguments":{"uri":"test://watched-resource"}}}"#;
    let (status, _, _) = http(srv.addr, mcp_post(touch, Some(&id), "").as_bytes());
    assert_eq!(status, 200);
    let (_, note) = standalone.next_json().unwrap();
    assert_eq!(note["method"], "notifications/resources/updated");
    assert_eq!(note["params"]["uri"], "test://watched-resource");
}

#[test]
fn a_resource_update_reaches_subscribers_on_every_shard() {
    let srv = server(|c| c.shards = 2);
    // A session id's four hex digits after the node name its owner; initialize lands by the
    // kernel's SO_REUSEPORT hash, so open sessions until both shards own one.
    let mut owned_by: [Option<String>; 2] = [None, None];
    for _ in 0..200 {
        let id = http_session(srv.addr);
        let (_node, rest) = id.split_once('.').expect("node prefix");
        let shard = usize::from_str_radix(&rest[..4], 16).expect("shard digits");
        owned_by[shard].get_or_insert(id);
        if owned_by.iter().all(Option::is_some) {
            break;
        }
    }
    let [Some(subscriber), Some(toucher)] = owned_by else {
        panic!("200 sessions all landed on one shard");
    };
    let mut get = connect(srv.addr);
    let open = format!("GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nMcp-Session-Id: {subscriber}\r\n\r\n");
    get.write_all(open.as_bytes()).unwrap();
    let (mut standalone, _) = SseReader::open(get);
    let subscribe = r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"test://watched-resource"}}"#;
    let (status, _, _) = http(
        srv.addr,
        mcp_post(subscribe, Some(&subscriber), "").as_bytes(),
    );
    assert_eq!(status, 200);
    let touch = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"touch_resource","arguments":{"uri":"test://watched-resource"}}}"#;
    let (status, _, reply) = http(srv.addr, mcp_post(touch, Some(&toucher), "").as_bytes());
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("notified 0 subscriber(s) on this shard"),
        "{text}"
    );
    let (_, note) = standalone.next_json().unwrap();
    assert_eq!(note["method"], "notifications/resources/updated");
    assert_eq!(note["params"]["uri"], "test://watched-resource");
}

#[test]
fn session_cap_and_idle_expiry() {
    let srv = server(|c| {
        c.max_sessions_per_shard = 1;
        c.session_idle_timeout_secs = 1;
    });
    let id = http_session(srv.addr);
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let (status, head, _) = http(srv.addr, mcp_post(init, None, "").as_bytes());
    assert_eq!(status, 503, "over the cap: {head}");
    assert!(header(&head, "retry-after").is_some());
    // Nobody sends DELETE: the idle session expires and frees its slot.
    std::thread::sleep(std::time::Duration::from_millis(2600));
    assert_eq!(
        http(srv.addr, mcp_post(PING, Some(&id), "").as_bytes()).0,
        404,
        "expired"
    );
    http_session(srv.addr);
}

#[test]
fn two_session_ids_are_400() {
    let srv = server(|_| {});
    let id = http_session(srv.addr);
    let other = "00".to_string() + &"b".repeat(32);
    for (first, second) in [(id.as_str(), other.as_str()), (&id, &id)] {
        let twice = mcp_post(PING, Some(first), &format!("Mcp-Session-Id: {second}\r\n"));
        let (status, head, body) = http(srv.addr, twice.as_bytes());
        assert_eq!(status, 400, "{head}");
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert!(err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than one"));
    }
    // The session itself is untouched.
    assert_eq!(
        http(srv.addr, mcp_post(PING, Some(&id), "").as_bytes()).0,
        200
    );
}

#[test]
fn session_ids_answer_only_on_their_own_transport() {
    let srv = server(|_| {});
    let mut sse = connect(srv.addr);
    sse.write_all(b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let (mut events, _) = SseReader::open(sse);
    let endpoint = events.next().unwrap().data;
    let legacy = endpoint.strip_prefix("/messages?sessionId=").unwrap();
    // A legacy id on the Streamable HTTP endpoint...
    assert_eq!(
        http(srv.addr, mcp_post(PING, Some(legacy), "").as_bytes()).0,
        404
    );
    // ...and a Streamable HTTP id on the legacy one name no session there.
    let id = http_session(srv.addr);
    let post = format!(
        "POST /messages?sessionId={id} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{PING}",
        PING.len()
    );
    assert_eq!(http(srv.addr, post.as_bytes()).0, 404);
    // Each still works where it belongs.
    assert_eq!(
        http(srv.addr, mcp_post(PING, Some(&id), "").as_bytes()).0,
        200
    );
    let post = format!(
        "POST {endpoint} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{PING}",
        PING.len()
    );
    assert_eq!(http(srv.addr, post.as_bytes()).0, 202);
}

#[test]
fn shutdown_ends_a_running_post_stream_resumably_within_the_grace_period() {
    let srv = server(|c| c.shutdown_grace_ms = 1_000);
    let id = http_session(srv.addr);
    let slow = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"stream","arguments":{"count":100,"interval_ms":50}}}"#;
    let mut s = connect(srv.addr);
    s.write_all(mcp_post(slow, Some(&id), "").as_bytes())
        .unwrap();
    let (mut events, _) = SseReader::open(s);
    let (first_id, first) = events.next_json().expect("a first notification");
    assert_eq!(first["method"], "notifications/message");
    assert!(first_id.is_some());
    srv.begin_shutdown();
    let mut results = 0;
    while let Some((_, message)) = events.next_json() {
        results += usize::from(message.get("result").is_some());
    }
    assert_eq!(results, 0, "the call takes 5 s, the grace period 1 s");
    // Ended with `retry:` and the last chunk, not cut: the client knows to resume.
    let body = String::from_utf8_lossy(&events.raw).into_owned();
    assert!(body.trim_end().ends_with("retry: 1000"), "{body:?}");
    assert!(events.ended);
}
