//! MCP Streamable HTTP (2025-11-25, 2025-06-18, 2025-03-26) with resumable
//! SSE streams, and the legacy HTTP+SSE transport (2024-11-05).
//!
//! A session owns numbered streams: stream 0 is the server-to-client stream a
//! GET opens (and the legacy `/sse` stream); every POST answered with SSE gets
//! a stream of its own. Each stream has a replay ring in the shard's
//! [`EventStore`]; its events are written to the HTTP response currently
//! attached to it (a [`Sink`]), if any. A client that loses a stream resumes
//! it with `Last-Event-ID` and gets exactly the events after that id.

use super::admission;
use super::outbound::Outbound;
use super::stateless;
use super::{Connection, Env, Flow, FlushedFlow, TransportError};
use crate::auth::{Principal, PrincipalTag};
use crate::config::Config;
use crate::mcp::session::RequestSignal;
use crate::mcp::stateless::Envelope;
use crate::mcp::{self, Kind, Peer, SessionRef, SessionState};
use crate::metrics::{Limit, Metrics, Path};
use crate::proto::http1::{self, Method, RequestHead, ResponseBody};
use crate::proto::jsonrpc::Id;
use crate::proto::jsonrpc::{self, RawId};
use crate::proto::sse::{self, EventId};
use crate::store::ring::{EventStore, ResumeError, RingId};
use crate::store::sessions::{
    CreateError, Keyed, NodeId, PackedSessionId, SessionId, SessionTable,
};
use crate::store::shared::{Loaded, SharedStore, Stored};
use serde_json::value::RawValue;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// The standalone server-to-client stream of a session.
const STANDALONE: u32 = 0;
/// Finished POST streams kept for resumption per session (their rings also age out).
const FINISHED_STREAMS_KEPT: usize = 16;

/// The writing side of one SSE response: its events, chunk-encoded, in the
/// connection's outbound queue.
pub struct Sink(Outbound);

impl Sink {
    /// A response whose reader counts as stalled once `bound` bytes wait.
    pub(super) fn new(bound: usize) -> Rc<Sink> {
        Rc::new(Sink(Outbound::new(bound)))
    }

    pub(super) fn push_event(&self, id: Option<EventId>, event: Option<&str>, payload: &[u8]) {
        let mut frame = Vec::with_capacity(payload.len() + 48);
        sse::write_event(&mut frame, id, event, payload);
        self.push_raw(&frame);
    }

    fn push_raw(&self, sse_bytes: &[u8]) {
        self.0.push(|bytes| http1::write_chunk(bytes, sse_bytes));
    }

    /// Puts `sse_bytes` before everything queued (the priming event, once the
    /// response turns out to be a stream).
    fn push_front_raw(&self, sse_bytes: &[u8]) {
        self.0
            .push_front(|bytes| http1::write_chunk(bytes, sse_bytes));
    }

    /// Ends the response after what is queued (the connection may then serve the next request).
    /// The queue under the response.
    pub(super) fn queue(&self) -> &Outbound {
        &self.0
    }

    pub(super) fn end(&self) {
        self.0.end_with(http1::write_last_chunk);
    }

    /// Ends the response telling the client when to come back (shutdown).
    fn end_with_retry(&self, retry_ms: u64) {
        let mut retry = Vec::new();
        sse::write_retry(&mut retry, retry_ms);
        self.0.end_with(|bytes| {
            http1::write_chunk(bytes, &retry);
            http1::write_last_chunk(bytes);
        });
    }

    /// A keep-alive comment.
    fn keep_alive(&self) {
        let mut comment = Vec::new();
        sse::write_comment(&mut comment, "keep-alive");
        self.push_raw(&comment);
    }
}

/// Why a message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undelivered {
    /// The attached response already queues the session's bound.
    QueueFull,
    /// The stream (or its ring) is gone.
    StreamEnded,
}

/// Whether a message may be held back when its stream's response queues too much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// A request's result: always sent.
    Reply,
    /// A notification or server-to-client request: not sent over the bound.
    Droppable,
}

struct StreamState {
    ring: RingId,
    sink: Option<Rc<Sink>>,
    /// The last sequence number written to a sink.
    sent_upto: u64,
    /// The POST's final response is in the ring.
    finished: bool,
    /// With the shared event store: events appended but not yet acknowledged by it, oldest
    /// first. They go to the sink only once acknowledged, so every event id a client holds
    /// can be replayed by whichever node serves it next.
    unconfirmed: Unconfirmed,
    /// With the shared event store: the last event it answered for.
    confirmed: u64,
    /// With the shared event store: a POST stream the store has not recorded yet (its
    /// requests); nothing of it, not even its priming event, goes out before.
    held: bool,
    /// SEP-1699: the handler asked to end the response before the result; it ends once
    /// everything appended before is written.
    closing: bool,
}

impl StreamState {
    fn new(ring: RingId) -> StreamState {
        StreamState {
            ring,
            sink: None,
            sent_upto: 0,
            finished: false,
            unconfirmed: Unconfirmed::default(),
            confirmed: 0,
            held: false,
            closing: false,
        }
    }

    /// The attached response, unless it ended (shutdown): an ended one takes nothing more.
    fn open_sink(&self) -> Option<&Rc<Sink>> {
        self.sink.as_ref().filter(|sink| !sink.0.is_ended())
    }

    /// Writes the acknowledged events the response has not had, and ends the response of a
    /// finished or closing stream once all of it is written.
    fn pump(&mut self, stream: u32, event_name: Option<&str>) {
        if self.held {
            return;
        }
        while let Some((seq, payload)) = self.unconfirmed.pop_upto(self.confirmed) {
            if let Some(sink) = self.open_sink().filter(|_| seq > self.sent_upto) {
                sink.push_event(Some(EventId { stream, seq }), event_name, &payload);
                self.sent_upto = seq;
            }
        }
        if (self.finished || self.closing) && self.unconfirmed.is_empty() {
            self.closing = false;
            if let Some(sink) = self.sink.take() {
                sink.end();
            }
        }
    }

    /// The last event that may go out: the last the store answered for, or the last
    /// appended when none waits for it (always, without a store).
    fn confirmed_upto(&self, store: &EventStore) -> u64 {
        if self.unconfirmed.is_empty() {
            store.last_seq(self.ring).unwrap_or(0)
        } else {
            self.confirmed
        }
    }
}

/// A stream's events appended and not yet acknowledged by the shared store, oldest first.
/// Boxed and only while it holds any: most streams have no shared store, and a stream's
/// entry is part of every idle session (inline, the queue took 32 of the entry's 80 bytes).
#[derive(Default)]
#[allow(clippy::box_collection)] // the box is the point: 8 B inline instead of 32
struct Unconfirmed(Option<Box<VecDeque<Event>>>);

/// An event by its sequence number, as it was appended.
type Event = (u64, Vec<u8>);

impl Unconfirmed {
    fn push(&mut self, seq: u64, payload: &[u8]) {
        self.0
            .get_or_insert_default()
            .push_back((seq, payload.to_vec()));
    }

    /// Takes the oldest event if the store acknowledged it (`seq <= confirmed`).
    fn pop_upto(&mut self, confirmed: u64) -> Option<Event> {
        let events = self.0.as_mut()?;
        if events.front()?.0 > confirmed {
            return None;
        }
        let event = events.pop_front();
        if events.is_empty() {
            self.0 = None;
        }
        event
    }

    fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

/// A session's streams by number. Most sessions hold one (the standalone stream) and none
/// more than [`FINISHED_STREAMS_KEPT`] finished ones besides the POSTs in flight, so a list
/// searched in order serves them. It starts at one entry and doubles up to four, then grows
/// four at a time: a hash map starts at four buckets, and a `Vec` at four entries, so an
/// idle session's streams took a 352 B allocation where they now take 112 B (room for the
/// standalone stream and one POST's).
#[derive(Default)]
struct StreamMap(Vec<(u32, StreamState)>);

impl StreamMap {
    fn get(&self, number: u32) -> Option<&StreamState> {
        self.0.iter().find(|(n, _)| *n == number).map(|(_, s)| s)
    }

