//! Drivers shared by the fuzz targets (`tests/fuzz/fuzz_targets`) and the
//! property tests (`tests/properties.rs`, which includes this file as a module).
//!
//! Each `check_*` function feeds one input to one public entry point the way a
//! read loop would, and panics only when an invariant breaks: a decoder used
//! more bytes than it was given, buffered past its limit, gave a different
//! answer for a different chunking of the same bytes, or the dispatcher wrote
//! a reply that is not a JSON-RPC response. "Never panics" is the property; the
//! asserts make silent misbehaviour loud too.
//!
//! The `fuzz_*` functions decode a raw fuzzer input into the knobs and
//! chunking a `check_*` function takes, so a crash file replays through
//! exactly the same code in a `#[test]`.

#![allow(dead_code)] // tests/properties.rs uses a subset

// The binary's fixture set, compiled in from the same file (the path is relative to this
// file, so it holds when tests/properties.rs includes it too).
#[path = "../../../src/fixtures.rs"]
mod fixtures;

use futures_lite::future;
use ringmcp::dispatch::{classify, Dispatcher, Envelope, EnvelopeError, Kind, Peer, SessionState};
use ringmcp::proto::auth::{
    bearer_token, query_carries_token, BearerError, Challenge, ChallengeError, MAX_TOKEN_BYTES,
};
use ringmcp::proto::http1::{BodyFraming, ChunkedDecoder, HttpError, Limits, RequestHead};
use ringmcp::proto::jsonrpc::{self, Id, Message, Parsed};
use ringmcp::proto::sse::{EventId, SseDecoder, SseError, SseEvent};
use ringmcp::proto::ws::{Decoder, Event, ProtocolError, Role, MAX_CONTROL_PAYLOAD};
use ringmcp::proto::Status;
use serde_json::Value;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

// ---------------------------------------------------------------- chunking

/// Cuts `stream` at `cuts` (clamped to its length, in any order); empty pieces
/// are kept, since a read that returns nothing new must be harmless too.
pub fn pieces<'a>(stream: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|&c| c.min(stream.len())).collect();
    points.sort_unstable();
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut prev = 0;
    for p in points {
        out.push(&stream[prev..p]);
        prev = p;
    }
    out.push(&stream[prev..]);
    out
}

/// A fuzzer input taken apart: one byte of target-specific knobs, a chunking
/// plan, and the byte stream itself.
#[derive(Debug)]
pub struct FuzzInput<'a> {
    /// Target-specific settings (role, limits, mode).
    pub knobs: u8,
    /// Cut points into `stream`.
    pub cuts: Vec<usize>,
    /// The bytes a peer sent.
    pub stream: &'a [u8],
}

/// Layout: `knobs`, `plan`, then `plan & 7` chunk lengths (one byte each), then
/// the stream. With `plan & 0x80` the rest of the stream after those chunks
/// arrives in pieces of `((plan >> 3) & 0xF) + 1` bytes (down to byte by byte).
/// Missing bytes mean "no knobs, no cuts", so any input is usable.
pub fn split_input(data: &[u8]) -> FuzzInput<'_> {
    let (knobs, plan, rest) = match data {
        [knobs, plan, rest @ ..] => (*knobs, *plan, rest),
        [knobs] => (*knobs, 0, &[][..]),
        [] => (0, 0, &[][..]),
    };
    let explicit = usize::from(plan & 7).min(rest.len());
    let (lens, stream) = rest.split_at(explicit);
    let mut cuts = Vec::new();
    let mut at = 0;
    for &len in lens {
        at += usize::from(len);
        cuts.push(at.min(stream.len()));
    }
    if plan & 0x80 != 0 {
        let step = usize::from((plan >> 3) & 0xF) + 1;
        cuts.extend((at..stream.len()).step_by(step).skip(1));
    }
    FuzzInput {
        knobs,
        cuts,
        stream,
    }
}

// ---------------------------------------------------------------- HTTP/1.1

