//! HTTP/1.1 (RFC 9112) in both roles, parsed with httparse: request heads, request body
//! framing and response writing for the server; request writing, response heads and
//! response body framing for the client. Sans-IO: bytes in, decisions out.

use super::authority::{Authority, AuthorityError, Host};
use super::{date, hex, push_decimal, Status};
use std::fmt;
use std::ops::Range;

/// The most header lines a head may carry, whatever the configured limit says:
/// httparse needs a fixed array to parse into, and it lives on the stack.
pub const HEADER_SLOTS: usize = 128;

/// Size limits applied while parsing a message (`max_uri_bytes` applies to requests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes from the start of the request line to the blank line that ends the head.
    pub max_head_bytes: usize,
    /// Header lines (clamped to [`HEADER_SLOTS`]).
    pub max_headers: usize,
    /// Bytes of the request-target.
    pub max_uri_bytes: usize,
    /// Bytes of the request body (after chunked decoding).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Request methods the server routes on; anything else is kept as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Other,
}

impl Method {
    /// The method a request starts with, read even from a head too broken to parse: the
    /// answer to a broken HEAD request must still carry no content.
    pub fn of_request(buf: &[u8]) -> Method {
        // RFC 9112 §2.2: "a server that is expecting to receive and parse a request-line SHOULD
        // ignore at least one empty line (CRLF) received prior to the request-line."
        let start = buf.iter().position(|&b| !matches!(b, b'\r' | b'\n'));
        let line = start.map_or(&[][..], |start| &buf[start..]);
        let token = line.split(|&b| b == b' ').next().unwrap_or(&[]);
        std::str::from_utf8(token).map_or(Method::Other, Method::from_token)
    }

    fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// One broken rule of HTTP/1.1 request parsing; [`HttpError::status`] maps it to the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// The head grew past `max_head_bytes` before its end was seen.
    HeadTooLarge,
    /// More header lines than `max_headers`.
    TooManyHeaders,
    /// The request-target is longer than `max_uri_bytes`.
    UriTooLong,
    /// The declared or decoded body is longer than `max_body_bytes`.
    BodyTooLarge,
    /// httparse rejected the syntax of the head.
    Malformed(httparse::Error),
    /// HTTP/1.1 request without a Host header, or a request with more than one.
    BadHost,
    /// A Host header whose value is not `host [":" port]`.
    InvalidHost(AuthorityError),
    /// An absolute-form request-target whose authority is invalid or has an empty host.
    BadTargetAuthority,
    /// Content-Length that is not a number, or several that disagree.
    BadContentLength,
    /// Both Transfer-Encoding and Content-Length.
    AmbiguousFraming,
    /// Transfer-Encoding in an HTTP/1.0 request.
    TransferEncodingInHttp10,
    /// Transfer-Encoding whose final coding is not `chunked`.
    ChunkedNotFinal,
    /// `chunked` applied more than once.
    ChunkedTwice,
    /// A transfer coding other than `chunked` before the final `chunked`.
    UnsupportedTransferCoding,
    /// A chunked body whose framing is broken.
    BadChunk,
}

impl HttpError {
    /// The one place a parse error becomes an HTTP status.
    pub fn status(self) -> u16 {
        match self {
            HttpError::HeadTooLarge | HttpError::TooManyHeaders => 431,
            HttpError::UriTooLong => 414,
            HttpError::BodyTooLarge => 413,
            HttpError::UnsupportedTransferCoding => 501,
            HttpError::Malformed(_)
            | HttpError::BadHost
            | HttpError::InvalidHost(_)
            | HttpError::BadTargetAuthority
            | HttpError::BadContentLength
            | HttpError::AmbiguousFraming
            | HttpError::TransferEncodingInHttp10
            | HttpError::ChunkedNotFinal
            | HttpError::ChunkedTwice
            | HttpError::BadChunk => 400,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            HttpError::HeadTooLarge => "request header section too large",
            HttpError::TooManyHeaders => "too many header fields",
            HttpError::UriTooLong => "request-target too long",
            HttpError::BodyTooLarge => "request body too large",
            HttpError::Malformed(e) => return write!(f, "malformed request: {e}"),
            HttpError::BadHost => "missing or repeated Host header",
            HttpError::InvalidHost(e) => return write!(f, "invalid Host header: {e}"),
            HttpError::BadTargetAuthority => "invalid authority in the request-target",
            HttpError::BadContentLength => "invalid Content-Length",
            HttpError::AmbiguousFraming => "both Transfer-Encoding and Content-Length",
            HttpError::TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            HttpError::ChunkedNotFinal => "chunked is not the final transfer coding",
            HttpError::ChunkedTwice => "chunked applied more than once",
            HttpError::UnsupportedTransferCoding => "unsupported transfer coding",
            HttpError::BadChunk => "malformed chunked body",
        };
        f.write_str(text)
    }
}

impl std::error::Error for HttpError {}

/// Where the parts of an absolute-form request-target are in the head.
struct AbsoluteForm {
    authority: Range<u32>,
    path_and_query: Range<u32>,
}

/// A header that may appear at most once was sent more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepeatedHeader;

/// A head's bytes and where its field lines are in them: what a request head and a response
/// head both keep, so it can outlive the read buffer.
#[derive(Debug, Clone)]
pub struct HeaderFields {
    raw: Box<[u8]>,
    lines: Vec<(Range<u32>, Range<u32>)>,
}

impl HeaderFields {
    /// Copies the head `buf[..head_len]` that httparse parsed into `lines`.
    fn new(buf: &[u8], head_len: usize, lines: &[httparse::Header<'_>]) -> HeaderFields {
        let lines = lines
            .iter()
            .map(|h| (span_in(buf, h.name.as_bytes()), span_in(buf, h.value)))
            .collect();
        HeaderFields {
            raw: buf[..head_len].into(),
            lines,
        }
    }

    fn text(&self, range: &Range<u32>) -> &[u8] {
        &self.raw[range.start as usize..range.end as usize]
    }

    /// Every value of the header `name` (case-insensitive), in order.
    pub fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.value_spans(name).map(move |v| self.text(v))
    }

