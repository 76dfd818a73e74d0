//! Server-sent events (WHATWG HTML §9.2, `text/event-stream`): the server's
//! encoder, the MCP event id carried in `id:` / `Last-Event-ID`, and an
//! incremental decoder for the client role (load generator, tests).
//!
//! Data round trip: the encoder writes one `data:` line per line of the
//! payload, splitting on CRLF, LF and CR; the reader joins `data:` lines with
//! LF and drops exactly one trailing LF. So any payload comes back with its
//! line breaks normalised to LF — including a trailing one (`"x\n"` is sent as
//! `data: x` + `data: ` and decodes to `"x\n"`) — and nothing else changes.
//! A reader cannot tell CR or CRLF from LF, so no encoder can do better.

use std::fmt;

use super::{push_decimal, Status};

/// One event id of the MCP Streamable HTTP transport: stream number within
/// the session, then the event's sequence number within that stream.
///
/// MCP 2025-11-25, Resumability and Redelivery: "If present, the ID MUST be
/// globally unique across all streams within that session" and "Event IDs
/// SHOULD encode sufficient information to identify the originating stream,
/// enabling the server to correlate a `Last-Event-ID` to the correct stream."
/// Unique per session because `stream` is unique per session and `seq` per
/// stream. Sequence 0 is the stream's priming event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    /// The stream within the session.
    pub stream: u32,
    /// The event within the stream; 0 is the priming event.
    pub seq: u64,
}

/// Why a `Last-Event-ID` value is not an id this server could have sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastEventIdError {
    /// Not two runs of ASCII digits joined by one `-` (includes empty,
    /// signs, whitespace and extra parts).
    Malformed,
    /// A number with a leading zero (we never write one; `0` itself is fine).
    LeadingZero,
    /// A number too large for its field (u32 stream, u64 sequence).
    Overflow,
}

impl fmt::Display for LastEventIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LastEventIdError::Malformed => "Last-Event-ID is not <stream>-<seq>",
            LastEventIdError::LeadingZero => "Last-Event-ID has a number with a leading zero",
            LastEventIdError::Overflow => "Last-Event-ID has a number out of range",
        })
    }
}

impl std::error::Error for LastEventIdError {}

impl fmt::Display for EventId {
    /// `{stream}-{seq}`: visible ASCII only, so it is a valid `id:` value and
    /// a valid header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.stream, self.seq)
    }
}

impl EventId {
    /// Parses a `Last-Event-ID` value strictly: exactly the form `Display`
    /// writes, nothing else. The caller passes the header value with HTTP's
    /// optional whitespace already trimmed.
    pub fn parse(value: &str) -> Result<EventId, LastEventIdError> {
        let (stream, seq) = value.split_once('-').ok_or(LastEventIdError::Malformed)?;
        let stream =
            u32::try_from(parse_decimal(stream)?).map_err(|_| LastEventIdError::Overflow)?;
        Ok(EventId {
            stream,
            seq: parse_decimal(seq)?,
        })
    }
}

/// A canonical unsigned decimal: digits only, no leading zero unless it is
/// `0`, at most `u64::MAX`. Stops at the first bad byte, so cost is bounded
/// whatever the input length.
fn parse_decimal(s: &str) -> Result<u64, LastEventIdError> {
    match s.as_bytes() {
        [] => return Err(LastEventIdError::Malformed),
        [b'0'] => return Ok(0),
        [b'0', ..] => return Err(LastEventIdError::LeadingZero),
        _ => {}
    }
    let mut n: u64 = 0;
    for &b in s.as_bytes() {
        if !b.is_ascii_digit() {
            return Err(LastEventIdError::Malformed);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(LastEventIdError::Overflow)?;
    }
    Ok(n)
}

// ---------------------------------------------------------------- encoder

/// Appends one event: optional `event:` and `id:` lines, one `data:` line per
/// line of `data`, then the blank line that dispatches it.
///
/// `data` should be UTF-8 ("Event streams in this format must always be
/// encoded as UTF-8"); its line breaks (CRLF, LF, CR) become line boundaries
/// and decode as LF, a trailing one included. Empty `data` still writes one
/// `data:` line, so the event is dispatched with empty data. CR and LF in
/// `event` are dropped: a name cannot span lines. An empty `event` is not
/// written (it means "message" anyway). Without `id` the client keeps the
/// previous last event id.
pub fn write_event(out: &mut Vec<u8>, id: Option<EventId>, event: Option<&str>, data: &[u8]) {
    if let Some(name) = event.filter(|name| !name.is_empty()) {
        out.extend_from_slice(b"event: ");
        push_single_line(out, name.as_bytes());
        out.push(b'\n');
    }
    if let Some(id) = id {
        push_id(out, id);
    }
    // "The stream must then be parsed by reading everything line by line,
    // with a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF) character pair, a
    // single U+000A LINE FEED (LF) character not preceded by a U+000D
    // CARRIAGE RETURN (CR) character, and a single U+000D CARRIAGE RETURN (CR)
    // character not followed by a U+000A LINE FEED (LF) character being the
    // ways in which a line can end." So every one of them must start a new
    // `data:` line here, or the reader would end the event's line early.
    let mut rest = data;
    loop {
        // Always "data: ": the reader strips one space after the colon, so a
        // line that itself starts with a space survives.
        out.extend_from_slice(b"data: ");
        let Some(end) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
            out.extend_from_slice(rest);
            out.push(b'\n');
            break;
        };
        out.extend_from_slice(&rest[..end]);
        out.push(b'\n');
        let brk = if rest[end..].starts_with(b"\r\n") {
            2
        } else {
            1
        };
        // A break at the very end leaves `rest` empty: one more, empty,
        // `data:` line, which is how a trailing line break survives.
        rest = &rest[end + brk..];
    }
    out.push(b'\n');
}