/// What a read loop made of a request head, with every accessor exercised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadOutcome {
    /// Still waiting for the blank line after all input.
    Partial,
    /// A head, the bytes it used, and what the server would route on.
    Complete {
        used: usize,
        summary: String,
        framing: BodyFraming,
    },
    /// The error, which maps to a status.
    Error(HttpError),
}

/// What a chunked-body read loop made of the bytes after the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyOutcome {
    /// Decoded body bytes.
    pub body: Vec<u8>,
    /// Whether the last chunk and trailers were read.
    pub done: bool,
    /// Input bytes the decoder used in total.
    pub consumed: usize,
    /// The error that stopped it, if any.
    pub error: Option<HttpError>,
}

/// Header limits used by the fuzz target; `knobs & 1` picks small ones so the
/// limit paths (414, 431, 413) are reached by short inputs.
pub fn http_limits(knobs: u8) -> Limits {
    if knobs & 1 == 0 {
        Limits::default()
    } else {
        Limits {
            max_head_bytes: 256,
            max_headers: 4,
            max_uri_bytes: 32,
            max_body_bytes: 64,
        }
    }
}

/// Feeds `chunks` to `RequestHead::parse` as a server read loop does (the
/// buffer grows, the head is re-parsed after each read) up to the first
/// complete head or error.
pub fn read_head(chunks: &[&[u8]], limits: &Limits) -> HeadOutcome {
    let mut buf = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        match RequestHead::parse(&buf, limits) {
            Ok(Status::Partial) => {
                // Limits are checked on partial heads too: an unfinished head never
                // holds more than the configured bytes.
                assert!(
                    buf.len() <= limits.max_head_bytes,
                    "partial head of {} bytes passed the {}-byte limit",
                    buf.len(),
                    limits.max_head_bytes
                );
            }
            Ok(Status::Complete(head, used)) => {
                assert!(
                    used > 0 && used <= buf.len(),
                    "used {used} of {}",
                    buf.len()
                );
                assert!(
                    used <= limits.max_head_bytes,
                    "head of {used} bytes accepted"
                );
                assert!(head.target().len() <= limits.max_uri_bytes);
                assert!(head.header_count() <= limits.max_headers.clamp(1, 128));
                if let BodyFraming::Length(n) = head.framing() {
                    assert!(n > 0 && n <= limits.max_body_bytes as u64);
                }
                let summary = format!(
                    "{:?} {:?} {:?} path={:?} query={:?} sid={:?} 1.{} headers={} host={:?} \
                     upgrade={} keep_alive={}",
                    head.method(),
                    head.method_token(),
                    head.target(),
                    head.path(),
                    head.query(),
                    head.query_param("sessionId"),
                    head.minor_version(),
                    head.header_count(),
                    head.header_str("host"),
                    head.has_token("connection", "upgrade"),
                    head.keep_alive(),
                );
                return HeadOutcome::Complete {
                    used,
                    summary,
                    framing: head.framing(),
                };
            }
            Err(error) => {
                assert!(matches!(error.status(), 400 | 413 | 414 | 431 | 501));
                let _ = error.to_string();
                return HeadOutcome::Error(error);
            }
        }
    }
    HeadOutcome::Partial
}

/// Feeds `chunks` to a `ChunkedDecoder` the way the server reads a chunked
/// body: unconsumed bytes are kept and the next read appended to them.
pub fn read_chunked(chunks: &[&[u8]], max_body_bytes: usize) -> BodyOutcome {
    let mut dec = ChunkedDecoder::new(max_body_bytes);
    let mut pending: Vec<u8> = Vec::new();
    let mut body = Vec::new();
    let mut fed = 0;
    let mut error = None;
    for chunk in chunks {
        pending.extend_from_slice(chunk);
        fed += chunk.len();
        match dec.decode(&pending, &mut body) {
            Ok(used) => {
                assert!(used <= pending.len(), "used {used} of {}", pending.len());
                pending.drain(..used);
            }
            Err(e) => {
                assert!(matches!(e.status(), 400 | 413));
                error = Some(e);
                // What was used before the error is not reported, so it is not compared.
                fed = 0;
                pending.clear();
                break;
            }
        }
        assert!(body.len() <= max_body_bytes, "body past its limit");
        if dec.is_done() {
            break;
        }
        // An unfinished chunk-size or trailer line is bounded (4 KiB); payload
        // bytes are never left for the caller to keep.
        assert!(
            pending.len() <= 4096,
            "decoder left {} bytes",
            pending.len()
        );
    }
    BodyOutcome {
        body,
        done: dec.is_done(),
        consumed: fed - pending.len(),
        error,
    }
}