    fn get_mut(&mut self, number: u32) -> Option<&mut StreamState> {
        self.0
            .iter_mut()
            .find(|(n, _)| *n == number)
            .map(|(_, s)| s)
    }

    /// Adds stream `number`, replacing one of that number.
    fn insert(&mut self, number: u32, state: StreamState) {
        if let Some(old) = self.get_mut(number) {
            *old = state;
            return;
        }
        if self.0.len() == self.0.capacity() {
            self.0.reserve_exact(self.0.len().clamp(1, 4));
        }
        self.0.push((number, state));
    }

    /// Removes stream `number`, keeping the others' order (finished streams stand in the
    /// order they finished).
    fn remove(&mut self, number: u32) -> Option<StreamState> {
        let at = self.0.iter().position(|(n, _)| *n == number)?;
        Some(self.0.remove(at).1)
    }

    /// Marks stream `number` finished and moves it last, after those that finished before.
    fn finish(&mut self, number: u32) -> Option<&mut StreamState> {
        let at = self.0.iter().position(|(n, _)| *n == number)?;
        let mut entry = self.0.remove(at);
        entry.1.finished = true;
        self.0.push(entry);
        self.0.last_mut().map(|(_, s)| s)
    }

    /// Removes the stream that finished first, when more than `kept` have finished.
    fn remove_oldest_finished_past(&mut self, kept: usize) -> Option<(u32, StreamState)> {
        let finished = || self.0.iter().enumerate().filter(|(_, (_, s))| s.finished);
        if finished().count() <= kept {
            return None;
        }
        let (at, _) = finished().next()?;
        Some(self.0.remove(at))
    }

    fn numbers(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().map(|(n, _)| *n)
    }

    fn states(&self) -> impl Iterator<Item = &StreamState> {
        self.0.iter().map(|(_, s)| s)
    }

    /// Takes every stream out.
    fn take_all(&mut self) -> impl Iterator<Item = StreamState> {
        std::mem::take(&mut self.0).into_iter().map(|(_, s)| s)
    }
}

/// One Streamable HTTP or legacy session on its owning shard.
pub struct HttpSession {
    id: PackedSessionId,
    mcp: SessionRef,
    legacy: bool,
    store: Rc<RefCell<EventStore>>,
    /// The shared event store (`--event-store`); never for a legacy session, whose stream
    /// cannot be resumed.
    shared: Option<Rc<SharedStore>>,
    /// The principal the session is bound to (authorization on).
    principal_tag: Option<PrincipalTag>,
    /// The MCP record's revision last given to the shared store.
    stored_revision: Cell<u32>,
    /// When the session's expiry in the shared store was last renewed.
    kept_at: Cell<Instant>,
    streams: RefCell<StreamMap>,
    next_stream: Cell<u32>,
}

impl Keyed for Rc<HttpSession> {
    fn has_id(&self, id: &SessionId) -> bool {
        self.id.is(id)
    }
}

impl HttpSession {
    /// Whether a request acting for `principal` may use this session: the principal that
    /// made it (by tag: a step-up token with more scopes is the same principal, and its
    /// scopes become the session's). Another principal's request is answered as if the
    /// session did not exist (MCP security best practices: servers "SHOULD bind session IDs
    /// to user-specific information").
    fn acts_for(&self, principal: Option<&Rc<Principal>>) -> bool {
        if self.principal_tag != principal.map(|p| p.tag) {
            return false;
        }
        if principal.is_some() {
            self.mcp.borrow_mut().set_principal(principal.cloned());
        }
        true
    }

    fn new(
        id: SessionId,
        legacy: bool,
        principal: Option<&Rc<Principal>>,
        sessions: &HttpSessions,
    ) -> Rc<HttpSession> {
        let mcp = SessionState::new_ref();
        mcp.borrow_mut().set_principal(principal.cloned());
        let session = HttpSession::with_state(id, legacy, mcp, principal.map(|p| p.tag), sessions);
        session.open_stream(STANDALONE);
        session
    }

    fn with_state(
        id: SessionId,
        legacy: bool,
        mcp: SessionRef,
        principal_tag: Option<PrincipalTag>,
        sessions: &HttpSessions,
    ) -> Rc<HttpSession> {
        let stored_revision = mcp.borrow().revision();
        Rc::new(HttpSession {
            id: PackedSessionId::new(&id, &sessions.node),
            mcp,
            legacy,
            store: Rc::clone(&sessions.store),
            shared: sessions.shared.clone().filter(|_| !legacy),
            principal_tag,
            stored_revision: Cell::new(stored_revision),
            kept_at: Cell::new(Instant::now()),
            streams: RefCell::default(),
            next_stream: Cell::new(STANDALONE + 1),
        })
    }

    fn open_stream(&self, number: u32) {
        let ring = self.store.borrow_mut().create_ring();
        self.streams
            .borrow_mut()
            .insert(number, StreamState::new(ring));
    }

    /// A new stream for one POST's requests (held, with the shared store, until the store
    /// records it: see [`HttpSession::open_post_stream_response`]).
    fn open_post_stream(&self) -> u32 {
        let number = self.next_stream.get();
        self.next_stream
            .set(number.wrapping_add(1).max(STANDALONE + 1));
        self.open_stream(number);
        if let Some(state) = self.streams.borrow_mut().get_mut(number) {
            state.held = self.shared.is_some();
        }
        number
    }

    fn event_name(&self) -> Option<&'static str> {
        // 2024-11-05 HTTP+SSE: "server messages ... sent as SSE `message` events".
        self.legacy.then_some("message")
    }

    /// Whether anything was stored on `stream` yet.
    fn stream_untouched(&self, stream: u32) -> bool {
        let streams = self.streams.borrow();
        let store = self.store.borrow();
        streams.get(stream).is_none_or(|s| {
            store
                .replay_after(s.ring, 0, Instant::now())
                .is_ok_and(|mut events| events.next().is_none())
        })
    }

    /// Stores a message on `stream` and writes it to the attached response, if
    /// any. A `Droppable` message (a notification or server request) is not
    /// sent while the attached response already queues the session's bound:
    /// the handler is told, the event ids stay gapless, and memory stays
    /// bounded. A `Reply` always goes out.
    fn deliver(
        self: &Rc<Self>,
        stream: u32,
        payload: &[u8],
        kind: Delivery,
    ) -> Result<(), Undelivered> {
        let mut streams = self.streams.borrow_mut();
        let Some(state) = streams.get_mut(stream) else {
            log::debug!(
                "session {}: message for ended stream {stream} dropped",
                self.id()
            );
            return Err(Undelivered::StreamEnded);
        };
        if kind == Delivery::Droppable && state.sink.as_ref().is_some_and(|sink| sink.0.is_full()) {
            return Err(Undelivered::QueueFull);
        }
        let Some(appended) = self
            .store
            .borrow_mut()
            .append(state.ring, payload, Instant::now())
        else {
            return Err(Undelivered::StreamEnded);
        };
        let seq = appended.seq;
        let Some(shared) = &self.shared else {
            // An ended response (shutdown) takes nothing more: the event waits in the ring.
            if let Some(sink) = state.open_sink() {
                sink.push_event(Some(EventId { stream, seq }), self.event_name(), payload);
                state.sent_upto = seq;
            }
            return Ok(());
        };
        // Issue 20: "every event of a resumable stream goes to a Redis stream ... and is
        // written to the client only after Redis acknowledged it". The store's reply (or its
        // absence) comes later, or at once when it is unreachable, so no borrow is held.
        state.unconfirmed.push(seq, payload);
        drop(streams);
        let me = Rc::downgrade(self);
        shared.append(&self.id(), stream, seq, payload, move |stored| {
            if let Some(session) = me.upgrade() {
                session.stored(stream, seq, stored);
            }
        });
        Ok(())
    }

