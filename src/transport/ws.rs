//! The WebSocket connection after the handshake (RFC 6455): decoding,
//! answering, pings for idle peers, the close handshake and the outbound
//! bound, as a state machine the shard's driver loop feeds.

use super::admission::{self, Refusal};
use super::auth;
use super::outbound::Outbound;
use super::stamp::Stamp;
use super::stateless;
use super::TransportError;
use super::{Connection, Env, Flow, FlushedFlow};
use crate::auth::Principal;
use crate::config::Config;
use crate::mcp::session::RequestSignal;
use crate::mcp::stateless::{Envelope, EnvelopeError, MetaFields};
use crate::mcp::{self, Peer, SessionRef, SessionState};
use crate::metrics::{ErrorKind, Limit, Metrics, Path};
use crate::proto::jsonrpc::Id;
use crate::proto::ws::{
    deflate, encode_close, encode_frame, CloseCode, CompressPolicy, Decoder, Event, OpCode,
    PerMessageDeflate, Role,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What a WebSocket connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsKind {
    /// MCP, one JSON-RPC message per text frame.
    Mcp,
    /// Raw echo of every data message.
    Echo,
}

/// Queues one frame on `queue`.
fn push_frame(queue: &Outbound, opcode: OpCode, payload: &[u8]) {
    queue.push(|bytes| encode_frame(bytes, opcode, true, payload, None));
}

/// How this connection compresses what it sends, when it agreed on permessage-deflate.
fn compress_policy(deflate: Option<PerMessageDeflate>, config: &Config) -> Option<CompressPolicy> {
    deflate.map(|deflate| {
        CompressPolicy::new(
            deflate.send_window_bits,
            config.ws_deflate_level,
            config.ws_deflate_min_bytes,
        )
    })
}

/// A connection's sending side, which its MCP handlers share to reach the client: the
/// outbound queue, the compression agreed on and the metrics its messages count in. One
/// allocation per connection, the queue inline (as two, they took a 64 B and a 112 B chunk).
struct WsPeer {
    queue: Outbound,
    metrics: Rc<Metrics>,
    compress: Option<CompressPolicy>,
}

impl WsPeer {
    /// Queues one whole data message, compressed when the connection agreed to it.
    fn push_message(&self, opcode: OpCode, payload: &[u8]) {
        let compress = self.compress;
        self.queue.push(|bytes| match compress {
            Some(policy) => deflate::encode_message(bytes, opcode, payload, policy, None),
            None => encode_frame(bytes, opcode, true, payload, None),
        });
    }
}

/// The MCP session's way to reach the client: a text frame on this connection.
impl Peer for WsPeer {
    fn send(&self, message: Vec<u8>, _related_request: Option<&Id>) -> bool {
        // A handler that sends faster than the client reads is told, not buffered for.
        if self.queue.is_full() {
            self.metrics.limit(Limit::NotificationQueue);
            return false;
        }
        self.metrics.message_out();
        self.push_message(OpCode::Text, &message);
        true
    }
}

/// How this connection carries MCP, decided by its first message.
///
/// MCP 2026-07-28 defines no WebSocket binding; ringmcp serves it as a custom transport in
/// the revision's message model. Spec (2026-07-28, basic/transports): custom transports
/// "MUST preserve the JSON-RPC message format, the message patterns, and the per-request
/// metadata model". A first message carrying the revision's `_meta` (and not `initialize`)
/// makes every message a request of its own, as on stdio; an `initialize` makes today's
/// session.
enum McpLink {
    /// No message yet.
    Undecided,
    /// A 2025 session.
    Session(SessionRef),
    /// 2026-07-28 requests, each on its own; those still running, to cancel.
    Stateless(Rc<RefCell<HashMap<String, Rc<RequestSignal>>>>),
}

impl McpLink {
    /// Settles the era from the connection's first message; a session acts for `principal`.
    fn decide(&mut self, message: &str, principal: Option<&Rc<Principal>>) {
        if !matches!(self, McpLink::Undecided) {
            return;
        }
        let stateless = Envelope::parse(message.as_bytes()).is_ok_and(|envelope| {
            envelope.meta.as_ref().is_some_and(MetaFields::is_modern)
                && envelope.method.as_deref() != Some("initialize")
        });
        *self = if stateless {
            McpLink::Stateless(Rc::default())
        } else {
            let session = SessionState::new_ref();
            session.borrow_mut().set_principal(principal.cloned());
            McpLink::Session(session)
        };
    }
}

/// The longest a connection's token is taken to last (an introspected token may name no
/// expiry at all).
const MAX_TOKEN_LIFETIME_SECS: u64 = 365 * 24 * 3600;

/// Where the close handshake stands. Once it has begun, the close timeout from
/// [`WsConnection::since`] bounds it, whatever it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Open.
    No,
    /// We started an orderly close (shutdown, idle) and wait, bounded, for the peer's Close.
    Sent,
    /// We failed the connection: our Close is queued, nothing more is processed; once it is
    /// flushed we half-close and discard input until EOF or the close timeout.
    Failed,
    /// Both Close frames were exchanged: flush and drop TCP (a peer that does not read our
    /// Close is not waited for beyond the close timeout either).
    Done,
}