/// The HTTP property: the head (and, when chunked, the body after it) decodes
/// to the same outcome whole and cut at `cuts`.
pub fn check_http(stream: &[u8], cuts: &[usize], limits: &Limits) -> HeadOutcome {
    let whole = read_head(&[stream], limits);
    let split = read_head(&pieces(stream, cuts), limits);
    assert_eq!(whole, split, "head outcome depends on the chunking");
    if let HeadOutcome::Complete {
        used,
        framing: BodyFraming::Chunked,
        ..
    } = whole
    {
        let body = &stream[used..];
        let body_cuts: Vec<usize> = cuts.iter().filter_map(|c| c.checked_sub(used)).collect();
        let whole_body = read_chunked(&[body], limits.max_body_bytes);
        let split_body = read_chunked(&pieces(body, &body_cuts), limits.max_body_bytes);
        assert_eq!(
            whole_body, split_body,
            "chunked body depends on the chunking"
        );
    }
    whole
}

/// Fuzz entry: `knobs & 1` selects small limits.
pub fn fuzz_http(data: &[u8]) {
    let input = split_input(data);
    check_http(input.stream, &input.cuts, &http_limits(input.knobs));
}

// ---------------------------------------------------------------- WebSocket

/// An event copied out of the decoder so runs can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsItem {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
    Error(ProtocolError),
}

/// How a WebSocket decoder is set up and read.
#[derive(Debug, Clone, Copy)]
pub struct WsSetup {
    /// Server (expects masked frames) or client.
    pub role: Role,
    /// Largest message accepted.
    pub max_message: usize,
    /// Fixed read-buffer size: at most this many kept bytes are shown to `decode`.
    pub window: usize,
    /// permessage-deflate negotiated: RSV1 marks a compressed message, inflated under the limit.
    pub deflate: bool,
}

/// `knobs`: bit 0 role (0 server), bits 1-2 message limit, bits 3-6 read window, bit 7
/// permessage-deflate.
pub fn ws_setup(knobs: u8) -> WsSetup {
    let max_message = [0, 125, 4096, 1 << 20][usize::from((knobs >> 1) & 3)];
    let window = match (knobs >> 3) & 0x0F {
        0 => usize::MAX,
        // Never below a whole frame header, which `decode` needs to see at once.
        w => 14 + usize::from(w) * 7,
    };
    WsSetup {
        role: if knobs & 1 == 0 {
            Role::Server
        } else {
            Role::Client
        },
        max_message,
        window,
        deflate: knobs & 0x80 != 0,
    }
}

/// The server's read loop over `chunks`: append each read to the kept bytes,
/// show at most `window` of them to `decode`, drop what it consumed, repeat
/// until it needs more. Stops at the first error, after checking it sticks.
pub fn read_ws(chunks: &[&[u8]], setup: WsSetup) -> Vec<WsItem> {
    let mut dec = match setup.deflate {
        true => Decoder::new(setup.role, setup.max_message).with_deflate(),
        false => Decoder::new(setup.role, setup.max_message),
    };
    let mut kept: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        kept.extend_from_slice(chunk);
        loop {
            let visible = kept.len().min(setup.window);
            let (consumed, item) = match dec.decode(&mut kept[..visible]) {
                Ok(d) => (d.consumed, d.event.map(|e| ws_item(e, setup.max_message))),
                Err(error) => {
                    // "After an error the decoder is dead and returns the same error on every call."
                    assert_eq!(dec.decode(&mut []).err(), Some(error), "error not sticky");
                    assert_eq!(dec.buffered(), 0, "a failed decoder still holds bytes");
                    out.push(WsItem::Error(error));
                    return out;
                }
            };
            assert!(consumed <= visible, "consumed {consumed} of {visible}");
            kept.drain(..consumed);
            // Only an open message (at most the limit) and one control frame are buffered.
            assert!(dec.buffered() <= setup.max_message + MAX_CONTROL_PAYLOAD);
            let _ = dec.message_in_progress();
            match item {
                Some(item) => out.push(item),
                None if consumed == 0 => break,
                None => {}
            }
        }
    }
    out
}