    /// The shared store answered for event `seq` of `stream`: it may go out now. An
    /// unreachable store leaves the event in the local ring only (failover is off); a refusal
    /// means another node wrote the same event: it serves this session too.
    fn stored(&self, stream: u32, seq: u64, stored: Stored) {
        if let Stored::Refused(why) = &stored {
            log::warn!(
                "session {}: event {stream}/{seq} refused by the event store ({why}): \
                 another node serves this session",
                self.id()
            );
        }
        if let Some(state) = self.streams.borrow_mut().get_mut(stream) {
            state.confirmed = state.confirmed.max(seq);
            state.pump(stream, self.event_name());
        }
    }

    /// With the shared store, a POST's response turned out to be a stream: the store records
    /// which requests it serves (what a node adopting the session answers for them if their
    /// handlers die with this one) before its priming event, and anything after, goes out.
    /// Without the store the priming event goes out at once, ahead of what is queued.
    fn open_post_stream_response(
        self: &Rc<Self>,
        stream: u32,
        request_ids: &[u8],
        sink: &Sink,
        primer: Vec<u8>,
    ) {
        let Some(shared) = &self.shared else {
            sink.push_front_raw(&primer);
            return;
        };
        let me = Rc::downgrade(self);
        shared.open_stream(&self.id(), stream, request_ids, move |stored| {
            if let Some(session) = me.upgrade() {
                session.stream_recorded(stream, &primer, stored);
            }
        });
    }

    fn stream_recorded(&self, stream: u32, primer: &[u8], stored: Stored) {
        if let Stored::Refused(why) = &stored {
            log::warn!(
                "session {}: stream {stream} refused by the event store: {why}",
                self.id()
            );
        }
        let mut streams = self.streams.borrow_mut();
        let Some(state) = streams.get_mut(stream) else {
            return;
        };
        state.held = false;
        if let Some(sink) = state.open_sink() {
            sink.push_raw(primer);
        }
        state.pump(stream, self.event_name());
    }

    /// Gives the shared store the MCP session record if it changed since it last did.
    fn save_state(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let mcp = self.mcp.borrow();
        if mcp.revision() == self.stored_revision.get() {
            return;
        }
        let Some(record) = mcp.record() else {
            return;
        };
        let tag = self.principal_tag.map(|tag| tag.to_hex());
        shared.save_state(&self.id(), &record, tag.as_deref());
        self.stored_revision.set(mcp.revision());
        self.kept_at.set(Instant::now());
    }

    /// Renews the session's expiry in the shared store when a quarter of it has passed.
    fn keep(&self, idle_timeout: std::time::Duration) {
        let Some(shared) = &self.shared else {
            return;
        };
        let now = Instant::now();
        if now.saturating_duration_since(self.kept_at.get()) >= idle_timeout / 4 {
            shared.keep(&self.id());
            self.kept_at.set(now);
        }
    }

    /// The POST's response went out on `stream`: end its HTTP response.
    fn finish(&self, stream: u32) {
        let mut streams = self.streams.borrow_mut();
        let Some(state) = streams.finish(stream) else {
            return;
        };
        // The response ends once everything before it is acknowledged and written.
        state.pump(stream, self.event_name());
        // Kept only for replay from here on.
        self.store.borrow_mut().seal(state.ring);
        if let Some(shared) = &self.shared {
            shared.finish_stream(&self.id(), stream);
        }
        if let Some((oldest, old)) = streams.remove_oldest_finished_past(FINISHED_STREAMS_KEPT) {
            self.store.borrow_mut().remove_ring(old.ring);
            if let Some(shared) = &self.shared {
                shared.drop_stream(&self.id(), oldest);
            }
        }
    }

    /// SEP-1699: the server ends a POST's SSE response before the result; the
    /// client resumes with `Last-Event-ID`.
    fn close_stream(&self, stream: u32) {
        let mut streams = self.streams.borrow_mut();
        if let Some(state) = streams.get_mut(stream) {
            // With the shared store, not before its priming event and what the handler sent
            // before are written: the client resumes from the last id it has.
            state.closing = true;
            state.pump(stream, self.event_name());
        }
    }

    /// Attaches a POST's fresh response to its new `stream` before the
    /// handler first runs, so every message it sends is written in order
    /// whatever the ring keeps.
    fn attach_new(&self, stream: u32, sink: &Rc<Sink>) {
        if let Some(state) = self.streams.borrow_mut().get_mut(stream) {
            state.sink = Some(Rc::clone(sink));
        }
    }

    /// Removes a stream that turned out to need no SSE (plain JSON answer).
    fn discard_stream(&self, stream: u32) {
        if let Some(state) = self.streams.borrow_mut().remove(stream) {
            self.store.borrow_mut().remove_ring(state.ring);
        }
    }

    /// Attaches `sink` to `stream`, first writing the priming event (and
    /// `retry`) and the events after `after` (default: those not yet sent).
    fn attach(
        &self,
        stream: u32,
        sink: &Rc<Sink>,
        after: Option<u64>,
        retry_ms: u64,
    ) -> Result<(), ResumeError> {
        let mut streams = self.streams.borrow_mut();
        let state = streams.get_mut(stream).ok_or(ResumeError::UnknownStream)?;
        let after = after.unwrap_or(state.sent_upto);
        let store = self.store.borrow();
        // Only what the shared store acknowledged: the rest follows as it is.
        let confirmed = state.confirmed_upto(&store);
        let events = store
            .replay_after(state.ring, after, Instant::now())?
            .take_while(|(seq, _)| *seq <= confirmed);
        // SEP-1699 priming event: an id the client can resume from even if nothing else arrives.
        // The 2024-11-05 transport has no resumption, and its clients parse every `message`
        // event as JSON-RPC: an empty one would be an error there, so it gets `retry:` alone
        // (a block without data is not dispatched).
        let mut primer = Vec::new();
        if self.legacy {
            sse::write_retry(&mut primer, retry_ms);
        } else {
            sse::write_priming(&mut primer, EventId { stream, seq: after }, retry_ms);
        }
        sink.push_raw(&primer);
        for (seq, payload) in events {
            sink.push_event(Some(EventId { stream, seq }), self.event_name(), payload);
            state.sent_upto = seq;
        }
        if let Some(previous) = state.sink.replace(Rc::clone(sink)) {
            // A resumption replaces a stream the client has evidently lost.
            previous.end();
        }
        state.sent_upto = state.sent_upto.max(after);
        // A resumption is the response the client wants; an earlier close request was for
        // the one it lost.
        state.closing = false;
        state.pump(stream, self.event_name());
        Ok(())
    }

    /// Whether `stream` has a response attached.
    fn is_attached(&self, stream: u32) -> bool {
        self.streams
            .borrow()
            .get(stream)
            .is_some_and(|s| s.sink.is_some())
    }

    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.id.unpack()
    }

    /// Forgets `sink` if it is still the one attached to `stream` (the client went away).
    pub fn detach(&self, stream: u32, sink: &Rc<Sink>) {
        if let Some(state) = self.streams.borrow_mut().get_mut(stream) {
            if state.sink.as_ref().is_some_and(|s| Rc::ptr_eq(s, sink)) {
                state.sink = None;
            }
        }
    }

    /// Whether the session must not expire: a stream is attached or a request runs.
    fn busy(&self) -> bool {
        self.streams.borrow().states().any(|s| s.sink.is_some())
            || self.mcp.borrow().in_flight_len() > 0
    }

    /// Ends the MCP session (in-flight requests, subscriptions), every attached response, and frees the rings.
    fn end(&self, dispatcher: &mcp::Dispatcher) {
        dispatcher.end_session(&self.mcp);
        if let Some(shared) = &self.shared {
            shared.forget(&self.id(), self.streams.borrow().numbers());
        }
        self.free_streams();
    }

    /// Ends every attached response and frees the rings.
    fn free_streams(&self) {
        let mut store = self.store.borrow_mut();
        for state in self.streams.borrow_mut().take_all() {
            if let Some(sink) = state.sink {
                sink.end();
            }
            store.remove_ring(state.ring);
        }
    }
}