impl Closing {
    fn is_open(self) -> bool {
        self == Closing::No
    }
}

/// One WebSocket connection's protocol state.
pub struct WsConnection {
    peer: Rc<WsPeer>,
    mcp: Option<McpLink>,
    decoder: Decoder,
    closing: Closing,
    /// Our Ping is unanswered: the peer has the pong timeout from `since` to be heard.
    pinged: bool,
    /// When the wait the connection is in began, one clock stamp for whichever it is: our
    /// Close (while closing), our Ping (while pinged), else the last read. Only one of them
    /// ever sets a deadline, so they need not be kept apart. Stamps, as the next: 8 B each,
    /// not an `Instant`'s 16, in every WebSocket's driver.
    since: Stamp,
    message_started: Option<Stamp>,
    /// Input not dispatched yet because a bound was reached: the rest of a
    /// text frame's messages (empty if the frame was done) and whatever
    /// frames follow it in the input buffer. Boxed twice for a thin pointer (a `Box<str>`
    /// alone is two, and 8 B more take a WebSocket's task into the next allocator chunk):
    /// only a connection whose reader is slow holds one.
    held: Option<Box<Box<str>>>,
    /// Who the connection acts for, when authorization is on (boxed: a connection without
    /// it pays one pointer).
    authorized: Option<Box<Authorized>>,
}

/// The principal a WebSocket's upgrade was authorized for, and until when.
struct Authorized {
    principal: Rc<Principal>,
    /// When its token expires; `None` once the connection was failed for it.
    expires: Option<Instant>,
}

impl WsConnection {
    /// A connection from `peer` that just completed its handshake, with the compression it
    /// agreed on.
    pub fn new(
        kind: WsKind,
        deflate: Option<PerMessageDeflate>,
        config: &Config,
        metrics: &Rc<Metrics>,
        now: Instant,
        principal: Option<Rc<Principal>>,
    ) -> Self {
        let mcp = match kind {
            WsKind::Mcp => Some(McpLink::Undecided),
            WsKind::Echo => None,
        };
        WsConnection {
            peer: Rc::new(WsPeer {
                queue: Outbound::new(config.max_outbound_bytes),
                metrics: Rc::clone(metrics),
                compress: compress_policy(deflate, config),
            }),
            mcp,
            decoder: match deflate {
                Some(_) => Decoder::new(Role::Server, config.max_message_bytes).with_deflate(),
                None => Decoder::new(Role::Server, config.max_message_bytes),
            },
            closing: Closing::No,
            pinged: false,
            since: Stamp::of(now),
            message_started: None,
            held: None,
            authorized: principal.map(|principal| {
                let left = principal.expires_at.saturating_sub(auth::unix_now());
                let expires = now + Duration::from_secs(left.min(MAX_TOKEN_LIFETIME_SECS));
                Box::new(Authorized {
                    principal,
                    expires: Some(expires),
                })
            }),
        }
    }

