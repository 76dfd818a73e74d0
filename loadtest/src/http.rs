//! MCP Streamable HTTP client side: sessions over keep-alive connections (or, in MCP
//! 2026-07-28, keep-alive connections with no session), responses as JSON or as an SSE
//! stream, and the http-mcp and idle-hold (HTTP) scenarios.

use crate::cli::{Protocol, Target};
use crate::ctx::Ctx;
use crate::mcp::{self, EchoTemplate, Incoming};
use crate::net::{self, Conn, NetError};
use crate::nodes::{self, NodeTallies};
use crate::stats::ShardStats;
use ringmcp::proto::http1::{self, BodyDecoder, Method, ResponseHead};
use ringmcp::proto::sse::{SseDecoder, SseEvent};
use ringmcp::proto::Status;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Largest SSE event accepted.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// A Streamable HTTP session: its id, negotiated version and current connection. A 2026-07-28
/// client's is a connection with no id ([`open_stateless`]).
pub struct Session {
    /// The connection (replaced on reconnects).
    pub conn: Conn,
    /// `Mcp-Session-Id`, if the server issued one.
    pub id: Option<String>,
    /// The negotiated protocol version, sent as `MCP-Protocol-Version`.
    pub version: String,
    /// The node that answered the last response (see [`nodes::served_by`]).
    pub node: String,
}

/// Writes a request head with the session headers: a POST of `length` bytes of JSON, or
/// (`length` None) a GET of the session's stream, with the `extra` headers last but for
/// `content-length`.
fn write_head(
    out: &mut Vec<u8>,
    target: &Target,
    session_id: Option<&str>,
    version: &str,
    length: Option<usize>,
    extra: &[(&str, &str)],
) {
    let mut headers = Vec::with_capacity(4 + extra.len());
    if length.is_some() {
        headers.push(("content-type", "application/json"));
        headers.push(("accept", "application/json, text/event-stream"));
    } else {
        headers.push(("accept", "text/event-stream"));
    }
    if let Some(id) = session_id {
        headers.push(("mcp-session-id", id));
    }
    headers.push(("mcp-protocol-version", version));
    headers.extend_from_slice(extra);
    let method = if length.is_some() { "POST" } else { "GET" };
    http1::write_request_head(out, method, &target.path, &target.host, &headers, length);
}

/// The headers an MCP 2026-07-28 POST carries beside `MCP-Protocol-Version` (which every
/// request head written here has): `Mcp-Method`, and `Mcp-Name` with the body's `params.name`
/// for the methods that name something (`tools/call`).
///
/// Spec (2026-07-28, streamable-http): a request carries `MCP-Protocol-Version`, and
/// `Mcp-Method` and, for `tools/call`, `Mcp-Name`: "These headers are REQUIRED for
/// compliance".
pub fn stateless_headers<'a>(method: &'a str, name: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![("mcp-method", method)];
    headers.extend(name.map(|name| ("mcp-name", name)));
    headers
}

/// The http-mcp request, written once but for its id: the head up to the value of
/// `content-length` (last, so the rest is fixed), and the body's [`EchoTemplate`]. Writing
/// one is three copies and two numbers, whichever the protocol.
pub struct EchoPost {
    head: Vec<u8>,
    body: EchoTemplate,
}

impl EchoPost {
    /// The `tools/call echo` POST of `payload` bytes for `session` in `protocol`'s shape.
    pub fn new(target: &Target, session: &Session, protocol: Protocol, payload: usize) -> EchoPost {
        let extra = match protocol {
            Protocol::Session => Vec::new(),
            Protocol::Stateless => stateless_headers("tools/call", Some("echo")),
        };
        let body = EchoTemplate::speaking(protocol, payload);
        EchoPost::with(
            target,
            session.id.as_deref(),
            &session.version,
            body,
            &extra,
        )
    }

    fn with(
        target: &Target,
        session_id: Option<&str>,
        version: &str,
        body: EchoTemplate,
        extra: &[(&str, &str)],
    ) -> EchoPost {
        let mut head = Vec::new();
        write_head(&mut head, target, session_id, version, Some(0), extra);
        // The head ends "content-length: 0\r\n\r\n"; keep it up to the value.
        head.truncate(head.len() - b"0\r\n\r\n".len());
        EchoPost { head, body }
    }

    /// Appends the request with `id`, head and body.
    pub fn write(&self, out: &mut Vec<u8>, id: u64) {
        out.extend_from_slice(&self.head);
        // Writing into a Vec cannot fail.
        let _ = std::io::Write::write_fmt(out, format_args!("{}\r\n\r\n", self.body.len(id)));
        self.body.write(out, id);
    }
}

