//! The WebSocket side of a connection (RFC 6455 after the handshake): one
//! task per connection that reads, decodes, answers, writes, pings idle
//! peers and runs the close handshake, with a bounded outbound buffer.

use super::io::{self, Deadline};
use super::{ConnGuard, Shard};
use crate::mcp::{self, Peer, SessionRef, SessionState};
use crate::metrics::{ErrorKind, Limit, Path, Transport};
use crate::proto::jsonrpc::Id;
use crate::proto::ws::{encode_close, encode_frame, CloseCode, Decoder, Event, OpCode, Role};
use futures_lite::AsyncWrite;
use glommio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// What a WebSocket connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WsKind {
    /// MCP, one JSON-RPC message per text frame.
    Mcp,
    /// Raw echo of every data message.
    Echo,
}

/// Frames waiting to be written. Handlers that finish later (on other tasks
/// of this shard) push into it and wake the connection task.
#[derive(Default)]
struct Outbox {
    bytes: RefCell<Vec<u8>>,
    waker: Cell<Option<Waker>>,
}

impl Outbox {
    fn frame(&self, opcode: OpCode, payload: &[u8]) {
        encode_frame(&mut self.bytes.borrow_mut(), opcode, true, payload, None);
        self.wake();
    }

    fn close(&self, code: CloseCode, reason: &str) {
        encode_close(&mut self.bytes.borrow_mut(), code, reason, None);
        self.wake();
    }

    fn wake(&self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn len(&self) -> usize {
        self.bytes.borrow().len()
    }
}

/// The MCP session's way to reach the client: a text frame on this connection.
struct WsPeer {
    outbox: Rc<Outbox>,
    shard: Rc<Shard>,
}

impl Peer for WsPeer {
    fn send(&self, message: Vec<u8>, _related_request: Option<&Id>) -> bool {
        // A handler that sends faster than the client reads is told, not buffered for.
        if outbox_full(&self.shard, &self.outbox) {
            self.shard.metrics.limit(Limit::NotificationQueue);
            return false;
        }
        self.shard.metrics.message_out();
        self.outbox.frame(OpCode::Text, &message);
        true
    }
}

/// Where the close handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Open.
    No,
    /// We started an orderly close (shutdown, idle) at this time and wait, bounded, for the peer's Close.
    Sent(Instant),
    /// We failed the connection at this time: our Close is queued, nothing more is processed;
    /// once it is flushed we half-close and discard input until EOF or the close timeout.
    Failed(Instant),
    /// Both Close frames were exchanged: flush and drop TCP.
    Done,
}

impl Closing {
    fn is_open(self) -> bool {
        self == Closing::No
    }

    /// When the close handshake gives up on the peer.
    fn deadline(self, timeout: std::time::Duration) -> Option<Instant> {
        match self {
            Closing::Sent(at) | Closing::Failed(at) => Some(at + timeout),
            Closing::No | Closing::Done => None,
        }
    }
}

/// What woke the connection task.
enum Wake {
    Read(usize),
    /// Input held back by a dispatch bound can be taken up again.
    Resume,
    Gone,
    Timer,
    Stopping,
    Flushed,
}

