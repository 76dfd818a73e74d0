//! The transport's rules without sockets: a request's bytes in, the
//! response's bytes out, for every refusal and every resume rule.

use super::admission::Admission;
use super::http::{route, Next};
use super::streamable::{HttpSessions, SseStream};
use super::{Connection, Env, Flow, Task};
use crate::config::Config;
use crate::mcp::{
    CatalogueChange, Dispatcher, Prompt, PromptResult, Registry, Tool, ToolContext, ToolResult,
};
use crate::metrics::{Limit, Metrics};
use crate::proto::http1::{ChunkedDecoder, Limits, RequestHead};
use crate::proto::origin::OriginPolicy;
use crate::proto::sse::{SseDecoder, SseEvent};
use crate::proto::Status;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

thread_local! {
    /// Tasks the rules started: the test runs them (there is no executor).
    static TASKS: RefCell<Vec<Task>> = const { RefCell::new(Vec::new()) };
    /// Opens the `wait` tool's gate.
    static RELEASED: Cell<bool> = const { Cell::new(false) };
}

fn spawn(task: Task) {
    TASKS.with(|tasks| tasks.borrow_mut().push(task));
}

/// Polls every started task once (they need no waker: the test polls again).
fn run_tasks() {
    let mut tasks = TASKS.with(|tasks| tasks.take());
    tasks.retain_mut(|task| {
        task.as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending()
    });
    TASKS.with(|t| t.borrow_mut().extend(tasks));
}

/// `wait`: reports progress, then waits for the test to release it; `closes`: the same, but
/// ends its response first (SEP-1699); `log`: logs at info.
fn registry() -> Registry {
    Registry::builder()
        .list_changes(true)
        .tool(
            Tool::new(
                "regional",
                "mirrors region in a header",
                json!({"type": "object", "properties": {
                    "region": {"type": "string", "x-mcp-header": "Region"},
                    "limits": {"type": "object", "properties": {
                        "max": {"type": "integer", "x-mcp-header": "Max"}}}}}),
            ),
            |_ctx: ToolContext, _args: Value| async move { Ok(ToolResult::text("ok")) },
        )
        .tool(
            Tool::new(
                "needs_sampling",
                "needs sampling",
                json!({"type": "object"}),
            )
            .requires_client_capability("sampling"),
            |_ctx: ToolContext, _args: Value| async move { Ok(ToolResult::text("sampled")) },
        )
        .tool(
            Tool::new("log", "logs at info", json!({"type": "object"})),
            |ctx: ToolContext, _args: Value| async move {
                ctx.log(crate::mcp::LogLevel::Info, "hello");
                Ok(ToolResult::text("logged"))
            },
        )
        .tool(
            Tool::new("wait", "progress, then wait", json!({"type": "object"})),
            |ctx: ToolContext, _args: Value| async move {
                ctx.progress(1.0, None, Some("started"));
                released().await;
                Ok(ToolResult::text("done"))
            },
        )
        .tool(
            Tool::new(
                "closes",
                "progress, end the response, wait",
                json!({"type": "object"}),
            ),
            |ctx: ToolContext, _args: Value| async move {
                ctx.progress(1.0, None, Some("started"));
                ctx.close_stream();
                released().await;
                Ok(ToolResult::text("closed"))
            },
        )
        .build()
}

/// Completes once the test opens the gate.
async fn released() {
    std::future::poll_fn(|_| {
        if RELEASED.get() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

fn remove_tool(name: &str) -> CatalogueChange {
    CatalogueChange::remove_tool(name)
}

/// One shard's worth of transport state.
struct Shard {
    config: Config,
    policy: OriginPolicy,
    dispatcher: Dispatcher,
    metrics: Rc<Metrics>,
    sessions: HttpSessions,
    admission: RefCell<Admission>,
    auth: Option<super::auth::Authorizer>,
}

/// A response as the client reads it.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// The response in `bytes` (status 0 when nothing was answered: a handoff).
    fn parse(bytes: &[u8]) -> Response {
        if bytes.is_empty() {
            return Response {
                status: 0,
                headers: Vec::new(),
                body: Vec::new(),
            };
        }
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a whole head");
        let head = std::str::from_utf8(&bytes[..end]).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Response {
            status,
            headers,
            body: bytes[end + 4..].to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The JSON-RPC error message of a refusal.
    fn error_message(&self) -> String {
        self.json()["error"]["message"].as_str().unwrap().to_owned()
    }
}

/// The address every request of these tests comes from.
const CLIENT: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

const ACCEPT_BOTH: &str = "accept: application/json, text/event-stream\r\n";
const JSON: &str = "content-type: application/json\r\n";

impl Shard {
    fn new() -> Shard {
        Shard::with(Config::default(), 0, 2)
    }

    fn with(config: Config, index: usize, count: usize) -> Shard {
        Shard::with_store(config, index, count, None)
    }

    fn with_store(
        config: Config,
        index: usize,
        count: usize,
        shared: Option<Rc<crate::store::shared::SharedStore>>,
    ) -> Shard {
        RELEASED.set(false);
        Shard {
            policy: OriginPolicy::new(&config.allowed_origins, &config.allowed_hosts, true),
            dispatcher: Dispatcher::new(Arc::new(registry())),
            metrics: Rc::new(Metrics::default()),
            sessions: HttpSessions::new(index, count, &config, shared),
            admission: RefCell::new(Admission::new(config.admission_limits(), Instant::now())),
            auth: (config
                .auth_settings("127.0.0.1:8080".parse().unwrap())
                .unwrap())
            .map(|settings| super::auth::Authorizer::from_settings(&settings)),
            config,
        }
    }

    fn env(&self) -> Env<'_> {
        Env {
            config: &self.config,
            policy: &self.policy,
            dispatcher: &self.dispatcher,
            metrics: &self.metrics,
            sessions: &self.sessions,
            admission: &self.admission,
            auth: self.auth.as_ref(),
            principal: None,
            peer: Some(CLIENT),
            stopped_at: None,
            spawn,
        }
    }

    /// Routes one request (`head_lines` after the request line, then `body`).
    fn request(&self, request_line: &str, head_lines: &str, body: &str) -> (Next, Response) {
        let raw = format!(
            "{request_line} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n{head_lines}\r\n{body}",
            body.len()
        );
        let (head, used) = match RequestHead::parse(raw.as_bytes(), &Limits::default()) {
            Ok(Status::Complete(head, used)) => (head, used),
            other => panic!("not a whole head: {other:?}"),
        };
        let mut out = Vec::new();
        let body = &raw.as_bytes()[used..];
        let next = route(&self.env(), &head, body, true, &mut out);
        (next, Response::parse(&out))
    }

    /// A refused request's response.
    fn refused(&self, request_line: &str, head_lines: &str, body: &str) -> Response {
        match self.request(request_line, head_lines, body) {
            (Next::KeepGoing, response) => response,
            _ => panic!("{request_line}: expected an answer"),
        }
    }

    fn post(&self, session: Option<&str>, body: &Value) -> (Next, Response) {
        let session = session.map_or(String::new(), |id| format!("mcp-session-id: {id}\r\n"));
        self.request(
            "POST /mcp",
            &format!("{ACCEPT_BOTH}{JSON}{session}"),
            &body.to_string(),
        )
    }

    /// A new session's id.
    fn initialize(&self) -> String {
        let (_, response) = self.post(
            None,
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}}),
        );
        assert_eq!(response.status, 200, "{response:?}");
        response.header("mcp-session-id").unwrap().to_owned()
    }

    fn get(&self, session: &str, last_event_id: Option<&str>) -> (Next, Response) {
        let resume = last_event_id.map_or(String::new(), |id| format!("last-event-id: {id}\r\n"));
        self.request(
            "GET /mcp",
            &format!("accept: text/event-stream\r\nmcp-session-id: {session}\r\n{resume}"),
            "",
        )
    }

    fn call_wait(&self, session: &str, id: u64) -> SseStream {
        self.call_streaming(session, id, "wait")
    }

    /// Calls `tool` (one that reports progress before it answers) as request `id`.
    fn call_streaming(&self, session: &str, id: u64, tool: &str) -> SseStream {
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": tool, "arguments": {}, "_meta": {"progressToken": id}}});
        match self.post(Some(session), &call) {
            (Next::Stream(stream), response) => {
                assert_eq!(response.status, 200);
                assert_eq!(response.header("content-type"), Some("text/event-stream"));
                stream
            }
            (_, response) => panic!("expected a stream: {response:?}"),
        }
    }
}

/// The SSE events queued on `stream` so far (taking them out of its queue).
fn events(stream: &SseStream, chunks: &mut ChunkedDecoder) -> Vec<SseEvent> {
    let bytes = stream.outbound().with_bytes(std::mem::take);
    let mut body = Vec::new();
    chunks.decode(&bytes, &mut body).expect("chunked framing");
    let mut decoder = SseDecoder::new(1 << 20);
    let mut events = Vec::new();
    let mut at = 0;
    while let Ok(Status::Complete(event, used)) = decoder.decode(&body[at..]) {
        events.push(event);
        at += used;
    }
    events
}

fn ids(events: &[SseEvent]) -> Vec<&str> {
    events.iter().filter_map(|e| e.id.as_deref()).collect()
}