/// Appends the SEP-1699 priming event: `id:`, `retry:` and an empty `data:`
/// line, dispatched.
///
/// MCP 2025-11-25: "The server SHOULD immediately send an SSE event
/// consisting of an event ID and an empty `data` field in order to prime the
/// client to reconnect (using that event ID as `Last-Event-ID`)." The empty
/// `data:` line matters: the reader's data buffer becomes "\n", so the event
/// is dispatched (with empty data) and the id becomes the last event id.
pub fn write_priming(out: &mut Vec<u8>, id: EventId, retry_ms: u64) {
    push_id(out, id);
    push_retry_line(out, retry_ms);
    out.extend_from_slice(b"data: \n\n");
}

/// Appends a `retry:` block (no data, so nothing is dispatched; the blank
/// line keeps it from merging into the next event).
///
/// MCP 2025-11-25: "If the server does close the connection prior to
/// terminating the SSE stream, it SHOULD send an SSE event with a standard
/// `retry` field before closing the connection."
pub fn write_retry(out: &mut Vec<u8>, ms: u64) {
    push_retry_line(out, ms);
    out.push(b'\n');
}

/// Appends a comment line (`:` then `text`), e.g. a keep-alive. CR and LF in
/// `text` are dropped: "If the line starts with a U+003A COLON character (:)
/// Ignore the line." — only while it stays one line.
pub fn write_comment(out: &mut Vec<u8>, text: &str) {
    out.push(b':');
    push_single_line(out, text.as_bytes());
    out.push(b'\n');
}

fn push_id(out: &mut Vec<u8>, id: EventId) {
    out.extend_from_slice(b"id: ");
    push_decimal(out, u64::from(id.stream));
    out.push(b'-');
    push_decimal(out, id.seq);
    out.push(b'\n');
}

fn push_retry_line(out: &mut Vec<u8>, ms: u64) {
    out.extend_from_slice(b"retry: ");
    push_decimal(out, ms);
    out.push(b'\n');
}

fn push_single_line(out: &mut Vec<u8>, text: &[u8]) {
    out.extend(text.iter().filter(|&&b| b != b'\r' && b != b'\n'));
}

// ---------------------------------------------------------------- decoder

/// One dispatched event, as an `EventSource` would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The last event id at dispatch (it persists across events), `None`
    /// while it is the empty string.
    pub id: Option<String>,
    /// The event type, `None` for the default ("message").
    pub event: Option<String>,
    /// The `data:` lines joined with LF (invalid UTF-8 replaced by U+FFFD).
    pub data: String,
    /// A reconnection time (ms) set by a `retry:` field since the previous
    /// dispatched event, if any.
    pub retry: Option<u64>,
}