/// How the dispatcher reaches the client of an HTTP session: messages that
/// belong to the POST's requests go on that POST's stream, all else on the
/// standalone stream.
struct HttpPeer {
    session: Rc<HttpSession>,
    post_stream: Option<u32>,
    metrics: Rc<Metrics>,
}

impl HttpPeer {
    fn new(env: &Env, session: &Rc<HttpSession>, post_stream: Option<u32>) -> Rc<HttpPeer> {
        Rc::new(HttpPeer {
            session: Rc::clone(session),
            post_stream,
            metrics: Rc::clone(env.metrics),
        })
    }
}

impl Peer for HttpPeer {
    fn send(&self, message: Vec<u8>, related_request: Option<&Id>) -> bool {
        // MCP 2025-11-25: "The server MAY send JSON-RPC requests and notifications before sending
        // the JSON-RPC response. These messages SHOULD relate to the originating client request."
        let stream = match (related_request, self.post_stream) {
            (Some(_), Some(stream)) => stream,
            _ => STANDALONE,
        };
        let delivered = self.session.deliver(stream, &message, Delivery::Droppable);
        // Only the bound is a limit hit; a stream that ended has nobody to count for.
        if delivered == Err(Undelivered::QueueFull) {
            self.metrics.limit(Limit::NotificationQueue);
        }
        delivered.is_ok()
    }

    fn close_stream(&self, _related_request: &Id) {
        if let Some(stream) = self.post_stream {
            self.session.close_stream(stream);
        }
    }
}

/// The shard's Streamable HTTP and legacy sessions.
pub struct HttpSessions {
    table: RefCell<SessionTable<Rc<HttpSession>>>,
    store: Rc<RefCell<EventStore>>,
    /// The shared event store, with `--event-store`.
    shared: Option<Rc<SharedStore>>,
    /// What the shared store said of the last session this shard tried to adopt and could
    /// not, for the request that asked, routed again (see [`Outcome::Adopt`]).
    not_adopted: Cell<Option<(SessionId, NotAdopted)>>,
    idle_timeout: std::time::Duration,
    /// This node, shared by the ids of its sessions.
    node: Rc<NodeId>,
    shard_index: usize,
    shard_count: usize,
}

impl HttpSessions {
    /// The sessions of shard `shard_index` of `shard_count`, stored in `shared` too when
    /// there is a shared event store.
    pub fn new(
        shard_index: usize,
        shard_count: usize,
        config: &Config,
        shared: Option<Rc<SharedStore>>,
    ) -> Self {
        let limits = crate::store::ring::RingLimits {
            max_events: config.ring_max_events,
            max_bytes: config.ring_max_bytes,
            max_age: std::time::Duration::from_secs(config.ring_max_age_secs),
        };
        let node = config.node();
        HttpSessions {
            table: RefCell::new(SessionTable::new(
                node,
                shard_index,
                config.max_sessions_per_shard,
            )),
            store: Rc::new(RefCell::new(EventStore::new(
                limits,
                config.event_budget_bytes,
                Instant::now(),
            ))),
            shared,
            not_adopted: Cell::new(None),
            idle_timeout: config.session_idle_timeout(),
            node: Rc::new(node),
            shard_index,
            shard_count,
        }
    }

    /// Ends sessions idle past the timeout; returns how many.
    pub fn expire(&self, idle: std::time::Duration, dispatcher: &mcp::Dispatcher) -> usize {
        let gone = self
            .table
            .borrow_mut()
            .expire(Instant::now(), idle, |s| s.busy());
        for session in &gone {
            session.end(dispatcher);
        }
        self.store.borrow_mut().evict_expired(Instant::now());
        gone.len()
    }

    /// Session and replay-ring gauges for metrics.
    pub fn gauges(&self) -> crate::metrics::Gauges {
        let store = self.store.borrow();
        crate::metrics::Gauges {
            sessions: self.table.borrow().len() as u64,
            ring_bytes: store.total_bytes() as u64,
            ring_events: store.event_count() as u64,
            rings: store.ring_count() as u64,
            evictions: store.evictions(),
            ..crate::metrics::Gauges::default()
        }
    }

    /// A new session of `principal` (authorization on): only its requests will find it.
    fn create(
        &self,
        legacy: bool,
        principal: Option<&Rc<Principal>>,
    ) -> Result<Rc<HttpSession>, CreateError> {
        let mut table = self.table.borrow_mut();
        let id = table.create(
            |id| HttpSession::new(id, legacy, principal, self),
            Instant::now(),
        )?;
        table.get(&id).cloned().ok_or(CreateError::Full)
    }

    fn lookup(&self, id: &SessionId) -> Option<Rc<HttpSession>> {
        let session = self.table.borrow_mut().touch(id, Instant::now()).cloned()?;
        session.keep(self.idle_timeout);
        Some(session)
    }

    /// Reads session `id` from the shared event store (see [`Outcome::Adopt`]); hand the
    /// answer to [`HttpSessions::adopt`].
    pub fn load(&self, id: SessionId) -> impl Future<Output = StoreAnswer> + 'static {
        let shared = self.shared.clone();
        async move {
            match shared {
                Some(shared) => shared
                    .load(id)
                    .await
                    .map_err(|_| NotAdopted::StoreUnavailable),
                None => Ok(None),
            }
        }
    }

    /// Takes over session `id` from what the shared store held of it: its MCP state, its
    /// streams' kept events, and, for each request whose handler died with the node that ran
    /// it, a JSON-RPC error on its stream telling the client to send it again. The request
    /// that asked is then routed again and finds the session here, or learns why not.
    pub fn adopt(&self, id: SessionId, answer: StoreAnswer, env: &Env) {
        // Two requests of one session (a client's GET and POST after a failover) may both have
        // missed the table and loaded it: the first answer back adopted it, and the others
        // find it here instead of replacing it (the replaced one would keep its rings and
        // streams with nobody to end them).
        if self.table.borrow().get(&id).is_some() {
            return;
        }
        let refusal = match answer {
            Ok(Some(loaded)) => match self.restore(id, loaded, env) {
                Ok(()) => {
                    env.metrics.session_adopted();
                    return;
                }
                Err(refusal) => refusal,
            },
            Ok(None) => NotAdopted::Unknown,
            Err(refusal) => refusal,
        };
        self.not_adopted.set(Some((id, refusal)));
    }

    fn restore(&self, id: SessionId, loaded: Loaded, env: &Env) -> Result<(), NotAdopted> {
        let principal_tag = match loaded.principal.as_deref() {
            None => None,
            Some(hex) => Some(PrincipalTag::from_hex(hex).ok_or(NotAdopted::Unknown)?),
        };
        // The session's subscriptions need its peer, which needs the session: its state is
        // put in once both exist.
        let session =
            HttpSession::with_state(id, false, SessionState::new_ref(), principal_tag, self);
        let peer: Rc<dyn Peer> = HttpPeer::new(env, &session, None);
        if !env
            .dispatcher
            .restore_session(&session.mcp, &loaded.state, &peer)
        {
            log::warn!("session {id}: its record in the event store is unreadable; not adopted");
            return Err(NotAdopted::Unknown);
        }
        session.stored_revision.set(session.mcp.borrow().revision());
        session.next_stream.set(loaded.next_stream);
        let mut lost = Vec::new();
        {
            let mut store = self.store.borrow_mut();
            let mut streams = session.streams.borrow_mut();
            let now = Instant::now();
            for kept in loaded.streams {
                let next_seq = if kept.events.is_empty() && kept.had_events {
                    numbering_past_expired_events()
                } else {
                    kept.first_seq
                };
                let ring = store.create_ring_at(next_seq);
                for event in &kept.events {
                    store.append(ring, event, now);
                }
                let mut state = StreamState::new(ring);
                // A client resuming names the event it holds; one opening the standalone
                // stream afresh gets what comes from now on.
                state.sent_upto = store.last_seq(ring).unwrap_or(0);
                state.finished = kept.number != STANDALONE && kept.unanswered.is_none();
                if state.finished {
                    // Added in the order they finished, as `StreamMap::finish` keeps them.
                    store.seal(ring);
                }
                streams.insert(kept.number, state);
                if let Some(ids) = kept.unanswered {
                    lost.push((kept.number, ids));
                }
            }
        }
        if self
            .table
            .borrow_mut()
            .insert(&id, Rc::clone(&session), Instant::now())
            .is_err()
        {
            // Nothing of it stays on this shard; its record stays in the store, for another
            // try here or on another node.
            env.dispatcher.end_session(&session.mcp);
            session.free_streams();
            return Err(NotAdopted::Full);
        }
        // Spec (2025-11-25, Streamable HTTP): "The server SHOULD NOT close the SSE stream
        // before sending the JSON-RPC response for the received JSON-RPC request": the
        // response these requests get is the error saying their handler is gone.
        let retry =
            RawValue::from_string(r#"{"retry":true}"#.into()).map_err(|_| NotAdopted::Unknown)?;
        for (stream, ids) in lost {
            for request in ids {
                let mut error = Vec::new();
                jsonrpc::write_error(
                    &mut error,
                    RawId::new(&request),
                    jsonrpc::REQUEST_LOST,
                    "the node handling this request stopped before answering; retry the request",
                    Some(&retry),
                );
                let _ = session.deliver(stream, &error, Delivery::Reply);
                env.metrics.request_lost();
            }
            session.finish(stream);
        }
        Ok(())
    }

    /// Ends the session `id`, if it lives.
    pub fn remove(&self, id: &SessionId, dispatcher: &mcp::Dispatcher) {
        // Take it out of the table before ending it: ending wakes tasks that may look it up.
        let session = self.table.borrow_mut().remove(id);
        if let Some(session) = session {
            session.end(dispatcher);
        }
    }
}