#[test]
fn every_refusal_has_its_status_and_says_why() {
    let shard = Shard::new();
    let session = shard.initialize();
    let with_session = format!("mcp-session-id: {session}\r\n");
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let cases: &[(&str, String, &str, u16, &str)] = &[
        // MCP 2025-11-25 (transports): the POST "MUST include an Accept header, listing both".
        (
            "POST /mcp",
            format!("accept: application/json\r\n{JSON}{with_session}"),
            ping,
            406,
            "Accept must list",
        ),
        (
            "POST /mcp",
            format!("{ACCEPT_BOTH}content-type: text/plain\r\n{with_session}"),
            ping,
            415,
            "Content-Type",
        ),
        (
            "POST /mcp",
            format!("{ACCEPT_BOTH}{JSON}mcp-protocol-version: 1999-01-01\r\n{with_session}"),
            ping,
            400,
            "MCP-Protocol-Version 1999-01-01",
        ),
        (
            "POST /mcp",
            format!("{ACCEPT_BOTH}{JSON}"),
            ping,
            400,
            "Mcp-Session-Id is required",
        ),
        (
            "POST /mcp",
            format!("{ACCEPT_BOTH}{JSON}{with_session}{with_session}"),
            ping,
            400,
            "more than one",
        ),
        (
            "POST /mcp",
            format!("{ACCEPT_BOTH}{JSON}mcp-session-id: 00ffffffffffffffffffffffffffffffff\r\n"),
            ping,
            404,
            "no such session",
        ),
        (
            "GET /mcp",
            format!("accept: application/json\r\n{with_session}"),
            "",
            406,
            "text/event-stream",
        ),
        (
            "GET /mcp",
            format!("accept: text/event-stream\r\n{with_session}last-event-id: 1-x\r\n"),
            "",
            400,
            "Last-Event-ID",
        ),
        (
            "GET /mcp",
            format!("accept: text/event-stream\r\n{with_session}last-event-id: 7-0\r\n"),
            "",
            410,
            "Gone",
        ),
        (
            "POST /messages?sessionId=nope",
            JSON.to_owned(),
            ping,
            404,
            "no such session",
        ),
        (
            "POST /messages",
            JSON.to_owned(),
            ping,
            400,
            "sessionId query parameter is required",
        ),
    ];
    for (request_line, head, body, status, says) in cases {
        let response = shard.refused(request_line, head, body);
        assert_eq!(response.status, *status, "{request_line} {head:?}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        let message = response.error_message();
        assert!(message.contains(says), "{request_line}: {message:?}");
    }
}

#[test]
fn methods_paths_and_upgrades_are_refused_in_text() {
    let config = Config {
        echo: true,
        ..Config::default()
    };
    let shard = Shard::with(config, 0, 1);
    // Request line, head lines, status, a header it must carry.
    type Case<'a> = (&'a str, &'a str, u16, Option<(&'a str, &'a str)>);
    let cases: &[Case] = &[
        ("PUT /mcp", "", 405, Some(("allow", "GET, POST, DELETE"))),
        ("POST /sse", "", 405, Some(("allow", "GET"))),
        ("GET /messages", "", 405, Some(("allow", "POST"))),
        ("POST /healthz", "", 405, Some(("allow", "GET, HEAD"))),
        ("GET /nowhere", "", 404, None),
        ("GET /echo", "", 426, Some(("sec-websocket-version", "13"))),
        ("POST /echo", "", 405, Some(("allow", "GET"))),
        (
            "GET /mcp",
            "upgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 8\r\n",
            426,
            Some(("sec-websocket-version", "13")),
        ),
        ("GET /healthz", "origin: http://evil.example\r\n", 403, None),
    ];
    for (request_line, head, status, header) in cases {
        let response = shard.refused(request_line, head, "");
        assert_eq!(response.status, *status, "{request_line}");
        assert!(response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain"));
        if let Some((name, value)) = header {
            assert_eq!(response.header(name), Some(*value), "{request_line}");
        }
    }
    let response = shard.refused("GET /healthz", "", "");
    assert_eq!((response.status, &response.body[..]), (200, &b"ok\n"[..]));
}

#[test]
fn pages_on_allowed_origins_get_cors_answers_and_others_are_refused() {
    let shard = Shard::new();
    let page = "origin: http://localhost:6274\r\n";
    let preflight = format!(
        "{page}access-control-request-method: POST\r\n\
         access-control-request-headers: Content-Type, MCP-Protocol-Version, mcp-param-region, x-evil\r\n"
    );
    let answer = shard.refused("OPTIONS /mcp", &preflight, "");
    assert_eq!(answer.status, 204);
    assert_eq!(answer.header("content-length"), None);
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("http://localhost:6274")
    );
    assert_eq!(answer.header("vary"), Some("origin"));
    assert_eq!(
        answer.header("access-control-allow-methods"),
        Some("GET, POST, DELETE")
    );
    // Only the headers a page may send are granted: the browser refuses the rest.
    assert_eq!(
        answer.header("access-control-allow-headers"),
        Some("content-type, mcp-protocol-version, mcp-param-region")
    );
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "page", "version": "1"}}});
    let (_, response) = shard.request(
        "POST /mcp",
        &format!("{ACCEPT_BOTH}{JSON}{page}"),
        &initialize.to_string(),
    );
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("http://localhost:6274")
    );
    assert_eq!(
        response.header("access-control-expose-headers"),
        Some("mcp-session-id, mcp-protocol-version, www-authenticate")
    );
    assert!(response.header("mcp-session-id").is_some());
    // Refusals on an allowed origin carry the headers too, so the page can read why.
    let refusal = shard.refused("PUT /mcp", page, "");
    assert_eq!(
        (
            refusal.status,
            refusal.header("access-control-allow-origin")
        ),
        (405, Some("http://localhost:6274"))
    );
    // Another origin: refused as before, preflight included, and never named.
    let evil = "origin: http://evil.example\r\naccess-control-request-method: POST\r\n";
    let refused = shard.refused("OPTIONS /mcp", evil, "");
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("access-control-allow-origin"), None);
    // No Origin, no CORS headers (non-browser clients).
    let plain = shard.refused("GET /healthz", "", "");
    assert_eq!(plain.header("access-control-allow-origin"), None);
}

#[test]
fn a_full_shard_refuses_sessions_with_retry_after() {
    let config = Config {
        max_sessions_per_shard: 1,
        ..Config::default()
    };
    let shard = Shard::with(config, 0, 1);
    shard.initialize();
    let (_, response) = shard.post(
        None,
        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
    );
    assert_eq!(response.status, 503);
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(response.error_message().contains("session limit"));
    let legacy = shard.refused("GET /sse", "", "");
    assert_eq!(legacy.status, 503);
}

#[test]
fn invalid_json_rpc_is_a_400_with_the_parse_error() {
    let shard = Shard::new();
    let (_, response) = shard.post(None, &json!("not an object"));
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["error"]["code"], -32600);
    let response = shard.refused("POST /mcp", &format!("{ACCEPT_BOTH}{JSON}"), "{");
    assert_eq!(response.json()["error"]["code"], -32700);
}

#[test]
fn another_shards_session_is_handed_over_and_a_deleted_one_is_gone() {
    let ours = Shard::with(Config::default(), 0, 2);
    let theirs = Shard::with(Config::default(), 1, 2);
    let session = theirs.initialize();
    assert!(matches!(ours.get(&session, None).0, Next::Handoff(1)));
    let delete = format!("mcp-session-id: {session}\r\n");
    assert_eq!(theirs.refused("DELETE /mcp", &delete, "").status, 200);
    // MCP: after the session ends the server "MUST respond to requests containing that
    // session ID with HTTP 404 Not Found".
    assert_eq!(theirs.refused("DELETE /mcp", &delete, "").status, 404);
    // A session id answers only on the transport that made it.
    let legacy = match theirs.request("GET /sse", "", "") {
        (Next::Stream(stream), _) => stream,
        _ => panic!("legacy stream"),
    };
    let endpoint = events(&legacy, &mut ChunkedDecoder::new(1 << 20));
    let legacy_id = endpoint[0].data.rsplit('=').next().unwrap().to_owned();
    assert_eq!(theirs.get(&legacy_id, None).1.status, 404);
}