fn ws_item(event: Event<'_>, max_message: usize) -> WsItem {
    match event {
        Event::Text(t) => {
            assert!(t.len() <= max_message, "text message past the limit");
            WsItem::Text(t.to_owned())
        }
        Event::Binary(b) => {
            assert!(b.len() <= max_message, "binary message past the limit");
            WsItem::Binary(b.to_vec())
        }
        Event::Ping(b) => {
            assert!(b.len() <= MAX_CONTROL_PAYLOAD);
            WsItem::Ping(b.to_vec())
        }
        Event::Pong(b) => {
            assert!(b.len() <= MAX_CONTROL_PAYLOAD);
            WsItem::Pong(b.to_vec())
        }
        Event::Close(c) => {
            if let Some(c) = c {
                assert!(
                    c.code.is_valid_on_wire(),
                    "close code {} let through",
                    c.code.0
                );
            }
            WsItem::Close(c.map(|c| (c.code.0, c.reason.to_owned())))
        }
    }
}

/// The WebSocket property: the same events (and final error) whole and cut at `cuts`.
pub fn check_ws(stream: &[u8], cuts: &[usize], setup: WsSetup) -> Vec<WsItem> {
    let whole = read_ws(&[stream], setup);
    let split = read_ws(&pieces(stream, cuts), setup);
    assert_eq!(whole, split, "WebSocket events depend on the chunking");
    whole
}

/// Fuzz entry: knobs as in [`ws_setup`].
pub fn fuzz_ws(data: &[u8]) {
    let input = split_input(data);
    check_ws(input.stream, &input.cuts, ws_setup(input.knobs));
}

// ---------------------------------------------------------------- SSE

/// What an SSE read loop saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseOutcome {
    /// Dispatched events, in order.
    pub events: Vec<SseEvent>,
    /// The error that stopped it, if any.
    pub error: Option<SseError>,
    /// The decoder's last event id at the end.
    pub last_event_id: Option<String>,
    /// The decoder's reconnection time at the end.
    pub reconnection_time: Option<u64>,
}

/// Feeds `chunks` to an `SseDecoder` (which keeps partial lines itself, so
/// the caller keeps nothing) and checks every id it reports.
pub fn read_sse(chunks: &[&[u8]], limit: usize) -> SseOutcome {
    let mut dec = SseDecoder::new(limit);
    let mut events = Vec::new();
    let mut error = None;
    'read: for chunk in chunks {
        let mut rest: &[u8] = chunk;
        loop {
            match dec.decode(rest) {
                Ok(Status::Complete(event, used)) => {
                    assert!(
                        used > 0 && used <= rest.len(),
                        "used {used} of {}",
                        rest.len()
                    );
                    assert!(
                        event.data.len() <= limit.saturating_mul(3),
                        "event past its limit"
                    );
                    if let Some(id) = &event.id {
                        check_event_id(id);
                    }
                    events.push(event);
                    rest = &rest[used..];
                }
                Ok(Status::Partial) => break,
                Err(e) => {
                    assert_eq!(dec.decode(b"\n\n"), Err(e), "error not sticky");
                    let _ = e.to_string();
                    error = Some(e);
                    break 'read;
                }
            }
        }
    }
    SseOutcome {
        events,
        error,
        last_event_id: dec.last_event_id().map(str::to_owned),
        reconnection_time: dec.reconnection_time(),
    }
}