/// What the HTTP connection does with a request for MCP over HTTP.
pub enum Outcome {
    /// The response is queued in `out`.
    Done,
    /// Serve this SSE response until it ends.
    Stream(SseStream),
    /// The session lives on another shard: hand the connection over.
    Handoff(usize),
    /// The session is no shard's here but may be in the shared event store: load it with
    /// [`HttpSessions::load`], give the answer to [`HttpSessions::adopt`], then route the
    /// request again.
    Adopt(SessionId),
}

/// An SSE response being served on a connection: what it carries, keep-alives, and the
/// end at shutdown.
pub struct SseStream {
    sink: Rc<Sink>,
    source: Source,
    keep_alive_at: Instant,
}

/// What an SSE response carries.
enum Source {
    /// A numbered stream of a 2025 session: replayed and resumable.
    Session {
        session: Rc<HttpSession>,
        stream: u32,
    },
    /// One 2026-07-28 request's messages, ending with its result.
    Request { cancel: Rc<RequestSignal> },
}

impl SseStream {
    fn new(env: &Env, session: Rc<HttpSession>, stream: u32, sink: Rc<Sink>) -> SseStream {
        SseStream::serving(env, sink, Source::Session { session, stream })
    }

    /// The response of one 2026-07-28 request; `cancel` stops its handler if the client
    /// closes the stream before the result.
    pub(super) fn for_request(env: &Env, sink: Rc<Sink>, cancel: Rc<RequestSignal>) -> SseStream {
        SseStream::serving(env, sink, Source::Request { cancel })
    }

    fn serving(env: &Env, sink: Rc<Sink>, source: Source) -> SseStream {
        SseStream {
            sink,
            source,
            keep_alive_at: Instant::now() + env.config.sse_keepalive(),
        }
    }

    /// Queues `prefix` (the response head, and answers to earlier pipelined requests) before
    /// the events: the connection writes from one queue.
    pub fn put_first(&self, prefix: &mut Vec<u8>) {
        if !prefix.is_empty() {
            self.sink.0.push_front(|bytes| bytes.append(prefix));
        }
    }

    /// Whether the stream waits for a request's response (a POST stream, or its resumption):
    /// on shutdown such a stream runs until the response, within the grace period, while the
    /// standalone stream ends at once.
    fn awaits_response(&self) -> bool {
        match &self.source {
            Source::Session { stream, .. } => *stream != STANDALONE,
            Source::Request { .. } => true,
        }
    }

    /// When a stream that awaits its response is ended (with `retry:`) if the response has
    /// not come: three quarters into the shutdown grace, so it ends before the shard is cut.
    /// Derived from the shard's stop, not kept: every open stream would pay for it.
    fn cutoff(&self, env: &Env) -> Option<Instant> {
        let stopped_at = env.stopped_at?;
        let running = self.awaits_response() && !self.sink.0.is_ended();
        running.then(|| stopped_at + env.config.shutdown_grace() * 3 / 4)
    }
}

impl Connection for SseStream {
    fn outbound(&self) -> &Outbound {
        &self.sink.0
    }

    fn on_input(&mut self, _inbuf: &mut Vec<u8>, _env: &Env, _now: Instant) {
        // Bytes the client pipelines wait for the request loop after the stream.
    }

    fn on_read(&mut self, _inbuf: &mut Vec<u8>, _now: Instant) {}

    fn on_timer(&mut self, env: &Env, now: Instant) -> Flow {
        let config = env.config;
        if self
            .sink
            .0
            .stalled_since()
            .is_some_and(|at| now >= at + config.slow_reader_timeout())
        {
            // The reader stalls: the stream ends resumably. Its events stay in the ring; the
            // client comes back with Last-Event-ID.
            return Flow::Drop;
        }
        if self.cutoff(env).is_some_and(|at| now >= at) {
            self.sink.end_with_retry(config.sse_retry_ms);
        }
        if now >= self.keep_alive_at {
            self.sink.keep_alive();
            self.keep_alive_at = now + config.sse_keepalive();
        }
        Flow::Continue
    }

    fn on_stop(&mut self, env: &Env, _now: Instant) {
        // Shutdown ends the standalone stream with `retry:` so the client comes back (to
        // another instance) and resumes; a request stream runs on towards its response, but is
        // ended the same way before the grace period runs out rather than cut (`cutoff`).
        if !self.awaits_response() {
            self.sink.end_with_retry(env.config.sse_retry_ms);
        }
    }

    fn next_deadline(&self, env: &Env) -> Instant {
        let config = env.config;
        [
            self.cutoff(env),
            self.sink
                .0
                .stalled_since()
                .map(|at| at + config.slow_reader_timeout()),
        ]
        .into_iter()
        .flatten()
        .fold(self.keep_alive_at, Instant::min)
    }

    fn is_holding(&self) -> bool {
        false
    }

    fn wants_read(&self, buffered: usize, config: &Config) -> bool {
        // While it runs, bytes the client pipelines are kept, up to one head's worth.
        buffered <= config.max_head_bytes
    }

    fn when_flushed(&self) -> FlushedFlow {
        if self.sink.0.is_ended() {
            FlushedFlow::Finish(Flow::Reusable)
        } else {
            FlushedFlow::Continue
        }
    }

    fn inbound_held(&self, _inbuf: &[u8]) -> usize {
        // Pipelined bytes are bounded by one head (see `wants_read`), not by the budget.
        0
    }

    fn over_inbound_budget(&mut self, _inbuf: &mut Vec<u8>, _env: &Env) {}

    fn on_end(&mut self, env: &Env) {
        match &self.source {
            Source::Session { session, stream } => {
                session.detach(*stream, &self.sink);
                if session.legacy {
                    // A legacy session lives exactly as long as its /sse stream.
                    env.sessions.remove(&session.id(), env.dispatcher);
                }
            }
            // Spec (2026-07-28, streamable-http): "Closing the SSE response stream MUST be
            // treated by the server as cancellation of that request". A finished handler
            // does not mind; one cut off at shutdown stops too.
            Source::Request { cancel } => cancel.cancel(),
        }
    }
}