/// How an SSE body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseEnd {
    /// The server ended the response.
    Complete,
    /// We stopped reading at the requested time (or the handler asked to).
    Stopped,
}

impl Session {
    /// Notes the node that answered `head`, allocating only when it changed.
    pub fn answered_by(&mut self, head: &ResponseHead) {
        let node = nodes::served_by(head, self.id.as_deref());
        if node != self.node {
            self.node = node.to_owned();
        }
    }

    /// A request (head and body) carrying the session headers: a POST of `body`, or (`body`
    /// None) a GET of the session's stream with the `extra` headers.
    pub fn request(&self, ctx: &Ctx, body: Option<&[u8]>, extra: &[(&str, &str)]) -> Vec<u8> {
        let content = body.unwrap_or_default();
        let mut out = Vec::with_capacity(256 + content.len());
        write_head(
            &mut out,
            &ctx.target,
            self.id.as_deref(),
            &self.version,
            body.map(<[u8]>::len),
            extra,
        );
        out.extend_from_slice(content);
        out
    }

    /// Sends one JSON-RPC request and reads its reply (plain JSON or the SSE stream of
    /// notifications ending with the reply). `on_event` sees every SSE event.
    pub async fn call(
        &mut self,
        ctx: &Ctx,
        body: &[u8],
        deadline: Instant,
        on_event: &mut dyn FnMut(&SseEvent),
    ) -> Result<Vec<u8>, NetError> {
        let mut request = self.request(ctx, Some(body), &[]);
        self.exchange(&mut request, deadline, on_event).await
    }

    /// Sends a JSON-RPC request already written, head and body (emptying `request`), and
    /// reads its reply as [`Session::call`] does.
    pub async fn exchange(
        &mut self,
        request: &mut Vec<u8>,
        deadline: Instant,
        on_event: &mut dyn FnMut(&SseEvent),
    ) -> Result<Vec<u8>, NetError> {
        self.conn.write_all(request, deadline).await?;
        let head = self.conn.read_head(Method::Post, deadline).await?;
        self.answered_by(&head);
        if head.status() != 200 {
            // Read the error body so the connection stays usable.
            let _ = self.conn.read_body(&head, deadline).await;
            return Err(NetError::Status(head.status()));
        }
        if is_sse(&head) {
            let mut reply = None;
            SseBody::new(&head)
                .read(&mut self.conn, deadline, None, &mut |event| {
                    on_event(event);
                    if !event.data.is_empty()
                        && matches!(
                            mcp::classify(event.data.as_bytes()),
                            Incoming::Result { .. } | Incoming::Error { .. }
                        )
                    {
                        reply = Some(event.data.clone().into_bytes());
                    }
                    false
                })
                .await?;
            reply.ok_or(NetError::Protocol("SSE response ended without a reply"))
        } else {
            let body = self.conn.read_body(&head, deadline).await?;
            if !head.keep_alive() {
                return Err(NetError::Protocol(
                    "server closed the keep-alive connection",
                ));
            }
            Ok(body)
        }
    }

    /// Ends the session, so that runs one after another against one server (the probes of
    /// --find-capacity) do not pile up sessions until its limit. Spec (2025-11-25,
    /// transports): "Clients that no longer need a particular session [...] SHOULD send an
    /// HTTP DELETE to the MCP endpoint with the `Mcp-Session-Id` header, to explicitly
    /// terminate the session"; the answer is not checked, as "The server MAY respond to this
    /// request with HTTP 405 Method Not Allowed".
    pub async fn delete(&mut self, ctx: &Ctx, deadline: Instant) {
        let Some(id) = self.id.as_deref() else {
            return;
        };
        let mut request = Vec::new();
        let headers = [
            ("mcp-session-id", id),
            ("mcp-protocol-version", &self.version),
        ];
        http1::write_request_head(
            &mut request,
            "DELETE",
            &ctx.target.path,
            &ctx.target.host,
            &headers,
            None,
        );
        if self.conn.write_all(&mut request, deadline).await.is_ok() {
            if let Ok(head) = self.conn.read_head(Method::Delete, deadline).await {
                let _ = self.conn.read_body(&head, deadline).await;
            }
        }
    }