/// Runs a WebSocket connection until it closes. `inbuf` holds any bytes the
/// client sent right after its handshake.
pub(super) async fn serve(
    mut stream: TcpStream,
    mut inbuf: Vec<u8>,
    conn: ConnGuard,
    kind: WsKind,
) {
    let shard = Rc::clone(&conn.shard);
    conn.set_transport(match kind {
        WsKind::Mcp => Transport::WsMcp,
        WsKind::Echo => Transport::WsEcho,
    });
    let outbox = Rc::new(Outbox::default());
    let mcp = match kind {
        WsKind::Mcp => Some(McpLink {
            session: SessionState::new_ref(),
            peer: Rc::new(WsPeer {
                outbox: Rc::clone(&outbox),
                shard: Rc::clone(&shard),
            }),
        }),
        WsKind::Echo => None,
    };
    let mut ws = WsState {
        decoder: Decoder::new(Role::Server, shard.config.max_message_bytes),
        closing: Closing::No,
        last_heard: Instant::now(),
        ping_sent: None,
        message_started: None,
        blocked_since: None,
        held: None,
        stop_seen: false,
    };
    let mut timer = Deadline::at(ws.next_deadline(&shard));
    let mut half_closed = false;
    loop {
        ws.process(&mut inbuf, &shard, &outbox, mcp.as_ref());
        if ws.closing.is_open() && !conn.hold_inbound(inbuf.len() + ws.decoder.buffered()) {
            // Each connection is bounded by --max-message-bytes, the shard by its inbound
            // budget: many connections each holding part of a large message cannot take the
            // process's memory. RFC 6455 §7.4.1: "1009 indicates that an endpoint is terminating
            // the connection because it has received a message that is too big for it to process."
            inbuf.clear();
            ws.fail(
                &shard,
                &outbox,
                CloseCode::MESSAGE_TOO_BIG,
                "server inbound budget exhausted; retry later",
            );
        }
        // Idle connections keep no read buffer (see io.rs).
        io::release_if_empty(&mut inbuf);
        timer.pull_in(ws.next_deadline(&shard));
        let watch_stop = !ws.stop_seen;
        let closing = ws.closing;
        let before = inbuf.len();
        let wake = std::future::poll_fn(|cx| {
            let mut bytes = outbox.bytes.borrow_mut();
            match io::poll_flush(&mut stream, cx, &mut bytes) {
                Poll::Ready(Ok(n)) => shard.metrics.wrote(n),
                Poll::Ready(Err(_)) => return Poll::Ready(Wake::Gone),
                Poll::Pending => {}
            }
            let flushed = bytes.is_empty();
            // A peer that does not read its replies cannot make us buffer more: at the bound we
            // stop reading, and only start again once it drained below half of it. Without the
            // hysteresis a socket that takes a few bytes now and then (TCP memory pressure)
            // would reset the slow-reader clock forever while holding a full buffer.
            let bound = shard.config.max_outbound_bytes;
            let queued = bytes.len();
            drop(bytes);
            // Input held at the bound is the same stall, even if a flush took the queue just
            // under the bound since: the slow-reader clock runs from there.
            match ws.blocked_since {
                None if queued >= bound || ws.held.is_some() => {
                    shard.metrics.backpressure();
                    ws.blocked_since = Some(Instant::now());
                    return Poll::Ready(Wake::Timer);
                }
                Some(_) if queued < bound / 2 => ws.blocked_since = None,
                _ => {}
            }
            if ws.held.is_some() && may_resume(&shard, &outbox) {
                return Poll::Ready(Wake::Resume);
            }
            // Input held back stays in the socket: nothing more is read meanwhile.
            let reading =
                closing != Closing::Done && ws.blocked_since.is_none() && ws.held.is_none();
            if flushed && closing == Closing::Done {
                return Poll::Ready(Wake::Flushed);
            }
            if flushed && matches!(closing, Closing::Failed(_)) && !half_closed {
                // RFC 6455 §7.1.1: the server closes the TCP connection first; a half-close
                // lets our Close frame arrive before any reset.
                let _ = Pin::new(&mut stream).poll_close(cx);
                half_closed = true;
            }
            if watch_stop && shard.poll_stopping(&conn, cx).is_ready() {
                return Poll::Ready(Wake::Stopping);
            }
            if reading {
                if let Poll::Ready(r) = io::poll_read_into(&mut stream, cx, &mut inbuf) {
                    return Poll::Ready(match r {
                        Ok(0) | Err(_) => Wake::Gone,
                        Ok(n) => Wake::Read(n),
                    });
                }
            }
            if timer.poll_expired(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
            // Nor a write buffer while waiting.
            io::release_if_empty(&mut outbox.bytes.borrow_mut());
            outbox.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await;
        match wake {
            Wake::Read(n) => {
                shard.metrics.read(n);
                debug_assert_eq!(n, inbuf.len() - before);
                ws.last_heard = Instant::now();
                ws.ping_sent = None;
                if matches!(ws.closing, Closing::Failed(_)) {
                    // §7.1.7: "An endpoint MUST NOT continue to attempt to process data
                    // (including a responding Close frame) from the remote endpoint after being
                    // instructed to _Fail the WebSocket Connection_."
                    inbuf.clear();
                }
            }
            // `process` takes the held input up at the top of the loop.
            Wake::Resume => {}
            Wake::Gone | Wake::Flushed => break,
            Wake::Stopping => {
                ws.stop_seen = true;
                // RFC 6455 §7.4.1: "1001 indicates that an endpoint is "going away", such as a
                // server going down".
                ws.fail(
                    &shard,
                    &outbox,
                    CloseCode::GOING_AWAY,
                    "server shutting down",
                );
            }
            Wake::Timer => {
                if ws.on_timer(&shard, &outbox) {
                    break;
                }
                timer.reset(ws.next_deadline(&shard));
            }
        }
    }
    if let Some(link) = &mcp {
        // Cancels what still runs for this client and drops its subscriptions.
        shard.dispatcher.end_session(&link.session);
    }
}

/// The MCP session bound to this connection.
struct McpLink {
    session: SessionRef,
    peer: Rc<WsPeer>,
}

struct WsState {
    decoder: Decoder,
    closing: Closing,
    last_heard: Instant,
    ping_sent: Option<Instant>,
    message_started: Option<Instant>,
    /// Since when the outbound buffer sits at its bound (the peer does not read).
    blocked_since: Option<Instant>,
    /// Input not dispatched yet because a bound was reached: the rest of a
    /// text frame's messages (empty if the frame was done) and whatever
    /// frames follow it in the input buffer.
    held: Option<String>,
    stop_seen: bool,
}

impl WsState {
    /// Decodes and answers everything complete in `inbuf`.
    fn process(
        &mut self,
        inbuf: &mut Vec<u8>,
        shard: &Rc<Shard>,
        outbox: &Rc<Outbox>,
        mcp: Option<&McpLink>,
    ) {
        if self.held.is_some() && !may_resume(shard, outbox) {
            return;
        }
        if let Some(rest) = self.held.take() {
            if let Some(link) = mcp {
                self.held = dispatch(shard, outbox, link, &rest);
            }
            if self.held.is_some() {
                return;
            }
        }
        let mut at = 0;
        while matches!(self.closing, Closing::No | Closing::Sent(_))
            && at < inbuf.len()
            && self.held.is_none()
        {
            if outbox_full(shard, outbox) {
                // Dispatch stops here: what is left waits in the buffer and the socket.
                shard.metrics.limit(Limit::OutboundQueue);
                self.held = Some(String::new());
                break;
            }
            let decoded = match self.decoder.decode(&mut inbuf[at..]) {
                Ok(d) => d,
                Err(e) => {
                    shard.metrics.error(ErrorKind::WsProtocol);
                    log::debug!("websocket protocol error: {e}");
                    // Whatever else the peer sends now is not read: drop the rest.
                    at = inbuf.len();
                    self.fail(shard, outbox, e.close_code(), &e.to_string());
                    break;
                }
            };
            at += decoded.consumed;
            let Some(event) = decoded.event else {
                if decoded.consumed == 0 {
                    break;
                }
                continue;
            };
            if !self.closing.is_open() && !matches!(event, Event::Close(_)) {
                // RFC 6455 §5.5.1: after sending a Close frame, "the endpoint MUST NOT send any
                // more data frames"; what arrives meanwhile is discarded.
                continue;
            }
            match event {
                Event::Text(text) => {
                    shard.metrics.message_in();
                    match mcp {
                        Some(link) => self.held = dispatch(shard, outbox, link, text),
                        None => {
                            shard.metrics.message_out();
                            outbox.frame(OpCode::Text, text.as_bytes());
                        }
                    }
                }
                Event::Binary(data) => {
                    shard.metrics.message_in();
                    if mcp.is_some() {
                        // RFC 6455 §7.4.1: "1003 indicates that an endpoint is terminating the
                        // connection because it has received a type of data it cannot accept".
                        self.fail(
                            shard,
                            outbox,
                            CloseCode::UNSUPPORTED_DATA,
                            "MCP over WebSocket uses text frames",
                        );
                    } else {
                        shard.metrics.message_out();
                        outbox.frame(OpCode::Binary, data);
                    }
                }
                // §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
                // response ... The Pong frame sent in response ... must have identical "Application data"".
                Event::Ping(payload) => outbox.frame(OpCode::Pong, payload),
                Event::Pong(_) => {}
                Event::Close(frame) => {
                    if self.closing.is_open() {
                        // §5.5.1: "If an endpoint receives a Close frame and did not previously send
                        // a Close frame, the endpoint MUST send a Close frame in response. ... it
                        // typically echos the status code it received."
                        let (code, wire) = match &frame {
                            Some(f) => (f.code, f.code.0),
                            None => (CloseCode::NORMAL, 0),
                        };
                        if wire == 0 {
                            outbox.frame(OpCode::Close, &[]);
                        } else {
                            outbox.close(code, "");
                        }
                        shard.metrics.close_sent(wire);
                    }
                    // §7.1.1: "the server SHOULD close [the TCP connection] first" once both
                    // Close frames were exchanged.
                    self.closing = Closing::Done;
                }
            }
        }
        inbuf.drain(..at);
        // A frame started but not complete (its bytes wait in the buffer) runs on the same
        // completion clock as a started message: a frame trickled a byte at a time, each byte
        // resetting the liveness clock, is not kept open for ever. Input held at a bound is
        // ours to take up, not the peer's to complete.
        let started =
            self.decoder.message_in_progress() || (!inbuf.is_empty() && self.held.is_none());
        self.message_started = match (started, self.message_started) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => Some(Instant::now()),
        };
    }

    /// Starts an orderly close from our side: the peer's Close is awaited (bounded).
    fn start_close(&mut self, shard: &Shard, outbox: &Outbox, code: CloseCode, reason: &str) {
        if self.send_close(shard, outbox, code, reason) {
            self.closing = Closing::Sent(Instant::now());
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): send our Close, process nothing more.
    fn fail(&mut self, shard: &Shard, outbox: &Outbox, code: CloseCode, reason: &str) {
        if self.send_close(shard, outbox, code, reason) {
            self.closing = Closing::Failed(Instant::now());
        }
    }

    fn send_close(
        &mut self,
        shard: &Shard,
        outbox: &Outbox,
        code: CloseCode,
        reason: &str,
    ) -> bool {
        if !self.closing.is_open() {
            return false;
        }
        outbox.close(code, reason);
        shard.metrics.close_sent(code.0);
        true
    }

    /// The next instant something time-driven is due.
    fn next_deadline(&self, shard: &Shard) -> Instant {
        let config = &shard.config;
        if let Some(at) = self.closing.deadline(config.close_timeout()) {
            return at;
        }
        let liveness = match self.ping_sent {
            Some(at) => at + config.ws_pong_timeout(),
            None => self.last_heard + config.ws_ping_interval(),
        };
        [
            self.message_started
                .map(|at| at + config.fragment_timeout()),
            self.blocked_since
                .map(|at| at + config.slow_reader_timeout()),
        ]
        .into_iter()
        .flatten()
        .fold(liveness, Instant::min)
    }

    /// Acts on whatever came due; true when the connection should drop now.
    fn on_timer(&mut self, shard: &Shard, outbox: &Outbox) -> bool {
        let now = Instant::now();
        let config = &shard.config;
        if let Some(at) = self.closing.deadline(config.close_timeout()) {
            // The peer did not finish the close handshake in time.
            return now >= at;
        }
        if self
            .blocked_since
            .is_some_and(|at| now >= at + config.slow_reader_timeout())
        {
            // The Close may never reach a peer that does not read; the close timeout then drops it.
            self.fail(shard, outbox, CloseCode::POLICY, "client not reading");
            return false;
        }
        if self
            .message_started
            .is_some_and(|at| now >= at + config.fragment_timeout())
        {
            shard.metrics.error(ErrorKind::Timeout);
            // RFC 6455 §7.4.1: "1008 indicates that an endpoint is terminating the connection
            // because it has received a message that violates its policy."
            self.fail(
                shard,
                outbox,
                CloseCode::POLICY,
                "message not completed in time",
            );
            return false;
        }
        if self.held.is_some() {
            // We are the ones not reading (input held at the outbound bound): silence is no
            // sign of a dead peer; the slow-reader timeout deals with one that stopped reading.
            self.last_heard = now;
            self.ping_sent = None;
        }
        match self.ping_sent {
            Some(at) if now >= at + config.ws_pong_timeout() => {
                shard.metrics.error(ErrorKind::Timeout);
                self.start_close(shard, outbox, CloseCode::GOING_AWAY, "idle");
            }
            None if now >= self.last_heard + config.ws_ping_interval() => {
                outbox.frame(OpCode::Ping, b"ringmcp");
                self.ping_sent = Some(now);
            }
            _ => {}
        }
        false
    }
}

/// Whether the outbound queue is at its bound: the client is not reading what
/// it asked for, so neither dispatch nor a handler's notifications add to it.
/// (Requests past `--max-in-flight` are the dispatcher's to refuse: a
/// connection must stay readable for `notifications/cancelled`.)
fn outbox_full(shard: &Shard, outbox: &Outbox) -> bool {
    outbox.len() >= shard.config.max_outbound_bytes
}

/// Whether held input can be taken up again: the outbound queue drained
/// below half its bound (the same hysteresis as reading).
fn may_resume(shard: &Shard, outbox: &Outbox) -> bool {
    outbox.len() < shard.config.max_outbound_bytes / 2
}

/// Hands each JSON-RPC message of a text frame to the dispatcher until a
/// bound stops it; returns the rest, to be held.
fn dispatch(shard: &Rc<Shard>, outbox: &Rc<Outbox>, link: &McpLink, text: &str) -> Option<String> {
    for message in mcp::split_frame(text) {
        if outbox_full(shard, outbox) {
            shard.metrics.limit(Limit::OutboundQueue);
            let offset = message.as_ptr() as usize - text.as_ptr() as usize;
            return Some(text[offset..].to_owned());
        }
        dispatch_one(shard, outbox, link, message);
    }
    None
}

/// Hands one JSON-RPC message to the dispatcher; its reply is queued at
/// once, or by a task of its own when the handler waits.
fn dispatch_one(shard: &Rc<Shard>, outbox: &Rc<Outbox>, link: &McpLink, message: &str) {
    let peer: Rc<dyn Peer> = link.peer.clone();
    let mut reply = Box::pin(shard.dispatcher.handle(
        link.session.clone(),
        peer,
        message.as_bytes().to_vec(),
    ));
    let deliver = {
        let outbox = Rc::clone(outbox);
        let shard = Rc::clone(shard);
        let arrived = Instant::now();
        move |reply: Option<Vec<u8>>| {
            if let Some(reply) = reply {
                shard.metrics.message_out();
                shard.metrics.latency(Path::WebSocket, arrived.elapsed());
                outbox.frame(OpCode::Text, &reply);
            }
        }
    };
    // Most handlers finish without waiting; only those that wait get a task of their own.
    match reply.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(ready) => deliver(ready),
        Poll::Pending => {
            glommio::spawn_local(async move { deliver(reply.await) }).detach();
        }
    }
}
