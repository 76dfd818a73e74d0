//! Per-connection frame decoding and message assembly.
//!
//! The decoder is fed whatever bytes the socket produced. Single-frame messages and control
//! frames that are whole in the input are returned borrowing the input (zero copy). Anything
//! else is consumed piecewise into one assembly `Vec`, so the caller's read buffer only ever
//! needs to hold a frame header ([`MAX_HEADER_LEN`](super::frame::MAX_HEADER_LEN) bytes).

use super::close::CloseFrame;
use super::deflate::{self, InflateError, RSV1};
use super::error::ProtocolError;
use super::frame::{FrameHeader, OpCode};
use super::mask::apply_mask;
use crate::proto::Status;

/// Which end of the connection this decoder sits on; decides the masking rule.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    /// We are the server: every incoming frame must be masked.
    Server,
    /// We are the client: no incoming frame may be masked.
    Client,
}

/// What one call to [`Decoder::decode`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Decoded<'a> {
    /// Input bytes used; the caller drops them before the next call.
    pub consumed: usize,
    /// At most one complete message or control frame.
    pub event: Option<Event<'a>>,
}

/// A complete message or control frame, borrowing the input or the decoder's buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Event<'a> {
    /// A complete, UTF-8 validated text message.
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A ping; the application answers with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's Close frame; `None` when it had no body. No more input is accepted.
    Close(Option<CloseFrame<'a>>),
}

/// Data message type, fixed by the first frame of the message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Text,
    Binary,
}

impl Kind {
    /// The kind a frame starts, `None` for continuation (and control) frames.
    fn starting(opcode: OpCode) -> Option<Kind> {
        match opcode {
            OpCode::Text => Some(Kind::Text),
            OpCode::Binary => Some(Kind::Binary),
            OpCode::Continue | OpCode::Close | OpCode::Ping | OpCode::Pong => None,
        }
    }
}

/// Control frame type; its own enum so matches over it need no unreachable arm.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Control {
    Close,
    Ping,
    Pong,
}

impl Control {
    fn from_opcode(opcode: OpCode) -> Option<Control> {
        match opcode {
            OpCode::Close => Some(Control::Close),
            OpCode::Ping => Some(Control::Ping),
            OpCode::Pong => Some(Control::Pong),
            OpCode::Continue | OpCode::Text | OpCode::Binary => None,
        }
    }

    /// Builds the event for a complete, unmasked control payload.
    fn event(self, payload: &[u8]) -> Result<Event<'_>, ProtocolError> {
        Ok(match self {
            Control::Ping => Event::Ping(payload),
            Control::Pong => Event::Pong(payload),
            Control::Close => Event::Close(CloseFrame::parse(payload)?),
        })
    }
}

/// Where the decoder is in the byte stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Between frames.
    Header,
    /// Inside a data frame's payload; `remaining` bytes to go.
    Data { fin: bool, kind: Kind },
    /// Inside a control frame's payload, which is being collected at the end of `buf`.
    Control { kind: Control, len: u8 },
    /// The peer's Close frame was delivered.
    Closed,
    /// A rule was broken; every later call repeats the error.
    Failed(ProtocolError),
}

/// Buffer contents already handed out in an event, dropped at the start of the next call
/// (they cannot be dropped earlier: the event borrows them).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stale {
    Nothing,
    /// The whole buffer was a delivered message.
    Message,
    /// The last `n` bytes were a delivered control frame.
    Control(u8),
}

/// Per-connection decoder state; small, and holds no heap while no message is open.
#[derive(Debug)]
pub struct Decoder {
    /// Assembly buffer: the open data message, then possibly a partial control frame.
    buf: Vec<u8>,
    /// The longest message accepted, in bytes (up to 4 GiB, so a frame's length fits a u32:
    /// every connection holds a decoder, and the narrow fields keep it at 48 bytes).
    max_message: u32,
    /// Payload bytes still to come in the current frame.
    remaining: u32,
    /// Prefix of `buf` known to be valid UTF-8 ending on a character boundary: part of one
    /// message, so at most `max_message` bytes.
    utf8_checked: u32,
    /// Masking key, rotated as payload is consumed so the next byte always uses `mask[0]`.
    mask: [u8; 4],
    state: State,
    /// The data message that is open (first frame seen, final frame not yet complete).
    open: Option<Kind>,
    stale: Stale,
    flags: Flags,
}

/// The decoder's three yes-or-no facts in one byte (three `bool`-sized fields would round the
/// decoder up from 48 to 56 bytes).
#[derive(Clone, Copy, Debug)]
struct Flags(u8);

impl Flags {
    /// The decoder sits on the client's end (`Role::Client`).
    const CLIENT: u8 = 1;
    /// permessage-deflate was negotiated: RSV1 marks a compressed message.
    const DEFLATE: u8 = 2;
    /// The open message came with RSV1 set: its payload is inflated once complete.
    const COMPRESSED: u8 = 4;

    fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    fn set(&mut self, flag: u8, on: bool) {
        self.0 = if on { self.0 | flag } else { self.0 & !flag };
    }
}