    /// Sends a notification; expects 202 (or any 2xx) with no body to speak of.
    pub async fn notify(
        &mut self,
        ctx: &Ctx,
        body: &[u8],
        deadline: Instant,
    ) -> Result<(), NetError> {
        let mut request = self.request(ctx, Some(body), &[]);
        self.conn.write_all(&mut request, deadline).await?;
        let head = self.conn.read_head(Method::Post, deadline).await?;
        let _ = self.conn.read_body(&head, deadline).await?;
        if !(200..300).contains(&head.status()) {
            return Err(NetError::Status(head.status()));
        }
        Ok(())
    }
}

/// Whether the response body is an SSE stream.
pub fn is_sse(head: &ResponseHead) -> bool {
    head.has_media_type("text/event-stream")
}

/// An SSE response body read in steps. Its HTTP framing, its event decoder and the body
/// bytes not yet decoded into events stay here between reads, so a reader that stops after
/// one event (a listen stream's acknowledgment) carries on with the next one later.
pub struct SseBody {
    framing: BodyDecoder,
    events: SseDecoder,
    /// Body bytes out of the framing; those before `fed` went to `events`.
    chunk: Vec<u8>,
    fed: usize,
}

impl SseBody {
    /// The body of the response `head` starts.
    pub fn new(head: &ResponseHead) -> SseBody {
        SseBody {
            framing: net::body_decoder(head),
            events: SseDecoder::new(MAX_EVENT_BYTES),
            chunk: Vec::new(),
            fed: 0,
        }
    }

    /// The last event id the stream set (what a resume sends as `Last-Event-ID`).
    pub fn last_event_id(&self) -> Option<&str> {
        self.events.last_event_id()
    }

    /// Reads on, handing each event to `on_event` (which returns true to stop). Returns when
    /// the body ends, at `stop_at`, or when `on_event` stops it; fails at `deadline`.
    pub async fn read(
        &mut self,
        conn: &mut Conn,
        deadline: Instant,
        stop_at: Option<Instant>,
        on_event: &mut dyn FnMut(&SseEvent) -> bool,
    ) -> Result<SseEnd, NetError> {
        let mut done = false;
        loop {
            if self.deliver(on_event)? {
                return Ok(SseEnd::Stopped);
            }
            if done {
                return Ok(SseEnd::Complete);
            }
            if stop_at.is_some_and(|s| Instant::now() >= s) {
                return Ok(SseEnd::Stopped);
            }
            let wait_until = stop_at.map_or(deadline, |s| s.min(deadline));
            done = match conn
                .body_step(&mut self.framing, &mut self.chunk, wait_until)
                .await
            {
                Ok(done) => done,
                Err(NetError::Timeout) if stop_at.is_some_and(|s| Instant::now() >= s) => {
                    return Ok(SseEnd::Stopped)
                }
                Err(e) => return Err(e),
            };
        }
    }

    /// Decodes the body bytes read so far into events for `on_event`; true if it asked to
    /// stop (the bytes after that event wait for the next read).
    fn deliver(&mut self, on_event: &mut dyn FnMut(&SseEvent) -> bool) -> Result<bool, NetError> {
        while self.fed < self.chunk.len() {
            match self.events.decode(&self.chunk[self.fed..]) {
                Ok(Status::Complete(event, used)) => {
                    self.fed += used;
                    if on_event(&event) {
                        return Ok(true);
                    }
                }
                // The decoder keeps what it took of an unfinished event.
                Ok(Status::Partial) => self.fed = self.chunk.len(),
                Err(_) => return Err(NetError::Protocol("SSE event too large")),
            }
        }
        self.chunk.clear();
        self.fed = 0;
        Ok(false)
    }
}

/// Connects and initializes a session (initialize, then notifications/initialized).
pub async fn open_session(ctx: &Ctx) -> Result<Session, NetError> {
    let deadline = ctx.setup_deadline();
    let stream = net::connect(&ctx.target, ctx.timeout()).await?;
    let mut session = Session {
        conn: Conn::new(stream),
        id: None,
        version: mcp::PROTOCOL_VERSION.to_owned(),
        node: nodes::NO_NODE.to_owned(),
    };
    let mut request = session.request(ctx, Some(&mcp::initialize()), &[]);
    session.conn.write_all(&mut request, deadline).await?;
    let head = session.conn.read_head(Method::Post, deadline).await?;
    if head.status() != 200 {
        return Err(NetError::Status(head.status()));
    }
    session.id = head.headers().get_str("mcp-session-id").map(str::to_owned);
    session.answered_by(&head);
    let reply = if is_sse(&head) {
        let mut reply = None;
        SseBody::new(&head)
            .read(&mut session.conn, deadline, None, &mut |e| {
                if !e.data.is_empty() {
                    reply = Some(e.data.clone().into_bytes());
                }
                false
            })
            .await?;
        reply.ok_or(NetError::Protocol("no initialize reply"))?
    } else {
        session.conn.read_body(&head, deadline).await?
    };
    match mcp::classify(&reply) {
        Incoming::Result { id: 0, .. } => {}
        _ => return Err(NetError::Protocol("initialize refused")),
    }
    if let Some(v) = mcp::negotiated_version(&reply) {
        session.version = v;
    }
    session.notify(ctx, mcp::initialized(), deadline).await?;
    Ok(session)
}