#[test]
fn a_post_stream_resumes_after_its_last_event_and_ends_with_the_result() {
    let shard = Shard::new();
    let session = shard.initialize();
    let mut stream = shard.call_wait(&session, 7);
    let mut chunks = ChunkedDecoder::new(1 << 20);
    let first = events(&stream, &mut chunks);
    // SEP-1699: the priming event first (an id to resume from, no data), then the progress.
    // (Stream 1 was initialize's, answered as plain JSON.)
    assert_eq!(ids(&first), ["2-0", "2-1"]);
    assert!(first[0].data.is_empty() && first[0].retry.is_some());
    assert!(first[1].data.contains("notifications/progress"));
    // The client loses the stream; the handler is still waiting.
    stream.on_end(&shard.env());
    drop(stream);
    let resumed = match shard.get(&session, Some("2-0")) {
        (Next::Stream(resumed), response) => {
            assert_eq!(response.status, 200);
            resumed
        }
        (_, response) => panic!("resume refused: {response:?}"),
    };
    let mut chunks = ChunkedDecoder::new(1 << 20);
    let replayed = events(&resumed, &mut chunks);
    assert_eq!(
        ids(&replayed),
        ["2-0", "2-1"],
        "primer, then exactly what came after 2-0"
    );
    RELEASED.set(true);
    run_tasks();
    let rest = events(&resumed, &mut chunks);
    assert_eq!(ids(&rest), ["2-2"]);
    assert_eq!(
        serde_json::from_str::<Value>(&rest[0].data).unwrap()["id"],
        7
    );
    // The result ends the HTTP response: the connection may carry the next request.
    assert!(chunks.is_done());
    assert_eq!(
        resumed.when_flushed(),
        super::FlushedFlow::Finish(Flow::Reusable)
    );
    // A finished stream still replays (within its ring), and then ends at once.
    let (next, _) = shard.get(&session, Some("2-1"));
    let Next::Stream(again) = next else {
        panic!("finished streams replay")
    };
    let mut chunks = ChunkedDecoder::new(1 << 20);
    assert_eq!(ids(&events(&again, &mut chunks)), ["2-1", "2-2"]);
    assert!(chunks.is_done());
    // An id the stream never reached was never sent: resuming from it would be a guess.
    assert_eq!(shard.get(&session, Some("2-9")).1.status, 400);
}

#[test]
fn one_standalone_stream_per_session_and_shutdown_ends_it_resumably() {
    let shard = Shard::new();
    let session = shard.initialize();
    let Next::Stream(mut standalone) = shard.get(&session, None).0 else {
        panic!("standalone stream")
    };
    let second = shard.get(&session, None).1;
    assert_eq!(second.status, 409);
    assert!(second.error_message().contains("already open"));
    let mut chunks = ChunkedDecoder::new(1 << 20);
    assert_eq!(ids(&events(&standalone, &mut chunks)), ["0-0"]);
    standalone.on_stop(&shard.env(), Instant::now());
    let last = events(&standalone, &mut chunks);
    assert_eq!(last.len(), 0, "a retry field alone dispatches no event");
    assert!(
        chunks.is_done(),
        "the response ends so the client comes back"
    );
    standalone.on_end(&shard.env());
    // Detached: a new GET may open it again.
    assert!(matches!(shard.get(&session, None).0, Next::Stream(_)));
}

#[test]
fn a_request_stream_outlives_the_stop_until_three_quarters_of_the_grace() {
    let shard = Shard::new();
    let session = shard.initialize();
    let mut stream = shard.call_wait(&session, 3);
    let mut chunks = ChunkedDecoder::new(1 << 20);
    events(&stream, &mut chunks);
    let now = Instant::now();
    let stopped = Env {
        stopped_at: Some(now),
        ..shard.env()
    };
    stream.on_stop(&stopped, now);
    assert!(!chunks.is_done());
    let cutoff = now + shard.config.shutdown_grace() * 3 / 4;
    assert_eq!(stream.next_deadline(&stopped), cutoff);
    assert_eq!(stream.on_timer(&stopped, cutoff), Flow::Continue);
    events(&stream, &mut chunks);
    assert!(chunks.is_done(), "ended with retry at the cutoff");
    // Ended, it waits for its last bytes to be written, not for the cutoff again.
    assert!(stream.next_deadline(&stopped) > cutoff);
}

#[test]
fn an_sse_reader_that_stalls_is_ended_after_the_slow_reader_timeout() {
    let config = Config {
        max_outbound_bytes: 256,
        ..Config::default()
    };
    let shard = Shard::with(config, 0, 1);
    let session = shard.initialize();
    let mut stream = shard.call_wait(&session, 5);
    // The reader took nothing of a queue at its bound.
    stream.put_first(&mut vec![b'x'; 256]);
    let t0 = Instant::now();
    assert!(stream.outbound().is_full());
    stream.outbound().watch_stall(false, || t0);
    let timeout = shard.config.slow_reader_timeout();
    assert!(stream.next_deadline(&shard.env()) <= t0 + timeout);
    assert_eq!(
        stream.on_timer(&shard.env(), t0 + timeout - Duration::from_millis(1)),
        Flow::Continue
    );
    assert_eq!(stream.on_timer(&shard.env(), t0 + timeout), Flow::Drop);
}

/// A shard whose clients may send `per_second` messages a second after a burst of `burst`.
fn rate_limited(per_second: u32, burst: u32) -> Shard {
    let config = Config {
        max_requests_per_sec: per_second,
        request_burst: burst,
        ..Config::default()
    };
    Shard::with(config, 0, 1)
}

#[test]
fn a_post_over_the_request_rate_gets_429_with_retry_after_and_a_json_rpc_error() {
    let shard = rate_limited(1, 3);
    let session = shard.initialize();
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    // The burst (initialize was its first) passes whatever the clock says.
    for _ in 0..2 {
        assert_eq!(shard.post(Some(&session), &ping).1.status, 200);
    }
    // At one a second, 20 more in a row meet a refusal unless the test takes 17 s.
    let refused = (0..20)
        .map(|_| shard.post(Some(&session), &ping).1)
        .find(|response| response.status == 429)
        .expect("a request over the rate");
    // RFC 6585 §4: 429 "MAY include a Retry-After header".
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["error"]["code"], -32000);
    assert!(
        refused.error_message().contains("rate limited"),
        "{refused:?}"
    );
    assert!(shard.metrics.limits[Limit::RequestRate as usize].get() >= 1);
    // Only JSON-RPC is counted: the shard's other endpoints still answer.
    assert_eq!(shard.refused("GET /healthz", "", "").status, 200);
}

#[test]
fn a_legacy_request_over_the_rate_gets_its_error_on_the_stream() {
    let shard = rate_limited(1, 1);
    let stream = match shard.request("GET /sse", "", "") {
        (Next::Stream(stream), _) => stream,
        _ => panic!("legacy stream"),
    };
    let mut chunks = ChunkedDecoder::new(1 << 20);
    let endpoint = events(&stream, &mut chunks)[0].data.clone();
    let post = |body: Value| {
        let line = format!("POST {endpoint}");
        shard.refused(&line, JSON, &body.to_string())
    };
    // Requests are answered 202 whatever happens; over the rate, the answer on the stream is
    // a -32000 error carrying the request's id, for the client waits for that id there.
    for id in 1..=20 {
        let ping = json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
        assert_eq!(post(ping).status, 202);
    }
    let replies: Vec<Value> = events(&stream, &mut chunks)
        .iter()
        .map(|event| serde_json::from_str(&event.data).unwrap())
        .collect();
    assert_eq!(replies.len(), 20, "{replies:?}");
    assert!(replies[0].get("result").is_some(), "{replies:?}");
    let refused: Vec<&Value> = replies
        .iter()
        .filter(|r| r.get("error").is_some())
        .collect();
    assert!(!refused.is_empty(), "{replies:?}");
    for error in refused {
        assert_eq!(error["error"]["code"], -32000);
        assert!(error["id"].as_u64().is_some_and(|id| id > 1), "{error}");
    }
    // A notification has no reply to carry the refusal: its POST gets the 429.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let refused = (0..20)
        .map(|_| post(note.clone()))
        .find(|response| response.status == 429)
        .expect("a notification over the rate");
    assert_eq!(refused.header("retry-after"), Some("1"));
}

mod websocket {
    use super::*;
    use crate::proto::ws::{encode_close, encode_frame, CloseCode, Decoder, Event, OpCode, Role};
    use crate::transport::ws::{WsConnection, WsKind};
    use crate::transport::FlushedFlow;

    const MASK: Option<[u8; 4]> = Some([1, 2, 3, 4]);