    /// Decodes and answers everything complete in `inbuf`.
    fn process(&mut self, inbuf: &mut Vec<u8>, env: &Env, now: Instant) {
        let principal = self.authorized.as_ref().map(|a| Rc::clone(&a.principal));
        let env = &Env {
            principal: principal.as_ref(),
            ..*env
        };
        if self.held.is_some() && !self.peer.queue.has_room_again() {
            return;
        }
        if let Some(rest) = self.held.take() {
            if let Some(link) = &mut self.mcp {
                let dispatched = dispatch(env, &self.peer, link, &rest, now);
                self.take_up(env, dispatched, now);
            }
            if self.held.is_some() {
                return;
            }
        }
        let mut at = 0;
        while matches!(self.closing, Closing::No | Closing::Sent)
            && at < inbuf.len()
            && self.held.is_none()
        {
            if self.peer.queue.is_full() {
                // Dispatch stops here: what is left waits in the buffer and the socket.
                env.metrics.limit(Limit::OutboundQueue);
                self.held = Some(Box::default());
                break;
            }
            let decoded = match self.decoder.decode(&mut inbuf[at..]) {
                Ok(d) => d,
                Err(e) => {
                    env.metrics.error(ErrorKind::WsProtocol);
                    log::debug!("websocket protocol error: {e}");
                    // Whatever else the peer sends now is not read: drop the rest.
                    at = inbuf.len();
                    self.fail(env, e.close_code(), &e.to_string(), now);
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
                    env.metrics.message_in();
                    match &mut self.mcp {
                        Some(link) => {
                            let dispatched = dispatch(env, &self.peer, link, text, now);
                            self.take_up(env, dispatched, now);
                        }
                        None => {
                            env.metrics.message_out();
                            let text = text.as_bytes();
                            self.peer.push_message(OpCode::Text, text);
                        }
                    }
                }
                Event::Binary(data) => {
                    env.metrics.message_in();
                    if self.mcp.is_some() {
                        // RFC 6455 §7.4.1: "1003 indicates that an endpoint is terminating the
                        // connection because it has received a type of data it cannot accept".
                        let reason = "MCP over WebSocket uses text frames";
                        self.fail(env, CloseCode::UNSUPPORTED_DATA, reason, now);
                    } else {
                        env.metrics.message_out();
                        self.peer.push_message(OpCode::Binary, data);
                    }
                }
                // §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in
                // response ... The Pong frame sent in response ... must have identical "Application data"".
                Event::Ping(payload) => push_frame(&self.peer.queue, OpCode::Pong, payload),
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
                            self.peer.queue.end_with(|bytes| {
                                encode_frame(bytes, OpCode::Close, true, &[], None)
                            });
                        } else {
                            self.peer
                                .queue
                                .end_with(|bytes| encode_close(bytes, code, "", None));
                        }
                        env.metrics.close_sent(wire);
                    }
                    // §7.1.1: "the server SHOULD close [the TCP connection] first" once both
                    // Close frames were exchanged.
                    self.closing = Closing::Done;
                    self.since = Stamp::of(now);
                }
            }
        }
        inbuf.drain(..at);
        // Every event was handled: an idle connection keeps no delivered message (for a
        // compressed one, up to twice its inflated size).
        self.decoder.release_delivered();
        // A frame started but not complete (its bytes wait in the buffer) runs on the same
        // completion clock as a started message: a frame trickled a byte at a time, each byte
        // resetting the liveness clock, is not kept open for ever. Input held at a bound is
        // ours to take up, not the peer's to complete.
        let started =
            self.decoder.message_in_progress() || (!inbuf.is_empty() && self.held.is_none());
        self.message_started = match (started, self.message_started) {
            (false, _) => None,
            (true, Some(t)) => Some(t),
            (true, None) => Some(Stamp::of(now)),
        };
    }

    /// Bytes the frame decoder has allocated.
    #[cfg(test)]
    pub(super) fn decoder_allocated(&self) -> usize {
        self.decoder.allocated()
    }

    /// Holds what a bound left undispatched, or fails the connection over the request rate.
    fn take_up(&mut self, env: &Env, dispatched: Dispatched, now: Instant) {
        match dispatched {
            Dispatched::All => {}
            Dispatched::Held(rest) => self.held = Some(rest),
            // The outcome for a WebSocket, and the one that ends a flood: answering
            // each message over the rate with -32000 would keep reading and parsing at the
            // flood's pace, and a notification has no reply to carry it. RFC 6455 §7.4.1:
            // "1008 indicates that an endpoint is terminating the connection because it has
            // received a message that violates its policy." The reason names the wait.
            Dispatched::OverRate(refusal) => {
                self.fail(env, CloseCode::POLICY, &refusal.to_string(), now)
            }
        }
    }

    /// Starts an orderly close from our side: the peer's Close is awaited (bounded).
    fn start_close(&mut self, env: &Env, code: CloseCode, reason: &str, now: Instant) {
        if self.send_close(env, code, reason) {
            self.closing = Closing::Sent;
            self.since = Stamp::of(now);
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): send our Close, process nothing more.
    fn fail(&mut self, env: &Env, code: CloseCode, reason: &str, now: Instant) {
        if self.send_close(env, code, reason) {
            self.closing = Closing::Failed;
            self.since = Stamp::of(now);
        }
    }

    fn send_close(&mut self, env: &Env, code: CloseCode, reason: &str) -> bool {
        if !self.closing.is_open() {
            return false;
        }
        // §5.5.1: "The application MUST NOT send any more data frames after sending a Close
        // frame": a handler finishing later finds the queue ended.
        self.peer
            .queue
            .end_with(|bytes| encode_close(bytes, code, reason, None));
        env.metrics.close_sent(code.0);
        true
    }

    /// The peer was heard (or need not be): liveness starts over, unless a close handshake
    /// is what the connection waits for.
    fn heard(&mut self, now: Instant) {
        if self.closing.is_open() {
            self.pinged = false;
            self.since = Stamp::of(now);
        }
    }

    /// When an open connection pings (not pinged yet) or gives up on the peer (pinged).
    fn liveness_deadline(&self, config: &Config) -> Instant {
        if self.pinged {
            self.since.instant() + config.ws_pong_timeout()
        } else {
            self.since.instant() + config.ws_ping_interval()
        }
    }
}