/// Connects for MCP 2026-07-28: no `initialize` and no session, as every request carries
/// its own context.
///
/// Spec (2026-07-28, basic/versioning): "A request carrying modern per-request `_meta` is
/// served statelessly according to this revision."
pub async fn open_stateless(ctx: &Ctx) -> Result<Session, NetError> {
    let stream = net::connect(&ctx.target, ctx.timeout()).await?;
    Ok(Session {
        conn: Conn::new(stream),
        id: None,
        version: mcp::STATELESS_VERSION.to_owned(),
        node: nodes::NO_NODE.to_owned(),
    })
}

/// http-mcp: one session (2026-07-28: one connection) per connection, tools/call echo on the
/// open-loop schedule. HTTP/1.1 has one request in flight per connection, so a late reply
/// delays the next send, and that delay counts in the next request's latency (it is
/// measured from its intended time).
pub async fn client(ctx: Rc<Ctx>, global: usize) {
    let began = Instant::now();
    ShardStats::add(&ctx.stats.attempted, 1);
    let protocol = ctx.args.protocol;
    let opened = match protocol {
        Protocol::Session => open_session(&ctx).await,
        Protocol::Stateless => open_stateless(&ctx).await,
    };
    let mut session = match opened {
        Ok(s) => s,
        Err(e) => return ctx.setup_failed(&e),
    };
    ctx.setup_ok(began.elapsed());
    ctx.stats.nodes.borrow_mut().session(session.id.as_deref());
    // Answers by the node that gave them: one entry unless the session moved.
    let mut answers: Vec<(String, u64)> = Vec::new();
    let post = EchoPost::new(&ctx.target, &session, protocol, ctx.args.payload);
    let start = ctx.start.wait().await;
    let mut schedule = ctx.schedule(start, global);
    let stats = &ctx.stats;
    let mut request = Vec::new();
    let mut id = 1;
    // Whether the connection failed (and so cannot carry the session's DELETE).
    let mut broken = false;
    while let Some(at) = schedule.peek() {
        net::sleep_until(at).await;
        let Some(intended) = schedule.take_due(Instant::now()) else {
            continue;
        };
        request.clear();
        post.write(&mut request, id);
        ShardStats::add(&stats.sent, 1);
        stats.record_lag(Instant::now().saturating_duration_since(intended));
        let deadline = intended + ctx.timeout();
        let result = session.exchange(&mut request, deadline, &mut |_| {}).await;
        let now = Instant::now();
        match result {
            Ok(reply) => match mcp::classify(&reply) {
                Incoming::Result {
                    id: got,
                    tool_error,
                    result_type,
                } if got == id => {
                    stats.record(now, now.saturating_duration_since(intended));
                    if let Some(kind) = mcp::unfinished(protocol, result_type) {
                        stats.error(kind);
                    } else if tool_error {
                        stats.error("tool_error");
                    } else {
                        ShardStats::add(&stats.ok, 1);
                        match answers.iter_mut().find(|(node, _)| *node == session.node) {
                            Some((_, n)) => *n += 1,
                            None => answers.push((session.node.clone(), 1)),
                        }
                    }
                }
                Incoming::Error { code, .. } => stats.error(format!("jsonrpc_{code}")),
                _ => stats.error("unexpected_reply"),
            },
            Err(NetError::Status(s)) => stats.error(format!("http_{s}")),
            Err(e) => {
                // The connection is in an unknown state: stop this client.
                stats.error(e.kind());
                let unsent = schedule.remaining();
                if unsent > 0 {
                    *stats
                        .errors
                        .borrow_mut()
                        .entry(format!("unsent_after_{}", e.kind()))
                        .or_insert(0) += unsent;
                }
                broken = true;
                break;
            }
        }
        id += 1;
    }
    // Hold the connection past the end of the measured phase, as ws::drive does: the phase
    // runs at the full connection count and no teardown lands in it.
    net::sleep_until(ctx.close_at(start)).await;
    ShardStats::add(&stats.bytes_in, session.conn.bytes_in);
    ShardStats::add(&stats.bytes_out, session.conn.bytes_out);
    count_answers(
        &mut stats.nodes.borrow_mut(),
        session.id.as_deref(),
        &answers,
    );
    if !broken {
        session
            .delete(&ctx, ctx.close_at(start) + ctx.timeout())
            .await;
    }
}