/// `EventId::parse` accepts exactly what `Display` writes: a parsed id prints
/// back as the input, and an id this server wrote always parses back.
pub fn check_event_id(value: &str) -> Option<EventId> {
    match EventId::parse(value) {
        Ok(id) => {
            assert_eq!(id.to_string(), value, "accepted a non-canonical id");
            Some(id)
        }
        Err(e) => {
            let _ = e.to_string();
            None
        }
    }
}

/// `knobs & 7` picks the per-event limit: 8 bytes up to 1 MiB.
pub fn sse_limit(knobs: u8) -> usize {
    8 << ((knobs & 7) * 2)
}

/// The SSE property: the same events, error and final state whole and cut at `cuts`.
pub fn check_sse(stream: &[u8], cuts: &[usize], limit: usize) -> SseOutcome {
    let whole = read_sse(&[stream], limit);
    let split = read_sse(&pieces(stream, cuts), limit);
    assert_eq!(whole, split, "SSE events depend on the chunking");
    whole
}

/// Fuzz entry: `knobs & 0x80` parses the stream as one `Last-Event-ID` value
/// (and checks the round trip both ways); otherwise it is an event stream.
pub fn fuzz_sse(data: &[u8]) {
    let input = split_input(data);
    if input.knobs & 0x80 != 0 {
        if let Ok(value) = std::str::from_utf8(input.stream) {
            if let Some(id) = check_event_id(value) {
                assert_eq!(EventId::parse(&id.to_string()), Ok(id));
            }
        }
    } else {
        check_sse(input.stream, &input.cuts, sse_limit(input.knobs));
    }
}

// ---------------------------------------------------------------- JSON-RPC / MCP

/// Collects what the dispatcher sends outside of replies.
#[derive(Default)]
pub struct RecordingPeer {
    /// Every message sent, in order.
    pub sent: RefCell<Vec<Vec<u8>>>,
}

impl Peer for RecordingPeer {
    fn send(&self, message: Vec<u8>, _related_request: Option<&Id>) -> bool {
        self.sent.borrow_mut().push(message);
        true
    }
}

thread_local! {
    /// One dispatcher over the built-in registry per thread (it is `!Send`, like a shard's).
    static DISPATCHER: Dispatcher = Dispatcher::new(Arc::new(fixtures::builtin(std::time::Duration::ZERO).build()));
}

/// The thread's dispatcher, shared by every run.
pub fn dispatcher() -> Dispatcher {
    DISPATCHER.with(Dispatcher::clone)
}

/// How many times a reply future is polled before it counts as parked (a
/// handler waiting on a timer or another message). Built-in handlers finish in
/// one poll; the cap keeps a handler that waits forever from hanging the run.
const POLLS: usize = 16;

/// Drives `fut` with `block_on`, one `poll_once` at a time, so a future that is
/// parked on something only a real executor provides yields `None` instead of
/// blocking forever.
pub fn run_bounded<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    (0..POLLS).find_map(|_| future::block_on(future::poll_once(fut.as_mut())))
}

/// What the dispatcher did with one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// Resolved: the reply, if any.
    Done(Option<Value>),
    /// Still pending after [`POLLS`] polls.
    Parked,
    /// Resolved to a reply that is grammatical JSON but echoes a lone
    /// surrogate escape from the message, which `serde_json::Value` refuses.
    Unrepresentable(String),
}

/// Checks that `reply` is one JSON-RPC response object and returns it parsed.
fn check_response(reply: &Value) {
    let obj = reply
        .as_object()
        .unwrap_or_else(|| panic!("response is not an object: {reply}"));
    assert_eq!(obj.get("jsonrpc"), Some(&Value::from("2.0")), "{reply}");
    assert!(obj.contains_key("id"), "response without id: {reply}");
    match (obj.get("result"), obj.get("error")) {
        (Some(_), None) => {}
        (None, Some(error)) => {
            assert!(
                error["code"].is_i64(),
                "error without integer code: {reply}"
            );
            assert!(
                error["message"].is_string(),
                "error without message: {reply}"
            );
        }
        _ => panic!("response needs exactly one of result/error: {reply}"),
    }
}