impl Connection for WsConnection {
    fn outbound(&self) -> &Outbound {
        &self.peer.queue
    }

    fn on_input(&mut self, inbuf: &mut Vec<u8>, env: &Env, now: Instant) {
        self.process(inbuf, env, now);
    }

    fn on_read(&mut self, inbuf: &mut Vec<u8>, now: Instant) {
        // Hearing from the peer restarts liveness, not a close handshake's wait.
        self.heard(now);
        if self.closing == Closing::Failed {
            // §7.1.7: "An endpoint MUST NOT continue to attempt to process data (including a
            // responding Close frame) from the remote endpoint after being instructed to _Fail
            // the WebSocket Connection_."
            inbuf.clear();
        }
    }

    fn on_timer(&mut self, env: &Env, now: Instant) -> Flow {
        let config = env.config;
        if !self.closing.is_open() {
            // The peer did not finish the close handshake in time.
            return if now >= self.since.instant() + config.close_timeout() {
                Flow::Drop
            } else {
                Flow::Continue
            };
        }
        if self
            .peer
            .queue
            .stalled_since()
            .is_some_and(|at| now >= at + config.slow_reader_timeout())
        {
            // The Close may never reach a peer that does not read; the close timeout then drops it.
            self.fail(env, CloseCode::POLICY, "client not reading", now);
            return Flow::Continue;
        }
        if let Some(authorized) = self
            .authorized
            .as_mut()
            .filter(|a| a.expires.is_some_and(|at| now >= at))
        {
            // The token authorised the connection; without a valid one it may not go on (a
            // client reconnects with a fresh token).
            env.metrics.error(ErrorKind::Auth);
            authorized.expires = None;
            self.fail(env, CloseCode::POLICY, "access token expired", now);
            return Flow::Continue;
        }
        if self
            .message_started
            .is_some_and(|at| now >= at.instant() + config.fragment_timeout())
        {
            env.metrics.error(ErrorKind::Timeout);
            // RFC 6455 §7.4.1: "1008 indicates that an endpoint is terminating the connection
            // because it has received a message that violates its policy."
            let reason = "message not completed in time";
            self.fail(env, CloseCode::POLICY, reason, now);
            return Flow::Continue;
        }
        if self.held.is_some() {
            // We are the ones not reading (input held at the outbound bound): silence is no
            // sign of a dead peer; the slow-reader timeout deals with one that stopped reading.
            self.heard(now);
        }
        if now < self.liveness_deadline(config) {
            return Flow::Continue;
        }
        if self.pinged {
            env.metrics.error(ErrorKind::Timeout);
            self.start_close(env, CloseCode::GOING_AWAY, "idle", now);
        } else {
            push_frame(&self.peer.queue, OpCode::Ping, b"ringmcp");
            self.pinged = true;
            self.since = Stamp::of(now);
        }
        Flow::Continue
    }

