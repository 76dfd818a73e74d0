//! Socket plumbing shared by the scenarios: reads with the server's receive path
//! (multishot receives where the kernel has them, `ringmcp::shard::io`), deadlines, TLS for `wss://` and `https://`
//! targets (the server's sans-IO session in its client role), and the I/O around
//! ringmcp's client-role codecs: HTTP/1.1 response heads and bodies, the WebSocket
//! opening handshake.

use crate::cli::Target;
use crate::sys::ServerGauges;
use glommio::net::TcpStream;
use ringmcp::proto::http1::{self, BodyDecoder, HttpError, Limits, Method, ResponseHead};
use ringmcp::proto::ws::handshake::{ClientHandshake, ClientHandshakeError};
use ringmcp::proto::ws::PerMessageDeflate;
use ringmcp::proto::Status;
use ringmcp::shard::io::Handshake;
use ringmcp::transport::tls::TlsSession;
use rustls::client::Resumption;
use rustls::ClientConfig;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// What a response may be: a 16 KiB head of 64 field lines, a body of 64 MiB (a misbehaving
/// server cannot make us buffer more).
const LIMITS: Limits = Limits {
    max_head_bytes: 16 * 1024,
    max_headers: 64,
    max_uri_bytes: 0,
    max_body_bytes: 64 * 1024 * 1024,
};

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
    /// The peer broke the protocol (bad frame, bad JSON-RPC...).
    Protocol(&'static str),
    /// The response broke an HTTP/1.1 rule.
    Http(HttpError),
    /// The server's answer to the WebSocket opening handshake broke a rule.
    Handshake(ClientHandshakeError),
    /// A WebSocket Close frame arrived with this code (0: no code).
    Closed(u16),
    /// The server answered with this JSON-RPC error code instead.
    JsonRpc(i64),
    /// The TLS handshake did not complete: see [`TlsFailure`].
    Tls(TlsFailure),
    /// A stream cut off by a failure delivered nothing again (no event, no result, no
    /// -31000) within `--patience`.
    Hung,
}

/// Why a TLS handshake did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// One side broke a TLS rule or refused the other, e.g. a certificate that --tls-ca does
    /// not verify, or a server that does not speak TLS (our alert was sent).
    Refused,
    /// Not done within the connect timeout.
    TimedOut,
    /// The server closed the connection during the handshake.
    Closed,
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
            NetError::Http(e) => format!("protocol:http:{e:?}"),
            NetError::Handshake(e) => format!("protocol:{e}"),
            NetError::Closed(code) => format!("ws_close_{code}"),
            NetError::JsonRpc(code) => format!("jsonrpc_{code}"),
            NetError::Tls(TlsFailure::Refused) => "tls:handshake_refused".to_owned(),
            NetError::Tls(TlsFailure::TimedOut) => "tls:handshake_timeout".to_owned(),
            NetError::Tls(TlsFailure::Closed) => "tls:handshake_closed".to_owned(),
            NetError::Hung => "hung".to_owned(),
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

impl From<HttpError> for NetError {
    fn from(e: HttpError) -> Self {
        NetError::Http(e)
    }
}

impl From<glommio::GlommioError<()>> for NetError {
    fn from(e: glommio::GlommioError<()>) -> Self {
        NetError::from(io::Error::from(e))
    }
}

/// The server's socket: reads with the shard's receive path, writes with `Ready(Ok(n))`
/// after any progress (`out` may still hold bytes) and `Pending` when the socket took nothing.
pub use ringmcp::shard::io::Socket;

/// The server's deadline timer: one reactor registration kept across resets.
pub use ringmcp::shard::io::Deadline;

/// A precise timer for the open-loop schedule: a glommio timer armed for an absolute instant.
/// The server's [`Deadline`] is a coarse per-shard wheel (a deadline fires up to 10 ms late),
/// fine for timeouts but not for when a request is due: it would add up to a tick of send lag
/// to every gap in the schedule. One per load shard's sender, so its size does not matter.
pub struct ScheduleTimer {
    timer: glommio::timer::Timer,
    at: Instant,
    /// Whether the timer holds the task's waker (the reactor drops it when the timer fires).
    registered: bool,
}

