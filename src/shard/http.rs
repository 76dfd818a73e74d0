//! The HTTP/1.1 side of a connection: reads heads and bodies within limits
//! and timeouts, has the transport answer them in order (pipelining), and
//! hands upgrades and streams over to the shard's drivers.

use super::conn::Driver;
use super::drive::StreamDriver;
use super::io::{self, Deadline, Handshake, Socket};
use super::ws;
use super::{ConnGuard, HandoffParts, Shard};
use crate::metrics::{ErrorKind, Heap, Limit};
use crate::proto::http1::{self, BodyDecoder, HttpError, Method, RequestHead};
use crate::proto::Status;
use crate::transport::auth::unix_now;
use crate::transport::http::{self as route, Next};
use crate::transport::{Flow, TransportError};
use std::future::Future;
use std::rc::Rc;
use std::task::Poll;
use std::time::Instant;

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

/// One HTTP connection, from accept to close or upgrade, after its TLS handshake if any. A
/// connection refused at accept is answered without being read (over TLS once the handshake
/// is done, so the client can read why) and closed.
pub(super) async fn serve_connection(
    stream: Socket,
    conn: ConnGuard,
    refused: Option<TransportError>,
) {
    // The requests are served by a task of their own, as a WebSocket is: this one's state
    // (the handshake, the refusal and their arguments, ~500 B) is freed instead of living as
    // long as the connection.
    if let Some((stream, conn, inbuf)) = preface(stream, conn, refused).await {
        glommio::spawn_local(request_loop(stream, conn, inbuf, Vec::new(), None)).detach();
    }
}

/// The TLS handshake, and the answer to a connection refused at accept; the connection to
/// serve, with the bytes that came with the handshake, or `None` when it is done.
async fn preface(
    mut stream: Socket,
    conn: ConnGuard,
    refused: Option<TransportError>,
) -> Option<(Socket, ConnGuard, Vec<u8>)> {
    let mut inbuf = Vec::new();
    let deadline = Instant::now() + conn.shard.config.tls_handshake_timeout();
    match stream.handshake(&mut inbuf, deadline).await {
        Handshake::Done => {}
        Handshake::Failed => {
            conn.shard.metrics.error(ErrorKind::Tls);
            return None;
        }
        Handshake::TimedOut => {
            conn.shard.metrics.error(ErrorKind::Timeout);
            return None;
        }
        Handshake::Closed => return None,
    }
    if let Some(refusal) = refused {
        let mut out = Vec::new();
        refusal.respond(&mut out, false, &conn.shard.metrics);
        let _ = flush(&mut stream, &mut out, &conn.shard).await;
        return None;
    }
    Some((stream, conn, inbuf))
}

/// A connection another shard handed over, starting with the request that named our session.
pub(super) async fn serve_handed_off(stream: Socket, conn: ConnGuard, first: HandoffParts) {
    let (head, body, inbuf) = first;
    request_loop(stream, conn, inbuf, Vec::new(), Some((head, body))).await;
}

