//! The HTTP/1.1 side of a connection: reads heads and bodies within limits
//! and timeouts, answers in order (pipelining), and hands upgrades over to
//! the WebSocket task.

use super::io::{self, Deadline};
use super::streamable::{self, Outcome, StreamServe};
use super::ws;
use super::{ConnGuard, HandoffParts, Shard};
use crate::metrics::{ErrorKind, Limit};
use crate::proto::http1::{self, BodyFraming, ChunkedDecoder, HttpError, Method, RequestHead};
use crate::proto::ws::handshake;
use crate::proto::Status;
use crate::transport::ws::WsKind;
use glommio::net::TcpStream;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

/// Subprotocols offered on /mcp, in order of preference.
const MCP_SUBPROTOCOLS: &[&str] = &["mcp"];

/// What a connection is waiting for while it reads.
enum Waited {
    /// More bytes are in the buffer.
    Data,
    /// The peer closed, or the socket failed.
    Closed,
    /// The deadline passed.
    TimedOut,
    /// The shard started draining (only watched between requests).
    Stopping,
}

/// One HTTP connection, from accept to close or upgrade.
pub(super) async fn serve_connection(mut stream: TcpStream, conn: ConnGuard, over_cap: bool) {
    if over_cap {
        let mut out = Vec::new();
        conn.shard.metrics.error(ErrorKind::ConnectionCap);
        respond_text(
            &conn.shard,
            &mut out,
            503,
            &[("retry-after", "1")],
            "connection limit reached\n",
            false,
        );
        let _ = flush(&mut stream, &mut out, &conn.shard).await;
        return;
    }
    request_loop(stream, conn, Vec::new(), Vec::new(), None).await;
}

/// A connection another shard handed over, starting with the request that named our session.
pub(super) async fn serve_handed_off(stream: TcpStream, conn: ConnGuard, first: HandoffParts) {
    let (head, body, inbuf) = first;
    request_loop(stream, conn, inbuf, Vec::new(), Some((head, body))).await;
}

/// The request loop: read, answer in order, until close, upgrade, stream or handoff.
async fn request_loop(
    mut stream: TcpStream,
    conn: ConnGuard,
    mut inbuf: Vec<u8>,
    mut out: Vec<u8>,
    mut first: Option<(RequestHead, Vec<u8>)>,
) {
    let shard = Rc::clone(&conn.shard);
    // One timer serves every wait on this connection; see `read_more`.
    let mut timer = Deadline::at(Instant::now() + shard.config.http_idle_timeout());
    loop {
        let (head, body) = match first.take() {
            Some(request) => request,
            None => {
                match read_request(&mut stream, &mut inbuf, &conn, &mut out, &mut timer).await {
                    Some(request) => request,
                    None => break,
                }
            }
        };
        let keep_alive = head.keep_alive() && !shard.stopping();
        let response_start = out.len();
        match route(&shard, &head, body, keep_alive, &mut out) {
            Next::KeepGoing => {
                http1::omit_content_for_head(head.method(), &mut out, response_start);
                if !keep_alive {
                    break;
                }
            }
            Next::Upgrade(accepted, kind) => {
                handshake::write_switching_protocols(&mut out, &accepted);
                shard.metrics.status(101);
                if flush(&mut stream, &mut out, &shard).await.is_err() {
                    return;
                }
                // The WebSocket runs as its own task, so this HTTP task's state (sized for
                // every request path) is freed instead of living as long as the socket.
                let websocket = ws::serve(stream, inbuf, conn, kind);
                glommio::spawn_local(websocket).detach();
                return;
            }
            Next::Stream(serve) => {
                // Like a WebSocket, a stream may stay open for hours: it runs as a small task
                // of its own, and this task's state is freed. If the connection carries more
                // requests after the stream, the loop resumes there (boxed, it is rare).
                glommio::spawn_local(async move {
                    let mut stream = stream;
                    let (mut inbuf, mut out) = (inbuf, out);
                    let reusable =
                        serve_stream(&mut stream, &mut inbuf, &conn, &mut out, serve).await;
                    if reusable && keep_alive && !conn.shard.stopping() {
                        Box::pin(request_loop(stream, conn, inbuf, out, None)).await;
                    } else {
                        let _ = flush(&mut stream, &mut out, &conn.shard).await;
                    }
                })
                .detach();
                return;
            }
            Next::Metrics => {
                let text = crate::metrics::render(&shard.scrape().await);
                let content_type = [("content-type", "text/plain; version=0.0.4; charset=utf-8")];
                http1::write_response(&mut out, 200, &content_type, text.as_bytes(), keep_alive);
                http1::omit_content_for_head(head.method(), &mut out, response_start);
                shard.metrics.status(200);
                if !keep_alive {
                    break;
                }
            }
            Next::Handoff(owner, body) => {
                // Answers to earlier pipelined requests go out from here first, in order.
                if flush(&mut stream, &mut out, &shard).await.is_err() {
                    return;
                }
                shard.hand_off(owner, stream, (head, body, inbuf)).await;
                return;
            }
        }
        // Answer pipelined requests together: flush when no further head is waiting, or once
        // the answers queued reach the outbound bound (a client pipelining requests and not
        // reading their answers makes us buffer no more than that).
        if out.len() >= shard.config.max_outbound_bytes
            || !matches!(
                RequestHead::parse(&inbuf, &shard.limits),
                Ok(Status::Complete(..))
            )
        {
            if let Err(e) = flush(&mut stream, &mut out, &shard).await {
                log::debug!("write failed: {e}");
                return;
            }
        }
    }
    let _ = flush(&mut stream, &mut out, &shard).await;
}