    fn value_spans<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a Range<u32>> + use<'a, 'n> {
        self.lines
            .iter()
            .filter(move |(n, _)| self.text(n).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The first value of the header `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.values(name).next()
    }

    /// The value of a header that may appear at most once.
    pub fn single(&self, name: &str) -> Result<Option<&[u8]>, RepeatedHeader> {
        let mut values = self.values(name);
        match (values.next(), values.next()) {
            (first, None) => Ok(first),
            (Some(_), Some(_)) | (None, Some(_)) => Err(RepeatedHeader),
        }
    }

    /// The first value of the header `name`, if it is UTF-8 (trimmed).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    /// Whether any value of a comma-separated header lists `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Number of field lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the head has no field lines.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Whether the connection persists after this message (RFC 9112 §9.3), for a message of
    /// HTTP/1.`minor_version`.
    fn persists(&self, minor_version: u8) -> bool {
        // RFC 9112 §9.3: "If the "close" connection option is present, the connection will not persist
        // after the current response; else, if the received protocol is HTTP/1.1 (or later), the
        // connection will persist after the current response; else, if the received protocol is
        // HTTP/1.0, the "keep-alive" connection option is present, ... the connection will persist".
        if self.has_token("connection", "close") {
            return false;
        }
        minor_version >= 1 || self.has_token("connection", "keep-alive")
    }

    /// The Content-Length, if any (RFC 9110 §8.6): a list of identical values counts as one.
    fn content_length(&self) -> Result<Option<u64>, HttpError> {
        let mut lengths = self.values("content-length");
        let Some(first) = lengths.next() else {
            return Ok(None);
        };
        let n = parse_content_length(first)?;
        // RFC 9110 §8.6: a list of identical values may be accepted; differing values are invalid.
        for other in lengths {
            if parse_content_length(other)? != n {
                return Err(HttpError::BadContentLength);
            }
        }
        Ok(Some(n))
    }

    /// The transfer codings listed, in order (RFC 9110 §5.6.1: "a recipient MUST accept and
    /// ignore ... empty list elements").
    fn transfer_codings(&self) -> impl Iterator<Item = &[u8]> {
        self.values("transfer-encoding")
            .flat_map(|v| v.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|coding| !coding.is_empty())
    }
}

/// Where `part` (a slice httparse handed back, so one pointing into `buf`) lies in `buf`.
fn span_in(buf: &[u8], part: &[u8]) -> Range<u32> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start as u32..(start + part.len()) as u32
}

/// A parsed request head that owns its bytes, so it can outlive the read buffer.
#[derive(Debug, Clone)]
pub struct RequestHead {
    fields: HeaderFields,
    method: Method,
    method_token: Range<u32>,
    target: Range<u32>,
    /// The target's path and query (all of an origin-form target).
    path_and_query: Range<u32>,
    /// The authority the request is for: the absolute-form target's, else Host's.
    authority: Option<Range<u32>>,
    minor_version: u8,
    framing: BodyFraming,
}

impl RequestHead {
    /// Parses a request head from the start of `buf`.
    ///
    /// `Partial` means the blank line ending the head has not arrived yet and
    /// the head is still within limits; nothing is consumed.
    pub fn parse(buf: &[u8], limits: &Limits) -> Result<Status<RequestHead>, HttpError> {
        let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
        let max_headers = limits.max_headers.clamp(1, HEADER_SLOTS);
        let mut req = httparse::Request::new(&mut slots[..max_headers]);
        // Parse no further than the first prefix that breaks a size limit, so the outcome
        // is the same however the bytes were split into reads.
        let breach = first_limit_breach(buf, limits);
        let scan = breach.map_or(buf, |(cut, _)| &buf[..cut]);
        let head_len = match req.parse(scan) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return breach.map_or(Ok(Status::Partial), |(_, e)| Err(e));
            }
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
            Err(e) => return Err(HttpError::Malformed(e)),
        };
        if head_len > limits.max_head_bytes {
            return Err(HttpError::HeadTooLarge);
        }
        let (Some(method), Some(path), Some(minor_version)) = (req.method, req.path, req.version)
        else {
            return Err(HttpError::Malformed(httparse::Error::Token));
        };
        if path.len() > limits.max_uri_bytes {
            return Err(HttpError::UriTooLong);
        }
        let span = |s: &[u8]| span_in(buf, s);
        let mut head = RequestHead {
            fields: HeaderFields::new(buf, head_len, req.headers),
            method: Method::from_token(method),
            method_token: span(method.as_bytes()),
            target: span(path.as_bytes()),
            path_and_query: span(path.as_bytes()),
            minor_version,
            authority: None,
            framing: BodyFraming::Empty,
        };
        let host = head.check_host()?;
        head.authority = match head.absolute_form()? {
            Some(absolute) => {
                head.path_and_query = absolute.path_and_query;
                Some(absolute.authority)
            }
            None => host,
        };
        head.framing = head.body_framing(limits)?;
        Ok(Status::Complete(head, head_len))
    }

    fn text(&self, range: &Range<u32>) -> &[u8] {
        self.fields.text(range)
    }

    /// The request method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The method token as sent (for `Other`).
    pub fn method_token(&self) -> &str {
        // httparse only accepts token characters, which are ASCII.
        std::str::from_utf8(self.text(&self.method_token)).unwrap_or("")
    }

    /// Text the parser has shown to be ASCII: the request-target and its parts (httparse only
    /// accepts visible ASCII there) and a validated authority.
    fn ascii(&self, range: &Range<u32>) -> &str {
        std::str::from_utf8(self.text(range)).unwrap_or("")
    }

    /// The request-target as sent: path plus optional query, or an absolute URI.
    pub fn target(&self) -> &str {
        self.ascii(&self.target)
    }

    /// The path part of the target.
    pub fn path(&self) -> &str {
        let path_and_query = self.ascii(&self.path_and_query);
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(path, _)| path);
        // RFC 9110 §4.2.3: "an empty path component is equivalent to an absolute path of "/"".
        if path.is_empty() {
            "/"
        } else {
            path
        }
    }

    /// The query part of the target, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.ascii(&self.path_and_query)
            .split_once('?')
            .map(|(_, query)| query)
    }

    /// The authority the request is for (RFC 9112 §3.2.2): an absolute-form target's,
    /// else the Host header's; valid `host [":" port]` text, `None` without either.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_ref().map(|range| self.ascii(range))
    }

    /// The value of one query parameter (no percent-decoding: the ids we route on are visible ASCII).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query()?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub fn minor_version(&self) -> u8 {
        self.minor_version
    }

    /// Every value of the header `name` (case-insensitive), in order.
    pub fn header_values<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.fields.values(name)
    }

    /// The first value of the header `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.fields.get(name)
    }

    /// The value of a header that may appear at most once.
    pub fn single_header(&self, name: &str) -> Result<Option<&[u8]>, RepeatedHeader> {
        self.fields.single(name)
    }

    /// The first value of the header `name`, if it is UTF-8 (trimmed).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.fields.get_str(name)
    }

    /// Whether any value of a comma-separated header lists `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.fields.has_token(name, token)
    }

    /// Number of header lines.
    pub fn header_count(&self) -> usize {
        self.fields.len()
    }

    /// How the body is delimited.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Whether the client asked to keep the connection open after this exchange.
    pub fn keep_alive(&self) -> bool {
        self.fields.persists(self.minor_version)
    }

    /// Whether the client waits for `100 Continue` before it sends the body.
    pub fn expects_continue(&self) -> bool {
        // RFC 9110 §10.1.1: "A server that receives a 100-continue expectation in an HTTP/1.0
        // request MUST ignore that expectation." Without content there is nothing to wait for.
        self.minor_version >= 1
            && self.framing != BodyFraming::Empty
            && self.has_token("expect", "100-continue")
    }

    /// Checks the Host header and returns the span of its value, if any.
    fn check_host(&self) -> Result<Option<Range<u32>>, HttpError> {
        // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1
        // request message that lacks a Host header field and to any request message that contains
        // more than one Host header field line or a Host header field with an invalid field value."
        let mut hosts = self.fields.value_spans("host");
        let value = match (hosts.next(), hosts.next()) {
            (Some(value), None) => trim_span(value, self.text(value)),
            (None, _) if self.minor_version == 0 => return Ok(None),
            _ => return Err(HttpError::BadHost),
        };
        // RFC 9110 §7.2: `Host = uri-host [ ":" port ]`.
        let text = std::str::from_utf8(self.text(&value))
            .map_err(|_| HttpError::InvalidHost(AuthorityError::BadRegName))?;
        Authority::parse(text).map_err(HttpError::InvalidHost)?;
        Ok(Some(value))
    }

    /// For an absolute-form target (`http://host:port/path?query`), the spans of its parts.
    fn absolute_form(&self) -> Result<Option<AbsoluteForm>, HttpError> {
        let target = self.target();
        // Schemes are case-insensitive (RFC 3986 §3.1); other schemes name nothing we serve.
        let Some(scheme_len) = ["http://", "https://"].iter().find_map(|scheme| {
            let prefix = target.get(..scheme.len())?;
            prefix.eq_ignore_ascii_case(scheme).then_some(scheme.len())
        }) else {
            return Ok(None);
        };
        let rest = &target[scheme_len..];
        let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        // RFC 9110 §4.2.1: "A sender MUST NOT generate an "http" URI with an empty host
        // identifier. A recipient that processes such a URI reference MUST reject it as invalid."
        match Authority::parse(&rest[..authority_len]) {
            Ok(authority) if authority.host != Host::RegName("") => {}
            _ => return Err(HttpError::BadTargetAuthority),
        }
        let start = self.target.start + scheme_len as u32;
        let end = start + authority_len as u32;
        Ok(Some(AbsoluteForm {
            authority: start..end,
            path_and_query: end..self.target.end,
        }))
    }

    fn body_framing(&self, limits: &Limits) -> Result<BodyFraming, HttpError> {
        let has_transfer_encoding = self.header("transfer-encoding").is_some();
        if has_transfer_encoding && self.minor_version == 0 {
            // RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message containing a
            // Transfer-Encoding header field MUST treat the message as if the framing is faulty,
            // even if a Content-Length is present, and close the connection after processing the
            // message." Faulty framing is answered as §6.3 answers a body whose length "cannot be
            // determined reliably": "the server MUST respond with the 400 (Bad Request) status
            // code and then close the connection". Reading the body first would mean guessing
            // where it ends, and a wrong guess turns its tail into a smuggled request.
            return Err(HttpError::TransferEncodingInHttp10);
        }
        if has_transfer_encoding {
            // RFC 9112 §6.1: "A server MAY reject a request that contains both Content-Length and
            // Transfer-Encoding or process such a request in accordance with the Transfer-Encoding
            // alone. Regardless, the server MUST close the connection after responding".
            if self.header("content-length").is_some() {
                return Err(HttpError::AmbiguousFraming);
            }
            let codings: Vec<&[u8]> = self.fields.transfer_codings().collect();
            let is_chunked = |coding: &&[u8]| coding.eq_ignore_ascii_case(b"chunked");
            let Some((last, before)) = codings.split_last() else {
                return Err(HttpError::ChunkedNotFinal);
            };
            if !is_chunked(last) {
                // RFC 9112 §6.3: "If a Transfer-Encoding header field is present in a request and
                // the chunked transfer coding is not the final encoding, the message body length
                // cannot be determined reliably; the server MUST respond with the 400 (Bad
                // Request) status code and then close the connection."
                return Err(HttpError::ChunkedNotFinal);
            }
            if before.iter().any(is_chunked) {
                // RFC 9112 §7.1: "A sender MUST NOT apply the chunked coding more than once to
                // a message body".
                return Err(HttpError::ChunkedTwice);
            }
            if !before.is_empty() {
                // RFC 9112 §6.1: "A server that receives a request message with a transfer
                // coding it does not understand SHOULD respond with 501 (Not Implemented)."
                return Err(HttpError::UnsupportedTransferCoding);
            }
            return Ok(BodyFraming::Chunked);
        }
        let Some(n) = self.fields.content_length()? else {
            return Ok(BodyFraming::Empty);
        };
        if n > limits.max_body_bytes as u64 {
            return Err(HttpError::BodyTooLarge);
        }
        Ok(if n == 0 {
            BodyFraming::Empty
        } else {
            BodyFraming::Length(n)
        })
    }
}