/// The request loop: read, answer in order, until close, upgrade, stream or handoff.
#[allow(clippy::manual_async_fn)] // the async block is the point: see the comment in it
fn request_loop(
    mut stream: Socket,
    conn: ConnGuard,
    mut inbuf: Vec<u8>,
    mut out: Vec<u8>,
    mut first: Option<(RequestHead, Vec<u8>)>,
) -> impl Future<Output = ()> {
    // An `async` block, not an `async fn`: the function's arguments would be kept twice in
    // its future (once as passed, once as the body's variables), 240 B more per connection
    // waiting for a request.
    async move {
        let shard = Rc::clone(&conn.shard);
        // One timer serves every wait on this connection; see `read_more`.
        let mut timer = Deadline::at(Instant::now() + shard.config.http_idle_timeout());
        loop {
            // The request read goes straight into `first`: a `match first.take()` around the
            // read would keep its scrutinee (120 B) in the future beside `first`.
            if first.is_none() {
                first = read_request(&mut stream, &mut inbuf, &conn, &mut out, &mut timer).await;
            }
            let Some((head, body)) = first.take() else {
                break;
            };
            let keep_alive = head.keep_alive() && !shard.stopping();
            let response_start = out.len();
            let next = route::route(&conn.env(), &head, &body, keep_alive, &mut out);
            match next {
                Next::KeepGoing => {
                    http1::omit_content_for_head(head.method(), &mut out, response_start);
                    if !keep_alive {
                        break;
                    }
                }
                Next::Upgrade(kind, deflate, principal) => {
                    if flush(&mut stream, &mut out, &shard).await.is_err() {
                        return;
                    }
                    // The shard drives the WebSocket from here on, so this HTTP task's state (sized
                    // for every request path) is freed instead of living as long as the socket.
                    let websocket = ws::serve(stream, inbuf, conn, kind, deflate, principal);
                    shard.drivers.websocket(websocket);
                    return;
                }
                Next::Stream(serve) => {
                    // Like a WebSocket, a stream may stay open for hours: the shard drives it, and
                    // this task's state is freed. If the connection carries more requests after
                    // the stream, a new request loop takes it over (`stream_ended`).
                    serve.put_first(&mut out);
                    let driver = Driver::new(stream, inbuf, conn, serve);
                    shard.drivers.stream(StreamDriver { driver, keep_alive });
                    return;
                }
                Next::Introspect(token) => {
                    // The answer goes into the authorizer's cache; the request is routed again
                    // and finds it there (an endpoint that failed is remembered briefly too).
                    // Boxed: the exchange's future would otherwise sit in every connection's task.
                    let answer = Box::pin(super::auth::introspect(&shard, &token)).await;
                    if let Some(auth) = &shard.auth {
                        auth.introspected(&token, answer, unix_now());
                    }
                    first = Some((head, body));
                    continue;
                }
                Next::Adopt(id) => {
                    // Boxed, as introspection: the store's round trips would otherwise sit in
                    // every connection's task.
                    let answer = Box::pin(shard.http_sessions.load(id)).await;
                    shard.http_sessions.adopt(id, answer, &shard.env());
                    first = Some((head, body));
                    continue;
                }
                Next::Metrics => {
                    // Boxed, as introspection: the scrape's future (1,344 B) would otherwise
                    // sit in every connection's task.
                    let snapshots = Box::pin(shard.scrape()).await;
                    let heap = Heap::now();
                    route::write_metrics(&shard.env(), &snapshots, heap, keep_alive, &mut out);
                    http1::omit_content_for_head(head.method(), &mut out, response_start);
                    if !keep_alive {
                        break;
                    }
                }
                Next::Handoff(owner) => {
                    // Answers to earlier pipelined requests go out from here first, in order.
                    if flush(&mut stream, &mut out, &shard).await.is_err() {
                        return;
                    }
                    // Boxed too: a handoff is rare, and its future large.
                    Box::pin(shard.hand_off(owner, stream, (head, body, inbuf))).await;
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
}

/// A stream's connection once its response ended with `flow`: a new request loop serves it
/// when it may carry the next request, else it closes.
pub(super) fn stream_ended(stream: StreamDriver, flow: Flow) {
    let StreamDriver { driver, keep_alive } = stream;
    let (stream, inbuf, conn) = driver.into_parts();
    if flow == Flow::Reusable && keep_alive && !conn.shard.stopping() {
        let requests = request_loop(stream, conn, inbuf, Vec::new(), None);
        glommio::spawn_local(requests).detach();
    }
}

/// Writes `out` within the write timeout (`--slow-reader-timeout-ms` without progress); a
/// client that stopped reading its answers is dropped and counted.
async fn flush(stream: &mut Socket, out: &mut Vec<u8>, shard: &Shard) -> std::io::Result<()> {
    let flushed = stream.flush(out, shard.config.slow_reader_timeout()).await;
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
    stream: &mut Socket,
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
    let refusal = match read_body(stream, inbuf, &head, conn, timer).await {
        Ok(body) => return Some((head, body)),
        Err(BodyError::Http(e)) => TransportError::Malformed(e),
        Err(BodyError::TimedOut) => TransportError::BodyTimedOut,
        Err(BodyError::OverBudget) => TransportError::InboundBudget,
        Err(BodyError::Closed) => return None,
    };
    refusal.respond(out, false, &shard.metrics);
    http1::omit_content_for_head(head.method(), out, response_start);
    None
}

/// Reads until a whole head is buffered, then parses and removes it.
/// `None` means the connection closes: quietly (EOF, idle, draining) or after
/// the error response this queued in `out`.
async fn read_head(
    stream: &mut Socket,
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
                TransportError::Malformed(e).respond(out, false, &shard.metrics);
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
                TransportError::HeadTimedOut.respond(out, false, &shard.metrics);
                return None;
            }
        }
    }
}

/// Reads the request body as the head frames it, within the size limit and
/// the header timeout (a body that trickles in is the same attack as a slow head).
async fn read_body(
    stream: &mut Socket,
    inbuf: &mut Vec<u8>,
    head: &RequestHead,
    conn: &ConnGuard,
    timer: &mut Deadline,
) -> Result<Vec<u8>, BodyError> {
    let shard = &conn.shard;
    let deadline = Instant::now() + shard.config.header_timeout();
    // The limit was checked against Content-Length before any byte was read; a chunked body
    // is held to it as it decodes.
    let mut decoder = BodyDecoder::for_request(head.framing(), shard.limits.max_body_bytes);
    let mut body = Vec::new();
    loop {
        let used = decoder.decode(inbuf, &mut body).map_err(BodyError::Http)?;
        inbuf.drain(..used);
        if decoder.is_done() {
            break;
        }
        hold_inbound(conn, inbuf.len() + body.len())?;
        body_bytes(stream, inbuf, conn, timer, deadline).await?;
    }
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
    stream: &mut Socket,
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
    stream: &mut Socket,
    inbuf: &mut Vec<u8>,
    conn: &ConnGuard,
    timer: &mut Deadline,
    deadline: Instant,
    watch_stop: bool,
) -> Waited {
    timer.pull_in(deadline);
    let before = inbuf.len();
    let waited = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = stream.poll_read_into(cx, inbuf) {
            return Poll::Ready(match r {
                Ok(0) | Err(_) => Waited::Closed,
                Ok(_) => Waited::Data,
            });
        }
        // The stop wakes the deadline polled below (`Shard::begin_stop`).
        if watch_stop && conn.shard.stopping() {
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

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::request_loop;
    use std::mem::size_of;

    /// The size of what `f` returns.
    fn returned_size<A, B, C, D, E, R>(_: fn(A, B, C, D, E) -> R) -> usize {
        size_of::<R>()
    }

    /// Every connection waiting for a request, and every one in its WebSocket handshake,
    /// holds a request loop's future (the chunks these leave behind after a burst of
    /// handshakes are a part of RSS per WebSocket, docs/benchmarks.md).
    #[test]
    fn the_request_loop_stays_small() {
        let size = returned_size(request_loop);
        assert!(size <= 1016, "a request loop's future is {size} B");
    }
}