    fn on_stop(&mut self, env: &Env, now: Instant) {
        // RFC 6455 §7.4.1: "1001 indicates that an endpoint is "going away", such as a server
        // going down".
        self.fail(env, CloseCode::GOING_AWAY, "server shutting down", now);
    }

    fn next_deadline(&self, env: &Env) -> Instant {
        let config = env.config;
        if !self.closing.is_open() {
            return self.since.instant() + config.close_timeout();
        }
        [
            self.authorized.as_ref().and_then(|a| a.expires),
            self.message_started
                .map(|at| at.instant() + config.fragment_timeout()),
            self.peer
                .queue
                .stalled_since()
                .map(|at| at + config.slow_reader_timeout()),
        ]
        .into_iter()
        .flatten()
        .fold(self.liveness_deadline(config), Instant::min)
    }

    fn is_holding(&self) -> bool {
        self.held.is_some()
    }

    fn wants_read(&self, _buffered: usize, _config: &Config) -> bool {
        // Input held back stays in the socket: nothing more is read meanwhile.
        self.closing != Closing::Done && self.held.is_none()
    }

    fn when_flushed(&self) -> FlushedFlow {
        match self.closing {
            Closing::Done => FlushedFlow::Finish(Flow::Drop),
            // RFC 6455 §7.1.1: the server closes the TCP connection first; a half-close lets
            // our Close frame arrive before any reset.
            Closing::Failed => FlushedFlow::HalfClose,
            Closing::No | Closing::Sent => FlushedFlow::Continue,
        }
    }

    fn inbound_held(&self, inbuf: &[u8]) -> usize {
        if self.closing.is_open() {
            inbuf.len() + self.decoder.buffered()
        } else {
            0
        }
    }

    fn over_inbound_budget(&mut self, inbuf: &mut Vec<u8>, env: &Env) {
        // Each connection is bounded by --max-message-bytes, the shard by its inbound budget:
        // many connections each holding part of a large message cannot take the process's
        // memory. RFC 6455 §7.4.1: "1009 indicates that an endpoint is terminating the
        // connection because it has received a message that is too big for it to process."
        inbuf.clear();
        let reason = "server inbound budget exhausted; retry later";
        self.fail(env, CloseCode::MESSAGE_TOO_BIG, reason, Instant::now());
    }

    fn on_end(&mut self, env: &Env) {
        match &self.mcp {
            // Cancels what still runs for this client and drops its subscriptions.
            Some(McpLink::Session(session)) => env.dispatcher.end_session(session),
            Some(McpLink::Stateless(running)) => {
                for (_, cancel) in running.borrow_mut().drain() {
                    cancel.cancel();
                }
            }
            Some(McpLink::Undecided) | None => {}
        }
    }
}

/// How far [`dispatch`] got through a text frame.
enum Dispatched {
    /// Every message was dispatched.
    All,
    /// The outbound bound stopped it: the rest, to be held.
    Held(Box<Box<str>>),
    /// A message was over the client's request rate: it and the rest were not dispatched.
    OverRate(Refusal),
}

/// Hands each JSON-RPC message of a text frame to the dispatcher until a
/// bound or the request rate stops it. Every message counts against the rate, requests,
/// notifications and responses alike: each costs a parse and a dispatch.
fn dispatch(
    env: &Env,
    peer: &Rc<WsPeer>,
    link: &mut McpLink,
    text: &str,
    now: Instant,
) -> Dispatched {
    for message in mcp::split_frame(text) {
        if peer.queue.is_full() {
            env.metrics.limit(Limit::OutboundQueue);
            let offset = message.as_ptr() as usize - text.as_ptr() as usize;
            return Dispatched::Held(Box::new(Box::from(&text[offset..])));
        }
        if let Err(refusal) = admission::admit_request(env, now) {
            return Dispatched::OverRate(refusal);
        }
        link.decide(message, env.principal);
        if let (Some(auth), Some(principal)) = (env.auth, env.principal) {
            if let Some(refusal) = auth.refuse_message(principal, message.as_bytes()) {
                env.metrics.error(ErrorKind::Auth);
                peer.push_message(OpCode::Text, &refusal);
                continue;
            }
        }
        match link {
            McpLink::Session(session) => {
                let sender: Rc<dyn Peer> = peer.clone();
                let reply =
                    env.dispatcher
                        .handle(session.clone(), sender, message.as_bytes().to_vec());
                answer(env, peer, reply);
            }
            McpLink::Stateless(running) => stateless_message(env, peer, running, message),
            McpLink::Undecided => {}
        }
    }
    Dispatched::All
}