/// Handles one message on `session` and checks the reply against what
/// `classify` and `jsonrpc::parse` say about the message.
pub fn handle_one(
    session: &ringmcp::dispatch::SessionRef,
    peer: &Rc<RecordingPeer>,
    message: &[u8],
) -> Handled {
    let kind = classify(message);
    let request_id = match jsonrpc::parse(message) {
        Parsed::Single(Ok(Message::Request(r))) => {
            Some(serde_json::from_str::<Value>(r.id.get()).ok())
        }
        _ => None,
    };
    let peer_dyn: Rc<dyn Peer> = peer.clone();
    let fut = dispatcher().handle(session.clone(), peer_dyn, message.to_vec());
    let Some(reply) = run_bounded(fut) else {
        return Handled::Parked;
    };
    let reply = match reply {
        None => None,
        Some(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) => Some(value),
            Err(e) => {
                // RFC 8259 §8.2 lets a string hold a lone surrogate escape ("\ud800");
                // serde_json's RawValue takes it, its Value does not. An id like that is
                // echoed as sent (ids are compared raw then, see `jsonrpc::Id`), so
                // the reply is JSON the client wrote, not JSON we broke.
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    serde_json::from_slice::<&serde_json::value::RawValue>(&bytes).is_ok()
                        && serde_json::from_slice::<Value>(message).is_err(),
                    "reply is not JSON ({e}): {text}"
                );
                return Handled::Unrepresentable(text.into_owned());
            }
        },
    };
    match (kind, &reply) {
        (Kind::Notification | Kind::Response, None) => {}
        (Kind::Notification | Kind::Response, Some(r)) => {
            panic!("replied to a notification or response: {r}")
        }
        (Kind::Request { .. }, Some(r)) => {
            check_response(r);
            // "Error responses MUST include the same ID as the request"; results too.
            if let Some(Some(id)) = &request_id {
                assert_eq!(&r["id"], id, "reply id differs from the request id");
            }
        }
        (Kind::Request { .. }, None) => panic!("request got no reply"),
        (Kind::Invalid, Some(r)) => {
            check_response(r);
            let code = r["error"]["code"].as_i64();
            assert!(
                matches!(code, Some(jsonrpc::PARSE_ERROR | jsonrpc::INVALID_REQUEST)),
                "invalid message answered with {r}"
            );
        }
        (Kind::Invalid, None) => panic!("invalid message got no reply"),
        (Kind::Batch { needs_reply }, reply) => match reply {
            Some(Value::Array(items)) => {
                assert!(needs_reply && !items.is_empty(), "unexpected batch reply");
                items.iter().for_each(check_response);
            }
            // Batches refused as a whole (protocol version) get one error object.
            Some(r) => check_response(r),
            None => assert!(!needs_reply, "batch with requests got no reply"),
        },
    }
    for sent in peer.sent.borrow_mut().drain(..) {
        let value: Value = serde_json::from_slice(&sent).expect("peer message is JSON");
        assert_eq!(value["jsonrpc"], "2.0");
    }
    Handled::Done(reply)
}

/// Handles each message in turn on one fresh session, as one WebSocket
/// connection would; returns what each produced.
pub fn check_dispatch<'a>(messages: impl IntoIterator<Item = &'a [u8]>) -> Vec<Handled> {
    let session = SessionState::new_ref();
    let peer = Rc::new(RecordingPeer::default());
    let out = messages
        .into_iter()
        .map(|m| handle_one(&session, &peer, m))
        .collect();
    // Every finished request left the in-flight table.
    assert_eq!(
        session.borrow().in_flight_len(),
        0,
        "requests left in flight"
    );
    out
}