    fn frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, opcode, true, payload, MASK);
        bytes
    }

    /// What the server queued, as the client decodes it: (opcode, payload or close code).
    fn written(ws: &WsConnection) -> Vec<(OpCode, String)> {
        let mut bytes = ws.outbound().with_bytes(std::mem::take);
        // Compressed replies are inflated like the rest (permessage-deflate connections).
        let mut decoder = Decoder::new(Role::Client, 1 << 20).with_deflate();
        let mut seen = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let decoded = decoder
                .decode(&mut bytes[at..])
                .expect("a valid server frame");
            at += decoded.consumed;
            seen.push(match decoded.event {
                Some(Event::Text(text)) => (OpCode::Text, text.to_owned()),
                Some(Event::Binary(data)) => (OpCode::Binary, format!("{data:?}")),
                Some(Event::Ping(data)) => (OpCode::Ping, String::from_utf8_lossy(data).into()),
                Some(Event::Pong(data)) => (OpCode::Pong, String::from_utf8_lossy(data).into()),
                Some(Event::Close(close)) => {
                    (OpCode::Close, close.map_or(0, |c| c.code.0).to_string())
                }
                None => continue,
            });
        }
        seen
    }

    fn open(shard: &Shard, kind: WsKind, now: Instant) -> WsConnection {
        WsConnection::new(kind, None, &shard.config, &shard.metrics, now, None)
    }

    /// An echo connection that agreed on permessage-deflate.
    fn open_deflate(shard: &Shard, now: Instant) -> WsConnection {
        use crate::proto::ws::deflate;
        let agreed = deflate::accept_offer([&b"permessage-deflate"[..]].into_iter());
        assert!(agreed.is_some());
        WsConnection::new(
            WsKind::Echo,
            agreed,
            &shard.config,
            &shard.metrics,
            now,
            None,
        )
    }

    #[test]
    fn deflate_connections_compress_large_replies_and_refuse_a_bomb_with_1009() {
        use crate::metrics::ErrorKind;
        use flate2::{Compress, Compression, FlushCompress};
        let shard = Shard::new();
        let now = Instant::now();
        let config = &shard.config;
        let mut ws = open_deflate(&shard, now);
        // Over --ws-deflate-min-bytes: echoed compressed (RSV1), and it inflates back.
        let big = "0123456789abcdef".repeat(100);
        ws.on_input(&mut frame(OpCode::Text, big.as_bytes()), &shard.env(), now);
        let queued = ws.outbound().with_bytes(|bytes| bytes[0]);
        assert_eq!(queued & 0x40, 0x40, "RSV1 set");
        assert_eq!(written(&ws), [(OpCode::Text, big)]);
        // --max-message-bytes zeros and more, compressed to a few KB: 1009 while inflating.
        let zeros = vec![0; config.max_message_bytes * 4];
        let mut bomb = Vec::with_capacity(16 * 1024);
        Compress::new(Compression::best(), false)
            .compress_vec(&zeros, &mut bomb, FlushCompress::Sync)
            .unwrap();
        assert!(bomb.len() < 16 * 1024, "{} bytes", bomb.len());
        let mut input = frame(OpCode::Binary, &bomb);
        input[0] |= 0x40;
        ws.on_input(&mut input, &shard.env(), now);
        assert_eq!(written(&ws), [(OpCode::Close, "1009".into())]);
        let refused = shard.metrics.errors[ErrorKind::WsProtocol as usize].get();
        assert_eq!(refused, 1);
        assert_eq!(ws.when_flushed(), FlushedFlow::HalfClose);
    }

    #[test]
    fn an_idle_deflate_connection_keeps_no_inflated_message() {
        use flate2::{Compress, Compression, FlushCompress};
        let shard = Shard::new();
        let now = Instant::now();
        let mut ws = open_deflate(&shard, now);
        let big = "0123456789abcdef".repeat(2048);
        let mut compressed = Vec::with_capacity(big.len());
        Compress::new(Compression::fast(), false)
            .compress_vec(big.as_bytes(), &mut compressed, FlushCompress::Sync)
            .unwrap();
        let mut input = frame(OpCode::Text, &compressed);
        input[0] |= 0x40;
        ws.on_input(&mut input, &shard.env(), now);
        assert_eq!(written(&ws), [(OpCode::Text, big)]);
        // The message was inflated into the decoder's buffer and handled: with no next read
        // to come, the connection must not keep it (it held 35 KB per connection before).
        assert_eq!(ws.decoder_allocated(), 0);
    }

    #[test]
    fn pings_are_answered_and_mcp_is_text_only() {
        let shard = Shard::new();
        let now = Instant::now();
        let mut ws = open(&shard, WsKind::Mcp, now);
        let mut input = frame(OpCode::Ping, b"hi");
        input.extend(frame(
            OpCode::Text,
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        ));
        ws.on_input(&mut input, &shard.env(), now);
        let out = written(&ws);
        assert_eq!(out[0], (OpCode::Pong, "hi".into()));
        assert_eq!(out[1].0, OpCode::Text);
        assert!(out[1].1.contains(r#""id":1"#));
        // RFC 6455 §7.4.1: 1003 for "a type of data it cannot accept".
        let mut binary = frame(OpCode::Binary, b"\x00");
        ws.on_input(&mut binary, &shard.env(), now);
        assert_eq!(written(&ws), [(OpCode::Close, "1003".into())]);
        assert_eq!(ws.when_flushed(), FlushedFlow::HalfClose);
        // After our Close, nothing more is sent (§5.5.1), not even a late reply.
        assert!(!ws.outbound().push(|b| b.push(0)));
    }

    #[test]
    fn an_authorized_websocket_refuses_a_tool_without_its_scope_and_closes_when_its_token_expires()
    {
        use crate::auth::Principal;
        let shard = authorizing();
        let now = Instant::now();
        let lifetime = 60;
        let scopes = ["mcp:tools".to_string()].into_iter().collect();
        let expires_at = crate::transport::auth::unix_now() + lifetime;
        let alice = Principal::new(AUTH_ISSUER.into(), "alice".into(), None, scopes, expires_at);
        let mut ws = WsConnection::new(
            WsKind::Mcp,
            None,
            &shard.config,
            &shard.metrics,
            now,
            Some(Rc::new(alice.unwrap())),
        );
        // `add` needs mcp:admin too: JSON-RPC -32003 naming both scopes, the connection open.
        let mut call = frame(
            OpCode::Text,
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2}}}"#,
        );
        ws.on_input(&mut call, &shard.env(), now);
        let out = written(&ws);
        assert_eq!(out.len(), 1, "{out:?}");
        let refusal: Value = serde_json::from_str(&out[0].1).unwrap();
        assert_eq!(refusal["id"], 7);
        assert_eq!(refusal["error"]["code"], -32003);
        assert_eq!(refusal["error"]["data"]["scope"], "mcp:tools mcp:admin");
        // Past the token's expiry (wall clock and this clock may differ by a second): 1008.
        let after = now + Duration::from_secs(lifetime + 2);
        ws.on_timer(&shard.env(), after);
        assert_eq!(written(&ws), [(OpCode::Close, "1008".into())]);
    }

    #[test]
    fn a_close_is_echoed_and_ends_the_connection() {
        let shard = Shard::new();
        let now = Instant::now();
        let mut ws = open(&shard, WsKind::Echo, now);
        let mut input = Vec::new();
        encode_close(&mut input, CloseCode::NORMAL, "bye", MASK);
        ws.on_input(&mut input, &shard.env(), now);
        assert_eq!(written(&ws), [(OpCode::Close, "1000".into())]);
        assert_eq!(ws.when_flushed(), FlushedFlow::Finish(Flow::Drop));
    }

    #[test]
    fn a_peer_that_does_not_read_our_answering_close_is_dropped_at_the_close_timeout() {
        let shard = Shard::new();
        let config = &shard.config;
        let t0 = Instant::now();
        let mut ws = open(&shard, WsKind::Echo, t0);
        let mut input = Vec::new();
        encode_close(&mut input, CloseCode::NORMAL, "bye", MASK);
        let closed_at = t0 + Duration::from_secs(1);
        ws.on_input(&mut input, &shard.env(), closed_at);
        // Our Close stays queued (the peer reads nothing): no ping, no endless pong deadline,
        // the close timeout ends it.
        let due = ws.next_deadline(&shard.env());
        assert_eq!(due, closed_at + config.close_timeout());
        assert_eq!(
            ws.on_timer(&shard.env(), due - Duration::from_millis(1)),
            Flow::Continue
        );
        assert_eq!(ws.on_timer(&shard.env(), due), Flow::Drop);
        assert_eq!(written(&ws), [(OpCode::Close, "1000".into())]);
    }

    #[test]
    fn an_idle_peer_is_pinged_then_closed_and_then_dropped() {
        let shard = Shard::new();
        let config = &shard.config;
        let t0 = Instant::now();
        let mut ws = open(&shard, WsKind::Mcp, t0);
        let ping_at = ws.next_deadline(&shard.env());
        assert_eq!(ping_at, t0 + config.ws_ping_interval());
        assert_eq!(ws.on_timer(&shard.env(), ping_at), Flow::Continue);
        assert_eq!(written(&ws), [(OpCode::Ping, "ringmcp".into())]);
        let pong_due = ws.next_deadline(&shard.env());
        assert_eq!(pong_due, ping_at + config.ws_pong_timeout());
        ws.on_timer(&shard.env(), pong_due);
        assert_eq!(written(&ws), [(OpCode::Close, "1001".into())]);
        let give_up = ws.next_deadline(&shard.env());
        assert_eq!(give_up, pong_due + config.close_timeout());
        assert_eq!(ws.on_timer(&shard.env(), give_up), Flow::Drop);
    }

    #[test]
    fn a_message_not_completed_in_time_is_a_policy_close() {
        let shard = Shard::new();
        let t0 = Instant::now();
        let mut ws = open(&shard, WsKind::Echo, t0);
        let whole = frame(OpCode::Text, b"hello");
        let mut part = whole[..3].to_vec();
        ws.on_input(&mut part, &shard.env(), t0);
        let due = ws.next_deadline(&shard.env());
        assert_eq!(due, t0 + shard.config.fragment_timeout());
        ws.on_timer(&shard.env(), due);
        assert_eq!(written(&ws), [(OpCode::Close, "1008".into())]);
    }

    #[test]
    fn a_peer_that_does_not_read_is_held_then_closed() {
        let config = Config {
            max_outbound_bytes: 64,
            ..Config::default()
        };
        let shard = Shard::with(config, 0, 1);
        let t0 = Instant::now();
        let mut ws = open(&shard, WsKind::Mcp, t0);
        let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let mut input = Vec::new();
        for _ in 0..8 {
            input.extend(frame(OpCode::Text, ping.as_bytes()));
        }
        ws.on_input(&mut input, &shard.env(), t0);
        // Two replies (38 bytes each) fill the 64-byte bound: dispatch stops there, the rest
        // waits, and nothing more is read.
        assert!(ws.outbound().is_full());
        assert!(ws.is_holding());
        assert!(!ws.wants_read(input.len(), &shard.config));
        assert!(matches!(
            ws.outbound().watch_stall(true, || t0),
            crate::transport::outbound::Stall::Started(_)
        ));
        // Each time the reader takes everything, the held input goes on, two more replies.
        for round in 1..=4 {
            assert_eq!(written(&ws).len(), 2, "round {round}");
            assert_eq!(ws.is_holding(), round < 4);
            ws.on_input(&mut input, &shard.env(), t0);
        }
        assert!(input.is_empty());
        // A reader that never takes anything is closed after the slow-reader timeout.
        let mut more = frame(OpCode::Text, ping.as_bytes()).repeat(8);
        ws.on_input(&mut more, &shard.env(), t0);
        ws.outbound().watch_stall(ws.is_holding(), || t0);
        let due = ws.next_deadline(&shard.env());
        assert!(due <= t0 + shard.config.slow_reader_timeout());
        ws.on_timer(&shard.env(), t0 + shard.config.slow_reader_timeout());
        let closes: Vec<_> = written(&ws)
            .into_iter()
            .filter(|(op, _)| *op == OpCode::Close)
            .collect();
        assert_eq!(closes, [(OpCode::Close, "1008".into())]);
    }

    fn text(value: Value) -> Vec<u8> {
        frame(OpCode::Text, value.to_string().as_bytes())
    }

    fn modern_meta() -> Value {
        json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientCapabilities": {}})
    }

    /// The JSON of each text frame queued.
    fn replies(ws: &WsConnection) -> Vec<Value> {
        written(ws)
            .into_iter()
            .filter(|(op, _)| *op == OpCode::Text)
            .map(|(_, t)| serde_json::from_str(&t).unwrap())
            .collect()
    }

    #[test]
    fn a_first_message_with_2026_meta_makes_every_message_a_request_of_its_own() {
        let shard = Shard::new();
        let now = Instant::now();
        let mut ws = open(&shard, WsKind::Mcp, now);
        let mut input = text(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
            "params": {"_meta": modern_meta()}}));
        // Removed in the revision, a _meta without its required fields, another revision.
        input.extend(text(json!({"jsonrpc": "2.0", "id": 2, "method": "ping",
            "params": {"_meta": modern_meta()}})));
        input.extend(text(
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list",
            "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}}),
        ));
        input.extend(text(
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list",
            "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2025-11-25",
                                 "io.modelcontextprotocol/clientCapabilities": {}}}}),
        ));
        ws.on_input(&mut input, &shard.env(), now);
        let replies = replies(&ws);
        assert_eq!(replies[0]["result"]["resultType"], "complete");
        assert!(replies[0]["result"]["tools"].is_array());
        let errors: Vec<_> = replies[1..]
            .iter()
            .map(|r| (r["id"].clone(), r["error"]["code"].clone()))
            .collect();
        assert_eq!(
            errors,
            [
                (json!(2), json!(-32601)),
                (json!(3), json!(-32602)),
                (json!(4), json!(-32022))
            ]
        );
    }

    #[test]
    fn notifications_cancelled_stops_a_2026_request_on_a_websocket() {
        let shard = Shard::new();
        let now = Instant::now();
        let mut ws = open(&shard, WsKind::Mcp, now);
        let mut meta = modern_meta();
        meta["progressToken"] = json!("p");
        let mut input = text(json!({"jsonrpc": "2.0", "id": "w", "method": "tools/call",
            "params": {"name": "wait", "arguments": {}, "_meta": meta}}));
        ws.on_input(&mut input, &shard.env(), now);
        assert!(replies(&ws)[0]["method"] == "notifications/progress");
        assert_eq!(TASKS.with(|t| t.borrow().len()), 1);
        let mut cancel = text(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": "w"}}),
        );
        ws.on_input(&mut cancel, &shard.env(), now);
        run_tasks();
        assert_eq!(
            TASKS.with(|t| t.borrow().len()),
            0,
            "the handler was dropped"
        );
        assert!(replies(&ws).is_empty(), "no reply for a cancelled request");
    }

    #[test]
    fn listen_streams_on_a_websocket_are_told_apart_by_subscription_id() {
        let shard = Shard::new();
        let now = Instant::now();
        let mut ws = open(&shard, WsKind::Mcp, now);
        let listen = |id: Value| {
            text(
                json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
                "params": {"notifications": {"toolsListChanged": true}, "_meta": modern_meta()}}),
            )
        };
        let mut input = listen(json!(1));
        input.extend(listen(json!("two")));
        ws.on_input(&mut input, &shard.env(), now);
        let acks: Vec<Value> = replies(&ws)
            .iter()
            .map(|r| r["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"].clone())
            .collect();
        assert_eq!(acks, [json!(1), json!("two")]);
        shard.dispatcher.change_catalogue(remove_tool("log"));
        assert_eq!(replies(&ws).len(), 2);
        // The client ends one the stdio way; the other hears the next change alone.
        let mut cancel = text(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 1}}),
        );
        ws.on_input(&mut cancel, &shard.env(), now);
        run_tasks();
        shard.dispatcher.change_catalogue(remove_tool("wait"));
        let tags: Vec<Value> = replies(&ws)
            .iter()
            .map(|r| r["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"].clone())
            .collect();
        assert_eq!(tags, [json!("two")]);
    }

    #[test]
    fn a_2026_request_reusing_a_running_id_is_refused() {
        let shard = Shard::new();
        let now = Instant::now();
        let mut ws = open(&shard, WsKind::Mcp, now);
        let wait = || {
            text(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": "wait", "arguments": {}, "_meta": modern_meta()}}))
        };
        let mut input = wait();
        input.extend(wait());
        ws.on_input(&mut input, &shard.env(), now);
        let replies = replies(&ws);
        assert_eq!(replies.len(), 1, "{replies:?}");
        assert_eq!(
            (&replies[0]["id"], &replies[0]["error"]["code"]),
            (&json!(7), &json!(-32600))
        );
        assert_eq!(TASKS.with(|t| t.borrow().len()), 1, "the first still runs");
    }

    #[test]
    fn an_initialize_first_keeps_the_2025_session() {
        let shard = Shard::new();
        let now = Instant::now();
        let mut ws = open(&shard, WsKind::Mcp, now);
        let mut input = text(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}));
        input.extend(text(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})));
        ws.on_input(&mut input, &shard.env(), now);
        let replies = replies(&ws);
        assert_eq!(replies[0]["result"]["protocolVersion"], "2025-11-25");
        assert_eq!(replies[1]["result"], json!({}));
    }

    #[test]
    fn the_inbound_budget_refusal_is_1009() {
        let shard = Shard::new();
        let now = Instant::now();
        let mut ws = open(&shard, WsKind::Echo, now);
        let mut part = frame(OpCode::Text, b"hello")[..4].to_vec();
        ws.on_input(&mut part, &shard.env(), now);
        assert!(ws.inbound_held(&part) > 0);
        ws.over_inbound_budget(&mut part, &shard.env());
        assert!(part.is_empty());
        assert_eq!(written(&ws), [(OpCode::Close, "1009".into())]);
        assert_eq!(ws.inbound_held(&part), 0);
    }

    #[test]
    fn every_message_over_the_request_rate_closes_the_websocket_with_1008() {
        let shard = rate_limited(1, 2);
        let now = Instant::now();
        let mut ws = open(&shard, WsKind::Mcp, now);
        let ping = |id: u32| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
        let mut input = frame(OpCode::Text, ping(1).as_bytes());
        ws.on_input(&mut input, &shard.env(), now);
        assert_eq!(written(&ws).len(), 1);
        // A second on: one token back, plus the burst's second. Each message of a frame
        // counts: the third of these is over the rate, and nothing after it is dispatched.
        let later = now + Duration::from_secs(1);
        let text = [ping(2), ping(3), ping(4), ping(5)].join("\n");
        let mut input = frame(OpCode::Text, text.as_bytes());
        ws.on_input(&mut input, &shard.env(), later);
        let out = written(&ws);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[0].1.contains(r#""id":2"#) && out[1].1.contains(r#""id":3"#));
        // RFC 6455 §7.4.1: 1008, "a message that violates its policy".
        assert_eq!(out[2], (OpCode::Close, "1008".into()));
        assert_eq!(ws.when_flushed(), FlushedFlow::HalfClose);
        assert_eq!(shard.metrics.limits[Limit::RequestRate as usize].get(), 1);
    }
}

