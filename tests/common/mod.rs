//! Shared pieces of the integration tests: an in-process server on an
//! ephemeral 127.0.0.1 port, a raw HTTP client, and raw WebSocket frames.
#![allow(dead_code)] // each test binary uses a different subset

// The binary's fixture set, compiled into the tests from the same file.
#[path = "../../src/fixtures.rs"]
mod fixtures;

use ringmcp::proto::ws::{encode_frame, OpCode};
use ringmcp::{Config, Server, ServerHandle};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A server that stops when dropped.
pub struct TestServer {
    handle: Option<ServerHandle>,
    pub addr: SocketAddr,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
            let _ = handle.join();
        }
    }
}

impl TestServer {
    /// Reloads the TLS certificate and key from their files, as SIGHUP does.
    pub fn reload_tls(&self) -> Result<bool, ringmcp::ServerError> {
        self.handle.as_ref().unwrap().tls_reloader().reload()
    }

    /// Asks the server to drain (without waiting for it to finish).
    pub fn begin_shutdown(&self) {
        if let Some(handle) = &self.handle {
            handle.shutdown();
        }
    }
}

/// Starts a server on 127.0.0.1:0 with `/echo` on, after `edit` tweaks the config.
pub fn server(edit: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        shards: 1,
        echo: true,
        shutdown_grace_ms: 200,
        ..Config::default()
    };
    edit(&mut config);
    let handle = Server::with_config(config, fixtures::builtin(std::time::Duration::ZERO).build())
        .start()
        .expect("server starts");
    TestServer {
        addr: handle.local_addr(),
        handle: Some(handle),
    }
}

/// A socket for clients that do not retry `EINTR` themselves (tungstenite):
/// the test process hosts glommio shards too, and the client threads of such
/// a process see interrupted system calls now and then.
pub struct Sock(pub TcpStream);

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A connected socket with a read timeout, so a broken server fails the test instead of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends raw bytes and reads one HTTP response (head plus Content-Length body).
pub fn http(addr: SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = connect(addr);
    s.write_all(request).unwrap();
    read_response(&mut s)
}

/// Reads one HTTP response: status, head text, body.
pub fn read_response(s: &mut impl Read) -> (u16, String, Vec<u8>) {
    let (status, head) = read_head(s);
    let length = header(&head, "content-length").map_or(0, |v| v.parse::<usize>().unwrap());
    let mut body = vec![0; length];
    s.read_exact(&mut body).unwrap();
    (status, head, body)
}

/// Reads one response head (status, head text) and nothing after it: the whole of a response
/// to HEAD, or an interim response.
pub fn read_head(s: &mut impl Read) -> (u16, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => panic!(
                "connection ended inside a response head: {other:?} after {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
    let head = String::from_utf8(buf).unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head)
}

/// A valid upgrade request for `path`, with extra header lines.
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// Opens a raw WebSocket on `path` and returns the socket after the 101.
pub fn raw_ws(addr: SocketAddr, path: &str) -> TcpStream {
    let mut s = connect(addr);
    s.write_all(upgrade_request(path, "").as_bytes()).unwrap();
    let (status, head, _) = read_response(&mut s);
    assert_eq!(status, 101, "{head}");
    s
}

/// A masked client frame.
pub fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(
        &mut out,
        opcode,
        fin,
        payload,
        Some([0x12, 0x34, 0x56, 0x78]),
    );
    out
}

/// Reads one unmasked server frame: (opcode byte, fin, payload).
pub fn read_frame(s: &mut TcpStream) -> (u8, bool, Vec<u8>) {
    let (b0, payload) = read_raw_frame(s);
    (b0 & 0x0f, b0 & 0x80 != 0, payload)
}

/// Reads one unmasked server frame: (its first byte: FIN, RSV1-3 and opcode; payload).
pub fn read_raw_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[1] & 0x80, 0, "server frames are never masked");
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).unwrap();
    (head[0], payload)
}

/// Reads frames until a Close and returns its code (None for an empty Close).
pub fn read_close_code(s: &mut TcpStream) -> Option<u16> {
    loop {
        let (opcode, _, payload) = read_frame(s);
        if opcode == 0x8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
    }
}