/// Queues a message's reply once it is ready: at once, or from a task of its own when the
/// handler waits.
fn answer(env: &Env, peer: &Rc<WsPeer>, reply: impl Future<Output = Option<Vec<u8>>> + 'static) {
    let peer = Rc::clone(peer);
    let arrived = Instant::now();
    env.run(async move {
        if let Some(reply) = reply.await {
            peer.metrics.message_out();
            peer.metrics.latency(Path::WebSocket, arrived.elapsed());
            peer.push_message(OpCode::Text, &reply);
        }
    });
}

/// One message of a 2026-07-28 WebSocket: checked as an HTTP request is, minus the headers
/// (no `_meta` -32602, another revision -32022, a method not served -32601, a missing
/// client capability -32021), then run on its own; `notifications/cancelled` stops one that
/// still runs, as on stdio.
fn stateless_message(
    env: &Env,
    peer: &Rc<WsPeer>,
    running: &Rc<RefCell<HashMap<String, Rc<RequestSignal>>>>,
    message: &str,
) {
    let refuse = |refusal: TransportError| {
        env.metrics.error(ErrorKind::JsonRpc);
        peer.push_message(OpCode::Text, &refusal.json_rpc_error());
    };
    let envelope = match Envelope::parse(message.as_bytes()) {
        Ok(envelope) => envelope,
        Err(e) => return refuse(TransportError::NotARequest(e)),
    };
    let Some(method) = envelope.method.as_deref() else {
        // A response: this revision's server sends no requests to answer.
        return refuse(TransportError::NotARequest(EnvelopeError::NotAnObject));
    };
    if !envelope.is_request() {
        if method == "notifications/cancelled" {
            if let Some(cancel) =
                cancelled_request(message).and_then(|id| running.borrow_mut().remove(&id))
            {
                cancel.cancel();
            }
        }
        return;
    }
    let id = envelope.id.map(|raw| raw.get().to_owned());
    let checked = stateless::read_meta(&envelope, &id).and_then(|(meta, requested)| {
        stateless::check_revision(requested, &id)?;
        stateless::check_servable(env, method, &envelope, &meta, &id, None)?;
        Ok(meta)
    });
    let mut meta = match checked {
        Ok(meta) => meta,
        Err(refusal) => return refuse(refusal),
    };
    meta.principal = env.principal.cloned();
    // Spec (basic): "The request ID MUST NOT have been previously used by the requestor
    // within the same session"; here, ids of requests still running are the ones
    // `notifications/cancelled` names, so a reused one would make cancellation ambiguous.
    let key = id.clone().unwrap_or_default();
    if running.borrow().contains_key(&key) {
        return refuse(TransportError::IdInUse { id });
    }
    let cancel = Rc::new(RequestSignal::default());
    running.borrow_mut().insert(key.clone(), Rc::clone(&cancel));
    let sender: Rc<dyn Peer> = peer.clone();
    let reply = env
        .dispatcher
        .handle_stateless(meta, sender, message.as_bytes().to_vec());
    let running = Rc::clone(running);
    answer(env, peer, async move {
        let reply = futures_lite::future::or(reply, async {
            cancel.cancelled().await;
            None
        })
        .await;
        running.borrow_mut().remove(&key);
        reply
    });
}

/// The `requestId` of a `notifications/cancelled`, as JSON text.
fn cancelled_request(message: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(rename = "requestId", borrow)]
        request_id: &'a serde_json::value::RawValue,
    }
    #[derive(serde::Deserialize)]
    struct Notification<'a> {
        #[serde(borrow)]
        params: Params<'a>,
    }
    let parsed: Notification<'_> = serde_json::from_str(message).ok()?;
    Some(parsed.params.request_id.get().to_owned())
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::WsPeer;
    use std::mem::size_of;

    /// Every WebSocket holds its sending side in an `Rc` (16 B of counts): at 56 B it is an
    /// 80 B allocator chunk, at 72 B a 96 B one. Grow this bound only with a measurement.
    #[test]
    fn a_websockets_sending_side_stays_small() {
        let size = size_of::<WsPeer>();
        assert!(size <= 56, "WsPeer is {size} B");
    }
}