mod stateless {
    use super::*;

    const VERSION: &str = "2026-07-28";

    fn meta() -> Value {
        json!({
            "io.modelcontextprotocol/protocolVersion": VERSION,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
        })
    }

    /// A 2026-07-28 request with `params` (whose `_meta` is added unless it has one) and
    /// the standard headers, `headers` replacing them when given.
    fn request(
        shard: &Shard,
        method: &str,
        params: Value,
        headers: Option<&str>,
    ) -> (Next, Response) {
        let mut params = params;
        if params.get("_meta").is_none() {
            params["_meta"] = meta();
        }
        let name = params
            .get("name")
            .or_else(|| params.get("uri"))
            .and_then(Value::as_str)
            .map_or(String::new(), |n| format!("mcp-name: {n}\r\n"));
        let standard = format!("mcp-protocol-version: {VERSION}\r\nmcp-method: {method}\r\n{name}");
        let body = json!({"jsonrpc": "2.0", "id": 41, "method": method, "params": params});
        shard.request(
            "POST /mcp",
            &format!("{ACCEPT_BOTH}{JSON}{}", headers.unwrap_or(&standard)),
            &body.to_string(),
        )
    }

    fn answered(shard: &Shard, method: &str, params: Value, headers: Option<&str>) -> Response {
        match request(shard, method, params, headers) {
            (Next::KeepGoing, response) => response,
            (_, response) => panic!("{method}: expected a plain answer, got {response:?}"),
        }
    }