/// Why the decoder gave up on a stream. Fatal: every later call returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    /// A line, or an event's data, grew past the configured limit.
    EventTooLarge {
        /// The limit given to [`SseDecoder::new`], in bytes.
        limit: usize,
    },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::EventTooLarge { limit } => {
                write!(f, "SSE event larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for SseError {}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Incremental `text/event-stream` decoder for one connection.
///
/// Partial semantics: the decoder keeps partial lines and the event being
/// built internally, so every byte passed in is used exactly once and the
/// caller keeps no buffer. `Complete(event, n)` means `input[..n]` was used
/// (up to and including the blank line that dispatched `event`); pass
/// `input[n..]` next. `Partial` means all of `input` was absorbed and no
/// event is complete yet. Comment lines are skipped without buffering, so
/// keep-alives cost no memory.
///
/// Memory is bounded by `max_event_bytes`: a longer line, or an event whose
/// data (lines joined with LF) would be longer, is [`SseError::EventTooLarge`].
/// End of stream needs no call: "Once the end of the file is reached, any
/// pending data must be discarded." — just drop the decoder.
#[derive(Debug)]
pub struct SseDecoder {
    limit: usize,
    failed: Option<SseError>,
    /// At the stream's very start: how many bytes of a BOM were seen so far.
    stream_start: Option<usize>,
    /// The previous line ended with CR; an LF right after it belongs to it.
    after_cr: bool,
    /// Skipping the rest of a comment line.
    in_comment: bool,
    line: Vec<u8>,
    data: Vec<u8>,
    event_type: String,
    last_event_id: String,
    retry_since_dispatch: Option<u64>,
    reconnection_time: Option<u64>,
}

impl SseDecoder {
    /// A decoder for a new stream holding at most `max_event_bytes` per line
    /// and per event's data.
    pub fn new(max_event_bytes: usize) -> SseDecoder {
        SseDecoder {
            limit: max_event_bytes,
            failed: None,
            stream_start: Some(0),
            after_cr: false,
            in_comment: false,
            line: Vec::new(),
            data: Vec::new(),
            event_type: String::new(),
            last_event_id: String::new(),
            retry_since_dispatch: None,
            reconnection_time: None,
        }
    }

    /// The last event id seen so far (what a reconnect sends as
    /// `Last-Event-ID`), `None` while empty.
    pub fn last_event_id(&self) -> Option<&str> {
        Some(self.last_event_id.as_str()).filter(|id| !id.is_empty())
    }

    /// The stream's reconnection time in ms, once a valid `retry:` arrived.
    pub fn reconnection_time(&self) -> Option<u64> {
        self.reconnection_time
    }

    /// Feeds bytes; see the type's docs for what `Complete` and `Partial`
    /// consume.
    pub fn decode(&mut self, input: &[u8]) -> Result<Status<SseEvent>, SseError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let result = self.decode_inner(input);
        if let Err(err) = result {
            self.failed = Some(err);
        }
        result
    }

    fn decode_inner(&mut self, input: &[u8]) -> Result<Status<SseEvent>, SseError> {
        let mut pos = 0;
        while pos < input.len() {
            if self.after_cr {
                self.after_cr = false;
                // CRLF is one line ending, even when split across reads.
                if input.get(pos) == Some(&b'\n') {
                    pos += 1;
                    continue;
                }
            }
            let rest = input.get(pos..).unwrap_or_default();
            let Some(end) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
                self.absorb(rest)?;
                return Ok(Status::Partial);
            };
            self.absorb(&rest[..end])?;
            self.after_cr = rest[end] == b'\r';
            pos += end + 1;
            if let Some(event) = self.end_line()? {
                return Ok(Status::Complete(event, pos));
            }
        }
        Ok(Status::Partial)
    }

    /// Adds bytes of the current (unterminated) line.
    fn absorb(&mut self, mut bytes: &[u8]) -> Result<(), SseError> {
        // "One leading U+FEFF BYTE ORDER MARK character must be ignored if
        // any are present." Matched byte by byte, as it may arrive split.
        while let Some(seen) = self.stream_start {
            let Some((&b, rest)) = bytes.split_first() else {
                return Ok(());
            };
            if BOM.get(seen) == Some(&b) {
                bytes = rest;
                self.stream_start = (seen + 1 < BOM.len()).then_some(seen + 1);
            } else {
                self.leave_stream_start()?;
            }
        }
        if bytes.is_empty() || self.in_comment {
            return Ok(());
        }
        // "If the line starts with a U+003A COLON character (:) Ignore the
        // line." Known from its first byte, so it is never buffered.
        if self.line.is_empty() && bytes[0] == b':' {
            self.in_comment = true;
            return Ok(());
        }
        self.push_line(bytes)
    }

    /// The stream's first line has begun without a whole BOM: the part that
    /// looked like one is ordinary line content.
    fn leave_stream_start(&mut self) -> Result<(), SseError> {
        if let Some(seen) = self.stream_start.take() {
            self.push_line(BOM.get(..seen).unwrap_or_default())?;
        }
        Ok(())
    }

    fn push_line(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > self.limit {
            return Err(SseError::EventTooLarge { limit: self.limit });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Interprets the line just ended; returns an event if it dispatched one.
    fn end_line(&mut self) -> Result<Option<SseEvent>, SseError> {
        self.leave_stream_start()?;
        if self.in_comment {
            self.in_comment = false;
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.line);
        let result = match line.as_slice() {
            // "If the line is empty (a blank line) Dispatch the event"
            [] => Ok(self.dispatch()),
            // (Comment lines never get here: `absorb` skips them.)
            _ => {
                // "Collect the characters on the line before the first U+003A
                // COLON character (:), and let field be that string. Collect
                // the characters on the line after the first U+003A COLON
                // character (:), and let value be that string. If value
                // starts with a U+0020 SPACE character, remove it from
                // value." / "Otherwise, the string is not empty but does not
                // contain a U+003A COLON character (:) [...] using the whole
                // line as the field name, and the empty string as the field
                // value."
                let (name, value) = match line.iter().position(|&b| b == b':') {
                    Some(colon) => {
                        let value = &line[colon + 1..];
                        (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                    }
                    None => (line.as_slice(), &[][..]),
                };
                self.field(name, value).map(|()| None)
            }
        };
        line.clear();
        self.line = line;
        result
    }

    fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), SseError> {
        match name {
            // "If the field name is "event" Set the event type buffer to
            // field value."
            b"event" => self.event_type = String::from_utf8_lossy(value).into_owned(),
            // "If the field name is "data" Append the field value to the data
            // buffer, then append a single U+000A LINE FEED (LF) character to
            // the data buffer."
            b"data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    return Err(SseError::EventTooLarge { limit: self.limit });
                }
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            // "If the field name is "id" If the field value does not contain
            // U+0000 NULL, then set the last event ID buffer to the field
            // value. Otherwise, ignore the field."
            b"id" if !value.contains(&0) => {
                self.last_event_id = String::from_utf8_lossy(value).into_owned();
            }
            // "If the field name is "retry" If the field value consists of
            // only ASCII digits, then interpret the field value as an integer
            // in base ten, and set the event stream's reconnection time to
            // that integer. Otherwise, ignore the field." (An empty value or
            // one past u64::MAX is ignored too.)
            b"retry" => {
                if let Some(ms) = parse_retry(value) {
                    self.reconnection_time = Some(ms);
                    self.retry_since_dispatch = Some(ms);
                }
            }
            // "Otherwise The field is ignored." (So is an `id` with a NULL.)
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        // "Set the last event ID string of the event source to the value of
        // the last event ID buffer. The buffer does not get reset" — so
        // `last_event_id` is left alone and copied into the event below.
        //
        // "If the data buffer is an empty string, set the data buffer and the
        // event type buffer to the empty string and return."
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        // "If the data buffer's last character is a U+000A LINE FEED (LF)
        // character, then remove the last character from the data buffer."
        if self.data.last() == Some(&b'\n') {
            self.data.pop();
        }
        let data = std::mem::take(&mut self.data);
        let data = String::from_utf8(data)
            .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned());
        // "If the event type buffer has a value other than the empty string,
        // change the type of the newly created event to equal the value of
        // the event type buffer." / "Set the data buffer and the event type
        // buffer to the empty string."
        let event = Some(std::mem::take(&mut self.event_type)).filter(|t| !t.is_empty());
        Some(SseEvent {
            id: self.last_event_id().map(str::to_owned),
            event,
            data,
            retry: self.retry_since_dispatch.take(),
        })
    }
}

fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::at_every_split;
    use proptest::prelude::*;

    const LIMIT: usize = 1 << 16;

    /// Feeds `chunks` in order, collecting every event; stops at an error.
    fn decode_chunks(dec: &mut SseDecoder, chunks: &[&[u8]]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        for chunk in chunks {
            let mut rest: &[u8] = chunk;
            while let Status::Complete(event, used) = dec.decode(rest)? {
                assert!(
                    used > 0 && used <= rest.len(),
                    "used {used} of {}",
                    rest.len()
                );
                events.push(event);
                rest = &rest[used..];
            }
        }
        Ok(events)
    }

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        decode_chunks(&mut SseDecoder::new(LIMIT), chunks).expect("within limit")
    }

    fn ev(id: Option<&str>, event: Option<&str>, data: &str, retry: Option<u64>) -> SseEvent {
        SseEvent {
            id: id.map(str::to_owned),
            event: event.map(str::to_owned),
            data: data.to_owned(),
            retry,
        }
    }

    /// Decodes `input` at every split and checks the events each time.
    fn check(input: &[u8], expected: &[SseEvent]) {
        at_every_split(input, |chunks| {
            assert_eq!(decode_all(chunks), expected, "chunks {chunks:?}");
        });
    }

    #[test]
    fn simple_and_multiline_data() {
        check(
            b"data: one\n\ndata: two\ndata:  three\n\n",
            &[
                ev(None, None, "one", None),
                ev(None, None, "two\n three", None),
            ],
        );
    }

    #[test]
    fn all_three_line_endings() {
        check(
            b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r",
            &[ev(None, None, "a\nb\nc", None), ev(None, None, "d", None)],
        );
    }

    #[test]
    fn cr_cr_lf_lf_is_three_line_endings() {
        // "\r\r\n\n": CR, CRLF, LF — the second ending dispatches, the third
        // is a blank line with nothing to dispatch.
        check(
            b"data: x\r\r\n\ndata: y\n\n",
            &[ev(None, None, "x", None), ev(None, None, "y", None)],
        );
    }

    #[test]
    fn event_ending_in_cr_is_dispatched_without_waiting() {
        let mut dec = SseDecoder::new(LIMIT);
        let status = dec.decode(b"data: x\r\r").expect("ok");
        assert_eq!(status, Status::Complete(ev(None, None, "x", None), 9));
        // The LF that may follow belongs to the CR already seen.
        assert_eq!(dec.decode(b"\n").expect("ok"), Status::Partial);
        let status = dec.decode(b"data: y\n\n").expect("ok");
        assert_eq!(status, Status::Complete(ev(None, None, "y", None), 9));
    }

    #[test]
    fn complete_reports_bytes_used() {
        let mut dec = SseDecoder::new(LIMIT);
        let input = b"data: a\n\ndata: b\n\ndata: c";
        let Status::Complete(first, used) = dec.decode(input).expect("ok") else {
            panic!("expected an event");
        };
        assert_eq!((first.data.as_str(), used), ("a", 9));
        let Status::Complete(second, used2) = dec.decode(&input[used..]).expect("ok") else {
            panic!("expected an event");
        };
        assert_eq!((second.data.as_str(), used2), ("b", 9));
        assert_eq!(dec.decode(&input[used + used2..]), Ok(Status::Partial));
        assert_eq!(
            dec.decode(b"\n\n"),
            Ok(Status::Complete(ev(None, None, "c", None), 2))
        );
    }

    #[test]
    fn leading_bom_is_ignored_once() {
        check(b"\xEF\xBB\xBFdata: x\n\n", &[ev(None, None, "x", None)]);
        check(
            b"\xEF\xBB\xBF: hi\ndata: x\n\n",
            &[ev(None, None, "x", None)],
        );
        // A second BOM is part of the first line's field name: unknown field.
        check(
            b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n",
            &[ev(None, None, "y", None)],
        );
        // A BOM later in the stream is ordinary data.
        check(
            b"data: x\n\n\xEF\xBB\xBFdata: y\n\n",
            &[ev(None, None, "x", None)],
        );
        check(
            b"data: \xEF\xBB\xBF\n\n",
            &[ev(None, None, "\u{FEFF}", None)],
        );
        // Part of a BOM is not one: it stays in the first line (here making
        // an unknown field name).
        check(b"\xEF\xBB: x\ndata: y\n\n", &[ev(None, None, "y", None)]);
        check(b"\xEFdata: x\n\ndata: y\n\n", &[ev(None, None, "y", None)]);
        check(b"\xEF\xBB\ndata: y\n\n", &[ev(None, None, "y", None)]);
        check(b"\xEF\xBB\xBF\ndata: y\n\n", &[ev(None, None, "y", None)]);
    }

    #[test]
    fn comments_are_skipped() {
        check(
            b": keep-alive\n:\ndata: a\n: inside\ndata: b\n\n:\n\n",
            &[ev(None, None, "a\nb", None)],
        );
    }

    #[test]
    fn field_parsing_rules() {
        check(
            // no colon: whole line is the name, value empty; only one space
            // stripped; unknown fields ignored; "data :" is not "data".
            b"data\ndata\nfoo: bar\ndata :x\ndata:x y: z\n\n",
            &[ev(None, None, "\n\nx y: z", None)],
        );
    }

    #[test]
    fn empty_data_line_dispatches_empty_event() {
        check(b"data:\n\n", &[ev(None, None, "", None)]);
        check(b"data\n\n", &[ev(None, None, "", None)]);
        check(b"data\ndata\n\n", &[ev(None, None, "\n", None)]);
    }

    #[test]
    fn block_without_data_dispatches_nothing_but_sets_id_and_retry() {
        at_every_split(b"id: 7-3\nretry: 250\nevent: x\n\ndata: d\n\n", |chunks| {
            let mut dec = SseDecoder::new(LIMIT);
            let events = decode_chunks(&mut dec, chunks).expect("ok");
            // event type was reset by the data-less dispatch.
            assert_eq!(events, [ev(Some("7-3"), None, "d", Some(250))]);
            assert_eq!(dec.last_event_id(), Some("7-3"));
            assert_eq!(dec.reconnection_time(), Some(250));
        });
    }

    #[test]
    fn last_event_id_persists_resets_and_ignores_nul() {
        check(
            b"id: 1\ndata: a\n\ndata: b\n\nid: 2\0\ndata: c\n\nid\ndata: d\n\nid: 3\ndata: e\n\nid:\ndata: f\n\n",
            &[
                ev(Some("1"), None, "a", None),
                ev(Some("1"), None, "b", None),
                ev(Some("1"), None, "c", None),
                ev(None, None, "d", None),
                ev(Some("3"), None, "e", None),
                ev(None, None, "f", None),
            ],
        );
    }

    #[test]
    fn event_type_applies_to_one_event() {
        check(
            b"event: add\ndata: 1\n\ndata: 2\n\nevent:\ndata: 3\n\n",
            &[
                ev(None, Some("add"), "1", None),
                ev(None, None, "2", None),
                ev(None, None, "3", None),
            ],
        );
    }

    #[test]
    fn retry_rules() {
        at_every_split(
            b"retry: 10000\ndata: a\n\nretry: one thousand\nretry: -1\nretry:\nretry: 99999999999999999999\ndata: b\n\nretry: 5\ndata: c\n\n",
            |chunks| {
                let mut dec = SseDecoder::new(LIMIT);
                let events = decode_chunks(&mut dec, chunks).expect("ok");
                assert_eq!(
                    events,
                    [
                        ev(None, None, "a", Some(10000)),
                        ev(None, None, "b", None),
                        ev(None, None, "c", Some(5)),
                    ]
                );
                assert_eq!(dec.reconnection_time(), Some(5));
            },
        );
    }

    #[test]
    fn unterminated_event_is_not_dispatched() {
        check(b"data: a\n\ndata: b\n", &[ev(None, None, "a", None)]);
        check(b"data: a\n\ndata: b", &[ev(None, None, "a", None)]);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_char() {
        check(
            b"event: \xFF\ndata: a\xC3\ndata: \xE2\x82\n\n",
            &[ev(None, Some("\u{FFFD}"), "a\u{FFFD}\n\u{FFFD}", None)],
        );
    }

    #[test]
    fn whatwg_example_stream() {
        // The annotated example from the spec's interpretation section.
        check(
            b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
            &[
                ev(Some("1"), None, "first event", None),
                ev(None, None, "second event", None),
            ],
        );
    }

    #[test]
    fn priming_event_decodes_as_empty_event_with_id() {
        let mut out = Vec::new();
        write_priming(&mut out, EventId { stream: 3, seq: 0 }, 1500);
        assert_eq!(out, b"id: 3-0\nretry: 1500\ndata: \n\n");
        check(&out, &[ev(Some("3-0"), None, "", Some(1500))]);
    }

    #[test]
    fn line_longer_than_limit_is_an_error() {
        at_every_split(b"data: 0123456789\n\n", |chunks| {
            let mut dec = SseDecoder::new(10);
            assert_eq!(
                decode_chunks(&mut dec, chunks),
                Err(SseError::EventTooLarge { limit: 10 })
            );
            // Sticky.
            assert_eq!(
                dec.decode(b"\n"),
                Err(SseError::EventTooLarge { limit: 10 })
            );
        });
    }

    #[test]
    fn data_larger_than_limit_is_an_error() {
        // Each line fits in 10 bytes, the joined data does not.
        at_every_split(b"data: 1234\ndata: 1234\ndata: 12\n\n", |chunks| {
            let mut dec = SseDecoder::new(10);
            assert_eq!(
                decode_chunks(&mut dec, chunks),
                Err(SseError::EventTooLarge { limit: 10 })
            );
        });
        // Exactly at the limit: "1234\n1234" + one pending LF = 10 bytes.
        at_every_split(b"data:1234\ndata:1234\n\n", |chunks| {
            let mut dec = SseDecoder::new(10);
            assert_eq!(
                decode_chunks(&mut dec, chunks),
                Ok(vec![ev(None, None, "1234\n1234", None)])
            );
        });
    }

    #[test]
    fn long_comments_cost_nothing() {
        // Including the 2 KiB padding comment some servers open with, after
        // a BOM.
        let mut input = b"\xEF\xBB\xBF:".to_vec();
        input.extend(std::iter::repeat_n(b' ', 2048));
        input.extend_from_slice(b"\ndata: ok\n: ");
        input.extend(std::iter::repeat_n(b'x', 1000));
        input.extend_from_slice(b"\n\n");
        at_every_split(&input, |chunks| {
            let mut dec = SseDecoder::new(16);
            assert_eq!(
                decode_chunks(&mut dec, chunks),
                Ok(vec![ev(None, None, "ok", None)])
            );
            assert!(dec.line.capacity() <= 16);
        });
    }

    // ------------------------------------------------------------ encoder

    #[test]
    fn encoder_exact_bytes() {
        let mut out = Vec::new();
        write_event(
            &mut out,
            Some(EventId { stream: 1, seq: 2 }),
            Some("message"),
            b"a\nb",
        );
        write_event(&mut out, None, None, b"");
        write_event(&mut out, None, Some(""), b"x\r\ny\rz\n");
        write_retry(&mut out, 3000);
        write_comment(&mut out, " ping");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "event: message\nid: 1-2\ndata: a\ndata: b\n\n\
             data: \n\n\
             data: x\ndata: y\ndata: z\ndata: \n\n\
             retry: 3000\n\n\
             : ping\n"
        );
    }

    #[test]
    fn encoder_drops_line_breaks_from_names_and_comments() {
        let mut out = Vec::new();
        write_event(&mut out, None, Some("a\r\nb"), b"1");
        write_comment(&mut out, "x\ndata: injected\r");
        write_event(&mut out, None, None, b"2");
        assert_eq!(out, b"event: ab\ndata: 1\n\n:xdata: injected\ndata: 2\n\n");
        check(
            &out,
            &[ev(None, Some("ab"), "1", None), ev(None, None, "2", None)],
        );
    }

    #[test]
    fn trailing_and_leading_line_breaks_round_trip_as_lf() {
        for (data, expected) in [
            ("x\n", "x\n"),
            ("x\r\n", "x\n"),
            ("x\r", "x\n"),
            ("\n", "\n"),
            ("\r\n\r\n", "\n\n"),
            ("\n\rx", "\n\nx"),
            (" lead", " lead"),
            ("", ""),
        ] {
            let mut out = Vec::new();
            write_event(&mut out, None, None, data.as_bytes());
            check(&out, &[ev(None, None, expected, None)]);
        }
    }

    // ------------------------------------------------------------ EventId

    #[test]
    fn event_id_format_and_parse() {
        for (id, text) in [
            (EventId { stream: 0, seq: 0 }, "0-0"),
            (
                EventId {
                    stream: 12,
                    seq: 345,
                },
                "12-345",
            ),
            (
                EventId {
                    stream: u32::MAX,
                    seq: u64::MAX,
                },
                "4294967295-18446744073709551615",
            ),
        ] {
            assert_eq!(id.to_string(), text);
            assert_eq!(EventId::parse(text), Ok(id));
        }
    }

    #[test]
    fn event_id_rejections() {
        use LastEventIdError::*;
        for (text, err) in [
            ("", Malformed),
            ("-", Malformed),
            ("1-", Malformed),
            ("-1", Malformed),
            ("1", Malformed),
            ("1-2-3", Malformed),
            ("a-b", Malformed),
            ("1-b", Malformed),
            ("+1-2", Malformed),
            ("1-+2", Malformed),
            ("1--2", Malformed),
            (" 1-2", Malformed),
            ("1-2 ", Malformed),
            ("1 -2", Malformed),
            ("1-2\n", Malformed),
            ("1_2", Malformed),
            ("１-2", Malformed),
            ("01-2", LeadingZero),
            ("1-02", LeadingZero),
            ("00-0", LeadingZero),
            ("4294967296-0", Overflow),
            ("0-18446744073709551616", Overflow),
            ("0-99999999999999999999999", Overflow),
        ] {
            assert_eq!(EventId::parse(text), Err(err), "{text:?}");
        }
    }

    // ------------------------------------------------------------ properties

    #[derive(Debug, Clone)]
    enum Item {
        Event {
            id: Option<EventId>,
            event: Option<String>,
            data: String,
        },
        Priming(EventId, u64),
        Retry(u64),
        Comment(String),
    }

    fn event_id() -> impl Strategy<Value = EventId> {
        (any::<u32>(), any::<u64>()).prop_map(|(stream, seq)| EventId { stream, seq })
    }

    fn item() -> impl Strategy<Value = Item> {
        // Lines of unicode text joined by every kind of line break, empty
        // lines and a trailing break included.
        let line = "[ -~é€😀\u{FEFF}:]{0,6}";
        let brk = prop_oneof![Just("\n"), Just("\r"), Just("\r\n")];
        let data =
            (proptest::collection::vec((line, brk), 0..5), line).prop_map(|(parts, tail)| {
                let mut data = String::new();
                for (line, brk) in parts {
                    data.push_str(&line);
                    data.push_str(brk);
                }
                data.push_str(&tail);
                data
            });
        prop_oneof![
            6 => (proptest::option::of(event_id()), proptest::option::of("[ -~é]{0,8}"), data)
                .prop_map(|(id, event, data)| Item::Event { id, event, data }),
            1 => (event_id(), any::<u64>()).prop_map(|(id, ms)| Item::Priming(id, ms)),
            1 => any::<u64>().prop_map(Item::Retry),
            1 => "[ -~\r\n]{0,10}".prop_map(Item::Comment),
        ]
    }

    /// What a reader must report for `items`, following the spec's rules.
    fn expected(items: &[Item]) -> Vec<SseEvent> {
        let mut last_id: Option<String> = None;
        let mut retry = None;
        let mut events = Vec::new();
        for item in items {
            match item {
                Item::Event { id, event, data } => {
                    if let Some(id) = id {
                        last_id = Some(id.to_string());
                    }
                    events.push(SseEvent {
                        id: last_id.clone(),
                        event: event.clone().filter(|e| !e.is_empty()),
                        data: data.replace("\r\n", "\n").replace('\r', "\n"),
                        retry: retry.take(),
                    });
                }
                Item::Priming(id, ms) => {
                    last_id = Some(id.to_string());
                    events.push(SseEvent {
                        id: last_id.clone(),
                        event: None,
                        data: String::new(),
                        retry: Some(*ms),
                    });
                    retry = None;
                }
                Item::Retry(ms) => retry = Some(*ms),
                Item::Comment(_) => {}
            }
        }
        events
    }

    fn encode(items: &[Item]) -> Vec<u8> {
        let mut out = Vec::new();
        for item in items {
            match item {
                Item::Event { id, event, data } => {
                    write_event(&mut out, *id, event.as_deref(), data.as_bytes())
                }
                Item::Priming(id, ms) => write_priming(&mut out, *id, *ms),
                Item::Retry(ms) => write_retry(&mut out, *ms),
                Item::Comment(text) => write_comment(&mut out, text),
            }
        }
        out
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            items in proptest::collection::vec(item(), 0..6),
            bom in any::<bool>(),
        ) {
            let mut wire = if bom { BOM.to_vec() } else { Vec::new() };
            wire.extend(encode(&items));
            let want = expected(&items);
            at_every_split(&wire, |chunks| {
                assert_eq!(decode_all(chunks), want, "wire {:?}", String::from_utf8_lossy(&wire));
            });
        }

        #[test]
        fn event_id_round_trip(id in event_id()) {
            prop_assert_eq!(EventId::parse(&id.to_string()), Ok(id));
        }

        #[test]
        fn event_id_parse_never_panics_and_only_accepts_canonical(text in "[0-9a\\- +]{0,25}|\\PC{0,25}") {
            if let Ok(id) = EventId::parse(&text) {
                prop_assert_eq!(id.to_string(), text);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    proptest::sample::select(b":\r\n \0\xEF\xBB\xBFdataideventretry0123456789".to_vec()),
                ],
                0..400,
            ),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
            limit in 0usize..64,
        ) {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut start = 0;
            for cut in cuts {
                chunks.push(&bytes[start..cut]);
                start = cut;
            }
            chunks.push(&bytes[start..]);
            let mut dec = SseDecoder::new(limit);
            if let Ok(events) = decode_chunks(&mut dec, &chunks) {
                for event in events {
                    // Replacement chars are 3 bytes, but one per input byte.
                    prop_assert!(event.data.chars().count() < limit.max(1));
                }
            }
            // The same bytes whole must give the same outcome.
            let whole = decode_chunks(&mut SseDecoder::new(limit), &[&bytes]);
            let split = decode_chunks(&mut SseDecoder::new(limit), &chunks);
            prop_assert_eq!(whole, split);
        }
    }
}