/// Writes `out` within the write timeout (`--slow-reader-timeout-ms` without progress); a
/// client that stopped reading its answers is dropped and counted.
async fn flush(stream: &mut TcpStream, out: &mut Vec<u8>, shard: &Shard) -> std::io::Result<()> {
    let flushed = io::flush(stream, out, shard.config.slow_reader_timeout()).await;
    if flushed
        .as_ref()
        .is_err_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
    {
        shard.metrics.limit(Limit::WriteTimeout);
    }
    flushed
}

/// Reads one whole request; `None` when the connection should close (any error response is queued in `out`).
async fn read_request(
    stream: &mut TcpStream,
    inbuf: &mut Vec<u8>,
    conn: &ConnGuard,
    out: &mut Vec<u8>,
    timer: &mut Deadline,
) -> Option<(RequestHead, Vec<u8>)> {
    let shard = &conn.shard;
    let response_start = out.len();
    let Some(head) = read_head(stream, inbuf, conn, out, timer).await else {
        // The head was refused or never came: an error response went after `response_start`.
        http1::omit_content_for_head(Method::of_request(inbuf), out, response_start);
        return None;
    };
    // The client holds the body back until told to send it; a head refused outright (413,
    // 501, ...) was answered above instead. With body bytes already here it did not wait.
    if head.expects_continue() && inbuf.is_empty() {
        http1::write_continue(out);
        if flush(stream, out, shard).await.is_err() {
            return None;
        }
    }
    let response_start = out.len();
    match read_body(stream, inbuf, &head, conn, timer).await {
        Ok(body) => return Some((head, body)),
        Err(BodyError::Http(e)) => reject(shard, out, e.status(), &e.to_string()),
        Err(BodyError::TimedOut) => {
            shard.metrics.error(ErrorKind::Timeout);
            reject_plain(shard, out, 408, "request body timed out");
        }
        Err(BodyError::OverBudget) => {
            // RFC 9110 §15.6.4: 503 "indicates that the server is currently unable to handle
            // the request due to a temporary overload"; Retry-After says when to come back.
            respond_text(
                shard,
                out,
                503,
                &[("retry-after", "1")],
                "server inbound budget exhausted; retry later\n",
                false,
            );
        }
        Err(BodyError::Closed) => {}
    }
    http1::omit_content_for_head(head.method(), out, response_start);
    None
}