    /// The JSON-RPC error (code, message) of a refusal, after checking it echoes the id.
    fn refusal(response: &Response, status: u16) -> (i64, String) {
        assert_eq!(
            response.status,
            status,
            "{:?}",
            String::from_utf8_lossy(&response.body)
        );
        let reply = response.json();
        assert_eq!(reply["id"], 41, "the request id is echoed: {reply}");
        let error = &reply["error"];
        (
            error["code"].as_i64().unwrap(),
            error["message"].as_str().unwrap().to_owned(),
        )
    }

    #[test]
    fn discover_says_what_the_server_serves_with_caching_hints() {
        let shard = Shard::new();
        let response = answered(&shard, "server/discover", json!({}), None);
        assert_eq!(response.status, 200);
        let result = &response.json()["result"];
        assert_eq!(result["resultType"], "complete");
        assert_eq!(
            result["supportedVersions"],
            json!([
                "2026-07-28",
                "2025-11-25",
                "2025-06-18",
                "2025-03-26",
                "2024-11-05"
            ])
        );
        assert!(result["capabilities"]["tools"].is_object());
        assert_eq!(
            result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
            "ringmcp"
        );
        assert_eq!(
            (result["ttlMs"].as_u64(), result["cacheScope"].as_str()),
            (Some(60_000), Some("public"))
        );
        // No session was made for it.
        assert_eq!(shard.sessions.gauges().sessions, 0);
    }

    #[test]
    fn lists_and_calls_have_their_result_type_and_a_missing_resource_is_invalid_params() {
        let shard = Shard::new();
        let list = answered(&shard, "tools/list", json!({}), None).json();
        assert_eq!(list["result"]["resultType"], "complete");
        assert!(list["result"]["ttlMs"].is_u64());
        assert_eq!(list["result"]["tools"][0]["name"], "regional");
        let call = answered(
            &shard,
            "tools/call",
            json!({"name": "log", "arguments": {}}),
            None,
        );
        let result = &call.json()["result"];
        assert_eq!(result["resultType"], "complete");
        assert!(
            result.get("ttlMs").is_none(),
            "tool results are not cacheable"
        );
        let uri = "test://missing";
        let read = answered(&shard, "resources/read", json!({"uri": uri}), None).json();
        // Spec (2026-07-28): -32002 is replaced by -32602.
        assert_eq!(read["error"]["code"], -32602);
        assert_eq!(read["error"]["data"]["uri"], uri);
    }

