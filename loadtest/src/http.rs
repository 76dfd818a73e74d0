//! MCP Streamable HTTP client side: sessions over keep-alive connections,
//! responses as JSON or as an SSE stream, and the http-mcp and idle-hold
//! (HTTP) scenarios.

use crate::ctx::Ctx;
use crate::mcp::{self, EchoTemplate, Incoming};
use crate::net::{self, Conn, NetError};
use crate::stats::ShardStats;
use ringmcp::proto::http1::{self, Method, ResponseHead};
use ringmcp::proto::sse::{SseDecoder, SseEvent};
use ringmcp::proto::Status;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Largest SSE event accepted.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// A Streamable HTTP session: its id, negotiated version and current connection.
pub struct Session {
    /// The connection (replaced on reconnects).
    pub conn: Conn,
    /// `Mcp-Session-Id`, if the server issued one.
    pub id: Option<String>,
    /// The negotiated protocol version, sent as `MCP-Protocol-Version`.
    pub version: String,
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
    /// A request (head and body) carrying the session headers: a POST of `body`, or (`body`
    /// None) a GET of the session's stream with the `extra` headers.
    pub fn request(&self, ctx: &Ctx, body: Option<&[u8]>, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut headers = Vec::with_capacity(4 + extra.len());
        if body.is_some() {
            headers.push(("content-type", "application/json"));
            headers.push(("accept", "application/json, text/event-stream"));
        } else {
            headers.push(("accept", "text/event-stream"));
        }
        if let Some(id) = &self.id {
            headers.push(("mcp-session-id", id.as_str()));
        }
        headers.push(("mcp-protocol-version", self.version.as_str()));
        headers.extend_from_slice(extra);
        let content = body.unwrap_or_default();
        let mut out = Vec::with_capacity(256 + content.len());
        let method = if body.is_some() { "POST" } else { "GET" };
        let length = body.map(<[u8]>::len);
        http1::write_request_head(
            &mut out,
            method,
            &ctx.target.path,
            &ctx.target.host,
            &headers,
            length,
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
        self.conn.write_all(&mut request, deadline).await?;
        let head = self.conn.read_head(Method::Post, deadline).await?;
        if head.status() != 200 {
            // Read the error body so the connection stays usable.
            let _ = self.conn.read_body(&head, deadline).await;
            return Err(NetError::Status(head.status()));
        }
        if is_sse(&head) {
            let mut decoder = SseDecoder::new(MAX_EVENT_BYTES);
            let mut reply = None;
            read_sse(
                &mut self.conn,
                &head,
                &mut decoder,
                deadline,
                None,
                &mut |event| {
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
                },
            )
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

/// Reads an SSE response body, handing each event to `on_event` (which returns true to
/// stop). Returns when the body ends, at `stop_at`, or fails at `idle_deadline` ... which
/// is pushed back by every event.
pub async fn read_sse(
    conn: &mut Conn,
    head: &ResponseHead,
    decoder: &mut SseDecoder,
    deadline: Instant,
    stop_at: Option<Instant>,
    on_event: &mut dyn FnMut(&SseEvent) -> bool,
) -> Result<SseEnd, NetError> {
    let mut reader = net::body_decoder(head);
    let mut chunk = Vec::new();
    loop {
        let wait_until = stop_at.map_or(deadline, |s| s.min(deadline));
        let done = match conn.body_step(&mut reader, &mut chunk, wait_until).await {
            Ok(done) => done,
            Err(NetError::Timeout) if stop_at.is_some_and(|s| Instant::now() >= s) => {
                return Ok(SseEnd::Stopped)
            }
            Err(e) => return Err(e),
        };
        let mut at = 0;
        while at < chunk.len() {
            match decoder.decode(&chunk[at..]) {
                Ok(Status::Complete(event, used)) => {
                    at += used;
                    if on_event(&event) {
                        return Ok(SseEnd::Stopped);
                    }
                }
                Ok(Status::Partial) => at = chunk.len(),
                Err(_) => return Err(NetError::Protocol("SSE event too large")),
            }
        }
        chunk.clear();
        if done {
            return Ok(SseEnd::Complete);
        }
        if stop_at.is_some_and(|s| Instant::now() >= s) {
            return Ok(SseEnd::Stopped);
        }
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
    };
    let mut request = session.request(ctx, Some(&mcp::initialize()), &[]);
    session.conn.write_all(&mut request, deadline).await?;
    let head = session.conn.read_head(Method::Post, deadline).await?;
    if head.status() != 200 {
        return Err(NetError::Status(head.status()));
    }
    session.id = head.headers().get_str("mcp-session-id").map(str::to_owned);
    let reply = if is_sse(&head) {
        let mut decoder = SseDecoder::new(MAX_EVENT_BYTES);
        let mut reply = None;
        read_sse(
            &mut session.conn,
            &head,
            &mut decoder,
            deadline,
            None,
            &mut |e| {
                if !e.data.is_empty() {
                    reply = Some(e.data.clone().into_bytes());
                }
                false
            },
        )
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

/// http-mcp: one session per connection, tools/call echo on the open-loop schedule.
/// HTTP/1.1 has one request in flight per connection, so a late reply delays the next
/// send, and that delay counts in the next request's latency (it is measured from its
/// intended time).
pub async fn client(ctx: Rc<Ctx>, global: usize) {
    let began = Instant::now();
    ShardStats::add(&ctx.stats.attempted, 1);
    let mut session = match open_session(&ctx).await {
        Ok(s) => s,
        Err(e) => return ctx.setup_failed(&e),
    };
    ctx.setup_ok(began.elapsed());
    let start = ctx.start.wait().await;
    let mut schedule = ctx.schedule(start, global);
    let template = EchoTemplate::new(ctx.args.payload);
    let stats = &ctx.stats;
    let mut body = Vec::new();
    let mut id = 1;
    while let Some(at) = schedule.peek() {
        net::sleep_until(at).await;
        let Some(intended) = schedule.take_due(Instant::now()) else {
            continue;
        };
        body.clear();
        template.write(&mut body, id);
        ShardStats::add(&stats.sent, 1);
        stats.record_lag(Instant::now().saturating_duration_since(intended));
        let deadline = intended + ctx.timeout();
        let result = session.call(&ctx, &body, deadline, &mut |_| {}).await;
        let now = Instant::now();
        match result {
            Ok(reply) => match mcp::classify(&reply) {
                Incoming::Result {
                    id: got,
                    tool_error,
                    ..
                } if got == id => {
                    stats.record(now, now.saturating_duration_since(intended));
                    if tool_error {
                        stats.error("tool_error");
                    } else {
                        ShardStats::add(&stats.ok, 1);
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
}

/// idle-hold over HTTP: an initialized session (optionally with a filled replay ring) that
/// holds its GET stream open until the end.
pub async fn idle_client(ctx: Rc<Ctx>, _global: usize) {
    let began = Instant::now();
    ShardStats::add(&ctx.stats.attempted, 1);
    let setup = async {
        let mut session = open_session(&ctx).await?;
        if ctx.args.fill_events > 0 {
            let call = mcp::stream_call(1, ctx.args.fill_events as u64, 0, ctx.args.payload);
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
    let start = ctx.start.wait().await;
    let end = start + ctx.duration();
    let mut decoder = SseDecoder::new(MAX_EVENT_BYTES);
    let held = read_sse(
        &mut session.conn,
        &head,
        &mut decoder,
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
