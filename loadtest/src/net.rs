//! Socket plumbing shared by the scenarios: reads through one scratch buffer
//! per shard (as the server does), deadlines, the HTTP/1.1 client side
//! (response heads with httparse, Content-Length and chunked bodies) and the
//! WebSocket opening handshake.

use crate::cli::Target;
use glommio::net::TcpStream;
use ringmcp::proto::http1::ChunkedDecoder;
use std::fmt;
use std::io;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Largest response head accepted.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Largest response body accepted (a misbehaving server cannot make us buffer more).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Why a connection step failed; `kind()` names it for the error counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// A socket error.
    Io(io::ErrorKind),
    /// The peer closed the connection.
    Eof,
    /// A deadline passed.
    Timeout,
    /// An HTTP status other than the expected one.
    Status(u16),
    /// The peer broke the protocol (bad head, bad frame, bad JSON-RPC...).
    Protocol(&'static str),
    /// A WebSocket Close frame arrived with this code (0: no code).
    Closed(u16),
}

impl NetError {
    /// The error-count key.
    pub fn kind(&self) -> String {
        match self {
            NetError::Io(kind) => format!("io:{kind:?}"),
            NetError::Eof => "eof".to_owned(),
            NetError::Timeout => "timeout".to_owned(),
            NetError::Status(s) => format!("http_{s}"),
            NetError::Protocol(what) => format!("protocol:{what}"),
            NetError::Closed(code) => format!("ws_close_{code}"),
        }
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind())
    }
}

impl From<io::Error> for NetError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::TimedOut {
            NetError::Timeout
        } else {
            NetError::Io(e.kind())
        }
    }
}

impl From<glommio::GlommioError<()>> for NetError {
    fn from(e: glommio::GlommioError<()>) -> Self {
        NetError::from(io::Error::from(e))
    }
}

/// Reads through the shard's scratch buffer, as the server does.
pub use ringmcp::shard::io::poll_read_into;

/// Writes through the server's flush: `Ready(Ok(n))` after any progress (`out` may still
/// hold bytes), `Pending` when the socket took nothing.
pub use ringmcp::shard::io::poll_flush;

/// The server's deadline timer: one reactor registration kept across resets.
pub use ringmcp::shard::io::Deadline;

/// Sleeps until `at` (returns at once if it passed).
pub async fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        glommio::timer::sleep(at - now).await;
    }
}

/// Connects with a timeout, with Nagle off (requests are small and latency-bound).
pub async fn connect(target: &Target, timeout: Duration) -> Result<TcpStream, NetError> {
    let stream = TcpStream::connect_timeout(target.addr, timeout).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The server's busy seconds so far, summed over its shards: one `GET` of its metrics endpoint
/// (`--server-metrics`, at the phase points; the calling shard's connections keep running
/// meanwhile). None if it cannot be read within two seconds or has no such counter.
pub async fn server_busy_seconds(metrics: &Target) -> Option<f64> {
    let timeout = Duration::from_secs(2);
    let deadline = Instant::now() + timeout;
    let mut conn = Conn::new(connect(metrics, timeout).await.ok()?);
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        metrics.path, metrics.host
    )
    .into_bytes();
    conn.write_all(&mut request, deadline).await.ok()?;
    let head = conn.read_head(deadline).await.ok()?;
    if head.status != 200 {
        return None;
    }
    let body = conn.read_body(&head, deadline).await.ok()?;
    crate::sys::parse_busy_seconds(std::str::from_utf8(&body).ok()?)
}

/// A connection with an input buffer: the HTTP client side and the WebSocket handshake.
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read and not yet used.
    pub inbuf: Vec<u8>,
    /// Bytes read in total.
    pub bytes_in: u64,
    /// Bytes written in total.
    pub bytes_out: u64,
}