    #[test]
    fn a_request_is_refused_in_the_revisions_order() {
        let shard = Shard::new();
        let tools = "mcp-method: tools/list\r\n";
        let cases: Vec<(Value, String, u16, i64, &str)> = vec![
            // _meta but no version header.
            (
                meta(),
                tools.to_owned(),
                400,
                -32020,
                "MCP-Protocol-Version header is required",
            ),
            // _meta without its required fields: -32602 before any header comparison.
            (
                json!({"io.modelcontextprotocol/clientCapabilities": {}}),
                format!("mcp-protocol-version: {VERSION}\r\n{tools}"),
                400,
                -32602,
                "protocolVersion",
            ),
            (
                json!({"io.modelcontextprotocol/protocolVersion": VERSION}),
                format!("mcp-protocol-version: {VERSION}\r\n{tools}"),
                400,
                -32602,
                "clientCapabilities",
            ),
            // Header and _meta disagree.
            (
                json!({"io.modelcontextprotocol/protocolVersion": "v999.0.0",
                    "io.modelcontextprotocol/clientCapabilities": {}}),
                format!("mcp-protocol-version: {VERSION}\r\n{tools}"),
                400,
                -32020,
                "_meta names v999.0.0",
            ),
            // Both name a revision not served per request.
            (
                json!({"io.modelcontextprotocol/protocolVersion": "v999.0.0",
                    "io.modelcontextprotocol/clientCapabilities": {}}),
                format!("mcp-protocol-version: v999.0.0\r\n{tools}"),
                400,
                -32022,
                "v999.0.0",
            ),
            // Mcp-Method missing, of another method, or of another case.
            (
                meta(),
                format!("mcp-protocol-version: {VERSION}\r\n"),
                400,
                -32020,
                "Mcp-Method header is required",
            ),
            (
                meta(),
                format!("mcp-protocol-version: {VERSION}\r\nmcp-method: prompts/list\r\n"),
                400,
                -32020,
                "does not match",
            ),
            (
                meta(),
                format!("mcp-protocol-version: {VERSION}\r\nMCP-METHOD: TOOLS/LIST\r\n"),
                400,
                -32020,
                "does not match",
            ),
        ];
        for (meta, headers, status, code, says) in cases {
            let response = answered(&shard, "tools/list", json!({"_meta": meta}), Some(&headers));
            let (got, message) = refusal(&response, status);
            assert_eq!(got, code, "{headers:?}: {message}");
            assert!(message.contains(says), "{headers:?}: {message}");
        }
        let unsupported = answered(
            &shard,
            "tools/list",
            json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "v999.0.0",
                             "io.modelcontextprotocol/clientCapabilities": {}}}),
            Some(&format!("mcp-protocol-version: v999.0.0\r\n{tools}")),
        );
        let data = &unsupported.json()["error"]["data"];
        assert_eq!(
            (data["supported"].clone(), data["requested"].clone()),
            (json!([VERSION]), json!("v999.0.0"))
        );
    }

    #[test]
    fn mcp_name_is_compared_after_trimming_and_decoding() {
        let shard = Shard::new();
        let call = json!({"name": "log", "arguments": {}});
        let with_name = |name: &str| {
            format!(
                "mcp-protocol-version: {VERSION}\r\nmcp-method: tools/call\r\nmcp-name: {name}\r\n"
            )
        };
        // "bG9n" is base64 for "log".
        for good in ["log", "  log  ", "=?base64?bG9n?="] {
            let response = answered(&shard, "tools/call", call.clone(), Some(&with_name(good)));
            assert_eq!(response.status, 200, "{good:?}");
            assert!(response.json()["error"].is_null(), "{good:?}");
        }
        for (bad, says) in [
            ("wrong", "does not match"),
            ("=?base64?bG9n?", "does not match"),
            ("=?base64?bG9!?=", "not a valid header value"),
            ("=?base64?bG9?=", "not a valid header value"),
        ] {
            let response = answered(&shard, "tools/call", call.clone(), Some(&with_name(bad)));
            let (code, message) = refusal(&response, 400);
            assert_eq!(code, -32020, "{bad:?}");
            assert!(message.contains(says), "{bad:?}: {message}");
        }
        let missing = format!("mcp-protocol-version: {VERSION}\r\nmcp-method: tools/call\r\n");
        let (code, message) = refusal(&answered(&shard, "tools/call", call, Some(&missing)), 400);
        assert_eq!(
            (code, message.contains("Mcp-Name header is required")),
            (-32020, true)
        );
    }

    #[test]
    fn a_tool_needing_an_undeclared_capability_is_refused_before_it_runs() {
        let shard = Shard::new();
        let call = json!({"name": "needs_sampling", "arguments": {}});
        let refused = answered(&shard, "tools/call", call.clone(), None);
        let (code, message) = refusal(&refused, 400);
        assert_eq!(code, -32021, "{message}");
        let data = &refused.json()["error"]["data"];
        assert_eq!(data["requiredCapabilities"], json!({"sampling": {}}));
        let mut declared = call;
        let mut meta = meta();
        meta["io.modelcontextprotocol/clientCapabilities"] = json!({"sampling": {}});
        declared["_meta"] = meta;
        let ran = answered(&shard, "tools/call", declared, None);
        assert_eq!(ran.json()["result"]["content"][0]["text"], "sampled");
    }

    #[test]
    fn x_mcp_header_arguments_must_match_their_mcp_param_headers() {
        let shard = Shard::new();
        let call = |region: &str, max: Value, extra: &str| {
            let headers = format!(
                "mcp-protocol-version: {VERSION}\r\nmcp-method: tools/call\r\nmcp-name: regional\r\n{extra}"
            );
            let arguments = json!({"region": region, "limits": {"max": max}});
            answered(
                &shard,
                "tools/call",
                json!({"name": "regional", "arguments": arguments}),
                Some(&headers),
            )
        };
        // "SGVsbG8=" is base64 for "Hello".
        for (region, extra) in [
            (
                "Hello",
                "mcp-param-region: =?base64?SGVsbG8=?=\r\nmcp-param-max: 5\r\n",
            ),
            ("Hello", "MCP-PARAM-REGION: Hello\r\nmcp-param-max: 5.0\r\n"),
            (
                "SGVsbG8=",
                "mcp-param-region: SGVsbG8=\r\nmcp-param-max: 5\r\n",
            ),
            (
                "=?base64?SGVsbG8=",
                "mcp-param-region: =?base64?SGVsbG8=\r\nmcp-param-max: 5\r\n",
            ),
        ] {
            let response = call(region, json!(5), extra);
            assert_eq!(
                response.status,
                200,
                "{extra:?}: {:?}",
                String::from_utf8_lossy(&response.body)
            );
        }
        for (extra, says) in [
            (
                "mcp-param-region: =?base64?SGVsbG8?=\r\nmcp-param-max: 5\r\n",
                "not a valid",
            ),
            (
                "mcp-param-region: =?base64?SGVs!!!bG8=?=\r\nmcp-param-max: 5\r\n",
                "not a valid",
            ),
            (
                "mcp-param-max: 5\r\n",
                "Mcp-Param-Region header is required",
            ),
            (
                "mcp-param-region: Hello\r\nmcp-param-max: 6\r\n",
                "Mcp-Param-Max does not match",
            ),
        ] {
            let (code, message) = refusal(&call("Hello", json!(5), extra), 400);
            assert_eq!(code, -32020, "{extra:?}");
            assert!(message.contains(says), "{extra:?}: {message}");
        }
        // A null argument expects no header.
        let response = call("Hello", Value::Null, "mcp-param-region: Hello\r\n");
        assert_eq!(response.status, 200);
    }

    #[test]
    fn removed_and_unknown_methods_are_404() {
        let shard = Shard::new();
        for method in [
            "initialize",
            "ping",
            "logging/setLevel",
            "resources/subscribe",
            "resources/unsubscribe",
            "no/such",
        ] {
            let (code, _) = refusal(&answered(&shard, method, json!({}), None), 404);
            assert_eq!(code, -32601, "{method}");
        }
    }

    #[test]
    fn logs_only_with_a_log_level_and_on_the_requests_own_stream() {
        let shard = Shard::new();
        let call = json!({"name": "log", "arguments": {}});
        // Spec (2026-07-28, logging): "The server MUST NOT emit notifications/message for a
        // request that does not include this field."
        let plain = answered(&shard, "tools/call", call.clone(), None);
        assert_eq!(plain.header("content-type"), Some("application/json"));
        let mut with_level = call;
        let mut meta = meta();
        meta["io.modelcontextprotocol/logLevel"] = json!("debug");
        with_level["_meta"] = meta;
        let Next::Stream(stream) = request(&shard, "tools/call", with_level, None).0 else {
            panic!("a log message makes it a stream")
        };
        let events = events(&stream, &mut ChunkedDecoder::new(1 << 20));
        assert!(
            events.iter().all(|e| e.id.is_none()),
            "no ids: nothing is resumable"
        );
        assert!(events[0].data.contains("notifications/message"));
        let result: Value = serde_json::from_str(&events[1].data).unwrap();
        assert_eq!(result["result"]["resultType"], "complete");
        assert_eq!(
            stream.when_flushed(),
            super::super::FlushedFlow::Finish(Flow::Reusable)
        );
    }

    #[test]
    fn closing_the_stream_cancels_the_request() {
        let shard = Shard::new();
        let call = json!({"name": "wait", "arguments": {}, "_meta": {
            "progressToken": 1,
            "io.modelcontextprotocol/protocolVersion": VERSION,
            "io.modelcontextprotocol/clientCapabilities": {}}});
        let Next::Stream(mut stream) = request(&shard, "tools/call", call, None).0 else {
            panic!("progress makes it a stream")
        };
        let mut chunks = ChunkedDecoder::new(1 << 20);
        assert!(events(&stream, &mut chunks)[0]
            .data
            .contains("notifications/progress"));
        assert_eq!(
            TASKS.with(|t| t.borrow().len()),
            1,
            "the handler waits in a task"
        );
        stream.on_end(&shard.env());
        run_tasks();
        assert_eq!(
            TASKS.with(|t| t.borrow().len()),
            0,
            "cancelled: the task is gone"
        );
        RELEASED.set(true);
        assert!(
            events(&stream, &mut chunks).is_empty(),
            "nothing after the client left"
        );
    }

    /// Opens a listen stream for `filter`; returns it with its acknowledgment.
    fn listen(shard: &Shard, filter: Value, chunks: &mut ChunkedDecoder) -> (SseStream, Value) {
        let params = json!({ "notifications": filter });
        let Next::Stream(stream) = request(shard, "subscriptions/listen", params, None).0 else {
            panic!("a listen is a stream")
        };
        let ack = serde_json::from_str(&events(&stream, chunks)[0].data).unwrap();
        (stream, ack)
    }

    #[test]
    fn listen_streams_hear_what_they_asked_for_and_complete_at_shutdown() {
        let shard = Shard::new();
        let mut chunks = ChunkedDecoder::new(1 << 20);
        let asked = json!({"toolsListChanged": true, "resourceSubscriptions": ["nope://x"]});
        let (stream, ack) = listen(&shard, asked, &mut chunks);
        // Spec (2026-07-28, subscriptions): the acknowledgment comes first, with the subset
        // the server agreed to (no such resource here).
        let subscription = json!({"io.modelcontextprotocol/subscriptionId": 41});
        assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
        assert_eq!(
            ack["params"],
            json!({"_meta": subscription, "notifications": {"toolsListChanged": true}})
        );
        // A prompt list change was not asked for (and not offered when the listen began).
        shard
            .dispatcher
            .change_catalogue(CatalogueChange::add_prompt(
                Prompt::new("p", "new"),
                |_, _| async { Ok(PromptResult::new(Vec::new())) },
            ));
        assert!(events(&stream, &mut chunks).is_empty());
        shard.dispatcher.change_catalogue(remove_tool("log"));
        let change: Value = serde_json::from_str(&events(&stream, &mut chunks)[0].data).unwrap();
        assert_eq!(change["method"], "notifications/tools/list_changed");
        assert_eq!(change["params"]["_meta"], subscription);
        // Removing what is not there changes nothing, and nobody is told.
        shard.dispatcher.change_catalogue(remove_tool("log"));
        assert!(events(&stream, &mut chunks).is_empty());
        let listed = answered(&shard, "tools/list", json!({}), None).json();
        let names: Vec<&Value> = listed["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["name"])
            .collect();
        assert!(!names.contains(&&json!("log")), "{names:?}");
        shard.dispatcher.end_listen_streams();
        run_tasks();
        let last: Value = serde_json::from_str(&events(&stream, &mut chunks)[0].data).unwrap();
        assert_eq!(
            last,
            json!({"jsonrpc": "2.0", "id": 41,
                "result": {"resultType": "complete", "_meta": subscription}})
        );
        assert_eq!(
            stream.when_flushed(),
            super::super::FlushedFlow::Finish(Flow::Reusable)
        );
    }

    #[test]
    fn listen_streams_are_bounded_per_shard() {
        let config = Config {
            max_listen_streams_per_shard: 1,
            ..Config::default()
        };
        let mut shard = Shard::with(config, 0, 2);
        let hits = Rc::new(Metrics::default());
        let counted = Rc::clone(&hits);
        shard.dispatcher = Dispatcher::new(Arc::new(registry()))
            .with_limits(shard.config.dispatch_limits(), move |hit| {
                counted.limit(hit)
            });
        let mut chunks = ChunkedDecoder::new(1 << 20);
        let (_open, _) = listen(&shard, json!({"toolsListChanged": true}), &mut chunks);
        let params = json!({"notifications": {"toolsListChanged": true}});
        let refused = answered(&shard, "subscriptions/listen", params, None).json();
        assert_eq!(refused["error"]["code"], -32000, "{refused}");
        assert_eq!(refused["id"], 41);
        assert_eq!(
            hits.limits[crate::metrics::Limit::ListenStreams as usize].get(),
            1
        );
    }

    #[test]
    fn closing_a_listen_stream_ends_the_subscription() {
        let shard = Shard::new();
        let mut chunks = ChunkedDecoder::new(1 << 20);
        let (mut stream, _) = listen(&shard, json!({"toolsListChanged": true}), &mut chunks);
        stream.on_end(&shard.env());
        run_tasks();
        shard.dispatcher.change_catalogue(remove_tool("log"));
        assert!(
            events(&stream, &mut chunks).is_empty(),
            "the listener is gone"
        );
    }

    #[test]
    fn notifications_are_accepted_and_batches_refused() {
        let shard = Shard::new();
        let headers = format!("{ACCEPT_BOTH}{JSON}mcp-protocol-version: {VERSION}\r\n");
        let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}});
        assert_eq!(
            shard
                .refused("POST /mcp", &headers, &note.to_string())
                .status,
            202
        );
        let batch = shard.refused("POST /mcp", &headers, "[]");
        assert_eq!(
            (batch.status, batch.json()["error"]["code"].clone()),
            (400, json!(-32600))
        );
        let garbage = shard.refused("POST /mcp", &headers, "{");
        assert_eq!(
            (garbage.status, garbage.json()["error"]["code"].clone()),
            (400, json!(-32700))
        );
    }

    #[test]
    fn modern_meta_makes_a_2026_request_whatever_the_version_header_says() {
        let shard = Shard::new();
        let mut meta = meta();
        meta["io.modelcontextprotocol/protocolVersion"] = json!("2025-11-25");
        let headers = "mcp-protocol-version: 2025-11-25\r\nmcp-method: tools/list\r\n";
        let response = answered(&shard, "tools/list", json!({"_meta": meta}), Some(headers));
        let (code, _) = refusal(&response, 400);
        assert_eq!(
            code, -32022,
            "2025-11-25 is served through initialize, not per request"
        );
        // A 2025 _meta (a progress token) leaves initialize to the sessions.
        let (_, response) = shard.request(
            "POST /mcp",
            &format!("{ACCEPT_BOTH}{JSON}"),
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}, "_meta": {"progressToken": 1}}})
            .to_string(),
        );
        assert!(response.header("mcp-session-id").is_some(), "{response:?}");
    }

    #[test]
    fn the_revision_has_no_get_or_delete() {
        let shard = Shard::new();
        for line in ["GET /mcp", "DELETE /mcp"] {
            let response = shard.refused(
                line,
                &format!("accept: text/event-stream\r\nmcp-protocol-version: {VERSION}\r\n"),
                "",
            );
            assert_eq!(
                (response.status, response.header("allow")),
                (405, Some("POST")),
                "{line}"
            );
        }
    }

    #[test]
    fn a_2025_client_still_opens_a_session() {
        let shard = Shard::new();
        // No version header and no _meta: initialize, as every 2025 client starts.
        let session = shard.initialize();
        assert_eq!(shard.sessions.gauges().sessions, 1);
        // With a 2025 version header and no _meta, a session's request goes to the session.
        let (_, response) = shard.request(
            "POST /mcp",
            &format!("{ACCEPT_BOTH}{JSON}mcp-protocol-version: 2025-11-25\r\nmcp-session-id: {session}\r\n"),
            r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
        );
        assert_eq!(response.json()["result"], json!({}));
    }
}

