//! RFC 6455 behaviour of /echo and /mcp over real sockets: a tungstenite
//! client for the happy paths, raw frames for the rules a good client never breaks.

mod common;

use common::*;
use ringmcp::proto::ws::OpCode;
use std::io::Write;
use std::time::Duration;
use tungstenite::Message;

fn tungstenite_client(addr: std::net::SocketAddr, path: &str) -> tungstenite::WebSocket<Sock> {
    let stream = Sock(connect(addr));
    let (ws, response) =
        tungstenite::client::client(format!("ws://{addr}{path}"), stream).expect("handshake");
    assert_eq!(response.status(), 101);
    ws
}

#[test]
fn handshake_refusals() {
    let srv = server(|_| {});
    let wrong_version = upgrade_request("/echo", "").replace("Version: 13", "Version: 8");
    let (status, head, _) = http(srv.addr, wrong_version.as_bytes());
    assert_eq!(status, 426);
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{head}"
    );
    let bad_key = upgrade_request("/echo", "").replace("dGhlIHNhbXBsZSBub25jZQ==", "short");
    assert_eq!(http(srv.addr, bad_key.as_bytes()).0, 400);
    let no_connection = upgrade_request("/echo", "").replace("Connection: Upgrade\r\n", "");
    assert_eq!(http(srv.addr, no_connection.as_bytes()).0, 400);
    let plain_get = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_eq!(http(srv.addr, plain_get).0, 426);
    let echo_off = server(|c| c.echo = false);
    assert_eq!(
        http(echo_off.addr, upgrade_request("/echo", "").as_bytes()).0,
        404
    );
}

#[test]
fn echo_text_and_binary_with_tungstenite() {
    let srv = server(|_| {});
    let mut ws = tungstenite_client(srv.addr, "/echo");
    ws.send(Message::text("héllo")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("héllo"));
    let big = vec![7u8; 300_000];
    ws.send(Message::binary(big.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(big));
    ws.send(Message::Ping(b"p".to_vec().into())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"p".to_vec().into()));
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => break,
            Ok(_) => continue,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
}

#[test]
fn fragments_with_a_ping_between_are_reassembled() {
    let srv = server(|_| {});
    let mut s = raw_ws(srv.addr, "/echo");
    s.write_all(&client_frame(OpCode::Text, false, b"hel"))
        .unwrap();
    s.write_all(&client_frame(OpCode::Ping, true, b"mid"))
        .unwrap();
    s.write_all(&client_frame(OpCode::Continue, false, "lo ".as_bytes()))
        .unwrap();
    // A UTF-8 sequence split across fragments is fine.
    s.write_all(&client_frame(OpCode::Continue, false, &"é".as_bytes()[..1]))
        .unwrap();
    s.write_all(&client_frame(OpCode::Continue, true, &"é".as_bytes()[1..]))
        .unwrap();
    assert_eq!(read_frame(&mut s), (0xA, true, b"mid".to_vec()));
    assert_eq!(
        read_frame(&mut s),
        (0x1, true, "hello é".as_bytes().to_vec())
    );
}

#[test]
fn close_handshake_echoes_the_code() {
    let srv = server(|_| {});
    let mut s = raw_ws(srv.addr, "/echo");
    s.write_all(&client_frame(
        OpCode::Close,
        true,
        &[0x0b, 0xb8, b'b', b'y', b'e'],
    ))
    .unwrap(); // 3000
    assert_eq!(read_close_code(&mut s), Some(3000));
    assert!(closed_by_server(&mut s));
}

fn expect_close(srv: &TestServer, path: &str, frames: &[Vec<u8>], code: u16) {
    let mut s = raw_ws(srv.addr, path);
    for frame in frames {
        s.write_all(frame).unwrap();
    }
    assert_eq!(read_close_code(&mut s), Some(code));
    // We answer the server's Close so its close handshake completes cleanly.
    s.write_all(&client_frame(OpCode::Close, true, &code.to_be_bytes()))
        .unwrap();
    assert!(closed_by_server(&mut s));
}