impl Decoder {
    /// A decoder for one connection; messages over `max_message` bytes (or 4 GiB) are refused.
    pub fn new(role: Role, max_message: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            max_message: u32::try_from(max_message).unwrap_or(u32::MAX),
            remaining: 0,
            utf8_checked: 0,
            mask: [0; 4],
            state: State::Header,
            open: None,
            stale: Stale::Nothing,
            flags: Flags(if role == Role::Client {
                Flags::CLIENT
            } else {
                0
            }),
        }
    }

    fn role(&self) -> Role {
        if self.flags.has(Flags::CLIENT) {
            Role::Client
        } else {
            Role::Server
        }
    }

    /// The same decoder on a connection that negotiated permessage-deflate (RFC 7692).
    /// Compressed messages are inflated in the thread's shared decompressor once complete,
    /// and refused as soon as the output crosses the message limit.
    pub fn with_deflate(mut self) -> Self {
        self.flags.set(Flags::DEFLATE, true);
        self
    }

    /// Feeds input bytes (unmasking them in place). Consumes what it used and returns at most one event.
    ///
    /// It never needs a whole frame in `input`, only a whole frame header (at most 14 bytes):
    /// payload is consumed piecewise into the assembly buffer. A complete single-frame message
    /// or control frame found whole in `input` is returned borrowing `input` (zero copy).
    /// `consumed == 0 && event == None` means: keep the unconsumed bytes and read more.
    /// After an error the decoder is dead and returns the same error on every call.
    pub fn decode<'a>(&'a mut self, input: &'a mut [u8]) -> Result<Decoded<'a>, ProtocolError> {
        self.release_delivered();
        match self.state {
            State::Failed(error) => {
                self.buf = Vec::new();
                Err(error)
            }
            State::Closed => {
                self.buf = Vec::new();
                if input.is_empty() {
                    Ok(Decoded::progress(0))
                } else {
                    // 5.5.1: "The application MUST NOT send any more data frames after sending
                    // a Close frame." Nothing may follow the peer's Close.
                    Err(self.fail(ProtocolError::FrameAfterClose))
                }
            }
            State::Header => self.frame_start(input),
            State::Data { fin, kind } => self.data_payload(input, 0, fin, kind),
            State::Control { kind, len } => self.control_payload(input, 0, kind, len),
        }
    }

    /// True while a fragmented (or partially received) data message is open: the server runs a completion timeout on it.
    pub fn message_in_progress(&self) -> bool {
        self.open.is_some()
    }

    /// Bytes held in the assembly buffer.
    pub fn buffered(&self) -> usize {
        match self.stale {
            Stale::Nothing => self.buf.len(),
            Stale::Message => 0,
            Stale::Control(len) => self.buf.len().saturating_sub(usize::from(len)),
        }
    }

    /// Bytes allocated for the assembly buffer, delivered or not (for tests of the
    /// connections that must release it).
    #[cfg(test)]
    pub fn allocated(&self) -> usize {
        self.buf.capacity()
    }

    /// Parses a frame header and either answers from `input` or starts piecewise consumption.
    fn frame_start<'a>(&'a mut self, input: &'a mut [u8]) -> Result<Decoded<'a>, ProtocolError> {
        let (header, header_len) = match FrameHeader::parse(input) {
            Ok(Status::Complete(header, header_len)) => (header, header_len),
            Ok(Status::Partial) => return Ok(Decoded::progress(0)),
            Err(error) => return Err(self.fail(error)),
        };
        // 5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that defines meanings for
        // non-zero values. If a nonzero value is received and none of the negotiated
        // extensions defines the meaning of such a nonzero value, the receiving endpoint MUST
        // _Fail the WebSocket Connection_." permessage-deflate defines RSV1 only.
        let rsv1 = header.rsv == RSV1 && self.flags.has(Flags::DEFLATE);
        if header.rsv != 0 && !rsv1 {
            return Err(self.fail(ProtocolError::ReservedBitsSet));
        }
        // RFC 7692 §6: "An endpoint MUST NOT set the "Per-Message Compressed" bit of control
        // frames and non-first fragments of a data message. An endpoint receiving such a
        // frame MUST _Fail the WebSocket Connection_."
        if rsv1 && header.opcode.is_control() {
            return Err(self.fail(ProtocolError::CompressedControlFrame));
        }
        if rsv1 && header.opcode == OpCode::Continue {
            return Err(self.fail(ProtocolError::CompressedContinuation));
        }
        match (self.role(), header.mask) {
            // 5.1: "a client MUST mask all frames that it sends to the server ... The server
            // MUST close the connection upon receiving a frame that is not masked."
            (Role::Server, None) => return Err(self.fail(ProtocolError::UnmaskedFrameFromClient)),
            // 5.1: "A client MUST close a connection if it detects a masked frame."
            (Role::Client, Some(_)) => return Err(self.fail(ProtocolError::MaskedFrameFromServer)),
            (Role::Server, Some(key)) => self.mask = key,
            (Role::Client, None) => {}
        }
        let available = input.len().saturating_sub(header_len) as u64;

        if let Some(kind) = Control::from_opcode(header.opcode) {
            // FrameHeader::parse already refused control payloads over 125 bytes (5.5).
            let Ok(len) = u8::try_from(header.payload_len) else {
                return Err(self.fail(ProtocolError::ControlFrameTooBig));
            };
            if u64::from(len) <= available {
                let end = header_len + usize::from(len);
                self.unmask(&mut input[header_len..end]);
                let input: &'a [u8] = input;
                return match kind.event(&input[header_len..end]) {
                    Ok(event) => {
                        if kind == Control::Close {
                            self.closed();
                        }
                        Ok(Decoded {
                            consumed: end,
                            event: Some(event),
                        })
                    }
                    Err(error) => Err(self.fail(error)),
                };
            }
            // 5.4: "Control frames (see Section 5.5) MAY be injected in the middle of a
            // fragmented message." Its bytes go after the open message's, and leave with it.
            self.state = State::Control { kind, len };
            self.remaining = u32::from(len);
            return self.control_payload(input, header_len, kind, len);
        }

        let kind = match (Kind::starting(header.opcode), self.open) {
            (Some(kind), None) => kind,
            (None, Some(kind)) => kind,
            // 5.4: "A fragmented message consists of a single frame with the FIN bit clear and
            // an opcode other than 0, followed by zero or more frames with the FIN bit clear
            // and the opcode set to 0, and terminated by a single frame with the FIN bit set
            // and an opcode of 0."
            (None, None) => return Err(self.fail(ProtocolError::UnexpectedContinuation)),
            // 5.4: "The fragments of one message MUST NOT be interleaved between the fragments
            // of another message unless an extension has been negotiated".
            (Some(_), Some(_)) => return Err(self.fail(ProtocolError::ExpectedContinuation)),
        };
        // 10.4: "Implementations that have implementation- and/or platform-specific
        // limitations regarding the frame size or total message size after reassembly from
        // multiple frames MUST protect themselves against exceeding those limits." Checked on
        // the announced length, before a single payload byte is buffered.
        let room = u64::from(self.max_message).saturating_sub(self.buf.len() as u64);
        let Some(payload_len) = u32::try_from(header.payload_len)
            .ok()
            .filter(|&len| u64::from(len) <= room)
        else {
            return Err(self.fail(ProtocolError::MessageTooBig));
        };

        if self.open.is_none() {
            self.flags.set(Flags::COMPRESSED, rsv1);
        }
        if header.fin && self.open.is_none() && header.payload_len <= available {
            // A whole single-frame message: answer straight from the input.
            let end = header_len + header.payload_len as usize;
            self.unmask(&mut input[header_len..end]);
            let input: &'a [u8] = input;
            let payload = &input[header_len..end];
            if rsv1 {
                return self.inflated(payload, kind, end);
            }
            let event = match kind {
                Kind::Binary => Event::Binary(payload),
                // 8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that
                // the byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST
                // _Fail the WebSocket Connection_."
                Kind::Text => match simdutf8::basic::from_utf8(payload) {
                    Ok(text) => Event::Text(text),
                    Err(_) => return Err(self.fail(ProtocolError::InvalidUtf8)),
                },
            };
            return Ok(Decoded {
                consumed: end,
                event: Some(event),
            });
        }

        self.open = Some(kind);
        self.state = State::Data {
            fin: header.fin,
            kind,
        };
        self.remaining = payload_len;
        self.data_payload(input, header_len, header.fin, kind)
    }

    /// Consumes available payload of the current data frame into the assembly buffer.
    fn data_payload<'a>(
        &'a mut self,
        input: &'a mut [u8],
        start: usize,
        fin: bool,
        kind: Kind,
    ) -> Result<Decoded<'a>, ProtocolError> {
        let consumed = self.take_payload(input, start);
        if kind == Kind::Text && !self.flags.has(Flags::COMPRESSED) {
            self.check_utf8()?;
        }
        if self.remaining > 0 {
            return Ok(Decoded::progress(consumed));
        }
        self.state = State::Header;
        if !fin {
            return Ok(Decoded::progress(consumed));
        }

        self.open = None;
        if self.flags.has(Flags::COMPRESSED) {
            let payload = std::mem::take(&mut self.buf);
            return self.inflated(&payload, kind, consumed);
        }
        // 5.6: "a particular text frame might include a partial UTF-8 sequence;
        // however, the whole message MUST contain valid UTF-8."
        if kind == Kind::Text && self.utf8_checked as usize != self.buf.len() {
            return Err(self.fail(ProtocolError::InvalidUtf8));
        }
        self.deliver_assembled(kind, consumed)
    }

    /// Inflates a complete compressed message into the assembly buffer and delivers it.
    fn inflated(
        &mut self,
        payload: &[u8],
        kind: Kind,
        consumed: usize,
    ) -> Result<Decoded<'_>, ProtocolError> {
        self.buf.clear();
        match deflate::inflate(payload, &mut self.buf, self.max_message as usize) {
            Ok(()) => {}
            // 10.4: a message too big after reassembly is refused; decompression is where
            // this one grows, and it is stopped there.
            Err(InflateError::TooBig) => return Err(self.fail(ProtocolError::MessageTooBig)),
            Err(InflateError::Corrupt) => {
                return Err(self.fail(ProtocolError::InvalidCompressedData))
            }
        }
        self.deliver_assembled(kind, consumed)
    }

    /// Delivers the assembled message in `self.buf`, which is released on the next call.
    /// Text is validated here in one pass (8.1); a plain message's bytes were also checked
    /// as they arrived, compressed text only now that it is inflated.
    fn deliver_assembled(
        &mut self,
        kind: Kind,
        consumed: usize,
    ) -> Result<Decoded<'_>, ProtocolError> {
        self.stale = Stale::Message;
        let event = match kind {
            Kind::Binary => Event::Binary(&self.buf),
            // SIMD speed, and without unsafe code, for assembled messages only.
            Kind::Text => match simdutf8::basic::from_utf8(&self.buf) {
                Ok(text) => Event::Text(text),
                Err(_) => {
                    // `self.buf` is borrowed here, so mark the failure field by field.
                    self.state = State::Failed(ProtocolError::InvalidUtf8);
                    return Err(ProtocolError::InvalidUtf8);
                }
            },
        };
        Ok(Decoded {
            consumed,
            event: Some(event),
        })
    }

    /// Consumes available payload of the current control frame; delivers it once complete.
    fn control_payload<'a>(
        &'a mut self,
        input: &'a mut [u8],
        start: usize,
        kind: Control,
        len: u8,
    ) -> Result<Decoded<'a>, ProtocolError> {
        let consumed = self.take_payload(input, start);
        if self.remaining > 0 {
            return Ok(Decoded::progress(consumed));
        }
        if kind == Control::Close {
            self.closed();
        } else {
            self.state = State::Header;
        }
        self.stale = Stale::Control(len);
        let from = self.buf.len().saturating_sub(usize::from(len));
        match kind.event(&self.buf[from..]) {
            Ok(event) => Ok(Decoded {
                consumed,
                event: Some(event),
            }),
            Err(error) => {
                // `self.buf` is borrowed by the match, so record the failure field by field.
                self.state = State::Failed(error);
                self.open = None;
                Err(error)
            }
        }
    }

    /// Unmasks and appends as much of the current frame's payload as `input[start..]` holds;
    /// returns the total bytes of `input` consumed.
    fn take_payload(&mut self, input: &mut [u8], start: usize) -> usize {
        let rest = input.get_mut(start..).unwrap_or_default();
        let take = rest.len().min(self.remaining as usize);
        let chunk = &mut rest[..take];
        self.unmask(chunk);
        self.buf.extend_from_slice(chunk);
        // `take` is at most `remaining`, a u32.
        self.remaining -= take as u32;
        start + take
    }

    /// Unmasks the next payload bytes in place (server role), keeping the key in phase.
    fn unmask(&mut self, chunk: &mut [u8]) {
        if self.role() == Role::Server {
            apply_mask(chunk, self.mask, 0);
            self.mask.rotate_left(chunk.len() & 3);
        }
    }

    /// Validates the newly appended text bytes, failing at the first impossible byte.
    fn check_utf8(&mut self) -> Result<(), ProtocolError> {
        let unchecked = self
            .buf
            .get(self.utf8_checked as usize..)
            .unwrap_or_default();
        let valid = match simdutf8::compat::from_utf8(unchecked) {
            Ok(_) => unchecked.len(),
            // `error_len() == None`: the bytes end inside a sequence that may still complete
            // with the next chunk or fragment; only its valid prefix counts as checked.
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            // 8.1: invalid UTF-8 "MUST _Fail the WebSocket Connection_". Failing on arrival
            // (not at frame end) is what Autobahn 6.x checks.
            Err(_) => return Err(self.fail(ProtocolError::InvalidUtf8)),
        };
        // The text checked is part of one message, which `max_message` (a u32) bounds.
        self.utf8_checked += valid as u32;
        Ok(())
    }

    /// Releases buffer contents that the previous call handed out (each call does it first;
    /// a connection that stops decoding calls it once done with the last event, so a
    /// delivered message, such as an inflated one, is not kept while the connection idles).
    pub fn release_delivered(&mut self) {
        match self.stale {
            Stale::Nothing => return,
            Stale::Message => {
                // Capacity goes too: an idle connection holds no heap.
                self.buf = Vec::new();
                self.utf8_checked = 0;
            }
            Stale::Control(len) => {
                if self.open.is_none() {
                    self.buf = Vec::new();
                } else {
                    let keep = self.buf.len().saturating_sub(usize::from(len));
                    self.buf.truncate(keep);
                }
            }
        }
        self.stale = Stale::Nothing;
    }

    /// Enters the closed state after delivering the peer's Close frame.
    fn closed(&mut self) {
        self.state = State::Closed;
        self.open = None;
    }

    /// Records a broken rule; the decoder stays failed and frees its buffer.
    fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        self.state = State::Failed(error);
        self.open = None;
        self.buf = Vec::new();
        self.stale = Stale::Nothing;
        error
    }
}