/// `span` without the whitespace at either end of `text`, the bytes it covers.
fn trim_span(span: &Range<u32>, text: &[u8]) -> Range<u32> {
    let leading = text.len() - text.trim_ascii_start().len();
    let start = span.start + leading as u32;
    start..start + text.trim_ascii().len() as u32
}

fn parse_content_length(value: &[u8]) -> Result<u64, HttpError> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadContentLength);
    }
    Ok(value
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// The shortest prefix of `buf` at which a still-incomplete head breaks a size limit, and
/// which limit: the request-target (measured from the first space) or the whole head.
fn first_limit_breach(buf: &[u8], limits: &Limits) -> Option<(usize, HttpError)> {
    let target = buf.iter().position(|&b| b == b' ').and_then(|space| {
        let start = space + 1;
        let cut = start.saturating_add(limits.max_uri_bytes).saturating_add(1);
        let ends_before = buf[start..buf.len().min(cut)]
            .iter()
            .any(|&b| matches!(b, b' ' | b'\r' | b'\n'));
        (!ends_before && cut <= buf.len()).then_some((cut, HttpError::UriTooLong))
    });
    let head = limits.max_head_bytes.saturating_add(1);
    let head = (head <= buf.len()).then(|| {
        // A head that outgrows its limit before its request line ends is a URI problem.
        let line_done = buf[..head].contains(&b'\n');
        let error = if line_done {
            HttpError::HeadTooLarge
        } else {
            HttpError::UriTooLong
        };
        (head, error)
    });
    [target, head]
        .into_iter()
        .flatten()
        .min_by_key(|(cut, _)| *cut)
}

/// Incremental decoder of a `Transfer-Encoding: chunked` body (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: ChunkState,
    total: u64,
    max: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

/// How far a line-oriented part of the chunked framing goes; chunk-size lines
/// with extensions and trailer lines are both bounded by this.
const MAX_CHUNK_LINE: usize = 4096;

impl ChunkedDecoder {
    /// A decoder that fails with 413 once the decoded body passes `max_body_bytes`.
    pub fn new(max_body_bytes: usize) -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            total: 0,
            max: max_body_bytes as u64,
        }
    }

    /// True once the last chunk and trailers were read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes from `input`, appending body bytes to `body`; returns bytes consumed.
    /// Returns fewer than `input.len()` only when it needs more input or is done.
    pub fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, HttpError> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.state {
                ChunkState::Done => return Ok(at),
                ChunkState::Size => {
                    let Some(line) = take_line(rest)? else {
                        return Ok(at);
                    };
                    at += line.len() + 2;
                    let size_part = line.split(|&b| b == b';').next().unwrap_or(b"");
                    let size = parse_chunk_size(size_part.trim_ascii())?;
                    self.total = self.total.saturating_add(size);
                    if self.total > self.max {
                        return Err(HttpError::BodyTooLarge);
                    }
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if rest.is_empty() {
                        return Ok(at);
                    }
                    let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    body.extend_from_slice(&rest[..take]);
                    at += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataEnd => {
                    if rest.len() < 2 {
                        return Ok(at);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(HttpError::BadChunk);
                    }
                    at += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(line) = take_line(rest)? else {
                        return Ok(at);
                    };
                    at += line.len() + 2;
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                    }
                }
            }
        }
    }
}

/// A CRLF-terminated line at the start of `input`, without its CRLF.
fn take_line(input: &[u8]) -> Result<Option<&[u8]>, HttpError> {
    match input.windows(2).position(|w| w == b"\r\n") {
        Some(end) if end <= MAX_CHUNK_LINE => Ok(Some(&input[..end])),
        Some(_) => Err(HttpError::BadChunk),
        None if input.len() > MAX_CHUNK_LINE => Err(HttpError::BadChunk),
        None => Ok(None),
    }
}