/// Serves an SSE response until it ends (true: the connection can carry the
/// next request), the client goes away or the write fails (false). While it
/// runs, bytes the client pipelines are kept, up to one head's worth.
async fn serve_stream(
    stream: &mut TcpStream,
    inbuf: &mut Vec<u8>,
    conn: &ConnGuard,
    out: &mut Vec<u8>,
    serve: StreamServe,
) -> bool {
    let shard = &conn.shard;
    let interval = shard.config.sse_keepalive();
    let mut keep_alive = Deadline::at(Instant::now() + interval);
    let mut stop_seen = false;
    let mut cutoff: Option<Deadline> = None;
    let mut blocked: Option<Deadline> = None;
    let ended = std::future::poll_fn(|cx| loop {
        let bound = shard.config.max_outbound_bytes;
        let ended = serve.sink.drain_into(out, bound, cx);
        match io::poll_flush(stream, cx, out) {
            Poll::Ready(Ok(n)) => shard.metrics.wrote(n),
            Poll::Ready(Err(_)) => return Poll::Ready(false),
            Poll::Pending => {}
        }
        if ended && out.is_empty() {
            return Poll::Ready(true);
        }
        // As on a WebSocket: stalled at the bound, and only unstalled once the queue drained
        // below half of it, so a reader taking a few bytes now and then cannot keep a full
        // queue forever by resetting the clock.
        if out.len() >= bound || (blocked.is_some() && out.len() >= bound / 2) {
            // The reader stalls: after the slow-reader timeout the stream ends resumably. Its
            // events stay in the ring; the client comes back with Last-Event-ID.
            let stalled = blocked.get_or_insert_with(|| {
                shard.metrics.backpressure();
                Deadline::at(Instant::now() + shard.config.slow_reader_timeout())
            });
            if stalled.poll_expired(cx).is_ready() {
                return Poll::Ready(false);
            }
        } else {
            blocked = None;
        }
        if inbuf.len() <= shard.limits.max_head_bytes {
            match io::poll_read_into(stream, cx, inbuf) {
                Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(false),
                Poll::Ready(Ok(n)) => {
                    shard.metrics.read(n);
                    continue;
                }
                Poll::Pending => {}
            }
        }
        if !stop_seen && shard.poll_stopping(conn, cx).is_ready() {
            // Shutdown ends the standalone stream with `retry:` so the client comes back (to
            // another instance) and resumes; a request stream runs on towards its response,
            // but is ended the same way before the grace period runs out rather than cut.
            stop_seen = true;
            if serve.awaits_response() {
                let grace = shard.config.shutdown_grace();
                cutoff = Some(Deadline::at(Instant::now() + grace * 3 / 4));
            } else {
                serve.sink.end_with_retry(shard.config.sse_retry_ms);
            }
            continue;
        }
        if cutoff
            .as_mut()
            .is_some_and(|c| c.poll_expired(cx).is_ready())
        {
            cutoff = None;
            serve.sink.end_with_retry(shard.config.sse_retry_ms);
            continue;
        }
        if keep_alive.poll_expired(cx).is_ready() {
            serve.sink.keep_alive();
            keep_alive.reset(Instant::now() + interval);
            continue;
        }
        // A stream waits for events most of its life: it holds no buffers while it does.
        io::release_if_empty(out);
        io::release_if_empty(inbuf);
        return Poll::Pending;
    })
    .await;
    serve.session.detach(serve.stream, &serve.sink);
    if serve.ends_session {
        // A legacy session lives exactly as long as its /sse stream.
        shard
            .http_sessions
            .remove(&serve.session.id(), &shard.dispatcher);
    }
    ended
}

/// Reads until a whole head is buffered, then parses and removes it.
/// `None` means the connection closes: quietly (EOF, idle, draining) or after
/// the error response this queued in `out`.
async fn read_head(
    stream: &mut TcpStream,
    inbuf: &mut Vec<u8>,
    conn: &ConnGuard,
    out: &mut Vec<u8>,
    timer: &mut Deadline,
) -> Option<RequestHead> {
    let shard = &conn.shard;
    let idle_deadline = Instant::now() + shard.config.http_idle_timeout();
    let mut head_deadline = None;
    loop {
        match RequestHead::parse(inbuf, &shard.limits) {
            Ok(Status::Complete(head, used)) => {
                inbuf.drain(..used);
                return Some(head);
            }
            Ok(Status::Partial) => {}
            Err(e) => {
                reject(shard, out, e.status(), &e.to_string());
                return None;
            }
        }
        // The slowloris guard runs from the first byte of a head; before it, the idle timeout.
        let between_requests = inbuf.is_empty();
        let deadline = if between_requests {
            if shard.stopping() {
                return None;
            }
            // A keep-alive connection waiting for its next request holds no buffers: one that
            // served a stream in small pieces would otherwise keep up to 16 KiB of `out`.
            io::release_if_empty(out);
            io::release_if_empty(inbuf);
            idle_deadline
        } else {
            *head_deadline.get_or_insert_with(|| Instant::now() + shard.config.header_timeout())
        };
        match read_more(stream, inbuf, conn, timer, deadline, between_requests).await {
            Waited::Data => {}
            Waited::Closed | Waited::Stopping => return None,
            Waited::TimedOut if between_requests => return None,
            Waited::TimedOut => {
                shard.metrics.error(ErrorKind::Timeout);
                reject_plain(shard, out, 408, "request head timed out");
                return None;
            }
        }
    }
}