/// True once the server closed the TCP connection (EOF or reset) within the read timeout.
pub fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// A JSON POST to `/mcp` as a Streamable HTTP client sends it.
pub fn mcp_post(body: &str, session: Option<&str>, extra: &str) -> String {
    let session = session
        .map(|s| format!("Mcp-Session-Id: {s}\r\n"))
        .unwrap_or_default();
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n{session}{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The value of a response header (case-insensitive name).
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Initializes a Streamable HTTP session and returns its id.
pub fn http_session(addr: SocketAddr) -> String {
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{},"elicitation":{}},"clientInfo":{"name":"t","version":"1"}}}"#;
    let (status, head, body) = http(addr, mcp_post(init, None, "").as_bytes());
    assert_eq!(status, 200, "{head}");
    let id = header(&head, "mcp-session-id")
        .expect("session id")
        .to_string();
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["result"]["protocolVersion"], "2025-11-25");
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(http(addr, mcp_post(note, Some(&id), "").as_bytes()).0, 202);
    id
}

/// Reads a chunked SSE response body event by event.
pub struct SseReader {
    socket: TcpStream,
    decoder: ringmcp::proto::sse::SseDecoder,
    chunked: Vec<u8>,
    body: Vec<u8>,
    /// Every body byte received, for checks on fields that dispatch no event (`retry:`).
    pub raw: Vec<u8>,
    pub ended: bool,
}

impl SseReader {
    /// Reads the response head and checks it is an SSE stream.
    pub fn open(mut socket: TcpStream) -> (SseReader, String) {
        let (status, head, _) = read_response(&mut socket);
        assert_eq!(status, 200, "{head}");
        assert_eq!(
            header(&head, "content-type"),
            Some("text/event-stream"),
            "{head}"
        );
        (SseReader::after_head(socket), head)
    }

    /// Reads the events of a response whose head was read already.
    pub fn after_head(socket: TcpStream) -> SseReader {
        SseReader {
            socket,
            decoder: ringmcp::proto::sse::SseDecoder::new(1 << 20),
            chunked: Vec::new(),
            body: Vec::new(),
            raw: Vec::new(),
            ended: false,
        }
    }

    /// The next event, or None once the response ended.
    pub fn next(&mut self) -> Option<ringmcp::proto::sse::SseEvent> {
        use ringmcp::proto::Status;
        loop {
            if !self.body.is_empty() {
                match self.decoder.decode(&self.body).unwrap() {
                    Status::Complete(event, used) => {
                        self.body.drain(..used);
                        return Some(event);
                    }
                    Status::Partial => self.body.clear(),
                }
            }
            if self.ended {
                return None;
            }
            self.unchunk_more();
        }
    }

    fn unchunk_more(&mut self) {
        loop {
            if let Some(end) = self.chunked.windows(2).position(|w| w == b"\r\n") {
                let size =
                    usize::from_str_radix(std::str::from_utf8(&self.chunked[..end]).unwrap(), 16)
                        .unwrap();
                if size == 0 {
                    self.ended = true;
                    return;
                }
                if self.chunked.len() >= end + 2 + size + 2 {
                    let data = &self.chunked[end + 2..end + 2 + size];
                    self.body.extend_from_slice(data);
                    self.raw.extend_from_slice(data);
                    self.chunked.drain(..end + 2 + size + 2);
                    return;
                }
            }
            let mut buf = [0u8; 4096];
            match self.socket.read(&mut buf) {
                Ok(0) => {
                    self.ended = true;
                    return;
                }
                Ok(n) => self.chunked.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("SSE read failed: {e}"),
            }
        }
    }

    /// The JSON of the next event that carries data, skipping priming events.
    pub fn next_json(&mut self) -> Option<(Option<String>, serde_json::Value)> {
        while let Some(event) = self.next() {
            if !event.data.trim().is_empty() {
                return Some((event.id, serde_json::from_str(&event.data).unwrap()));
            }
        }
        None
    }
}