/// The headers every SSE response carries.
pub(super) fn sse_head(out: &mut Vec<u8>, extra: &[(&str, &str)], keep_alive: bool) {
    let mut headers = vec![
        ("content-type", "text/event-stream"),
        // MCP/SSE behind proxies: no caching, no buffering of the stream.
        ("cache-control", "no-cache"),
        ("x-accel-buffering", "no"),
    ];
    headers.extend_from_slice(extra);
    http1::write_head(out, 200, &headers, ResponseBody::Chunked, keep_alive);
}

/// Whether an `Accept` header admits `media_type` (exactly, by `type/*`, or `*/*`).
fn accepts(head: &RequestHead, media_type: &str) -> bool {
    let major = media_type.split('/').next().unwrap_or("");
    head.header_values("accept")
        .flat_map(|v| v.split(|&b| b == b','))
        .filter_map(|range| std::str::from_utf8(range).ok())
        .map(|range| range.split(';').next().unwrap_or("").trim())
        .any(|range| {
            // Media types are case-insensitive (RFC 9110 section 8.3.1).
            range.eq_ignore_ascii_case(media_type)
                || range == "*/*"
                || range
                    .strip_suffix("/*")
                    .is_some_and(|r| r.eq_ignore_ascii_case(major))
        })
}

/// What every POST to `/mcp` must say of itself, in either revision: it accepts both answer
/// forms (406 otherwise) and sends JSON (415 otherwise).
pub(super) fn check_post_head(head: &RequestHead) -> Result<(), TransportError> {
    // "The client MUST include an Accept header, listing both application/json and
    // text/event-stream as supported content types."
    if !accepts(head, "application/json") || !accepts(head, "text/event-stream") {
        return Err(TransportError::NotAcceptable(
            "Accept must list application/json and text/event-stream",
        ));
    }
    require_json_body(head)
}

/// A POST body must be JSON: anything else is answered 415.
fn require_json_body(head: &RequestHead) -> Result<(), TransportError> {
    let json = head
        .header_str("content-type")
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if json {
        Ok(())
    } else {
        Err(TransportError::UnsupportedMediaType)
    }
}

/// A session, or the shard that owns it.
enum Found {
    Here(Rc<HttpSession>),
    Elsewhere(usize),
    /// Neither this node nor any of its shards holds it, but the shared store may: adopt it.
    Adopt(SessionId),
}

/// Why a session the shared store was asked for did not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAdopted {
    /// The store does not know it (ended, expired, or never stored): 404.
    Unknown,
    /// The store is unreachable: 503.
    StoreUnavailable,
    /// This shard holds its maximum number of sessions: 503.
    Full,
}

/// Where an adopted stream whose events all expired from the shared store numbers its next
/// event: past any id it may have handed out, which nothing recorded. The Unix time in
/// microseconds is: the stream would have needed a million events a second since 1970 to
/// get there, and each later adoption starts further on. An old `Last-Event-ID` is then
/// answered 410 (its events are gone), not 400 as one never sent, and no id is handed out
/// twice: restarting at 1, a client resuming with an old id would have been sent the new
/// events after it and silently missed those before it.
fn numbering_past_expired_events() -> u64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX / 2)
}

/// What the shared store answered for a session to adopt.
pub type StoreAnswer = Result<Option<Loaded>, NotAdopted>;

/// The session the request's `Mcp-Session-Id` header names (see [`find_session`]).
fn session_of(env: &Env, head: &RequestHead) -> Result<Found, TransportError> {
    // Two ids name no one session: using either would act for a client that did not ask.
    let raw = head
        .single_header("mcp-session-id")
        .map_err(|_| TransportError::DuplicateSessionId)?;
    find_session(env, raw, "Mcp-Session-Id", false)
}

/// The session a request names: 400 when the id is missing, 404 when it names no live
/// session of this transport (`legacy`: the HTTP+SSE one), the owner when another shard has it.
fn find_session(
    env: &Env,
    raw: Option<&[u8]>,
    name: &'static str,
    legacy: bool,
) -> Result<Found, TransportError> {
    // MCP 2025-11-25: "Servers that require a session ID SHOULD respond to requests without an
    // Mcp-Session-Id header (other than initialization) with HTTP 400 Bad Request."
    let raw = raw.ok_or(TransportError::MissingSession(name))?;
    let sessions = env.sessions;
    // "The server MAY terminate the session at any time, after which it MUST respond to
    // requests containing that session ID with HTTP 404 Not Found."
    let id = SessionId::parse(raw).ok_or(TransportError::UnknownSession)?;
    let ours = id.node() == *sessions.node;
    // Another node's session comes here when that node is gone (the balancer routes by the
    // id's node while it is up): the shard its number names here adopts it.
    let owner = if ours {
        id.shard()
    } else {
        id.shard() % sessions.shard_count
    };
    if owner >= sessions.shard_count {
        return Err(TransportError::UnknownSession);
    }
    if owner != sessions.shard_index {
        return Ok(Found::Elsewhere(owner));
    }
    if let Some(session) = sessions.lookup(&id) {
        // A session answers only on the transport that created it: its messages go out on
        // that transport's streams, and a client of the other would never see them.
        return Some(session)
            .filter(|session| session.legacy == legacy)
            .filter(|session| session.acts_for(env.principal))
            .map(Found::Here)
            .ok_or(TransportError::UnknownSession);
    }
    // Not held here: the shared store may have it (a legacy session is never stored: its
    // stream cannot be resumed). This node's own too: it may have restarted.
    if legacy || sessions.shared.is_none() {
        return Err(TransportError::UnknownSession);
    }
    match sessions.not_adopted.take() {
        Some((tried, why)) if tried == id => Err(match why {
            NotAdopted::Unknown => TransportError::UnknownSession,
            NotAdopted::StoreUnavailable => TransportError::EventStoreUnavailable,
            NotAdopted::Full => TransportError::SessionRefused(CreateError::Full),
        }),
        _ => Ok(Found::Adopt(id)),
    }
}