#[test]
fn each_broken_rule_gets_its_close_code() {
    let srv = server(|c| c.max_message_bytes = 1000);
    let mut unmasked = Vec::new();
    ringmcp::proto::ws::encode_frame(&mut unmasked, OpCode::Text, true, b"hi", None);
    expect_close(&srv, "/echo", &[unmasked], 1002);
    let mut rsv = client_frame(OpCode::Text, true, b"hi");
    rsv[0] |= 0x40;
    expect_close(&srv, "/echo", &[rsv], 1002);
    expect_close(
        &srv,
        "/echo",
        &[client_frame(OpCode::Continue, true, b"x")],
        1002,
    );
    // The encoder refuses to build broken control frames, so patch valid ones.
    let mut fragmented_ping = client_frame(OpCode::Ping, true, b"x");
    fragmented_ping[0] &= 0x7f;
    expect_close(&srv, "/echo", &[fragmented_ping], 1002);
    let mut big_ping = client_frame(OpCode::Binary, true, &[0; 126]);
    big_ping[0] = 0x89;
    expect_close(&srv, "/echo", &[big_ping], 1002);
    let mut unknown = client_frame(OpCode::Text, true, b"x");
    unknown[0] = (unknown[0] & 0xf0) | 0x3;
    expect_close(&srv, "/echo", &[unknown], 1002);
    expect_close(
        &srv,
        "/echo",
        &[client_frame(OpCode::Text, true, &[0xce, 0xba, 0xff])],
        1007,
    );
    // Invalid UTF-8 split across fragments fails too, at the first bad byte.
    let split = [
        client_frame(OpCode::Text, false, &[0xce]),
        client_frame(OpCode::Continue, true, &[0x41]),
    ];
    expect_close(&srv, "/echo", &split, 1007);
    expect_close(
        &srv,
        "/echo",
        &[client_frame(OpCode::Binary, true, &[0; 1001])],
        1009,
    );
    let frags = [
        client_frame(OpCode::Binary, false, &[0; 600]),
        client_frame(OpCode::Continue, true, &[0; 600]),
    ];
    expect_close(&srv, "/echo", &frags, 1009);
    expect_close(
        &srv,
        "/echo",
        &[client_frame(OpCode::Close, true, &[0x03, 0xed])],
        1002,
    ); // 1005 is never sent
    expect_close(
        &srv,
        "/mcp",
        &[client_frame(OpCode::Binary, true, b"{}")],
        1003,
    );
}

#[test]
fn message_too_big_is_refused_from_the_header_alone() {
    let srv = server(|c| c.max_message_bytes = 1000);
    let mut s = raw_ws(srv.addr, "/echo");
    // Only the header of a 1 MB frame: the server must not wait for the payload.
    let frame = client_frame(OpCode::Binary, true, &vec![0; 1_000_000]);
    s.write_all(&frame[..14]).unwrap();
    assert_eq!(read_close_code(&mut s), Some(1009));
}

#[test]
fn unfinished_message_times_out_with_1008() {
    let srv = server(|c| c.fragment_timeout_ms = 300);
    let mut s = raw_ws(srv.addr, "/echo");
    s.write_all(&client_frame(OpCode::Text, false, b"never finished"))
        .unwrap();
    assert_eq!(read_close_code(&mut s), Some(1008));
}

#[test]
fn silent_peer_is_pinged_then_dropped() {
    let srv = server(|c| {
        c.ws_ping_interval_secs = 1;
        c.ws_pong_timeout_secs = 1;
    });
    let mut s = raw_ws(srv.addr, "/echo");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (opcode, _, _) = read_frame(&mut s);
    assert_eq!(opcode, 0x9, "server pings an idle connection");
    assert_eq!(read_close_code(&mut s), Some(1001));
}

#[test]
fn shutdown_closes_websockets_with_1001() {
    let srv = server(|c| c.shutdown_grace_ms = 2000);
    let mut s = raw_ws(srv.addr, "/echo");
    srv.begin_shutdown();
    assert_eq!(read_close_code(&mut s), Some(1001));
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_others_are_unaffected() {
    let srv = server(|c| {
        c.max_outbound_bytes = 64 * 1024;
        c.slow_reader_timeout_ms = 300;
        c.close_timeout_ms = 300;
    });
    let mut slow = raw_ws(srv.addr, "/echo");
    let mut writer = slow.try_clone().unwrap();
    // 16 MiB of echo requests, never reading the echoes: the kernel buffers fill, then our
    // outbound buffer reaches its bound and the server stops reading, then drops us.
    let flood = std::thread::spawn(move || {
        let frame = client_frame(OpCode::Binary, true, &[7; 1024]);
        for _ in 0..16 * 1024 {
            if writer.write_all(&frame).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    let mut healthy = raw_ws(srv.addr, "/echo");
    healthy
        .write_all(&client_frame(OpCode::Text, true, b"still fine"))
        .unwrap();
    assert_eq!(
        read_frame(&mut healthy),
        (0x1, true, b"still fine".to_vec())
    );
    assert!(
        closed_by_server(&mut slow),
        "the slow reader must be dropped"
    );
    flood.join().unwrap();
}

#[test]
fn a_frame_trickled_byte_by_byte_is_timed_out() {
    let srv = server(|c| c.fragment_timeout_ms = 500);
    let mut s = raw_ws(srv.addr, "/echo");
    let frame = client_frame(OpCode::Text, true, &[b'a'; 100]);
    let started = std::time::Instant::now();
    // One byte every 50 ms: each resets the liveness clock, none completes the frame.
    for byte in &frame[..40] {
        if s.write_all(std::slice::from_ref(byte)).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(read_close_code(&mut s), Some(1008));
    assert!(started.elapsed() < Duration::from_secs(5));
}