fn parse_chunk_size(digits: &[u8]) -> Result<u64, HttpError> {
    if digits.is_empty() || digits.len() > 15 {
        return Err(HttpError::BadChunk);
    }
    digits.iter().try_fold(0u64, |n, &c| {
        let digit = hex::digit(c).ok_or(HttpError::BadChunk)?;
        Ok(n * 16 + u64::from(digit))
    })
}

/// How a response's body is delimited (RFC 9112 §6.3), from the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body: the response ends with its head.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// The body ends when the server closes the connection.
    UntilClose,
}

/// A parsed response head (the client role), owning its bytes.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    fields: HeaderFields,
    status: u16,
    minor_version: u8,
    framing: ResponseFraming,
}

impl ResponseHead {
    /// Parses the head of the response to a `request` request from the start of `buf`.
    ///
    /// `Partial` means the blank line ending the head has not arrived yet and the head is
    /// still within `limits.max_head_bytes`; nothing is consumed. A `Content-Length` over
    /// `limits.max_body_bytes` fails here, before any of the body is read.
    pub fn parse(
        buf: &[u8],
        limits: &Limits,
        request: Method,
    ) -> Result<Status<ResponseHead>, HttpError> {
        // Left uninitialised: a client parses a head per request, and zeroing every slot
        // cost more than parsing a short head.
        let mut slots = [const { std::mem::MaybeUninit::uninit() }; HEADER_SLOTS];
        let max_headers = limits.max_headers.clamp(1, HEADER_SLOTS);
        let mut response = httparse::Response::new(&mut []);
        // Parse no further than one byte past the limit, so the outcome is the same however
        // the bytes were split into reads.
        let scan = &buf[..buf.len().min(limits.max_head_bytes.saturating_add(1))];
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            scan,
            &mut slots[..max_headers],
        );
        let head_len = match parsed {
            Ok(httparse::Status::Complete(n)) if n <= limits.max_head_bytes => n,
            Ok(httparse::Status::Complete(_)) => return Err(HttpError::HeadTooLarge),
            Ok(httparse::Status::Partial) if scan.len() > limits.max_head_bytes => {
                return Err(HttpError::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => return Ok(Status::Partial),
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
            Err(e) => return Err(HttpError::Malformed(e)),
        };
        let (Some(status), Some(minor_version)) = (response.code, response.version) else {
            return Err(HttpError::Malformed(httparse::Error::Status));
        };
        let mut head = ResponseHead {
            fields: HeaderFields::new(buf, head_len, response.headers),
            status,
            minor_version,
            framing: ResponseFraming::Empty,
        };
        head.framing = head.body_framing(request)?;
        if let ResponseFraming::Length(n) = head.framing {
            if n > limits.max_body_bytes as u64 {
                return Err(HttpError::BodyTooLarge);
            }
        }
        Ok(Status::Complete(head, head_len))
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The header fields.
    pub fn headers(&self) -> &HeaderFields {
        &self.fields
    }

    /// How the body is delimited.
    pub fn framing(&self) -> ResponseFraming {
        self.framing
    }

    /// An interim response, which a final one follows on the same request.
    pub fn is_interim(&self) -> bool {
        // RFC 9110 §15.2: "A client MUST be able to parse one or more 1xx responses received
        // prior to a final response, even if the client does not expect one." 101 is final for
        // the HTTP exchange: what follows is the protocol switched to.
        (100..200).contains(&self.status) && self.status != 101
    }

    /// Whether the media type of `Content-Type` is `media_type` (case-insensitive, parameters
    /// ignored: RFC 9110 §8.3.1 "The type and subtype tokens are case-insensitive").
    pub fn has_media_type(&self, media_type: &str) -> bool {
        self.fields.get("content-type").is_some_and(|value| {
            let essence = value.split(|&b| b == b';').next().unwrap_or_default();
            essence
                .trim_ascii()
                .eq_ignore_ascii_case(media_type.as_bytes())
        })
    }

    /// Whether the server keeps the connection open for another request after this response.
    pub fn keep_alive(&self) -> bool {
        self.framing != ResponseFraming::UntilClose && self.fields.persists(self.minor_version)
    }

    fn body_framing(&self, request: Method) -> Result<ResponseFraming, HttpError> {
        // RFC 9112 §6.3 1: "Any response to a HEAD request and any response with a 1xx
        // (Informational), 204 (No Content), or 304 (Not Modified) status code is always
        // terminated by the first empty line after the header fields, regardless of the header
        // fields present in the message, and thus cannot contain a message body or trailer
        // section."
        if request == Method::Head
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
        {
            return Ok(ResponseFraming::Empty);
        }
        // §6.3 3: "If a message is received with both a Transfer-Encoding and a Content-Length
        // header field, the Transfer-Encoding overrides the Content-Length. ... If a
        // Transfer-Encoding header field is present in a response and the chunked transfer
        // coding is not the final encoding, the message body length is determined by reading
        // the connection until it is closed by the server."
        if self.fields.get("transfer-encoding").is_some() {
            let last = self.fields.transfer_codings().last();
            return Ok(match last {
                Some(coding) if coding.eq_ignore_ascii_case(b"chunked") => ResponseFraming::Chunked,
                _ => ResponseFraming::UntilClose,
            });
        }
        // §6.3 5: "If a message is received without Transfer-Encoding and with an invalid
        // Content-Length header field, then the message framing is invalid and the recipient
        // MUST treat it as an unrecoverable error". §6.3 8: "Otherwise, this is a response
        // message without a declared message body length, so the message body length is
        // determined by the number of octets received prior to the server closing the
        // connection."
        Ok(match self.fields.content_length()? {
            Some(0) => ResponseFraming::Empty,
            Some(n) => ResponseFraming::Length(n),
            None => ResponseFraming::UntilClose,
        })
    }
}

/// Incremental decoder of a response body as its head frames it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyDecoder {
    /// `Content-Length` (or no body): bytes still to come.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkedDecoder),
    /// Until the server closes: bytes decoded so far, and the most allowed.
    UntilClose {
        /// Bytes decoded so far.
        total: u64,
        /// The most allowed.
        max: u64,
    },
}

impl BodyDecoder {
    /// The decoder for `framing`; a body longer than `max_body_bytes` fails with
    /// [`HttpError::BodyTooLarge`].
    pub fn new(framing: ResponseFraming, max_body_bytes: usize) -> BodyDecoder {
        match framing {
            ResponseFraming::Empty => BodyDecoder::Length(0),
            ResponseFraming::Length(n) => BodyDecoder::Length(n),
            ResponseFraming::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new(max_body_bytes)),
            ResponseFraming::UntilClose => BodyDecoder::UntilClose {
                total: 0,
                max: max_body_bytes as u64,
            },
        }
    }

    /// The decoder for a request's body (the server role).
    pub fn for_request(framing: BodyFraming, max_body_bytes: usize) -> BodyDecoder {
        BodyDecoder::new(
            match framing {
                BodyFraming::Empty => ResponseFraming::Empty,
                BodyFraming::Length(n) => ResponseFraming::Length(n),
                BodyFraming::Chunked => ResponseFraming::Chunked,
            },
            max_body_bytes,
        )
    }

    /// Decodes from `input`, appending body bytes to `body`; returns bytes consumed.
    /// Returns fewer than `input.len()` only when the body is complete (the rest is the
    /// next response) or a chunked body needs more input.
    pub fn decode(&mut self, input: &[u8], body: &mut Vec<u8>) -> Result<usize, HttpError> {
        match self {
            BodyDecoder::Length(left) => {
                let take = input
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                body.extend_from_slice(&input[..take]);
                *left -= take as u64;
                Ok(take)
            }
            BodyDecoder::Chunked(decoder) => decoder.decode(input, body),
            BodyDecoder::UntilClose { total, max } => {
                *total = total.saturating_add(input.len() as u64);
                if *total > *max {
                    return Err(HttpError::BodyTooLarge);
                }
                body.extend_from_slice(input);
                Ok(input.len())
            }
        }
    }