/// Reads `message` as an MCP 2026-07-28 request would be read (its envelope: id, method,
/// names, `_meta`) and, when its `_meta` makes a valid request, serves it statelessly: the
/// envelope agrees with a plain JSON parse on what is JSON, and a request's reply is one
/// response with its id.
pub fn check_stateless(message: &[u8]) {
    let envelope = Envelope::parse(message);
    let is_json = serde_json::from_slice::<&serde_json::value::RawValue>(message).is_ok();
    match &envelope {
        Err(EnvelopeError::Parse) => assert!(!is_json, "JSON read as unparseable"),
        Err(EnvelopeError::NotAnObject) | Ok(_) => assert!(is_json, "not JSON, yet read"),
    }
    let Ok(envelope) = envelope else { return };
    let Some(Ok(meta)) = envelope.meta.as_ref().map(|m| m.validate()) else {
        return;
    };
    let request_id = envelope.is_request().then(|| {
        envelope
            .id
            .and_then(|id| serde_json::from_str::<Value>(id.get()).ok())
    });
    let peer: Rc<dyn Peer> = Rc::new(RecordingPeer::default());
    let fut = dispatcher().handle_stateless(meta, peer, message.to_vec());
    let Some(Some(reply)) = run_bounded(fut) else {
        return;
    };
    // A lone surrogate in an echoed id is JSON serde's Value refuses (see `handle_one`).
    let Ok(reply) = serde_json::from_slice::<Value>(&reply) else {
        return;
    };
    check_response(&reply);
    // MCP ids are strings or integers; anything else is refused with a null id.
    if let Some(Some(id)) = request_id {
        if id.is_string() || id.is_i64() || id.is_u64() {
            assert_eq!(reply["id"], id, "reply id differs from the request id");
        }
    }
}

/// Fuzz entry: newline-separated messages on one session, at most 64, each also read as a
/// 2026-07-28 request.
pub fn fuzz_dispatch(data: &[u8]) {
    let messages: Vec<&[u8]> = data.split(|&b| b == b'\n').take(64).collect();
    messages.iter().for_each(|m| check_stateless(m));
    check_dispatch(messages);
}

// ---------------------------------------------------------------- OAuth bearer (RFC 6750)

/// Parses one `Authorization` value and checks what came out: a token is a non-empty,
/// bounded `b64token` taken from the value, and it parses back the same from the plain form.
pub fn check_bearer(value: &[u8]) -> Result<&str, BearerError> {
    let outcome = bearer_token(value);
    if let Ok(token) = outcome {
        assert!(!token.is_empty() && token.len() <= MAX_TOKEN_BYTES);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)),
            "token {token:?} outside b64token"
        );
        let at = token.as_ptr() as usize - value.as_ptr() as usize;
        assert!(
            at + token.len() <= value.len(),
            "token not taken from the value"
        );
        assert_eq!(
            bearer_token(format!("Bearer {token}").as_bytes()),
            Ok(token)
        );
    }
    outcome
}