/// Adds a session's answers, by the node that gave them, to the per-node counts.
fn count_answers(tallies: &mut NodeTallies, session_id: Option<&str>, answers: &[(String, u64)]) {
    for (node, n) in answers {
        tallies.events(node, *n);
        if let Some(id) = session_id {
            tallies.answered(id, node);
        }
    }
}

/// idle-hold over HTTP: an initialized session (optionally with a filled replay ring) that
/// holds its GET stream open until the end.
pub async fn idle_client(ctx: Rc<Ctx>, _global: usize) {
    let began = Instant::now();
    ShardStats::add(&ctx.stats.attempted, 1);
    let setup = async {
        let mut session = open_session(&ctx).await?;
        if ctx.args.fill_events > 0 {
            let call = mcp::stream_call(1, 1, ctx.args.fill_events as u64, 0, ctx.args.payload);
            let (mut events, mut bytes) = (0u64, 0u64);
            let reply = session
                .call(&ctx, &call, ctx.setup_deadline(), &mut |e| {
                    if !e.data.is_empty() {
                        events += 1;
                        bytes += e.data.len() as u64;
                    }
                })
                .await?;
            ShardStats::add(&ctx.stats.fill_bytes, bytes);
            if !matches!(mcp::classify(&reply), Incoming::Result { id: 1, .. }) {
                return Err(NetError::Protocol("stream tool failed"));
            }
            // The reply itself is one of the events.
            if events < ctx.args.fill_events as u64 + 1 {
                ctx.stats.error("fill_events_missing");
            }
        }
        let mut request = session.request(&ctx, None, &[]);
        let deadline = ctx.setup_deadline();
        session.conn.write_all(&mut request, deadline).await?;
        let head = session.conn.read_head(Method::Get, deadline).await?;
        if head.status() != 200 || !is_sse(&head) {
            return Err(NetError::Status(head.status()));
        }
        Ok::<_, NetError>((session, head))
    };
    let (mut session, head) = match setup.await {
        Ok(s) => s,
        Err(e) => return ctx.setup_failed(&e),
    };
    ctx.setup_ok(began.elapsed());
    ctx.stats.nodes.borrow_mut().session(session.id.as_deref());
    let start = ctx.start.wait().await;
    let end = start + ctx.duration();
    let held = SseBody::new(&head)
        .read(
            &mut session.conn,
            end + Duration::from_secs(1),
            Some(end),
            &mut |_| false,
        )
        .await;
    match held {
        Ok(SseEnd::Stopped) => ShardStats::add(&ctx.stats.ok, 1),
        Ok(SseEnd::Complete) => ctx.stats.error("get_stream_ended_early"),
        Err(e) => ctx.stats.error(format!("get_stream:{}", e.kind())),
    }
    ShardStats::add(&ctx.stats.bytes_in, session.conn.bytes_in);
    ShardStats::add(&ctx.stats.bytes_out, session.conn.bytes_out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::parse("http://127.0.0.1:8080/mcp", None).expect("target")
    }

    #[test]
    fn an_sse_body_read_on_after_a_stop_starts_at_the_next_event() {
        // Two events in one chunk, the third split across two chunks, a comment line between.
        let server = crate::net::tests::serve_once(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
             16\r\ndata: one\n\ndata: two\n\n\r\n\
             10\r\n: keep-alive\ndat\r\n\
             a\r\na: three\n\n\r\n\
             0\r\n\r\n",
        );
        glommio::LocalExecutor::default().run(async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            let stream = net::connect(&server, Duration::from_secs(5))
                .await
                .expect("connect");
            let mut conn = Conn::new(stream);
            let mut request = b"GET / HTTP/1.1\r\n\r\n".to_vec();
            conn.write_all(&mut request, deadline).await.expect("write");
            let head = conn.read_head(Method::Get, deadline).await.expect("head");
            let mut body = SseBody::new(&head);
            let mut seen = Vec::new();
            let first = body
                .read(&mut conn, deadline, None, &mut |e| {
                    seen.push(e.data.clone());
                    true
                })
                .await;
            assert_eq!(first, Ok(SseEnd::Stopped));
            let rest = body
                .read(&mut conn, deadline, None, &mut |e| {
                    seen.push(e.data.clone());
                    false
                })
                .await;
            assert_eq!(rest, Ok(SseEnd::Complete));
            assert_eq!(seen, ["one", "two", "three"]);
        });
    }

    fn written(post: &EchoPost, id: u64) -> String {
        let mut out = Vec::new();
        post.write(&mut out, id);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn one_2026_request_byte_for_byte() {
        let post = EchoPost::with(
            &target(),
            None,
            mcp::STATELESS_VERSION,
            EchoTemplate::stateless(5),
            &stateless_headers("tools/call", Some("echo")),
        );
        let body = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\
             \"arguments\":{{\"message\":\"abcde\"}},\"_meta\":{{\
             \"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\
             \"io.modelcontextprotocol/clientCapabilities\":{{}},\
             \"io.modelcontextprotocol/clientInfo\":{{\"name\":\"ringmcp-load\",\"version\":\"{}\"}}}}}}}}",
            env!("CARGO_PKG_VERSION")
        );
        let want = format!(
            "POST /mcp HTTP/1.1\r\n\
             host: 127.0.0.1:8080\r\n\
             content-type: application/json\r\n\
             accept: application/json, text/event-stream\r\n\
             mcp-protocol-version: 2026-07-28\r\n\
             mcp-method: tools/call\r\n\
             mcp-name: echo\r\n\
             content-length: {}\r\n\
             \r\n\
             {body}",
            body.len()
        );
        assert_eq!(written(&post, 1), want);
    }

    /// The request read back the way a server reads it: the head parses, `content-length`
    /// frames the body exactly, and the body is the JSON-RPC request with the id.
    fn parse_back(bytes: &str) -> (Vec<(String, String)>, Value) {
        let (head, body) = bytes.split_once("\r\n\r\n").expect("a head");
        let mut lines = head.split("\r\n");
        assert_eq!(lines.next(), Some("POST /mcp HTTP/1.1"));
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").expect("a field");
                (n.to_owned(), v.to_owned())
            })
            .collect();
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse::<usize>().expect("a length"));
        assert_eq!(length, Some(body.len()));
        (headers, serde_json::from_str(body).expect("json body"))
    }

    use serde_json::Value;

    #[test]
    fn headers_and_meta_agree_at_every_id_width() {
        let post = EchoPost::with(
            &target(),
            None,
            mcp::STATELESS_VERSION,
            EchoTemplate::stateless(64),
            &stateless_headers("tools/call", Some("echo")),
        );
        for id in [1, 9, 10, 99, 100, 12_345, u64::MAX] {
            let (headers, body) = parse_back(&written(&post, id));
            let header = |name: &str| {
                let found: Vec<&str> = (headers.iter())
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str())
                    .collect();
                assert_eq!(found.len(), 1, "{name} once");
                found[0].to_owned()
            };
            assert_eq!(body["id"], id);
            // What the server checks: the headers against the body and its _meta.
            assert_eq!(header("mcp-method"), body["method"]);
            assert_eq!(header("mcp-name"), body["params"]["name"]);
            assert_eq!(
                header("mcp-protocol-version"),
                body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"]
            );
            assert!(!headers.iter().any(|(n, _)| n == "mcp-session-id"));
        }
    }

    #[test]
    fn the_2025_request_is_what_the_generic_writer_writes() {
        let post = EchoPost::with(
            &target(),
            Some("s-1"),
            mcp::PROTOCOL_VERSION,
            EchoTemplate::new(64),
            &[],
        );
        for id in [1, 9, 10, 999, 1000, u64::MAX] {
            let mut body = Vec::new();
            EchoTemplate::new(64).write(&mut body, id);
            let mut want = Vec::new();
            write_head(
                &mut want,
                &target(),
                Some("s-1"),
                mcp::PROTOCOL_VERSION,
                Some(body.len()),
                &[],
            );
            want.extend_from_slice(&body);
            assert_eq!(written(&post, id).as_bytes(), want, "id {id}");
            let (headers, _) = parse_back(&written(&post, id));
            assert!(headers.contains(&("mcp-session-id".into(), "s-1".into())));
            assert!(!headers.iter().any(|(n, _)| n.starts_with("mcp-method")));
        }
    }
}