    /// True once the whole body was decoded (never for a body that ends with the connection).
    pub fn is_done(&self) -> bool {
        match self {
            BodyDecoder::Length(left) => *left == 0,
            BodyDecoder::Chunked(decoder) => decoder.is_done(),
            BodyDecoder::UntilClose { .. } => false,
        }
    }

    /// Whether the connection closing now ends the body, rather than truncating it.
    pub fn ends_at_close(&self) -> bool {
        matches!(self, BodyDecoder::UntilClose { .. })
    }
}

/// Appends a request head (the client role): request line, `Host`, the given headers,
/// `Content-Length` when there is content, and the blank line.
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    content_length: Option<usize>,
) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    // RFC 9112 §3.2: "A client MUST send a Host header field in all HTTP/1.1 request messages."
    push_field(out, "host", host);
    for (name, value) in headers {
        push_field(out, name, value);
    }
    if let Some(n) = content_length {
        out.extend_from_slice(b"content-length: ");
        push_decimal(out, n as u64);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one field line.
fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The reason phrase for the statuses this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// How the response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// `Content-Length: n` follows the head.
    Length(usize),
    /// `Transfer-Encoding: chunked`, for streams of unknown length (SSE).
    Chunked,
    /// No body and no length header (101, 204).
    None,
}

/// The longest reason phrase [`reason`] gives.
const MAX_REASON_BYTES: usize = "Request Header Fields Too Large".len();

/// What a response head takes at most besides its headers: the status line, `date`, the
/// longest framing line (a 20-digit Content-Length), `connection: close` and the blank line.
const HEAD_FIXED_BYTES: usize = "HTTP/1.1 000 \r\n".len()
    + MAX_REASON_BYTES
    + "date: \r\n".len()
    + date::IMF_FIXDATE_LEN
    + "content-length: \r\n".len()
    + 20
    + "connection: close\r\n".len()
    + "\r\n".len();

/// The most bytes [`write_head`] appends with `headers`.
fn head_bytes_bound(headers: &[(&str, &str)]) -> usize {
    let fields: usize = (headers.iter())
        .map(|(name, value)| name.len() + ": \r\n".len() + value.len())
        .sum();
    HEAD_FIXED_BYTES + fields
}

/// Appends a response head: status line, the given headers, framing, and the blank line.
pub fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    body: ResponseBody,
    keep_alive: bool,
) {
    // Room for the whole head at once: grown piece by piece from empty, a 101 took five
    // allocations, and the four chunks freed on the way stayed behind as holes between the
    // long-lived state of the connections upgraded after it (~30 B of RSS per connection at
    // 15,000 WebSockets).
    out.reserve(head_bytes_bound(headers));
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    if status >= 200 {
        // RFC 9110 §6.6.1: "An origin server with a clock ... MUST generate a Date header field
        // if the response is in the 2xx (Successful), 3xx (Redirection), or 4xx (Client Error)
        // class, and MAY generate a Date header field if the response is in the 1xx
        // (Informational) or 5xx (Server Error) class." We send it on every final response.
        out.extend_from_slice(b"date: ");
        date::push_now(out);
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        push_field(out, name, value);
    }
    match body {
        ResponseBody::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            push_decimal(out, n as u64);
            out.extend_from_slice(b"\r\n");
        }
        ResponseBody::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        ResponseBody::None => {}
    }
    if !keep_alive && status != 101 {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a whole response with a body.
pub fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    keep_alive: bool,
) {
    out.reserve(head_bytes_bound(headers) + body.len());
    write_head(
        out,
        status,
        headers,
        ResponseBody::Length(body.len()),
        keep_alive,
    );
    out.extend_from_slice(body);
}