impl Decoded<'_> {
    /// Bytes used, no event.
    fn progress(consumed: usize) -> Self {
        Decoded {
            consumed,
            event: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::at_every_split;
    use crate::proto::ws::close::CloseCode;
    use crate::proto::ws::encoder::{encode_close, encode_frame};
    use proptest::prelude::*;

    /// An event copied out of the decoder so results can be collected and compared.
    #[derive(Clone, PartialEq, Eq, Debug)]
    enum Owned {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<(u16, String)>),
    }

    use Owned::{Binary, Close, Ping, Pong, Text};

    impl From<Event<'_>> for Owned {
        fn from(event: Event<'_>) -> Self {
            match event {
                Event::Text(t) => Text(t.to_owned()),
                Event::Binary(b) => Binary(b.to_vec()),
                Event::Ping(b) => Ping(b.to_vec()),
                Event::Pong(b) => Pong(b.to_vec()),
                Event::Close(c) => Close(c.map(|c| (c.code.0, c.reason.to_owned()))),
            }
        }
    }

    type Outcome = Vec<Result<Owned, ProtocolError>>;

    /// The read loop a server runs: append each chunk to the bytes kept from before, hand at
    /// most `window` of them to `decode` (a fixed-size read buffer), drop what was consumed,
    /// repeat until the decoder needs more. Stops at the first error.
    fn drive(dec: &mut Decoder, chunks: &[&[u8]], window: usize) -> Outcome {
        let mut kept: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for chunk in chunks {
            kept.extend_from_slice(chunk);
            loop {
                let visible = kept.len().min(window);
                let (consumed, event) = match dec.decode(&mut kept[..visible]) {
                    Ok(d) => (d.consumed, d.event.map(Owned::from)),
                    Err(e) => {
                        out.push(Err(e));
                        return out;
                    }
                };
                assert!(consumed <= visible, "consumed past the input");
                kept.drain(..consumed);
                match event {
                    Some(event) => out.push(Ok(event)),
                    None if consumed == 0 => break,
                    None => {}
                }
            }
        }
        out
    }

    /// Decodes `stream` at every two-chunk split and through small fixed read windows, and
    /// checks every run sees `expected`.
    fn check(role: Role, max: usize, stream: &[u8], expected: &[Result<Owned, ProtocolError>]) {
        check_with(&|| Decoder::new(role, max), stream, expected);
    }

    /// [`check`] with decoders from `make`.
    fn check_with(
        make: &dyn Fn() -> Decoder,
        stream: &[u8],
        expected: &[Result<Owned, ProtocolError>],
    ) {
        at_every_split(stream, |chunks| {
            let got = drive(&mut make(), chunks, usize::MAX);
            assert_eq!(
                got,
                expected,
                "chunks {:?}",
                chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
            );
        });
        for window in [14, 15, 64, 131] {
            let got = drive(&mut make(), &[stream], window);
            assert_eq!(got, expected, "window {window}");
        }
    }

    /// Server-side check with a generous cap.
    fn check_server(stream: &[u8], expected: &[Result<Owned, ProtocolError>]) {
        check(Role::Server, 1 << 20, stream, expected);
    }

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A client-to-server (masked) frame.
    fn client(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(&mut out, opcode, fin, payload, Some(KEY));
        out
    }

    /// A frame from raw header bytes and a payload, masked with KEY if the MASK bit is set.
    fn raw(b0: u8, b1: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = vec![b0, b1];
        out.extend_from_slice(ext);
        let mut payload = payload.to_vec();
        if b1 & 0x80 != 0 {
            out.extend_from_slice(&KEY);
            crate::proto::ws::mask::apply_mask_naive(&mut payload, KEY, 0);
        }
        out.extend_from_slice(&payload);
        out
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn text(s: &str) -> Result<Owned, ProtocolError> {
        Ok(Text(s.to_owned()))
    }

    fn err(e: ProtocolError) -> Result<Owned, ProtocolError> {
        Err(e)
    }

    /// Every WebSocket connection holds a decoder (`shard/conn.rs`, `drivers_stay_small`).
    #[test]
    fn decoder_is_small() {
        let size = std::mem::size_of::<Decoder>();
        assert!(size <= 48, "the decoder is {size} B");
    }

    #[test]
    fn single_frame_messages() {
        let stream = cat(&[
            &client(OpCode::Text, true, b"Hello"),
            &client(OpCode::Binary, true, &[0, 1, 2, 255]),
            &client(OpCode::Binary, true, &[7; 300]),
        ]);
        check_server(
            &stream,
            &[
                text("Hello"),
                Ok(Binary(vec![0, 1, 2, 255])),
                Ok(Binary(vec![7; 300])),
            ],
        );
    }

    #[test]
    fn whole_frame_is_zero_copy() {
        let mut input = client(OpCode::Text, true, b"Hello");
        let range = input.as_ptr_range();
        let mut dec = Decoder::new(Role::Server, 100);
        let d = dec.decode(&mut input).expect("valid frame");
        assert_eq!(d.consumed, 11);
        let Some(Event::Text(t)) = d.event else {
            panic!("expected text, got {:?}", d.event)
        };
        assert_eq!(t, "Hello");
        assert!(range.contains(&t.as_ptr()), "event must borrow the input");
        assert_eq!(dec.buf.capacity(), 0);
    }

    #[test]
    fn server_rejects_unmasked_frames() {
        check_server(
            &raw(0x81, 0x05, &[], b"Hello"),
            &[err(ProtocolError::UnmaskedFrameFromClient)],
        );
        check_server(
            &raw(0x89, 0x00, &[], b""),
            &[err(ProtocolError::UnmaskedFrameFromClient)],
        );
    }

    #[test]
    fn client_rejects_masked_frames_and_accepts_unmasked() {
        let mut unmasked = Vec::new();
        encode_frame(&mut unmasked, OpCode::Text, false, b"He", None);
        encode_frame(&mut unmasked, OpCode::Ping, true, b"p", None);
        encode_frame(&mut unmasked, OpCode::Continue, true, b"llo", None);
        check(
            Role::Client,
            100,
            &unmasked,
            &[Ok(Ping(b"p".to_vec())), text("Hello")],
        );
        check(
            Role::Client,
            100,
            &client(OpCode::Text, true, b"Hello"),
            &[err(ProtocolError::MaskedFrameFromServer)],
        );
    }

    #[test]
    fn reserved_bits() {
        for rsv in [0x40, 0x20, 0x10, 0x70] {
            let stream = cat(&[
                &client(OpCode::Text, true, b"ok"),
                &raw(0x81 | rsv, 0x82, &[], b"no"),
            ]);
            check_server(&stream, &[text("ok"), err(ProtocolError::ReservedBitsSet)]);
        }
    }

    #[test]
    fn unknown_opcodes() {
        for op in (3..=7).chain(0xB..=0xF) {
            check_server(
                &raw(0x80 | op, 0x80, &[], b""),
                &[err(ProtocolError::UnknownOpCode(op))],
            );
        }
    }

    #[test]
    fn control_frame_rules() {
        // Ping with FIN clear.
        check_server(
            &raw(0x09, 0x80, &[], b""),
            &[err(ProtocolError::FragmentedControlFrame)],
        );
        // Ping of 126 bytes (Autobahn 2.5).
        check_server(
            &raw(0x89, 0x80 | 126, &[0, 126], &[0; 126]),
            &[err(ProtocolError::ControlFrameTooBig)],
        );
        // Exactly 125 is fine.
        check_server(
            &client(OpCode::Ping, true, &[9; 125]),
            &[Ok(Ping(vec![9; 125]))],
        );
        check_server(
            &client(OpCode::Pong, true, b"x"),
            &[Ok(Pong(b"x".to_vec()))],
        );
    }

    #[test]
    fn continuation_rules() {
        check_server(
            &client(OpCode::Continue, true, b"x"),
            &[err(ProtocolError::UnexpectedContinuation)],
        );
        // A finished message does not leave anything open.
        let stream = cat(&[
            &client(OpCode::Text, true, b"a"),
            &client(OpCode::Continue, false, b""),
        ]);
        check_server(
            &stream,
            &[text("a"), err(ProtocolError::UnexpectedContinuation)],
        );
        for second in [OpCode::Text, OpCode::Binary] {
            let stream = cat(&[
                &client(OpCode::Binary, false, b"a"),
                &client(second, true, b"b"),
            ]);
            check_server(&stream, &[err(ProtocolError::ExpectedContinuation)]);
        }
    }

    #[test]
    fn length_encoding_rules() {
        check_server(
            &raw(0x82, 0x80 | 126, &[0, 125], &[0; 125]),
            &[err(ProtocolError::NonMinimalLength)],
        );
        check_server(
            &raw(0x82, 0x80 | 127, &[0, 0, 0, 0, 0, 0, 0xFF, 0xFF], &[]),
            &[err(ProtocolError::NonMinimalLength)],
        );
        check_server(
            &raw(0x82, 0x80 | 127, &[0x80, 0, 0, 0, 0, 1, 0, 0], &[]),
            &[err(ProtocolError::LengthMsbSet)],
        );
        // Minimal 16-bit form is fine.
        check_server(
            &raw(0x82, 0x80 | 126, &[0, 126], &[1; 126]),
            &[Ok(Binary(vec![1; 126]))],
        );
    }

    #[test]
    fn message_cap_boundary() {
        let max = 300;
        check(
            Role::Server,
            max,
            &client(OpCode::Binary, true, &[1; 300]),
            &[Ok(Binary(vec![1; 300]))],
        );
        // One byte over: refused from the header alone, no payload needed.
        let header_only = raw(0x82, 0x80 | 126, &[1, 45], &[]);
        assert_eq!(header_only.len(), 8);
        check(
            Role::Server,
            max,
            &header_only,
            &[err(ProtocolError::MessageTooBig)],
        );
        // Fragments count together; control frames in between do not.
        let exact = cat(&[
            &client(OpCode::Text, false, &[b'a'; 200]),
            &client(OpCode::Ping, true, &[0; 125]),
            &client(OpCode::Continue, true, &[b'b'; 100]),
        ]);
        let expected = format!("{}{}", "a".repeat(200), "b".repeat(100));
        check(
            Role::Server,
            max,
            &exact,
            &[Ok(Ping(vec![0; 125])), text(&expected)],
        );
        let over = cat(&[
            &client(OpCode::Text, false, &[b'a'; 200]),
            &raw(0x80, 0x80 | 101, &[], &[]),
        ]);
        check(
            Role::Server,
            max,
            &over,
            &[err(ProtocolError::MessageTooBig)],
        );
    }

    #[test]
    fn sixteen_mib_cap() {
        const MAX: usize = 16 << 20;
        let payload: Vec<u8> = (0..MAX).map(|i| (i % 251) as u8).collect();
        let stream = client(OpCode::Binary, true, &payload);
        // Far too big for every split; whole, in socket-sized chunks, and through a 4 KiB
        // fixed read buffer (the decoder never needs the frame in one piece).
        let chunked: Vec<&[u8]> = stream.chunks(64 * 1024).collect();
        for (chunks, window) in [
            (vec![&stream[..]], usize::MAX),
            (chunked.clone(), usize::MAX),
            (chunked, 4096),
        ] {
            let mut dec = Decoder::new(Role::Server, MAX);
            let got = drive(&mut dec, &chunks, window);
            assert_eq!(got.len(), 1);
            assert!(matches!(&got[0], Ok(Binary(b)) if *b == payload));
        }
        // MAX + 1 fails on the header, before any payload is sent.
        let header_only = raw(0x82, 0x80 | 127, &((MAX as u64 + 1).to_be_bytes()), &[]);
        check(
            Role::Server,
            MAX,
            &header_only,
            &[err(ProtocolError::MessageTooBig)],
        );
        // A limit past 4 GiB is held as 4 GiB: a frame announcing 2^32 bytes is refused on
        // its header too (its length does not fit the decoder's u32).
        let four_gib = raw(0x82, 0x80 | 127, &(1u64 << 32).to_be_bytes(), &[]);
        check(
            Role::Server,
            usize::MAX,
            &four_gib,
            &[err(ProtocolError::MessageTooBig)],
        );
    }

    #[test]
    fn fragmentation_with_control_frames_between() {
        let stream = cat(&[
            &client(OpCode::Text, false, b"frag"),
            &client(OpCode::Ping, true, b"p1"),
            &client(OpCode::Continue, false, b"men"),
            &client(OpCode::Pong, true, b""),
            &client(OpCode::Ping, true, b"p2"),
            &client(OpCode::Continue, true, b"ted"),
            &client(OpCode::Binary, false, &[1]),
            &client(OpCode::Continue, true, &[2]),
        ]);
        check_server(
            &stream,
            &[
                Ok(Ping(b"p1".to_vec())),
                Ok(Pong(Vec::new())),
                Ok(Ping(b"p2".to_vec())),
                text("fragmented"),
                Ok(Binary(vec![1, 2])),
            ],
        );
    }

    #[test]
    fn zero_length_frames_and_messages() {
        let stream = cat(&[
            &client(OpCode::Text, true, b""),
            &client(OpCode::Binary, true, b""),
            &client(OpCode::Text, false, b""),
            &client(OpCode::Continue, false, b""),
            &client(OpCode::Ping, true, b""),
            &client(OpCode::Continue, true, b""),
            &client(OpCode::Binary, false, b""),
            &client(OpCode::Continue, true, b""),
        ]);
        check_server(
            &stream,
            &[
                text(""),
                Ok(Binary(Vec::new())),
                Ok(Ping(Vec::new())),
                text(""),
                Ok(Binary(Vec::new())),
            ],
        );
    }

    #[test]
    fn invalid_utf8_single_frame() {
        check_server(
            &client(OpCode::Text, true, b"ab\xffcd"),
            &[err(ProtocolError::InvalidUtf8)],
        );
        // Surrogate (Autobahn 6.x) and overlong encodings.
        check_server(
            &client(OpCode::Text, true, b"\xed\xa0\x80"),
            &[err(ProtocolError::InvalidUtf8)],
        );
        check_server(
            &client(OpCode::Text, true, b"\xc0\xaf"),
            &[err(ProtocolError::InvalidUtf8)],
        );
        // Truncated sequence at the end of the message.
        check_server(
            &client(
                OpCode::Text,
                true,
                "\u{3ba}\u{e1}"
                    .as_bytes()
                    .split_last()
                    .map_or(&[][..], |(_, init)| init),
            ),
            &[err(ProtocolError::InvalidUtf8)],
        );
    }

    #[test]
    fn invalid_utf8_fails_fast_within_a_frame() {
        // Header announces 100 bytes; only the first 6 arrive, one of them invalid. The rest
        // never comes, yet the error must already be reported.
        let frame = client(
            OpCode::Text,
            true,
            &[b"hi \xf4\x90\x80".as_slice(), &[b'x'; 94]].concat(),
        );
        // 100 < 126: 7-bit length, so the masked header is 6 bytes.
        let partial = &frame[..6 + 6];
        check_server(partial, &[err(ProtocolError::InvalidUtf8)]);
        // F4 90 can never start a valid sequence: refused after just those two bytes.
        check_server(&frame[..6 + 5], &[err(ProtocolError::InvalidUtf8)]);
        // While a still-completable prefix is not an error yet.
        let ok_frame = client(
            OpCode::Text,
            true,
            &[b"hi \xf4\x8f\xbf".as_slice(), &[b'x'; 94]].concat(),
        );
        check_server(&ok_frame[..6 + 6], &[]);
    }

    #[test]
    fn invalid_utf8_fails_fast_across_fragments() {
        // First fragment bad, message never finished.
        check_server(
            &client(OpCode::Text, false, b"ok\xc3\x28"),
            &[err(ProtocolError::InvalidUtf8)],
        );
        // Sequence started in one fragment, broken in the next.
        let stream = cat(&[
            &client(OpCode::Text, false, b"ok\xe2\x82"),
            &client(OpCode::Continue, false, b"("),
        ]);
        check_server(&stream, &[err(ProtocolError::InvalidUtf8)]);
        // Incomplete sequence at the end of the final fragment.
        let stream = cat(&[
            &client(OpCode::Text, false, b"ok"),
            &client(OpCode::Continue, true, b"\xe2\x82"),
        ]);
        check_server(&stream, &[err(ProtocolError::InvalidUtf8)]);
    }

    #[test]
    fn utf8_split_across_fragments_is_accepted() {
        let s = "\u{3ba}\u{1f600}\u{20ac}";
        let bytes = s.as_bytes();
        // Split inside the 4-byte emoji, one byte per fragment, with a ping in the middle.
        let stream = cat(&[
            &client(OpCode::Text, false, &bytes[..3]),
            &client(OpCode::Continue, false, &bytes[3..4]),
            &client(OpCode::Ping, true, b"!"),
            &client(OpCode::Continue, false, &bytes[4..5]),
            &client(OpCode::Continue, false, &[]),
            &client(OpCode::Continue, true, &bytes[5..]),
        ]);
        check_server(&stream, &[Ok(Ping(b"!".to_vec())), text(s)]);
    }

    #[test]
    fn close_frames() {
        check_server(&client(OpCode::Close, true, b""), &[Ok(Close(None))]);
        let mut stream = Vec::new();
        encode_close(&mut stream, CloseCode::NORMAL, "bye \u{e9}", Some(KEY));
        check_server(&stream, &[Ok(Close(Some((1000, "bye \u{e9}".to_owned()))))]);
        check_server(
            &client(OpCode::Close, true, b"\x03"),
            &[err(ProtocolError::CloseFrameTooShort)],
        );
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            check_server(
                &client(OpCode::Close, true, &code.to_be_bytes()),
                &[err(ProtocolError::InvalidCloseCode(code))],
            );
        }
        check_server(
            &client(OpCode::Close, true, b"\x03\xe8\xce\xba\xed\xa0\x80"),
            &[err(ProtocolError::InvalidCloseReason)],
        );
        assert_eq!(
            ProtocolError::InvalidCloseReason.close_code(),
            CloseCode(1007)
        );
    }

    #[test]
    fn close_between_fragments_and_nothing_after_it() {
        let stream = cat(&[
            &client(OpCode::Text, false, b"half"),
            &client(OpCode::Close, true, b"\x03\xe8"),
            &client(OpCode::Ping, true, b""),
        ]);
        check_server(
            &stream,
            &[
                Ok(Close(Some((1000, String::new())))),
                err(ProtocolError::FrameAfterClose),
            ],
        );
        // Nothing after the close is fine: the decoder just waits.
        let mut dec = Decoder::new(Role::Server, 100);
        let mut input = client(OpCode::Close, true, b"");
        assert!(matches!(
            dec.decode(&mut input),
            Ok(Decoded {
                consumed: 6,
                event: Some(Event::Close(None))
            })
        ));
        assert_eq!(
            dec.decode(&mut []),
            Ok(Decoded {
                consumed: 0,
                event: None
            })
        );
        assert_eq!(dec.decode(&mut [0x81]), Err(ProtocolError::FrameAfterClose));
    }

    #[test]
    fn progress_state_and_no_idle_heap() {
        let mut dec = Decoder::new(Role::Server, 1000);
        assert!(!dec.message_in_progress());
        let mut first = client(OpCode::Binary, false, &[1; 10]);
        assert_eq!(
            dec.decode(&mut first),
            Ok(Decoded {
                consumed: 16,
                event: None
            })
        );
        assert!(dec.message_in_progress());
        assert_eq!(dec.buffered(), 10);

        // A ping whose payload has not fully arrived while the message is open.
        let ping = client(OpCode::Ping, true, b"abc");
        let mut part = ping[..7].to_vec();
        assert_eq!(
            dec.decode(&mut part),
            Ok(Decoded {
                consumed: 7,
                event: None
            })
        );
        assert_eq!(dec.buffered(), 11);
        let mut rest = ping[7..].to_vec();
        let d = dec.decode(&mut rest).expect("ping");
        assert_eq!(d.event, Some(Event::Ping(b"abc")));
        assert_eq!(dec.buffered(), 10);

        let mut last = client(OpCode::Continue, true, &[2; 5]);
        let d = dec.decode(&mut last).expect("final fragment");
        assert_eq!(
            d.event,
            Some(Event::Binary(&[
                1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2
            ]))
        );
        assert!(!dec.message_in_progress());
        assert_eq!(dec.buffered(), 0);
        assert_eq!(
            dec.decode(&mut []),
            Ok(Decoded {
                consumed: 0,
                event: None
            })
        );
        assert_eq!(dec.buf.capacity(), 0, "idle decoder holds no heap");

        // A partially received single-frame message also counts as in progress.
        let frame = client(OpCode::Text, true, b"hello");
        let mut head = frame[..8].to_vec();
        assert_eq!(
            dec.decode(&mut head),
            Ok(Decoded {
                consumed: 8,
                event: None
            })
        );
        assert!(dec.message_in_progress());
        let mut tail = frame[8..].to_vec();
        assert_eq!(
            dec.decode(&mut tail).expect("rest").event,
            Some(Event::Text("hello"))
        );
        assert_eq!(
            dec.decode(&mut []),
            Ok(Decoded {
                consumed: 0,
                event: None
            })
        );
        assert_eq!(dec.buf.capacity(), 0);

        // A control frame collected piecewise while idle is released too.
        let mut head = ping[..7].to_vec();
        assert_eq!(dec.decode(&mut head).map(|d| d.consumed), Ok(7));
        assert!(!dec.message_in_progress());
        let mut tail = ping[7..].to_vec();
        assert_eq!(
            dec.decode(&mut tail).expect("ping").event,
            Some(Event::Ping(b"abc"))
        );
        assert_eq!(
            dec.decode(&mut []),
            Ok(Decoded {
                consumed: 0,
                event: None
            })
        );
        assert_eq!(dec.buf.capacity(), 0);
    }

    #[test]
    fn errors_are_sticky() {
        let mut dec = Decoder::new(Role::Server, 100);
        let mut bad = raw(0x83, 0x80, &[], b"");
        assert_eq!(dec.decode(&mut bad), Err(ProtocolError::UnknownOpCode(3)));
        let mut good = client(OpCode::Text, true, b"x");
        assert_eq!(dec.decode(&mut good), Err(ProtocolError::UnknownOpCode(3)));
        assert_eq!(dec.buf.capacity(), 0);
        assert!(!dec.message_in_progress());
    }

    /// One data message to send: its frames' payloads and the pings to put after each frame.
    #[derive(Clone, Debug)]
    struct Msg {
        text: bool,
        bytes: Vec<u8>,
        cuts: Vec<usize>,
        pings: Vec<Option<Vec<u8>>>,
    }

    /// A message's payload compressed as RFC 7692 §7.2.1 says, trailing 0x00 0x00 0xff 0xff
    /// removed.
    fn deflated(payload: &[u8]) -> Vec<u8> {
        use flate2::{Compress, Compression, FlushCompress};
        let mut out = Vec::with_capacity(payload.len() + 64);
        Compress::new(Compression::best(), false)
            .compress_vec(payload, &mut out, FlushCompress::Sync)
            .unwrap();
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    }

    /// A masked frame with RSV1 (the "Per-Message Compressed" bit) set.
    fn compressed(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut frame = client(opcode, fin, payload);
        frame[0] |= 0x40;
        frame
    }

    fn check_deflate(max: usize, stream: &[u8], expected: &[Result<Owned, ProtocolError>]) {
        check_with(
            &|| Decoder::new(Role::Server, max).with_deflate(),
            stream,
            expected,
        );
    }

    #[test]
    fn an_inflated_message_is_released_once_delivered() {
        // The transport calls release_delivered when it is done with a read's events: a
        // connection idling after a compressed 18 KB message keeps no inflated copy of it.
        let mut dec = Decoder::new(Role::Server, 1 << 20).with_deflate();
        let payload = "{\"jsonrpc\":\"2.0\"} ".repeat(1000);
        let mut input = compressed(OpCode::Text, true, &deflated(payload.as_bytes()));
        let decoded = dec.decode(&mut input).unwrap();
        assert!(matches!(decoded.event, Some(Event::Text(t)) if t == payload));
        assert!(dec.buf.capacity() >= payload.len());
        dec.release_delivered();
        assert_eq!(dec.buf.capacity(), 0, "idle decoder holds no heap");
    }

    #[test]
    fn compressed_messages_whole_and_fragmented() {
        let hello = "Hello, Hello, Hello! ".repeat(10);
        let body = deflated(hello.as_bytes());
        let (a, rest) = body.split_at(body.len() / 3);
        let (b, c) = rest.split_at(rest.len() / 2);
        let stream = cat(&[
            &compressed(OpCode::Text, true, &body),
            &client(OpCode::Text, true, b"plain"),
            &compressed(OpCode::Text, false, a),
            &client(OpCode::Ping, true, b"p"),
            &client(OpCode::Continue, false, b),
            &client(OpCode::Continue, true, c),
            &compressed(OpCode::Binary, true, &deflated(&[7; 300])),
            // An empty message: the sync flush's empty stored block less its tail, one 0x00.
            &compressed(OpCode::Text, true, &[0x00]),
        ]);
        check_deflate(
            1 << 20,
            &stream,
            &[
                text(&hello),
                text("plain"),
                Ok(Ping(b"p".to_vec())),
                text(&hello),
                Ok(Binary(vec![7; 300])),
                text(""),
            ],
        );
    }

    #[test]
    fn rsv1_rules_of_rfc_7692() {
        let body = deflated(b"x");
        check_deflate(
            1 << 20,
            &compressed(OpCode::Ping, true, &body),
            &[err(ProtocolError::CompressedControlFrame)],
        );
        check_deflate(
            1 << 20,
            &cat(&[
                &client(OpCode::Text, false, b"a"),
                &compressed(OpCode::Continue, true, &body),
            ]),
            &[err(ProtocolError::CompressedContinuation)],
        );
        // Without the extension RSV1 means nothing; RSV2 and RSV3 mean nothing with it.
        check_server(
            &compressed(OpCode::Text, true, &body),
            &[err(ProtocolError::ReservedBitsSet)],
        );
        let mut rsv2 = client(OpCode::Text, true, b"x");
        rsv2[0] |= 0x20;
        check_deflate(1 << 20, &rsv2, &[err(ProtocolError::ReservedBitsSet)]);
    }

    #[test]
    fn compression_bomb_is_refused_while_it_inflates() {
        // 64 KiB of zeros in well under 1 KiB, against a 16 KiB limit: whole and fragmented.
        let bomb = deflated(&[0; 64 * 1024]);
        assert!(bomb.len() < 1024, "{} bytes", bomb.len());
        let (a, b) = bomb.split_at(bomb.len() / 2);
        check_deflate(
            16 * 1024,
            &compressed(OpCode::Binary, true, &bomb),
            &[err(ProtocolError::MessageTooBig)],
        );
        check_deflate(
            16 * 1024,
            &cat(&[
                &compressed(OpCode::Text, false, a),
                &client(OpCode::Continue, true, b),
            ]),
            &[err(ProtocolError::MessageTooBig)],
        );
        // Exactly at the limit is fine.
        check_deflate(
            64 * 1024,
            &compressed(OpCode::Binary, true, &bomb),
            &[Ok(Binary(vec![0; 64 * 1024]))],
        );
    }

    #[test]
    fn bad_compressed_data_and_inflated_bad_utf8() {
        check_deflate(
            1 << 20,
            &compressed(OpCode::Binary, true, &[0xFF, 0xFF, 0xFF, 0xFF]),
            &[err(ProtocolError::InvalidCompressedData)],
        );
        check_deflate(
            1 << 20,
            &compressed(OpCode::Text, true, &deflated(b"ok \xC3\x28")),
            &[err(ProtocolError::InvalidUtf8)],
        );
    }

    fn msg_strategy() -> impl Strategy<Value = Msg> {
        let body = prop_oneof![
            any::<String>().prop_map(|s| (true, s.into_bytes())),
            proptest::collection::vec(any::<u8>(), 0..600).prop_map(|b| (false, b)),
        ];
        (
            body,
            proptest::collection::vec(any::<usize>(), 0..5),
            proptest::collection::vec(
                proptest::option::weighted(0.3, proptest::collection::vec(any::<u8>(), 0..=125)),
                6,
            ),
        )
            .prop_map(|((text, bytes), cuts, pings)| {
                let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
                cuts.sort_unstable();
                Msg {
                    text,
                    bytes,
                    cuts,
                    pings,
                }
            })
    }

    proptest! {
        #[test]
        fn round_trip_client_to_server(
            msgs in proptest::collection::vec(msg_strategy(), 0..6),
            key_seed in any::<u32>(),
            splits in proptest::collection::vec(any::<usize>(), 0..8),
            window in prop_oneof![Just(usize::MAX), 14usize..200],
        ) {
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            let mut key = key_seed;
            let mut next_key = || {
                key = key.wrapping_mul(0x9E37_79B9).wrapping_add(1);
                Some(key.to_be_bytes())
            };
            for m in &msgs {
                let mut bounds = vec![0];
                bounds.extend_from_slice(&m.cuts);
                bounds.push(m.bytes.len());
                let frames = bounds.len() - 1;
                for i in 0..frames {
                    let opcode = match (i, m.text) {
                        (0, true) => OpCode::Text,
                        (0, false) => OpCode::Binary,
                        _ => OpCode::Continue,
                    };
                    let fin = i + 1 == frames;
                    encode_frame(&mut stream, opcode, fin, &m.bytes[bounds[i]..bounds[i + 1]], next_key());
                    if !fin {
                        if let Some(Some(p)) = m.pings.get(i) {
                            encode_frame(&mut stream, OpCode::Ping, true, p, next_key());
                            expected.push(Ok(Ping(p.clone())));
                        }
                    }
                }
                expected.push(Ok(if m.text {
                    Text(String::from_utf8(m.bytes.clone()).expect("generated from a String"))
                } else {
                    Binary(m.bytes.clone())
                }));
            }
            encode_close(&mut stream, CloseCode::NORMAL, "done", next_key());
            expected.push(Ok(Close(Some((1000, "done".to_owned())))));

            let mut points: Vec<usize> = splits.iter().map(|s| s % (stream.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for p in points {
                chunks.push(&stream[prev..p]);
                prev = p;
            }
            chunks.push(&stream[prev..]);

            let got = drive(&mut Decoder::new(Role::Server, 1 << 20), &chunks, window);
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            chunk in 1usize..50,
            max in 0usize..300,
            server in any::<bool>(),
            window in prop_oneof![Just(usize::MAX), 1usize..20],
        ) {
            let role = if server { Role::Server } else { Role::Client };
            let chunks: Vec<&[u8]> = bytes.chunks(chunk).collect();
            let mut dec = Decoder::new(role, max);
            let _ = drive(&mut dec, &chunks, window);
            prop_assert!(dec.buffered() <= max + 125);
        }

        #[test]
        fn mutated_streams_never_panic(
            msgs in proptest::collection::vec(msg_strategy(), 1..4),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            chunk in 1usize..40,
        ) {
            let mut stream = Vec::new();
            for m in &msgs {
                let op = if m.text { OpCode::Text } else { OpCode::Binary };
                encode_frame(&mut stream, op, false, &m.bytes, Some(KEY));
                encode_frame(&mut stream, OpCode::Continue, true, b"", Some(KEY));
            }
            for (at, x) in flips {
                let len = stream.len();
                stream[at % len] ^= x;
            }
            let chunks: Vec<&[u8]> = stream.chunks(chunk).collect();
            let _ = drive(&mut Decoder::new(Role::Server, 512), &chunks, usize::MAX);
        }
    }
}
