//! Graceful shutdown of the real binary: SIGTERM drains, a second signal exits at once.

mod common;

use common::*;
use ringmcp::proto::ws::OpCode;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `ringmcp` on an ephemeral port and returns it with its address.
fn spawn(extra: &[&str]) -> (Child, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringmcp"))
        .args(["--bind", "127.0.0.1:0", "--shards", "1", "--echo"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split_whitespace()
        .nth(3)
        .expect("listening line")
        .parse()
        .unwrap();
    (child, addr)
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
}

fn wait(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sigterm_drains_websockets_sse_and_in_flight_requests() {
    let (mut child, addr) = spawn(&["--shutdown-grace-ms", "5000"]);
    let mut ws = raw_ws(addr, "/echo");
    let id = http_session(addr);
    let mut get = connect(addr);
    let open = format!("GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nMcp-Session-Id: {id}\r\n\r\n");
    get.write_all(open.as_bytes()).unwrap();
    let (mut stream, _) = SseReader::open(get);
    stream.next().unwrap(); // priming event

    // An in-flight call that needs ~300 ms more; it must finish within the grace period.
    let slow = r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"stream","arguments":{"count":3,"interval_ms":100},"_meta":{"progressToken":"t"}}}"#;
    let mut post = connect(addr);
    post.write_all(mcp_post(slow, Some(&id), "").as_bytes())
        .unwrap();
    let (mut call, _) = SseReader::open(post);
    call.next().unwrap(); // priming event: the call is running

    // A keep-alive connection waiting for its next request is closed at once, not at its idle
    // timeout or the grace period's end (5 s).
    let mut idle = connect(addr);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 512];
    assert!(idle.read(&mut answer).unwrap() > 0, "healthz answered");
    signal(&child, libc::SIGTERM);
    idle.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    let closed = idle.read_to_end(&mut Vec::new());
    assert!(
        closed.is_ok(),
        "closed on the stop, not left open: {closed:?}"
    );
    assert_eq!(read_close_code(&mut ws), Some(1001), "WebSockets get 1001");
    ws.write_all(&client_frame(OpCode::Close, true, &1001u16.to_be_bytes()))
        .unwrap();
    while stream.next().is_some() {}
    let text = String::from_utf8_lossy(&stream.raw);
    // The priming event carries one retry:; the shutdown adds the second, then ends the stream.
    assert_eq!(text.matches("retry: ").count(), 2, "{text:?}");
    let mut result = None;
    while let Some((_, message)) = call.next_json() {
        if message.get("result").is_some() {
            result = Some(message);
        }
    }
    assert_eq!(result.expect("in-flight call finishes")["id"], 9);
    let status = wait(&mut child, Duration::from_secs(10)).expect("exits after draining");
    assert!(status.success(), "{status}");
}

#[test]
fn a_second_signal_exits_at_once() {
    let (mut child, addr) = spawn(&["--shutdown-grace-ms", "60000"]);
    let id = http_session(addr);
    // A call that would keep the drain busy for a minute.
    let long = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"stream","arguments":{"count":60,"interval_ms":1000}}}"#;
    let mut post = connect(addr);
    post.write_all(mcp_post(long, Some(&id), "").as_bytes())
        .unwrap();
    let (mut call, _) = SseReader::open(post);
    call.next().unwrap();
    signal(&child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "still draining");
    signal(&child, libc::SIGTERM);
    let status = wait(&mut child, Duration::from_secs(5)).expect("second signal exits at once");
    assert_eq!(status.code(), Some(130));
}