/// Appends the interim response that asks the client for the body it held back.
pub fn write_continue(out: &mut Vec<u8>) {
    // RFC 9110 §10.1.1: an origin server that receives "a 100-continue expectation and an
    // indication that request content will follow" MUST "either send an immediate response with
    // a final status code, if that status can be determined by examining just the method, target
    // URI, and header fields, or send an immediate 100 (Continue) response".
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// Cuts the content off the response that starts at `response_start` in `out` when the request
/// was HEAD; the head, Content-Length included, stays as a GET would have it.
pub fn omit_content_for_head(method: Method, out: &mut Vec<u8>, response_start: usize) {
    // RFC 9110 §9.3.2: "The HEAD method is identical to GET except that the server MUST NOT send
    // content in the response." §8.6: "a server MAY send a Content-Length header field in a
    // response to a HEAD request ... the field value MUST equal the decimal number of octets that
    // would have been sent in the content of a response if the same request had used the GET
    // method."
    if method != Method::Head {
        return;
    }
    let written = out.get(response_start..).unwrap_or_default();
    if let Some(end) = written.windows(4).position(|w| w == b"\r\n\r\n") {
        out.truncate(response_start + end + 4);
    }
}

/// Adds `headers` to the response head that starts at `response_start` in `out`, right after
/// its status line; false (and nothing added) when no response head starts there.
pub fn add_headers(out: &mut Vec<u8>, response_start: usize, headers: &[(&str, &str)]) -> bool {
    let written = out.get(response_start..).unwrap_or_default();
    if !written.starts_with(b"HTTP/1.1 ") {
        return false;
    }
    let Some(line_end) = written.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    let mut fields = Vec::new();
    for (name, value) in headers {
        fields.extend_from_slice(name.as_bytes());
        fields.extend_from_slice(b": ");
        fields.extend_from_slice(value.as_bytes());
        fields.extend_from_slice(b"\r\n");
    }
    let at = response_start + line_end + 2;
    out.splice(at..at, fields);
    true
}

/// Appends one chunk of a chunked body (an empty `data` is skipped: it would end the body).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    use std::io::Write;
    let _ = write!(out, "{:x}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk, ending a chunked body.
pub fn write_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testutil::at_every_split;

    #[test]
    fn headers_are_added_after_the_status_line_of_the_response_at_the_offset() {
        let mut out = b"HTTP/1.1 200 OK\r\na: 1\r\n\r\n".to_vec();
        let start = out.len();
        write_response(&mut out, 404, &[("x", "y")], b"no", true);
        assert!(add_headers(
            &mut out,
            start,
            &[("vary", "origin"), ("z", "2")]
        ));
        let second = std::str::from_utf8(&out[start..]).unwrap();
        assert!(second.starts_with("HTTP/1.1 404 Not Found\r\nvary: origin\r\nz: 2\r\ndate: "));
        assert!(second.ends_with("\r\n\r\nno"));
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\na: 1\r\n\r\nHTTP"));
        let before = out.clone();
        let end = out.len();
        assert!(!add_headers(&mut out, end, &[("z", "2")]));
        assert!(!add_headers(&mut out, 3, &[("z", "2")]));
        assert_eq!(out, before);
    }

    fn limits() -> Limits {
        Limits {
            max_head_bytes: 1024,
            max_headers: 8,
            max_uri_bytes: 64,
            max_body_bytes: 100,
        }
    }

    /// Feeds `input` chunk by chunk as a read loop would and returns the first outcome.
    fn parse_chunks(
        chunks: &[&[u8]],
        limits: &Limits,
    ) -> Result<Option<(RequestHead, usize)>, HttpError> {
        let mut buf = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            if let Status::Complete(head, used) = RequestHead::parse(&buf, limits)? {
                return Ok(Some((head, used)));
            }
        }
        Ok(None)
    }

    fn parse_all(input: &[u8]) -> Result<RequestHead, HttpError> {
        let mut outcome = None;
        at_every_split(input, |chunks| {
            let got = parse_chunks(chunks, &limits()).map(|r| r.map(|(h, _)| h));
            if let Some(prev) = &outcome {
                let same = match (prev, &got) {
                    (Ok(Some(a)), Ok(Some(b))) => {
                        let (a, b): (&RequestHead, &RequestHead) = (a, b);
                        a.target() == b.target() && a.header_count() == b.header_count()
                    }
                    (Err(a), Err(b)) => a == b,
                    _ => false,
                };
                assert!(same, "outcome depends on the split: {prev:?} vs {got:?}");
            }
            outcome = Some(got);
        });
        outcome.unwrap().map(|h| h.expect("complete head"))
    }

    #[test]
    fn parses_a_keep_alive_get() {
        let head = parse_all(b"GET /mcp?sessionId=ab HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n").unwrap();
        assert_eq!(head.method(), Method::Get);
        assert_eq!(head.path(), "/mcp");
        assert_eq!(head.query_param("sessionId"), Some("ab"));
        assert!(head.has_token("connection", "upgrade"));
        assert!(head.keep_alive());
        assert_eq!(head.framing(), BodyFraming::Empty);
        assert_eq!(head.header_str("HOST"), Some("x"));
    }

    #[test]
    fn partial_head_consumes_nothing() {
        let status = RequestHead::parse(b"GET / HTTP/1.1\r\nHost: x\r\n", &limits()).unwrap();
        assert!(matches!(status, Status::Partial));
    }

    #[test]
    fn consumed_length_stops_at_the_blank_line() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n";
        let (_, used) = RequestHead::parse(req, &limits())
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!(&req[used..], b"GET /next HTTP/1.1\r\n");
    }

    #[test]
    fn connection_close_and_http10() {
        let head = parse_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!head.keep_alive());
        let head = parse_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!head.keep_alive());
        let head = parse_all(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(head.keep_alive());
    }

    #[test]
    fn limits_map_to_their_statuses() {
        let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100));
        assert_eq!(parse_all(long_uri.as_bytes()).unwrap_err().status(), 414);
        let unterminated_uri = format!("GET /{}", "a".repeat(200));
        let err = RequestHead::parse(unterminated_uri.as_bytes(), &limits()).unwrap_err();
        assert_eq!(err.status(), 414);
        let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{}\r\n", "A: b\r\n".repeat(9));
        assert_eq!(parse_all(many.as_bytes()).unwrap_err().status(), 431);
        let big = format!("GET / HTTP/1.1\r\nHost: x\r\nA: {}\r\n", "b".repeat(1100));
        let err = RequestHead::parse(big.as_bytes(), &limits()).unwrap_err();
        assert_eq!(err.status(), 431);
        let body = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n";
        assert_eq!(parse_all(body).unwrap_err().status(), 413);
    }

    #[test]
    fn host_rules() {
        assert_eq!(
            parse_all(b"GET / HTTP/1.1\r\n\r\n").unwrap_err(),
            HttpError::BadHost
        );
        let twice = b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
        assert_eq!(parse_all(twice).unwrap_err(), HttpError::BadHost);
        let http10 = parse_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(http10.authority(), None);
    }

    #[test]
    fn invalid_host_values_are_400() {
        for (host, rule) in [
            (&b"localhost:80@evil.com"[..], AuthorityError::Userinfo),
            (b"[::1]evil.com", AuthorityError::UnclosedIpLiteral),
            (b"localhost:99999999", AuthorityError::PortOutOfRange),
            (b"localhost:abc", AuthorityError::BadPort),
            (b"local\xffhost", AuthorityError::BadRegName),
        ] {
            let request = [b"GET / HTTP/1.1\r\nHost: ", host, b"\r\n\r\n"].concat();
            let err = parse_all(&request).unwrap_err();
            assert_eq!(err, HttpError::InvalidHost(rule), "{host:?}");
            assert_eq!(err.status(), 400);
        }
        let request = b"GET / HTTP/1.1\r\nHost: \t[::1]:8080 \r\n\r\n";
        assert_eq!(parse_all(request).unwrap().authority(), Some("[::1]:8080"));
        let empty = parse_all(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").unwrap();
        assert_eq!(empty.authority(), Some(""));
    }

    #[test]
    fn absolute_form_targets() {
        let head = parse_all(
            b"POST HTTP://127.0.0.1:8080/mcp?sessionId=ab HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        )
        .unwrap();
        assert_eq!(head.path(), "/mcp");
        assert_eq!(head.query_param("sessionId"), Some("ab"));
        // RFC 9112 §3.2.2: the Host header is ignored for the target's authority.
        assert_eq!(head.authority(), Some("127.0.0.1:8080"));
        let head = parse_all(b"GET http://[::1]?x=1 HTTP/1.1\r\nHost: [::1]\r\n\r\n").unwrap();
        assert_eq!((head.path(), head.query()), ("/", Some("x=1")));
        assert_eq!(head.authority(), Some("[::1]"));
        let http10 = parse_all(b"GET https://localhost/healthz HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(http10.authority(), Some("localhost"));
        for target in [
            "http://localhost:80@evil.com/mcp",
            "http:///mcp",
            "http://localhost:99999/",
            "https://[::1/",
        ] {
            let request = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
            let err = parse_all(request.as_bytes()).unwrap_err();
            assert_eq!(err, HttpError::BadTargetAuthority, "{target}");
        }
        // An absolute-form target still needs a valid Host (RFC 9112 §3.2).
        let hostless = b"GET http://localhost/ HTTP/1.1\r\n\r\n";
        assert_eq!(parse_all(hostless).unwrap_err(), HttpError::BadHost);
        // Other schemes are no absolute-form we serve: they stay a path that routes nowhere.
        let urn = parse_all(b"GET urn:x HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        assert_eq!((urn.path(), urn.authority()), ("urn:x", Some("a")));
    }

    #[test]
    fn single_header_refuses_repeats() {
        let head = parse_all(b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\n").unwrap();
        assert_eq!(head.single_header("b"), Ok(Some(&b"2"[..])));
        assert_eq!(head.single_header("c"), Ok(None));
        assert_eq!(head.single_header("a"), Err(RepeatedHeader));
    }

    #[test]
    fn expect_100_continue() {
        let post = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n";
        let expects = |extra: &str, version: &str| {
            let request = format!("{post}{extra}\r\n").replace("HTTP/1.1", version);
            parse_all(request.as_bytes()).unwrap().expects_continue()
        };
        assert!(expects("Expect: 100-Continue\r\n", "HTTP/1.1"));
        assert!(!expects("", "HTTP/1.1"));
        // RFC 9110 §10.1.1: an HTTP/1.0 request's expectation is ignored.
        assert!(!expects("Expect: 100-continue\r\n", "HTTP/1.0"));
        let bodiless = b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n";
        assert!(!parse_all(bodiless).unwrap().expects_continue());
        let mut out = Vec::new();
        write_continue(&mut out);
        assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn method_of_a_broken_request() {
        assert_eq!(
            Method::of_request(b"\r\nHEAD / HTTP/1.1\r\nBad Header"),
            Method::Head
        );
        assert_eq!(Method::of_request(b"HEAD"), Method::Head);
        assert_eq!(Method::of_request(b"GET /"), Method::Get);
        assert_eq!(Method::of_request(b"\xff\xfe /"), Method::Other);
        assert_eq!(Method::of_request(b""), Method::Other);
    }

    #[test]
    fn body_framing_rules() {
        let h = parse_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(h.framing(), BodyFraming::Length(5));
        let h =
            parse_all(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(h.framing(), BodyFraming::Chunked);
        let both = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(parse_all(both).unwrap_err(), HttpError::AmbiguousFraming);
        let gzip = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(parse_all(gzip).unwrap_err().status(), 501);
        let differ =
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
        assert_eq!(parse_all(differ).unwrap_err(), HttpError::BadContentLength);
        let same = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(parse_all(same).unwrap().framing(), BodyFraming::Length(5));
        let junk = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n";
        assert_eq!(parse_all(junk).unwrap_err(), HttpError::BadContentLength);
    }

    #[test]
    fn transfer_coding_rules() {
        let te = |version: &str, codings: &str, extra: &str| {
            let request = format!(
                "POST / HTTP/1.{version}\r\nHost: x\r\nTransfer-Encoding: {codings}\r\n{extra}\r\n"
            );
            parse_all(request.as_bytes()).map(|head| head.framing())
        };
        assert_eq!(te("1", "Chunked", ""), Ok(BodyFraming::Chunked));
        assert_eq!(te("1", ", chunked,", ""), Ok(BodyFraming::Chunked));
        let faulty = Err(HttpError::TransferEncodingInHttp10);
        assert_eq!(te("0", "chunked", ""), faulty);
        assert_eq!(te("0", "chunked", "Content-Length: 5\r\n"), faulty);
        assert_eq!(te("0", "gzip", ""), faulty);
        assert_eq!(te("1", "gzip", ""), Err(HttpError::ChunkedNotFinal));
        assert_eq!(
            te("1", "chunked, gzip", ""),
            Err(HttpError::ChunkedNotFinal)
        );
        assert_eq!(te("1", "", ""), Err(HttpError::ChunkedNotFinal));
        assert_eq!(
            te("1", "chunked, chunked", ""),
            Err(HttpError::ChunkedTwice)
        );
        let unknown = te("1", "br, chunked", "");
        assert_eq!(unknown, Err(HttpError::UnsupportedTransferCoding));
        for error in [
            HttpError::TransferEncodingInHttp10,
            HttpError::ChunkedNotFinal,
            HttpError::ChunkedTwice,
        ] {
            assert_eq!(error.status(), 400);
        }
    }

    #[test]
    fn malformed_is_400() {
        let err = parse_all(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n").unwrap_err();
        assert_eq!(err.status(), 400);
    }

    fn decode_chunked(chunks: &[&[u8]], max: usize) -> Result<Option<Vec<u8>>, HttpError> {
        let mut dec = ChunkedDecoder::new(max);
        let mut pending = Vec::new();
        let mut body = Vec::new();
        for chunk in chunks {
            pending.extend_from_slice(chunk);
            let used = dec.decode(&pending, &mut body)?;
            pending.drain(..used);
            if dec.is_done() {
                return Ok(Some(body));
            }
        }
        Ok(None)
    }

    #[test]
    fn chunked_body_at_every_split() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
        at_every_split(wire, |chunks| {
            assert_eq!(
                decode_chunked(chunks, 100).unwrap().unwrap(),
                b"hello world"
            );
        });
    }

    #[test]
    fn chunked_body_limit_and_garbage() {
        let wire = b"65\r\n";
        assert_eq!(decode_chunked(&[wire], 100).unwrap_err().status(), 413);
        assert_eq!(
            decode_chunked(&[b"zz\r\n"], 100).unwrap_err(),
            HttpError::BadChunk
        );
        assert_eq!(
            decode_chunked(&[b"1\r\nabc"], 100).unwrap_err(),
            HttpError::BadChunk
        );
    }

    #[test]
    fn response_writing() {
        let mut out = Vec::new();
        write_response(
            &mut out,
            404,
            &[("content-type", "text/plain")],
            b"nope",
            false,
        );
        let date_at = b"HTTP/1.1 404 Not Found\r\ndate: ".len();
        let date = &out[date_at..date_at + date::IMF_FIXDATE_LEN];
        assert!(
            date.ends_with(b" GMT"),
            "{:?}",
            String::from_utf8_lossy(date)
        );
        out.drain(date_at - b"date: ".len()..date_at + date::IMF_FIXDATE_LEN + 2);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope"
        );
        let mut out = Vec::new();
        write_chunk(&mut out, b"data: x\n\n");
        write_last_chunk(&mut out);
        assert_eq!(out, b"9\r\ndata: x\n\n\r\n0\r\n\r\n");
        // Interim responses carry no Date.
        let mut out = Vec::new();
        write_head(&mut out, 101, &[], ResponseBody::None, true);
        assert_eq!(out, b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
    }

    #[test]
    fn a_response_head_takes_one_allocation() {
        let headers = [
            ("content-type", "text/event-stream"),
            ("mcp-session-id", "abc"),
        ];
        let framings = [
            ResponseBody::Length(usize::MAX),
            ResponseBody::Chunked,
            ResponseBody::None,
        ];
        for status in 100..=599 {
            assert!(reason(status).len() <= MAX_REASON_BYTES, "{status}");
            for body in framings {
                let mut out = Vec::new();
                write_head(&mut out, status, &headers, body, false);
                assert!(out.len() <= head_bytes_bound(&headers), "{status} {body:?}");
                assert_eq!(
                    out.capacity(),
                    head_bytes_bound(&headers),
                    "{status} {body:?}"
                );
            }
        }
        let mut out = Vec::new();
        write_response(&mut out, 200, &headers, b"{}", true);
        assert_eq!(out.capacity(), head_bytes_bound(&headers) + 2);
    }

    #[test]
    fn head_responses_keep_the_head_and_drop_the_content() {
        let mut get = b"earlier response".to_vec();
        write_response(&mut get, 404, &[], b"not found\n", true);
        let mut head = get.clone();
        omit_content_for_head(Method::Head, &mut head, b"earlier response".len());
        assert_eq!(head, get.strip_suffix(b"not found\n").unwrap());
        let ends_head = head.windows(11).any(|w| w == b"length: 10\r");
        assert!(ends_head, "{}", String::from_utf8_lossy(&head));
        let before = get.clone();
        omit_content_for_head(Method::Get, &mut get, 0);
        assert_eq!(get, before);
    }

    /// Parses a response head delivered in `chunks` as a read loop would; the first outcome.
    fn response_chunks(
        chunks: &[&[u8]],
        request: Method,
    ) -> Result<Option<(ResponseHead, usize)>, HttpError> {
        let mut buf = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            if let Status::Complete(head, used) = ResponseHead::parse(&buf, &limits(), request)? {
                return Ok(Some((head, used)));
            }
        }
        Ok(None)
    }

    /// The response head in `input` (to a `request` request), checked to be the same at
    /// every split.
    fn response(input: &[u8], request: Method) -> Result<(ResponseHead, usize), HttpError> {
        let mut outcome = None;
        at_every_split(input, |chunks| {
            let got = response_chunks(chunks, request);
            let summary = |r: &Result<Option<(ResponseHead, usize)>, HttpError>| match r {
                Ok(Some((h, used))) => {
                    Ok(Some((h.status(), h.framing(), h.headers().len(), *used)))
                }
                Ok(None) => Ok(None),
                Err(e) => Err(*e),
            };
            if let Some(prev) = &outcome {
                assert_eq!(summary(prev), summary(&got), "outcome depends on the split");
            }
            outcome = Some(got);
        });
        outcome.unwrap().map(|r| r.expect("complete head"))
    }

    #[test]
    fn response_heads_and_their_framing() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\n\
                    Transfer-Encoding: chunked\r\nMcp-Session-Id: 0-abc\r\n\r\nrest";
        let (head, used) = response(raw, Method::Post).unwrap();
        assert_eq!(used, raw.len() - 4);
        assert_eq!(head.status(), 200);
        assert!(head.has_media_type("text/event-stream"));
        assert!(!head.has_media_type("application/json"));
        assert_eq!(head.framing(), ResponseFraming::Chunked);
        assert_eq!(head.headers().get_str("mcp-session-id"), Some("0-abc"));
        assert!(head.keep_alive());

        let cases: &[(&[u8], Method, ResponseFraming, bool)] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::Get, ResponseFraming::Length(5), true),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Method::Get, ResponseFraming::Empty, true),
            // Repeated identical lengths count as one (RFC 9110 §8.6).
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", Method::Get, ResponseFraming::Length(5), true),
            // HEAD, 1xx, 204 and 304 have no body whatever the head says.
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Method::Head, ResponseFraming::Empty, true),
            (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", Method::Get, ResponseFraming::Empty, true),
            (b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", Method::Post, ResponseFraming::Empty, true),
            (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", Method::Get, ResponseFraming::Empty, true),
            // Transfer-Encoding overrides Content-Length; a final coding other than chunked
            // runs until close.
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", Method::Get, ResponseFraming::Chunked, true),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Method::Get, ResponseFraming::UntilClose, false),
            (b"HTTP/1.1 200 OK\r\n\r\n", Method::Get, ResponseFraming::UntilClose, false),
            (b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\nconnection: close\r\n\r\n", Method::Post, ResponseFraming::Length(5), false),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", Method::Get, ResponseFraming::Length(1), false),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n", Method::Get, ResponseFraming::Length(1), true),
        ];
        for &(raw, request, framing, keep_alive) in cases {
            let (head, _) = response(raw, request).unwrap();
            let text = String::from_utf8_lossy(raw);
            assert_eq!(head.framing(), framing, "{text}");
            assert_eq!(head.keep_alive(), keep_alive, "{text}");
        }
    }

    #[test]
    fn interim_responses() {
        let (head, _) = response(b"HTTP/1.1 100 Continue\r\n\r\n", Method::Post).unwrap();
        assert!(head.is_interim());
        let (head, _) = response(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", Method::Get).unwrap();
        assert!(!head.is_interim());
    }

    #[test]
    fn broken_response_heads() {
        let cases: &[(&[u8], HttpError)] = &[
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 101\r\n\r\n",
                HttpError::BodyTooLarge,
            ),
            (
                b"garbage\r\n\r\n",
                HttpError::Malformed(httparse::Error::Version),
            ),
        ];
        for &(raw, error) in cases {
            assert_eq!(
                response(raw, Method::Get).unwrap_err(),
                error,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let huge = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", u64::MAX);
        assert_eq!(
            response(huge.as_bytes(), Method::Get).unwrap_err(),
            HttpError::BadContentLength
        );
        let many: String = (0..9).map(|i| format!("x-{i}: y\r\n")).collect();
        let many = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert_eq!(
            response(many.as_bytes(), Method::Get).unwrap_err(),
            HttpError::TooManyHeaders
        );
        let long = format!("HTTP/1.1 200 OK\r\nx: {}\r\n\r\n", "a".repeat(1024));
        assert_eq!(
            response(long.as_bytes(), Method::Get).unwrap_err(),
            HttpError::HeadTooLarge
        );
        // Exactly at the limit is fine.
        let fill = 1024 - "HTTP/1.1 200 OK\r\nx: \r\n\r\n".len();
        let at_limit = format!("HTTP/1.1 200 OK\r\nx: {}\r\n\r\n", "a".repeat(fill));
        assert_eq!(response(at_limit.as_bytes(), Method::Head).unwrap().1, 1024);
    }

    /// Decodes the body after `head` delivered in `chunks`: (body, bytes left after it, done).
    fn body_chunks(
        framing: ResponseFraming,
        chunks: &[&[u8]],
    ) -> Result<(Vec<u8>, Vec<u8>, bool), HttpError> {
        let mut decoder = BodyDecoder::new(framing, 100);
        let (mut input, mut body) = (Vec::new(), Vec::new());
        for chunk in chunks {
            input.extend_from_slice(chunk);
            let used = decoder.decode(&input, &mut body)?;
            input.drain(..used);
        }
        Ok((body, input, decoder.is_done()))
    }

    /// What a body decoder made of its input: (body, bytes left after it, done).
    type Decoded<'a> = Result<(&'a [u8], &'a [u8], bool), HttpError>;

    #[test]
    fn response_bodies_at_every_split() {
        let cases: &[(ResponseFraming, &[u8], Decoded<'_>)] = &[
            (
                ResponseFraming::Length(3),
                b"abcNEXT",
                Ok((b"abc", b"NEXT", true)),
            ),
            (ResponseFraming::Length(5), b"abc", Ok((b"abc", b"", false))),
            (ResponseFraming::Empty, b"NEXT", Ok((b"", b"NEXT", true))),
            (
                ResponseFraming::Chunked,
                b"3\r\nabc\r\n0\r\n\r\nNEXT",
                Ok((b"abc", b"NEXT", true)),
            ),
            (
                ResponseFraming::UntilClose,
                b"all of it",
                Ok((b"all of it", b"", false)),
            ),
            (
                ResponseFraming::Chunked,
                b"65\r\n",
                Err(HttpError::BodyTooLarge),
            ),
            (
                ResponseFraming::UntilClose,
                &[b'x'; 101],
                Err(HttpError::BodyTooLarge),
            ),
        ];
        for (framing, input, want) in cases {
            at_every_split(input, |chunks| {
                let got = body_chunks(*framing, chunks);
                let got = got
                    .as_ref()
                    .map(|(b, r, d)| (b.as_slice(), r.as_slice(), *d))
                    .map_err(|e| *e);
                assert_eq!(got, want.clone(), "{framing:?} {chunks:?}");
            });
        }
        assert!(BodyDecoder::new(ResponseFraming::UntilClose, 1).ends_at_close());
        assert!(!BodyDecoder::new(ResponseFraming::Length(1), 1).ends_at_close());
    }

    #[test]
    fn request_heads_round_trip_through_the_server_parser() {
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            "POST",
            "/mcp",
            "127.0.0.1:8080",
            &[("content-type", "application/json")],
            Some(2),
        );
        out.extend_from_slice(b"{}");
        assert!(out.starts_with(b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n"));
        let (head, used) = RequestHead::parse(&out, &Limits::default())
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!(head.method(), Method::Post);
        assert_eq!(head.authority(), Some("127.0.0.1:8080"));
        assert_eq!(head.header_str("content-type"), Some("application/json"));
        assert_eq!(head.framing(), BodyFraming::Length(2));
        assert_eq!(&out[used..], b"{}");
        let mut out = Vec::new();
        write_request_head(&mut out, "GET", "/", "x", &[], None);
        assert_eq!(out, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    }
}