impl ScheduleTimer {
    /// A timer that fires at `at`.
    pub fn at(at: Instant) -> ScheduleTimer {
        ScheduleTimer {
            timer: glommio::timer::Timer::new(at.saturating_duration_since(Instant::now())),
            at,
            registered: false,
        }
    }

    /// Re-arms for `at` (no-op when unchanged).
    pub fn reset(&mut self, at: Instant) {
        if at != self.at {
            self.at = at;
            self.registered = false;
            let left = at.saturating_duration_since(Instant::now());
            self.timer.reset(left.max(Duration::from_micros(1)));
        }
    }

    /// Ready once `at` passed.
    pub fn poll_expired(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        use std::future::Future;
        if Instant::now() >= self.at {
            self.registered = false;
            return Poll::Ready(());
        }
        if !self.registered {
            if std::pin::Pin::new(&mut self.timer).poll(cx).is_ready() {
                return Poll::Ready(());
            }
            self.registered = true;
        }
        Poll::Pending
    }
}

/// Sleeps until `at` (returns at once if it passed).
pub async fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        glommio::timer::sleep(at - now).await;
    }
}

/// The client side of TLS 1.3 and 1.2 for `wss://` and `https://` targets: the server's
/// certificate verified against the PEM roots `ca_pem` (there is no unverified mode), ALPN
/// `http/1.1`, and no session resumption, so every connection pays a full handshake as a
/// distinct client would (and no shard takes the session cache's lock).
pub fn tls_client_config(ca_pem: &[u8]) -> Result<Arc<ClientConfig>, String> {
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let mut config = ringmcp::transport::tls::client_config(ca_pem, &versions)?;
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Connects with a timeout, with Nagle off (requests are small and latency-bound); to a TLS
/// target, also completes the handshake within the same timeout.
pub async fn connect(target: &Target, timeout: Duration) -> Result<Socket, NetError> {
    let deadline = Instant::now() + timeout;
    let stream = TcpStream::connect_timeout(target.addr, timeout).await?;
    let _ = stream.set_nodelay(true);
    let Some(tls) = &target.tls else {
        return Ok(Socket::new(stream, None));
    };
    // Only a configuration rustls cannot use fails here, and every connection would meet it.
    let session = TlsSession::client(Arc::clone(&tls.config), tls.name.clone())
        .map_err(|_| NetError::Tls(TlsFailure::Refused))?;
    let mut socket = Socket::new(stream, Some(session));
    let mut early = Vec::new();
    match socket.handshake(&mut early, deadline).await {
        Handshake::Done => {}
        Handshake::Failed => return Err(NetError::Tls(TlsFailure::Refused)),
        Handshake::TimedOut => return Err(NetError::Tls(TlsFailure::TimedOut)),
        Handshake::Closed => return Err(NetError::Tls(TlsFailure::Closed)),
    }
    // Every exchange starts with our request, so the server has nothing to say yet.
    if !early.is_empty() {
        return Err(NetError::Protocol("server spoke before the request"));
    }
    Ok(socket)
}

/// The server's busy seconds so far and its heap in use: one `GET` of its metrics endpoint
/// (`--server-metrics`, at the phase points; the calling shard's connections keep running
/// meanwhile). None if it cannot be read within two seconds.
pub async fn server_gauges(metrics: &Target) -> Option<ServerGauges> {
    let timeout = Duration::from_secs(2);
    let deadline = Instant::now() + timeout;
    let mut conn = Conn::new(connect(metrics, timeout).await.ok()?);
    let mut request = Vec::new();
    http1::write_request_head(
        &mut request,
        "GET",
        &metrics.path,
        &metrics.host,
        &[("connection", "close")],
        None,
    );
    conn.write_all(&mut request, deadline).await.ok()?;
    let head = conn.read_head(Method::Get, deadline).await.ok()?;
    if head.status() != 200 {
        return None;
    }
    let body = conn.read_body(&head, deadline).await.ok()?;
    Some(crate::sys::parse_server_gauges(
        std::str::from_utf8(&body).ok()?,
    ))
}

/// A connection with an input buffer: the HTTP client side and the WebSocket handshake.
pub struct Conn {
    /// The socket.
    pub stream: Socket,
    /// Bytes read and not yet used.
    pub inbuf: Vec<u8>,
    /// Bytes read in total.
    pub bytes_in: u64,
    /// Bytes written in total.
    pub bytes_out: u64,
}

impl Conn {
    /// Wraps a connected stream.
    pub fn new(stream: Socket) -> Conn {
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
            if let Poll::Ready(r) = stream.poll_read_into(cx, inbuf) {
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
            match stream.poll_flush(cx, out) {
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

    /// Reads the final response head to a `request` request, consuming it (and any interim
    /// response before it) from `inbuf`.
    pub async fn read_head(
        &mut self,
        request: Method,
        deadline: Instant,
    ) -> Result<ResponseHead, NetError> {
        loop {
            if let Status::Complete(head, used) =
                ResponseHead::parse(&self.inbuf, &LIMITS, request)?
            {
                self.inbuf.drain(..used);
                if head.is_interim() {
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
        let mut decoder = body_decoder(head);
        let mut body = Vec::new();
        while !self.body_step(&mut decoder, &mut body, deadline).await? {}
        Ok(body)
    }

    /// Moves decoded body bytes into `body`, reading once if nothing was decodable.
    /// True once the body is complete.
    pub async fn body_step(
        &mut self,
        decoder: &mut BodyDecoder,
        body: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<bool, NetError> {
        let before = body.len();
        let used = decoder.decode(&self.inbuf, body)?;
        self.inbuf.drain(..used);
        if decoder.is_done() {
            return Ok(true);
        }
        if body.len() == before {
            match self.fill(deadline).await {
                Ok(_) => {}
                Err(NetError::Eof) if decoder.ends_at_close() => return Ok(true),
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

/// The decoder for the body `head` frames.
pub fn body_decoder(head: &ResponseHead) -> BodyDecoder {
    BodyDecoder::new(head.framing(), LIMITS.max_body_bytes)
}

/// Runs the WebSocket opening handshake (RFC 6455 4.1) on `conn`, offering `protocols` and,
/// with `deflate`, permessage-deflate; the compression agreed on. Bytes the server sent after
/// its 101 stay in `conn.inbuf`.
pub async fn ws_handshake(
    conn: &mut Conn,
    target: &Target,
    protocols: &[&str],
    deflate: bool,
    deadline: Instant,
) -> Result<Option<PerMessageDeflate>, NetError> {
    let mut handshake = ClientHandshake::new(fastrand::u128(..).to_le_bytes(), protocols);
    if deflate {
        handshake = handshake.offering_deflate();
    }
    let mut request = Vec::new();
    handshake.write_request(&mut request, &target.path, &target.host);
    conn.write_all(&mut request, deadline).await?;
    let head = conn.read_head(Method::Get, deadline).await?;
    match handshake.check(&head) {
        Ok(switched) => Ok(switched.deflate),
        Err(ClientHandshakeError::NotSwitching(status)) => Err(NetError::Status(status)),
        Err(e) => Err(NetError::Handshake(e)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Serves `response` to one connection on a loopback port; returns the endpoint.
    pub(crate) fn serve_once(response: &'static str) -> Target {
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
        Target::parse(&format!("http://127.0.0.1:{port}/metrics"), None).expect("target")
    }

    #[test]
    fn server_gauges_read_plain_and_chunked_bodies_and_refuse_the_rest() {
        let busy = |gauges: Option<ServerGauges>| gauges.and_then(|g| g.busy_seconds);
        glommio::LocalExecutor::default().run(async {
            let plain = serve_once(
                "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n\
                 ringmcp_shard_busy_seconds_total{s=\"0\"} 2\n",
            );
            assert_eq!(busy(server_gauges(&plain).await), Some(2.0));
            let chunked = serve_once(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                 14\r\nringmcp_shard_busy_s\r\n11\r\neconds_total 0.5\n\r\n0\r\n\r\n",
            );
            assert_eq!(busy(server_gauges(&chunked).await), Some(0.5));
            let truncated = serve_once(
                "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nringmcp_shard_busy_seconds_total 1\n",
            );
            assert_eq!(server_gauges(&truncated).await, None);
            let refused = serve_once(
                "HTTP/1.1 404 Not Found\r\nContent-Length: 35\r\n\r\nringmcp_shard_busy_seconds_total 1\n",
            );
            assert_eq!(server_gauges(&refused).await, None);
        });
    }

    #[test]
    fn connects_over_tls_and_names_each_way_a_handshake_fails() {
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/tls");
        let config = ringmcp::Config {
            bind: "127.0.0.1:0".parse().expect("addr"),
            shards: 1,
            shutdown_grace_ms: 200,
            tls_cert: Some(format!("{data}/server.pem").into()),
            tls_key: Some(format!("{data}/server.key").into()),
            ..ringmcp::Config::default()
        };
        let server = ringmcp::Server::with_config(config, ringmcp::Registry::builder().build())
            .start()
            .expect("server starts");
        let port = server.local_addr().port();
        let pem = |name: &str| std::fs::read(format!("{data}/{name}")).expect("test material");
        let roots = tls_client_config(&pem("ca.pem")).expect("roots");
        // A leaf as the only root: the server's certificate does not chain to it.
        let wrong = tls_client_config(&pem("renewed.pem")).expect("roots");
        // Accepts (the kernel does), never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let silent_port = silent.local_addr().expect("addr").port();
        // Accepts and hangs up at once.
        let rude = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let rude_port = rude.local_addr().expect("addr").port();
        std::thread::spawn(move || drop(rude.accept()));
        let target = |port: u16, host: &str, roots: &Arc<ClientConfig>| {
            Target::parse(&format!("https://{host}:{port}/metrics"), Some(roots)).expect("target")
        };
        glommio::LocalExecutor::default().run(async {
            // By address and by name: the leaf carries both.
            for host in ["127.0.0.1", "localhost"] {
                let metrics = target(port, host, &roots);
                let gauges = server_gauges(&metrics).await.expect("read");
                assert!(
                    gauges.busy_seconds.is_some_and(|b| b >= 0.0),
                    "{host}: {gauges:?}"
                );
                assert!(
                    gauges.heap_in_use.is_some_and(|b| b > 0),
                    "{host}: {gauges:?}"
                );
            }
            let patience = Duration::from_secs(5);
            let refused = connect(&target(port, "127.0.0.1", &wrong), patience).await;
            assert_eq!(refused.err(), Some(NetError::Tls(TlsFailure::Refused)));
            let plain = serve_once("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
            let plain = target(plain.addr.port(), "127.0.0.1", &roots);
            assert_eq!(
                connect(&plain, patience).await.err(),
                Some(NetError::Tls(TlsFailure::Refused))
            );
            let closed = connect(&target(rude_port, "127.0.0.1", &roots), patience).await;
            assert_eq!(closed.err(), Some(NetError::Tls(TlsFailure::Closed)));
            let began = Instant::now();
            let quick = Duration::from_millis(200);
            let stalled = connect(&target(silent_port, "127.0.0.1", &roots), quick).await;
            assert_eq!(stalled.err(), Some(NetError::Tls(TlsFailure::TimedOut)));
            assert!(began.elapsed() < 10 * quick, "{:?}", began.elapsed());
            assert_eq!(
                NetError::Tls(TlsFailure::TimedOut).kind(),
                "tls:handshake_timeout"
            );
        });
        drop(silent);
        server.shutdown();
        server.join().expect("server stops");
    }
}