/// Reads the request body as the head frames it, within the size limit and
/// the header timeout (a body that trickles in is the same attack as a slow head).
async fn read_body(
    stream: &mut TcpStream,
    inbuf: &mut Vec<u8>,
    head: &RequestHead,
    conn: &ConnGuard,
    timer: &mut Deadline,
) -> Result<Vec<u8>, BodyError> {
    let shard = &conn.shard;
    let deadline = Instant::now() + shard.config.header_timeout();
    let body = match head.framing() {
        BodyFraming::Empty => Vec::new(),
        BodyFraming::Length(n) => {
            // The limit was checked against Content-Length before any byte was read.
            let n = n as usize;
            while inbuf.len() < n {
                hold_inbound(conn, inbuf.len())?;
                body_bytes(stream, inbuf, conn, timer, deadline).await?;
            }
            inbuf.drain(..n).collect()
        }
        BodyFraming::Chunked => {
            let mut decoder = ChunkedDecoder::new(shard.limits.max_body_bytes);
            let mut body = Vec::new();
            loop {
                let used = decoder.decode(inbuf, &mut body).map_err(BodyError::Http)?;
                inbuf.drain(..used);
                if decoder.is_done() {
                    break body;
                }
                hold_inbound(conn, inbuf.len() + body.len())?;
                body_bytes(stream, inbuf, conn, timer, deadline).await?;
            }
        }
    };
    // The whole body is the request now: it is no longer counted as partly received.
    conn.hold_inbound(0);
    io::release_if_large(inbuf);
    Ok(body)
}

/// Counts a body still arriving against the shard's inbound budget.
fn hold_inbound(conn: &ConnGuard, bytes: usize) -> Result<(), BodyError> {
    if conn.hold_inbound(bytes) {
        Ok(())
    } else {
        Err(BodyError::OverBudget)
    }
}

/// Why a request body could not be read.
enum BodyError {
    /// Its framing broke a rule or a limit.
    Http(HttpError),
    /// The shard holds its inbound budget of partly received input.
    OverBudget,
    /// It did not arrive within the header timeout.
    TimedOut,
    /// The peer went away.
    Closed,
}

/// More body bytes before `deadline`.
async fn body_bytes(
    stream: &mut TcpStream,
    inbuf: &mut Vec<u8>,
    conn: &ConnGuard,
    timer: &mut Deadline,
    deadline: Instant,
) -> Result<(), BodyError> {
    match read_more(stream, inbuf, conn, timer, deadline, false).await {
        Waited::Data => Ok(()),
        Waited::TimedOut => Err(BodyError::TimedOut),
        Waited::Closed | Waited::Stopping => Err(BodyError::Closed),
    }
}

/// Reads more bytes into `inbuf`, until `deadline` (and, between requests, until the shard drains).
///
/// The connection's `timer` is only pulled in, never pushed back: the idle deadline moves
/// later with every request, and re-arming the reactor's timer table for each of them cost
/// more than the rare early wake-up, which re-arms for the real deadline.
async fn read_more(
    stream: &mut TcpStream,
    inbuf: &mut Vec<u8>,
    conn: &ConnGuard,
    timer: &mut Deadline,
    deadline: Instant,
    watch_stop: bool,
) -> Waited {
    timer.pull_in(deadline);
    let before = inbuf.len();
    let waited = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = io::poll_read_into(stream, cx, inbuf) {
            return Poll::Ready(match r {
                Ok(0) | Err(_) => Waited::Closed,
                Ok(_) => Waited::Data,
            });
        }
        if watch_stop && conn.shard.poll_stopping(conn, cx).is_ready() {
            return Poll::Ready(Waited::Stopping);
        }
        while timer.poll_expired(cx).is_ready() {
            if Instant::now() >= deadline {
                return Poll::Ready(Waited::TimedOut);
            }
            timer.reset(deadline);
        }
        Poll::Pending
    })
    .await;
    conn.shard.metrics.read(inbuf.len() - before);
    waited
}

/// What the connection does after a request was answered.
enum Next {
    /// Keep serving HTTP on this connection (if keep-alive allows).
    KeepGoing,
    /// Switch to WebSocket.
    Upgrade(handshake::Accepted, WsKind),
    /// Serve an SSE response.
    Stream(StreamServe),
    /// Move the connection to the shard owning the request's session (with the request body).
    Handoff(usize, Vec<u8>),
    /// Gather every shard's metrics and answer with them.
    Metrics,
}