/// Answers a request on `/mcp` that is not a WebSocket upgrade.
pub fn mcp_endpoint(
    env: &Env,
    head: &RequestHead,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Outcome {
    // Every POST carries JSON-RPC (valid or not): each takes a token, before anything is
    // parsed. A request handed to the shard that owns its session is counted there again.
    if head.method() == Method::Post {
        if let Err(refusal) = admission::admit_request(env, Instant::now()) {
            return answer(env, Err(refusal.into()), keep_alive, out);
        }
    }
    if let Some(envelope) = stateless::stateless_request(head, body) {
        let answered = envelope
            .and_then(|envelope| stateless::post(env, head, envelope, body, keep_alive, out));
        return answer(env, answered, keep_alive, out);
    }
    let answered = (|| {
        // MCP 2025-11-25: "If the server receives a request with an invalid or unsupported
        // MCP-Protocol-Version, it MUST respond with 400 Bad Request." Any supported version is
        // accepted whatever the session negotiated (clients send 2025-03-26 on newer sessions).
        if let Some(version) = head.header_str("mcp-protocol-version") {
            // Spec (2026-07-28, streamable-http): the revision has no GET stream and no DELETE
            // (no sessions); a client of it asking for them is told what this endpoint takes.
            if version == mcp::version::STATELESS
                && head.method() != Method::Post
                && head.header_values("mcp-session-id").next().is_none()
            {
                return Err(TransportError::MethodNotAllowed { allow: "POST" });
            }
            if !mcp::version::SUPPORTED.contains(&version) {
                return Err(TransportError::UnsupportedProtocolVersion(version.into()));
            }
        }
        match head.method() {
            Method::Post => post(env, head, body, keep_alive, out),
            Method::Get => get(env, head, keep_alive, out),
            Method::Delete => delete(env, head, keep_alive, out),
            _ => Err(TransportError::MethodNotAllowed {
                allow: "GET, POST, DELETE",
            }),
        }
    })();
    answer(env, answered, keep_alive, out)
}

/// The outcome, or the refusal queued in `out`.
fn answer(
    env: &Env,
    answered: Result<Outcome, TransportError>,
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Outcome {
    answered.unwrap_or_else(|refusal| {
        refusal.respond(out, keep_alive, env.metrics);
        Outcome::Done
    })
}

fn post(
    env: &Env,
    head: &RequestHead,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Result<Outcome, TransportError> {
    check_post_head(head)?;
    let kind = mcp::classify(body);
    let session = match kind {
        Kind::Request {
            is_initialize: true,
        } => env
            .sessions
            .create(false, env.principal)
            .map_err(TransportError::SessionRefused)?,
        Kind::Invalid => {
            // Parse errors and invalid messages get the dispatcher's JSON-RPC error as a 400.
            let reply = run_now(env.dispatcher.handle(
                SessionState::new_ref(),
                Rc::new(NoPeer),
                body.to_vec(),
            ));
            return Err(TransportError::InvalidMessage(reply.unwrap_or_default()));
        }
        _ => match session_of(env, head)? {
            Found::Here(session) => session,
            Found::Elsewhere(owner) => return Ok(Outcome::Handoff(owner)),
            Found::Adopt(id) => return Ok(Outcome::Adopt(id)),
        },
    };
    let is_initialize = matches!(
        kind,
        Kind::Request {
            is_initialize: true
        }
    );
    let expects_reply = matches!(
        kind,
        Kind::Request { .. } | Kind::Batch { needs_reply: true }
    );
    if !expects_reply {
        // "If the input is a JSON-RPC response or notification: If the server accepts the input,
        // the server MUST return HTTP status code 202 Accepted with no body."
        let peer = HttpPeer::new(env, &session, None);
        let reply = env
            .dispatcher
            .handle(session.mcp.clone(), peer, body.to_vec());
        env.run(async move {
            reply.await;
            session.save_state();
        });
        http1::write_head(out, 202, &[], ResponseBody::Length(0), keep_alive);
        env.metrics.status(202);
        return Ok(Outcome::Done);
    }
    let arrived = Instant::now();
    let stream = session.open_post_stream();
    // The response is attached before the handler first runs: whatever it sends before its
    // first pause is written in order, however much of it the replay ring keeps.
    let sink = Sink::new(env.config.max_outbound_bytes);
    session.attach_new(stream, &sink);
    let peer = HttpPeer::new(env, &session, Some(stream));
    let mut reply = Box::pin(
        env.dispatcher
            .handle(session.mcp.clone(), peer, body.to_vec()),
    );
    // Only initialize answers carry the session id: no string for every other POST.
    let session_header = is_initialize.then(|| session.id().to_string());
    let mut headers = vec![];
    if let Some(id) = &session_header {
        headers.push(("mcp-session-id", id.as_str()));
    }
    // Most requests are answered at once with nothing sent before: plain JSON.
    let mut first_poll = reply.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    if let Poll::Ready(answer) = &mut first_poll {
        if session.stream_untouched(stream) {
            session.discard_stream(stream);
            if is_initialize && session.mcp.borrow().protocol_version().is_none() {
                // A failed initialize leaves no session behind.
                env.sessions.remove(&session.id(), env.dispatcher);
                headers.clear();
            }
            session.save_state();
            let answer = answer.take().unwrap_or_default();
            headers.push(("content-type", "application/json"));
            http1::write_response(out, 200, &headers, &answer, keep_alive);
            env.metrics.status(200);
            env.metrics.message_out();
            env.metrics.latency(Path::Http, arrived.elapsed());
            return Ok(Outcome::Done);
        }
    }
    // SEP-1699 priming event, ahead of what the handler already sent: an id the client can
    // resume from even if nothing else arrives.
    let mut primer = Vec::new();
    sse::write_priming(
        &mut primer,
        EventId { stream, seq: 0 },
        env.config.sse_retry_ms,
    );
    let request_ids = match session.shared {
        Some(_) => request_ids(body),
        None => Vec::new(),
    };
    session.open_post_stream_response(stream, &request_ids, &sink, primer);
    if let Poll::Ready(reply) = first_poll {
        if let Some(reply) = reply {
            let _ = session.deliver(stream, &reply, Delivery::Reply);
        }
        session.finish(stream);
        session.save_state();
    } else {
        let finisher = Rc::clone(&session);
        let metrics = Rc::clone(env.metrics);
        (env.spawn)(Box::pin(async move {
            if let Some(reply) = reply.await {
                let _ = finisher.deliver(stream, &reply, Delivery::Reply);
                metrics.message_out();
                metrics.latency(Path::Http, arrived.elapsed());
            }
            finisher.finish(stream);
            finisher.save_state();
        }));
    }
    sse_head(out, &headers, keep_alive);
    env.metrics.status(200);
    Ok(Outcome::Stream(SseStream::new(env, session, stream, sink)))
}

fn get(
    env: &Env,
    head: &RequestHead,
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Result<Outcome, TransportError> {
    if !accepts(head, "text/event-stream") {
        return Err(TransportError::NotAcceptable(
            "Accept must list text/event-stream",
        ));
    }
    let session = match session_of(env, head)? {
        Found::Here(session) => session,
        Found::Elsewhere(owner) => return Ok(Outcome::Handoff(owner)),
        Found::Adopt(id) => return Ok(Outcome::Adopt(id)),
    };
    let sink = Sink::new(env.config.max_outbound_bytes);
    let retry = env.config.sse_retry_ms;
    let (stream, attached) = match head.header_str("last-event-id") {
        Some(raw) => {
            // "If the client wishes to resume after a disconnection ... it SHOULD issue an HTTP GET
            // to the MCP endpoint, and include the Last-Event-ID header ... the server MAY use this
            // header to replay messages that would have been sent after the last event ID, on the
            // stream that was disconnected".
            let id = EventId::parse(raw).map_err(TransportError::BadLastEventId)?;
            (
                id.stream,
                session.attach(id.stream, &sink, Some(id.seq), retry),
            )
        }
        None => {
            // One standalone stream per session, as the reference SDK server does: a second
            // one would split server messages between two readers.
            if session.is_attached(STANDALONE) {
                return Err(TransportError::StreamAlreadyOpen);
            }
            (STANDALONE, session.attach(STANDALONE, &sink, None, retry))
        }
    };
    if let Err(e) = attached {
        session.detach(stream, &sink);
        return Err(TransportError::CannotResume(e));
    }
    // The head goes out before the replayed events the sink already holds.
    sse_head(out, &[], keep_alive);
    env.metrics.status(200);
    Ok(Outcome::Stream(SseStream::new(env, session, stream, sink)))
}

fn delete(
    env: &Env,
    head: &RequestHead,
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Result<Outcome, TransportError> {
    let session = match session_of(env, head)? {
        Found::Here(session) => session,
        Found::Elsewhere(owner) => return Ok(Outcome::Handoff(owner)),
        Found::Adopt(id) => return Ok(Outcome::Adopt(id)),
    };
    env.sessions.remove(&session.id(), env.dispatcher);
    http1::write_response(out, 200, &[], b"", keep_alive);
    env.metrics.status(200);
    Ok(Outcome::Done)
}

/// GET /sse: a legacy (2024-11-05) session and its event stream.
pub fn legacy_sse(env: &Env, head: &RequestHead, keep_alive: bool, out: &mut Vec<u8>) -> Outcome {
    let answered = (|| {
        if head.method() != Method::Get {
            return Err(TransportError::MethodNotAllowed { allow: "GET" });
        }
        let session = env
            .sessions
            .create(true, env.principal)
            .map_err(TransportError::SessionRefused)?;
        sse_head(out, &[], keep_alive);
        env.metrics.status(200);
        let sink = Sink::new(env.config.max_outbound_bytes);
        // 2024-11-05: "When a client connects, the server MUST send an endpoint event containing
        // a URI for the client to use for sending messages."
        let mut endpoint = Vec::new();
        sse::write_event(
            &mut endpoint,
            None,
            Some("endpoint"),
            format!("/messages?sessionId={}", session.id()).as_bytes(),
        );
        sink.push_raw(&endpoint);
        let _ = session.attach(STANDALONE, &sink, Some(0), env.config.sse_retry_ms);
        Ok(Outcome::Stream(SseStream::new(
            env, session, STANDALONE, sink,
        )))
    })();
    answer(env, answered, keep_alive, out)
}

/// POST /messages?sessionId=…: a legacy client's message; replies travel on its SSE stream.
pub fn legacy_message(
    env: &Env,
    head: &RequestHead,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Outcome {
    let answered = (|| {
        if head.method() != Method::Post {
            return Err(TransportError::MethodNotAllowed { allow: "POST" });
        }
        let session_id = head.query_param("sessionId").map(str::as_bytes);
        let session = match find_session(env, session_id, "the sessionId query parameter", true)? {
            Found::Here(session) => session,
            Found::Elsewhere(owner) => return Ok(Outcome::Handoff(owner)),
            Found::Adopt(id) => return Ok(Outcome::Adopt(id)),
        };
        require_json_body(head)?;
        // Counted here, on the shard that owns the session, where a refusal can be answered.
        if let Err(refusal) = admission::admit_request(env, Instant::now()) {
            return refuse_on_stream(env, &session, body, refusal.into(), keep_alive, out);
        }
        let peer = HttpPeer::new(env, &session, None);
        let reply = env
            .dispatcher
            .handle(session.mcp.clone(), peer, body.to_vec());
        env.run(async move {
            if let Some(reply) = reply.await {
                let _ = session.deliver(STANDALONE, &reply, Delivery::Reply);
            }
        });
        http1::write_response(out, 202, &[], b"Accepted", keep_alive);
        env.metrics.status(202);
        Ok(Outcome::Done)
    })();
    answer(env, answered, keep_alive, out)
}

/// A legacy message over the request rate. A request is answered where its reply would
/// have gone: 202, then a JSON-RPC -32000 error with its id on the session's SSE stream (the
/// client is waiting there for that id; the reference Python client's writer also stops at
/// the first POST answered with an error status). A notification or response has no reply to
/// carry the refusal, so its POST gets the 429 with `Retry-After`.
fn refuse_on_stream(
    env: &Env,
    session: &Rc<HttpSession>,
    body: &[u8],
    refusal: TransportError,
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Result<Outcome, TransportError> {
    let TransportError::RequestRate { retry_after, .. } = refusal else {
        return Err(refusal);
    };
    let id = match Envelope::parse(body) {
        Ok(envelope) if envelope.is_request() => envelope.id.map(|raw| raw.get().to_owned()),
        _ => None,
    };
    if id.is_none() {
        return Err(refusal);
    }
    let error = TransportError::RequestRate { retry_after, id }.json_rpc_error();
    let _ = session.deliver(STANDALONE, &error, Delivery::Reply);
    http1::write_response(out, 202, &[], b"Accepted", keep_alive);
    env.metrics.status(202);
    Ok(Outcome::Done)
}

/// The ids of the requests in a POST body (one message or a batch), as a JSON array: what
/// the shared store keeps for a stream until its response is stored.
fn request_ids(body: &[u8]) -> Vec<u8> {
    #[derive(serde::Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        id: Option<&'a RawValue>,
        method: Option<&'a str>,
    }
    // Not an untagged enum: serde buffers its input, and a RawValue cannot come from a buffer.
    let messages: Vec<Message<'_>> = if body.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice(body).unwrap_or_default()
    } else {
        serde_json::from_slice(body).map_or_else(|_| Vec::new(), |one| vec![one])
    };
    let ids: Vec<&RawValue> = messages
        .into_iter()
        .filter(|m| m.method.is_some())
        .filter_map(|m| m.id)
        .collect();
    serde_json::to_vec(&ids).unwrap_or_else(|_| b"[]".to_vec())
}

/// Polls a future that finishes without waiting (the dispatcher on invalid input).
fn run_now<T>(future: impl Future<Output = Option<T>>) -> Option<T> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => None,
    }
}

/// A peer for messages that belong to no session (invalid input).
struct NoPeer;

impl Peer for NoPeer {
    fn send(&self, _message: Vec<u8>, _related_request: Option<&Id>) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::{HttpSession, StreamMap, StreamState, Unconfirmed};
    use crate::store::ring::{EventStore, RingLimits};
    use std::time::{Duration, Instant};

    /// A stream whose `sent_upto` tells it apart, with a ring of its own.
    fn stream(store: &mut EventStore, sent_upto: u64) -> StreamState {
        let mut state = StreamState::new(store.create_ring());
        state.sent_upto = sent_upto;
        state
    }

    fn store() -> EventStore {
        let limits = RingLimits {
            max_events: 10,
            max_bytes: 1000,
            max_age: Duration::from_secs(60),
        };
        EventStore::new(limits, 10_000, Instant::now())
    }

    #[test]
    fn stream_map_finds_replaces_and_removes_by_number() {
        let mut store = store();
        let mut map = StreamMap::default();
        for number in 0..20 {
            map.insert(number, stream(&mut store, u64::from(number)));
        }
        assert_eq!(map.numbers().count(), 20);
        // A removal keeps the others in their order; lookups go by number.
        assert_eq!(map.remove(3).map(|s| s.sent_upto), Some(3));
        assert!(map.get(3).is_none() && map.remove(3).is_none());
        assert_eq!(map.get(19).map(|s| s.sent_upto), Some(19));
        map.insert(19, stream(&mut store, 100));
        assert_eq!(map.numbers().count(), 19);
        assert_eq!(map.get_mut(19).map(|s| s.sent_upto), Some(100));
        assert_eq!(map.take_all().count(), 19);
        assert!(map.states().next().is_none());
    }

    /// Every Streamable HTTP session holds one (docs/benchmarks.md, "Smaller I/O sources"):
    /// grow this bound only with a measurement.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn an_http_session_stays_small() {
        let size = size_of::<HttpSession>();
        assert!(size <= 136, "HttpSession is {size} B");
    }

    #[test]
    fn the_stream_that_finished_first_is_the_one_let_go() {
        let mut store = store();
        let mut map = StreamMap::default();
        for number in 1..=4 {
            map.insert(number, stream(&mut store, u64::from(number)));
        }
        // 3 finishes, then 1, then 4; 2 is still running.
        for number in [3, 1, 4] {
            assert!(map.finish(number).is_some());
        }
        assert!(map.finish(9).is_none());
        assert!(map.remove_oldest_finished_past(3).is_none());
        assert_eq!(map.remove_oldest_finished_past(2).map(|(n, _)| n), Some(3));
        assert_eq!(map.remove_oldest_finished_past(1).map(|(n, _)| n), Some(1));
        assert!(map.remove_oldest_finished_past(1).is_none());
        assert!(map.get(2).is_some_and(|s| !s.finished));
        assert!(map.get(4).is_some_and(|s| s.finished));
    }

    #[test]
    fn stream_map_holds_one_stream_in_one_entry() {
        let mut store = store();
        let mut map = StreamMap::default();
        map.insert(0, stream(&mut store, 0));
        assert_eq!(map.0.capacity(), 1);
        // Every idle session holds its standalone stream's entry and room for one POST's:
        // grow this bound only with a measurement.
        let entry = size_of::<(u32, StreamState)>();
        assert!(entry <= 56, "a stream's entry is {entry} B");
    }

    #[test]
    fn unconfirmed_events_leave_in_order_once_acknowledged() {
        let mut events = Unconfirmed::default();
        assert!(events.is_empty());
        events.push(1, b"a");
        events.push(2, b"b");
        assert_eq!(events.pop_upto(0), None);
        assert_eq!(events.pop_upto(1), Some((1, b"a".to_vec())));
        assert_eq!(events.pop_upto(1), None);
        assert!(!events.is_empty());
        assert_eq!(events.pop_upto(5), Some((2, b"b".to_vec())));
        assert!(events.is_empty(), "its box is given back once empty");
        assert_eq!(events.pop_upto(5), None);
    }
}