/// A shard with authorization on: tokens from `https://as.example` signed with the test P-256
/// key, `mcp:tools` needed for everything and `mcp:admin` for `add`.
fn authorizing() -> Shard {
    authorizing_with(Config::default())
}

/// [`authorizing`] with the rest of `config`'s settings.
fn authorizing_with(config: Config) -> Shard {
    use crate::auth::{tests, Algorithm};
    let dir = std::env::temp_dir().join(format!("ringmcp-transport-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, tests::jwks(&[tests::jwk(Algorithm::ES256, "ec")])).unwrap();
    let config = Config {
        auth_issuer: Some(AUTH_ISSUER.into()),
        auth_resource: Some(AUTH_RESOURCE.into()),
        auth_jwks_file: Some(jwks),
        auth_scopes: vec!["mcp:tools".into()],
        auth_tool_scopes: vec!["add=mcp:admin".into()],
        ..config
    };
    Shard::with(config, 0, 1)
}

#[test]
fn auth_open_health_opens_health_and_metrics_and_nothing_else() {
    let shard = authorizing_with(Config {
        auth_open_health: true,
        ..Config::default()
    });
    assert_eq!(shard.refused("GET /healthz", "", "").status, 200);
    // The scrape goes on to gather every shard's figures: no token asked.
    assert!(matches!(
        shard.request("GET /metrics", "", "").0,
        Next::Metrics
    ));
    // Every MCP transport still wants a token.
    let accept = format!("{ACCEPT_BOTH}{JSON}");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    .to_string();
    assert_eq!(shard.refused("POST /mcp", &accept, &init).status, 401);
    assert_eq!(
        shard
            .refused("GET /sse", "accept: text/event-stream\r\n", "")
            .status,
        401
    );
    let upgrade = "upgrade: websocket\r\nconnection: Upgrade\r\n\
                   sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n";
    assert_eq!(shard.refused("GET /echo", upgrade, "").status, 401);
    // Without the flag, both want one (the default, `authorizing`).
    let closed = authorizing();
    assert_eq!(closed.refused("GET /metrics", "", "").status, 401);
    assert_eq!(closed.refused("GET /healthz", "", "").status, 401);
}

const AUTH_ISSUER: &str = "https://as.example";
const AUTH_RESOURCE: &str = "https://127.0.0.1:8443/mcp";

/// `authorization: Bearer` for a token of `subject` with `scope`, valid for five minutes.
fn bearer(subject: &str, scope: &str) -> String {
    use crate::auth::{tests, Algorithm};
    let now = super::auth::unix_now();
    let claims = json!({"iss": AUTH_ISSUER, "sub": subject, "aud": AUTH_RESOURCE,
                        "exp": now + 300, "scope": scope});
    format!(
        "authorization: Bearer {}\r\n",
        tests::mint(Algorithm::ES256, "ec", &claims)
    )
}

#[test]
fn authorization_answers_every_case_with_its_status_and_challenge() {
    let shard = authorizing();
    let metadata = "https://127.0.0.1:8443/.well-known/oauth-protected-resource/mcp";
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    .to_string();
    let accept = format!("{ACCEPT_BOTH}{JSON}");
    // No token: 401 naming the metadata and the scope, no error code (RFC 6750 §3.1).
    let none = shard.refused("POST /mcp", &accept, &init);
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("www-authenticate"),
        Some(format!(r#"Bearer resource_metadata="{metadata}", scope="mcp:tools""#).as_str())
    );
    // The metadata itself is open, at both well-known paths.
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let prm = shard.refused(&format!("GET {path}"), "", "");
        assert_eq!(prm.status, 200);
        assert_eq!(prm.json()["resource"], AUTH_RESOURCE);
    }
    // A token in the query: 400 invalid_request, even with a good header.
    let query = shard.refused(
        "POST /mcp?access_token=x",
        &format!("{accept}{}", bearer("a", "mcp:tools")),
        &init,
    );
    assert_eq!(query.status, 400);
    assert!(query
        .header("www-authenticate")
        .unwrap()
        .contains(r#"error="invalid_request""#));
    // A token without the base scope: 403 insufficient_scope.
    let weak = shard.refused(
        "POST /mcp",
        &format!("{accept}{}", bearer("a", "other")),
        &init,
    );
    assert_eq!(weak.status, 403);
    // Garbage: 401 invalid_token.
    let junk = shard.refused(
        "POST /mcp",
        &format!("{accept}authorization: Bearer abc.def.ghi\r\n"),
        &init,
    );
    assert_eq!(junk.status, 401);
    assert!(junk
        .header("www-authenticate")
        .unwrap()
        .contains(r#"error="invalid_token""#));
    // A browser's preflight for the metadata (the SDKs send MCP-Protocol-Version there) is
    // answered like one for /mcp: before authorization, to an allowed origin.
    let preflight = shard.refused(
        "OPTIONS /.well-known/oauth-protected-resource/mcp",
        "origin: http://localhost:6274\r\naccess-control-request-method: GET\r\n\
         access-control-request-headers: mcp-protocol-version\r\n",
        "",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("http://localhost:6274")
    );
    // Health needs a token too unless --auth-open-health.
    assert_eq!(shard.refused("GET /healthz", "", "").status, 401);
    assert_eq!(
        shard
            .refused("GET /healthz", &bearer("a", "mcp:tools"), "")
            .status,
        200
    );
}

#[test]
fn a_session_answers_only_its_principal_and_a_tool_wants_its_scope() {
    let shard = authorizing();
    let (alice, bob) = (
        bearer("alice", "mcp:tools"),
        bearer("bob", "mcp:tools mcp:admin"),
    );
    let accept = format!("{ACCEPT_BOTH}{JSON}");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    .to_string();
    let made = shard.refused("POST /mcp", &format!("{accept}{alice}"), &init);
    assert_eq!(made.status, 200);
    let id = made.header("mcp-session-id").unwrap().to_owned();
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string();
    let on = |who: &str, body: &str| {
        let lines =
            format!("{accept}{who}mcp-session-id: {id}\r\nmcp-protocol-version: 2025-11-25\r\n");
        shard.refused("POST /mcp", &lines, body)
    };
    // Bob names Alice's session: as if it did not exist.
    assert_eq!(on(&bob, &ping).status, 404);
    assert_eq!(on(&alice, &ping).status, 200);
    // `add` needs mcp:admin as well: 403 naming both scopes.
    let add = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                     "params": {"name": "add", "arguments": {"a": 1, "b": 2}}})
    .to_string();
    let refused = on(&alice, &add);
    assert_eq!(refused.status, 403);
    let challenge = refused.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"scope="mcp:tools mcp:admin""#),
        "{challenge}"
    );
    // A step-up token for the same principal keeps the session.
    let alice_admin = bearer("alice", "mcp:tools mcp:admin");
    assert_eq!(on(&alice_admin, &add).status, 200);

    // The legacy transport: the stream's session is its opener's alone.
    let stream = match shard.request("GET /sse", &alice, "") {
        (Next::Stream(stream), _) => stream,
        (_, response) => panic!("legacy stream: {}", response.status),
    };
    let endpoint = events(&stream, &mut ChunkedDecoder::new(1 << 20))[0]
        .data
        .clone();
    let post =
        |who: &str| shard.refused(&format!("POST {endpoint}"), &format!("{JSON}{who}"), &ping);
    assert_eq!(post(&bob).status, 404);
    assert_eq!(post(&alice).status, 202);
}

mod shared_store;