/// Decides the response for one request and queues it in `out`.
fn route(
    shard: &Rc<Shard>,
    head: &RequestHead,
    body: Vec<u8>,
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Next {
    if let Err(e) = shard.policy.check(head) {
        shard.metrics.error(ErrorKind::Policy);
        respond_text(shard, out, 403, &[], e.message(), keep_alive);
        return Next::KeepGoing;
    }
    // A HEAD request is answered as GET: the connection drops the content.
    match head.path() {
        "/healthz" => match head.method() {
            Method::Get | Method::Head => respond_text(shard, out, 200, &[], "ok\n", keep_alive),
            _ => method_not_allowed(shard, out, "GET, HEAD", keep_alive),
        },
        "/metrics" => match head.method() {
            Method::Get | Method::Head => return Next::Metrics,
            _ => method_not_allowed(shard, out, "GET, HEAD", keep_alive),
        },
        "/echo" if shard.config.echo => {
            return upgrade_or_refuse(shard, head, WsKind::Echo, out, keep_alive)
        }
        "/mcp" if handshake::is_upgrade_request(head) => {
            return upgrade_or_refuse(shard, head, WsKind::Mcp, out, keep_alive)
        }
        "/mcp" => {
            return mcp_http(
                streamable::mcp_endpoint(shard, head, &body, keep_alive, out),
                body,
            )
        }
        "/sse" if !shard.config.no_legacy_sse => {
            return mcp_http(streamable::legacy_sse(shard, head, keep_alive, out), body)
        }
        "/messages" if !shard.config.no_legacy_sse => {
            return mcp_http(
                streamable::legacy_message(shard, head, &body, keep_alive, out),
                body,
            )
        }
        _ => respond_text(shard, out, 404, &[], "not found\n", keep_alive),
    }
    Next::KeepGoing
}

fn mcp_http(outcome: Outcome, body: Vec<u8>) -> Next {
    match outcome {
        Outcome::Done => Next::KeepGoing,
        Outcome::Stream(serve) => Next::Stream(serve),
        Outcome::Handoff(owner) => Next::Handoff(owner, body),
    }
}

/// A WebSocket endpoint: upgrade when asked properly, say what is wrong otherwise.
fn upgrade_or_refuse(
    shard: &Rc<Shard>,
    head: &RequestHead,
    kind: WsKind,
    out: &mut Vec<u8>,
    keep_alive: bool,
) -> Next {
    if !handshake::is_upgrade_request(head) {
        if !matches!(head.method(), Method::Get | Method::Head) {
            method_not_allowed(shard, out, "GET", keep_alive);
        } else {
            respond_text(
                shard,
                out,
                426,
                &[
                    ("upgrade", "websocket"),
                    ("sec-websocket-version", handshake::VERSION),
                ],
                "this endpoint speaks WebSocket\n",
                keep_alive,
            );
        }
        return Next::KeepGoing;
    }
    let protocols = match kind {
        WsKind::Mcp => MCP_SUBPROTOCOLS,
        WsKind::Echo => &[],
    };
    match handshake::accept(head, protocols) {
        Ok(accepted) => Next::Upgrade(accepted, kind),
        Err(e) => {
            shard.metrics.error(ErrorKind::WsHandshake);
            let version = [("sec-websocket-version", handshake::VERSION)];
            let headers: &[(&str, &str)] = if e.status() == 426 { &version } else { &[] };
            respond_text(
                shard,
                out,
                e.status(),
                headers,
                &format!("{e}\n"),
                keep_alive,
            );
            Next::KeepGoing
        }
    }
}

fn method_not_allowed(shard: &Rc<Shard>, out: &mut Vec<u8>, allow: &str, keep_alive: bool) {
    respond_text(
        shard,
        out,
        405,
        &[("allow", allow)],
        "method not allowed\n",
        keep_alive,
    );
}

/// Queues a response with a plain-text body and counts its status.
fn respond_text(
    shard: &Rc<Shard>,
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
    keep_alive: bool,
) {
    let mut all = Vec::with_capacity(headers.len() + 1);
    if !body.is_empty() {
        all.push(("content-type", "text/plain; charset=utf-8"));
    }
    all.extend_from_slice(headers);
    http1::write_response(out, status, &all, body.as_bytes(), keep_alive);
    shard.metrics.status(status);
}

/// Queues the error response for a broken request; the connection closes after it.
fn reject(shard: &Rc<Shard>, out: &mut Vec<u8>, status: u16, message: &str) {
    shard.metrics.error(ErrorKind::HttpParse);
    reject_plain(shard, out, status, message);
}

fn reject_plain(shard: &Rc<Shard>, out: &mut Vec<u8>, status: u16, message: &str) {
    respond_text(shard, out, status, &[], &format!("{message}\n"), false);
}