/// The naive reading of "the query has an `access_token` parameter": decode every name in
/// full, then compare.
fn naive_query_carries_token(target: &str) -> bool {
    let Some((_, query)) = target.split_once('?') else {
        return false;
    };
    query.split('&').any(|pair| {
        let name = pair
            .split_once('=')
            .map_or(pair, |(name, _)| name)
            .as_bytes();
        let mut decoded = Vec::new();
        let mut at = 0;
        while at < name.len() {
            if name[at] == b'%' {
                let Some(byte) = name
                    .get(at + 1..at + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                else {
                    return false;
                };
                decoded.push(byte);
                at += 3;
            } else {
                decoded.push(name[at]);
                at += 1;
            }
        }
        decoded == b"access_token"
    })
}

/// `query_carries_token` agrees with the naive reading.
pub fn check_query_token(target: &str) -> bool {
    let seen = query_carries_token(target);
    assert_eq!(seen, naive_query_carries_token(target), "{target:?}");
    seen
}

/// Writes a challenge with `text` in every value, for each error code and none, and checks
/// it: one `Bearer` scheme, printable ASCII only (no CR/LF to break the header), each
/// parameter once, every value quoted with no `"` or `\` inside.
pub fn check_challenge(text: &str) {
    let errors = [
        None,
        Some(ChallengeError::InvalidRequest),
        Some(ChallengeError::InvalidToken),
        Some(ChallengeError::InsufficientScope),
    ];
    for error in errors {
        let challenge = Challenge {
            error,
            description: Some(text),
            scope: Some(text),
            resource_metadata: text,
        };
        let value = challenge.to_string();
        assert!(
            value.bytes().all(|b| (0x20..=0x7E).contains(&b)),
            "{value:?}"
        );
        let mut rest = value.strip_prefix("Bearer ").expect("Bearer scheme");
        let mut names = Vec::new();
        loop {
            let (name, after) = rest.split_once("=\"").expect("name=\"");
            let (inner, after) = after.split_once('"').expect("closing quote");
            assert!(!inner.contains('\\'), "{value:?}");
            names.push(name);
            if after.is_empty() {
                break;
            }
            rest = after.strip_prefix(", ").expect("separator");
        }
        let expected: &[&str] = if error.is_some() {
            &["error", "error_description", "resource_metadata", "scope"]
        } else {
            &["error_description", "resource_metadata", "scope"]
        };
        assert_eq!(names, expected, "{value:?}");
    }
}

/// Fuzz entry: the first byte picks the codec (`& 3`: 0 the `Authorization` value, 1 the
/// request-target, else a challenge), the rest is its input.
pub fn fuzz_auth(data: &[u8]) {
    let (knobs, rest) = data.split_first().map_or((0, data), |(k, r)| (*k, r));
    match knobs & 3 {
        0 => {
            let _ = check_bearer(rest);
        }
        1 => {
            check_query_token(&String::from_utf8_lossy(rest));
        }
        _ => check_challenge(&String::from_utf8_lossy(rest)),
    }
}

/// The TLS server session every TLS input meets: the test certificate (built once).
fn tls_config() -> std::sync::Arc<rustls::ServerConfig> {
    static CONFIG: std::sync::OnceLock<std::sync::Arc<rustls::ServerConfig>> =
        std::sync::OnceLock::new();
    std::sync::Arc::clone(CONFIG.get_or_init(|| {
        let cert = include_bytes!("../../data/tls/server.pem");
        let key = include_bytes!("../../data/tls/server.key");
        ringmcp::transport::tls::server_config(cert, key).expect("the test certificate loads")
    }))
}

/// Feeds `wire` to a fresh TLS server session in `chunk`-byte reads, as the shard's read
/// loop does, answering nothing back. Whatever a client sends before any authentication:
/// no panic, the ciphertext owed stays small (a handshake flight or an alert), and once the
/// session failed it refuses everything after.
pub fn check_tls_server(wire: &[u8], chunk: usize) {
    use ringmcp::transport::tls::TlsSession;
    let mut session = TlsSession::new(tls_config()).expect("a session");
    let mut plaintext = Vec::new();
    let mut failed = false;
    for piece in wire.to_vec().chunks_mut(chunk.max(1)) {
        let result = session.receive(piece, &mut plaintext);
        assert!(
            !failed || result.is_err(),
            "a failed session took more input"
        );
        failed |= result.is_err();
        assert!(
            session.ciphertext().len() < 64 * 1024,
            "ciphertext owed grew past a flight"
        );
        // The shard writes what is owed before reading again.
        let owed = session.ciphertext().len();
        session.wrote(owed);
    }
    // A client cannot have finished a handshake without the server's answers.
    assert!(plaintext.is_empty(), "application data before a handshake");
    if failed {
        assert!(session.seal(b"late").is_err());
    }
}

/// Fuzz entry: the first byte picks the read size (1 to 256 bytes), the rest is what a
/// client sends to a TLS port.
pub fn fuzz_tls_server(data: &[u8]) {
    let (knob, rest) = data.split_first().map_or((0, data), |(k, r)| (*k, r));
    check_tls_server(rest, usize::from(knob) + 1);
}