impl Conn {
    /// Wraps a connected stream.
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            inbuf: Vec::new(),
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    /// Reads once (appending to `inbuf`), failing at `deadline` or on end of stream.
    pub async fn fill(&mut self, deadline: Instant) -> Result<usize, NetError> {
        let mut timer = Deadline::at(deadline);
        let (stream, inbuf) = (&mut self.stream, &mut self.inbuf);
        let n = std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = poll_read_into(stream, cx, inbuf) {
                return Poll::Ready(r.map_err(NetError::from));
            }
            timer.poll_expired(cx).map(|()| Err(NetError::Timeout))
        })
        .await?;
        if n == 0 {
            return Err(NetError::Eof);
        }
        self.bytes_in += n as u64;
        Ok(n)
    }

    /// Writes all of `out` (emptying it) by `deadline`.
    pub async fn write_all(
        &mut self,
        out: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<(), NetError> {
        let mut timer = Deadline::at(deadline);
        let stream = &mut self.stream;
        let len = out.len() as u64;
        std::future::poll_fn(|cx| loop {
            match poll_flush(stream, cx, out) {
                Poll::Ready(Ok(_)) if out.is_empty() => return Poll::Ready(Ok(())),
                // Progress, but the socket is full: poll again to register for writability.
                Poll::Ready(Ok(_)) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(NetError::from(e))),
                Poll::Pending => return timer.poll_expired(cx).map(|()| Err(NetError::Timeout)),
            }
        })
        .await?;
        self.bytes_out += len;
        Ok(())
    }

    /// Reads one response head, consuming it from `inbuf`.
    pub async fn read_head(&mut self, deadline: Instant) -> Result<ResponseHead, NetError> {
        loop {
            if let Some((head, used)) = parse_response_head(&self.inbuf)? {
                self.inbuf.drain(..used);
                // 1xx other than 101 are interim: skip them (RFC 9110 15.2).
                if (100..200).contains(&head.status) && head.status != 101 {
                    continue;
                }
                return Ok(head);
            }
            self.fill(deadline).await?;
        }
    }

    /// Reads a whole (non-streaming) response body.
    pub async fn read_body(
        &mut self,
        head: &ResponseHead,
        deadline: Instant,
    ) -> Result<Vec<u8>, NetError> {
        let mut reader = BodyReader::for_head(head);
        let mut body = Vec::new();
        while !self.body_step(&mut reader, &mut body, deadline).await? {}
        Ok(body)
    }

    /// Moves decoded body bytes into `body`, reading once if nothing was decodable.
    /// True once the body is complete.
    pub async fn body_step(
        &mut self,
        reader: &mut BodyReader,
        body: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<bool, NetError> {
        let before = body.len();
        let done = reader.decode(&mut self.inbuf, body)?;
        if done {
            return Ok(true);
        }
        if body.len() == before {
            match self.fill(deadline).await {
                Ok(_) => {}
                Err(NetError::Eof) if matches!(reader, BodyReader::UntilEof) => return Ok(true),
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

/// How a response body is delimited.
#[derive(Debug)]
pub enum BodyReader {
    /// `Content-Length`: bytes still to come.
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked(ChunkedDecoder),
    /// Neither: the body ends with the connection.
    UntilEof,
}

impl BodyReader {
    /// The reader a response head calls for.
    pub fn for_head(head: &ResponseHead) -> BodyReader {
        if head.status == 101 || head.status == 204 || head.status == 304 {
            BodyReader::Length(0)
        } else if head.chunked {
            BodyReader::Chunked(ChunkedDecoder::new(MAX_BODY_BYTES))
        } else if let Some(n) = head.content_length {
            BodyReader::Length(n)
        } else {
            BodyReader::UntilEof
        }
    }

    /// Moves what `input` holds of the body into `body`; true when the body is complete.
    pub fn decode(&mut self, input: &mut Vec<u8>, body: &mut Vec<u8>) -> Result<bool, NetError> {
        match self {
            BodyReader::Length(remaining) => {
                let take = (*remaining).min(input.len());
                body.extend_from_slice(&input[..take]);
                input.drain(..take);
                *remaining -= take;
                Ok(*remaining == 0)
            }
            BodyReader::Chunked(decoder) => {
                let used = decoder
                    .decode(input, body)
                    .map_err(|_| NetError::Protocol("bad chunked body"))?;
                input.drain(..used);
                Ok(decoder.is_done())
            }
            BodyReader::UntilEof => {
                if body.len() + input.len() > MAX_BODY_BYTES {
                    return Err(NetError::Protocol("body too large"));
                }
                body.append(input);
                Ok(false)
            }
        }
    }
}

/// The parts of a response head the scenarios use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// `Content-Type` media type, lowercased, parameters dropped.
    pub media_type: Option<String>,
    /// `Content-Length`.
    pub content_length: Option<usize>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `Mcp-Session-Id`.
    pub session_id: Option<String>,
    /// `Sec-WebSocket-Accept`.
    pub ws_accept: Option<String>,
    /// `Sec-WebSocket-Protocol`.
    pub ws_protocol: Option<String>,
    /// `Connection: close`.
    pub close: bool,
}

impl ResponseHead {
    /// Whether the body is an SSE stream.
    pub fn is_sse(&self) -> bool {
        self.media_type.as_deref() == Some("text/event-stream")
    }
}

/// Parses a response head with httparse: `Ok(None)` while incomplete.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, NetError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let used = match response.parse(buf) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(NetError::Protocol("response head too large"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(NetError::Protocol("bad response head")),
    };
    let mut head = ResponseHead {
        status: response.code.unwrap_or(0),
        ..ResponseHead::default()
    };
    for h in response.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            continue;
        };
        let value = value.trim();
        let name = h.name;
        if name.eq_ignore_ascii_case("content-type") {
            head.media_type = value
                .split(';')
                .next()
                .map(|t| t.trim().to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(
                value
                    .parse()
                    .map_err(|_| NetError::Protocol("bad content-length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("mcp-session-id") {
            head.session_id = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            head.ws_accept = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            head.ws_protocol = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("connection") {
            head.close |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
    }
    if head.content_length.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(NetError::Protocol("body too large"));
    }
    Ok(Some((head, used)))
}

/// Standard base64 of `bytes`, padded.
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs the WebSocket opening handshake (RFC 6455 4.1) on `conn`, offering `subprotocol`.
/// Bytes the server sent after its 101 stay in `conn.inbuf`.
pub async fn ws_handshake(
    conn: &mut Conn,
    target: &Target,
    subprotocol: Option<&str>,
    deadline: Instant,
) -> Result<(), NetError> {
    let key = base64(&fastrand::u128(..).to_le_bytes());
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
        target.path, target.host
    );
    if let Some(p) = subprotocol {
        request.push_str("Sec-WebSocket-Protocol: ");
        request.push_str(p);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    conn.write_all(&mut request.into_bytes(), deadline).await?;
    let head = conn.read_head(deadline).await?;
    if head.status != 101 {
        return Err(NetError::Status(head.status));
    }
    // 4.1: "If the response lacks a |Sec-WebSocket-Accept| header field or the
    // |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of the
    // concatenation of the |Sec-WebSocket-Key| ... the client MUST _Fail the WebSocket Connection_."
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    if head.ws_accept.as_deref() != Some(expected.as_str()) {
        return Err(NetError::Protocol("bad Sec-WebSocket-Accept"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `response` to one connection on a loopback port; returns the endpoint.
    fn serve_once(response: &'static str) -> Target {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut request = [0u8; 1024];
                let _ = conn.read(&mut request);
                let _ = conn.write_all(response.as_bytes());
            }
        });
        Target::parse(&format!("http://127.0.0.1:{port}/metrics")).expect("target")
    }

    #[test]
    fn server_busy_seconds_reads_plain_and_chunked_bodies_and_refuses_the_rest() {
        glommio::LocalExecutor::default().run(async {
            let plain = serve_once(
                "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n\
                 ringmcp_shard_busy_seconds_total{s=\"0\"} 2\n",
            );
            assert_eq!(server_busy_seconds(&plain).await, Some(2.0));
            let chunked = serve_once(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                 14\r\nringmcp_shard_busy_s\r\n11\r\neconds_total 0.5\n\r\n0\r\n\r\n",
            );
            assert_eq!(server_busy_seconds(&chunked).await, Some(0.5));
            let truncated = serve_once(
                "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nringmcp_shard_busy_seconds_total 1\n",
            );
            assert_eq!(server_busy_seconds(&truncated).await, None);
            let refused = serve_once(
                "HTTP/1.1 404 Not Found\r\nContent-Length: 35\r\n\r\nringmcp_shard_busy_seconds_total 1\n",
            );
            assert_eq!(server_busy_seconds(&refused).await, None);
        });
    }

    #[test]
    fn base64_known_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        // RFC 6455 1.3 sample nonce.
        assert_eq!(base64(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    }

    #[test]
    fn response_heads() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\n\
                    Transfer-Encoding: chunked\r\nMcp-Session-Id: 0-abc\r\n\r\nrest";
        let (head, used) = parse_response_head(raw).expect("ok").expect("complete");
        assert_eq!(used, raw.len() - 4);
        assert_eq!(head.status, 200);
        assert!(head.is_sse());
        assert!(head.chunked);
        assert_eq!(head.session_id.as_deref(), Some("0-abc"));

        // Incomplete at every cut.
        for cut in 0..used {
            assert_eq!(parse_response_head(&raw[..cut]), Ok(None), "cut {cut}");
        }

        let raw =
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\nconnection: close\r\n\r\n";
        let (head, _) = parse_response_head(raw).expect("ok").expect("complete");
        assert_eq!(head.status, 503);
        assert_eq!(head.content_length, Some(5));
        assert!(head.close);

        assert!(parse_response_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        assert!(parse_response_head(b"garbage\r\n\r\n").is_err());
        let huge = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", u64::MAX);
        assert!(parse_response_head(huge.as_bytes()).is_err());
    }

    #[test]
    fn body_readers() {
        let head = ResponseHead {
            status: 200,
            content_length: Some(3),
            ..ResponseHead::default()
        };
        let mut r = BodyReader::for_head(&head);
        let mut input = b"ab".to_vec();
        let mut body = Vec::new();
        assert_eq!(r.decode(&mut input, &mut body), Ok(false));
        let mut input = b"cNEXT".to_vec();
        assert_eq!(r.decode(&mut input, &mut body), Ok(true));
        assert_eq!(body, b"abc");
        assert_eq!(input, b"NEXT");

        let head = ResponseHead {
            status: 200,
            chunked: true,
            ..ResponseHead::default()
        };
        let mut r = BodyReader::for_head(&head);
        let mut input = b"3\r\nabc\r\n0\r\n\r\nNEXT".to_vec();
        let mut body = Vec::new();
        assert_eq!(r.decode(&mut input, &mut body), Ok(true));
        assert_eq!(body, b"abc");
        assert_eq!(input, b"NEXT");
    }
}
