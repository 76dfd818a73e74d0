//! permessage-deflate (RFC 7692) over real sockets: negotiation under `--ws-deflate`,
//! compressed messages both ways on /echo and /mcp, the RSV1 rules, and a compression bomb.

mod common;

use common::*;
use ringmcp::proto::ws::deflate::{encode_message, inflate};
use ringmcp::proto::ws::{CompressPolicy, OpCode};
use serde_json::{json, Value};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};

const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// Upgrades `path` offering `offer`; the socket and the answer's extensions header, if any.
fn upgrade(addr: SocketAddr, path: &str, offer: &str) -> (TcpStream, Option<String>) {
    let mut s = connect(addr);
    let extra = format!("Sec-WebSocket-Extensions: {offer}\r\nSec-WebSocket-Protocol: mcp\r\n");
    s.write_all(upgrade_request(path, &extra).as_bytes())
        .unwrap();
    let (status, head, _) = read_response(&mut s);
    assert_eq!(status, 101, "{head}");
    let extensions = header(&head, "sec-websocket-extensions").map(str::to_owned);
    (s, extensions)
}

/// A masked client message, compressed whatever its size.
fn compressed(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let policy = CompressPolicy::new(15, 6, 0);
    let mut out = Vec::new();
    encode_message(&mut out, opcode, payload, policy, Some([9, 8, 7, 6]));
    assert_eq!(out[0] & 0x40, 0x40, "compressed");
    out
}

/// The next data message: whether it came compressed, and its inflated payload.
fn read_message(s: &mut TcpStream) -> (bool, Vec<u8>) {
    loop {
        let (b0, payload) = read_raw_frame(s);
        assert_eq!(b0 & 0x80, 0x80, "the server sends whole messages");
        match b0 & 0x0f {
            0x9 | 0xA => continue,
            0x1 | 0x2 if b0 & 0x40 != 0 => {
                let mut out = Vec::new();
                inflate(&payload, &mut out, 16 << 20).expect("inflates");
                return (true, out);
            }
            0x1 | 0x2 => return (false, payload),
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
}

#[test]
fn negotiated_only_under_the_flag_and_without_context_takeover() {
    let plain = server(|_| {});
    assert_eq!(upgrade(plain.addr, "/echo", OFFER).1, None);
    let srv = server(|c| c.ws_deflate = true);
    for path in ["/echo", "/mcp"] {
        assert_eq!(
            upgrade(srv.addr, path, OFFER).1.as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            "{path}"
        );
    }
    let limited = upgrade(
        srv.addr,
        "/echo",
        "permessage-deflate; server_max_window_bits=9",
    )
    .1;
    assert!(limited.unwrap().ends_with("; server_max_window_bits=9"));
    // An offer RFC 7692 §7 says to decline: the connection goes on uncompressed.
    assert_eq!(
        upgrade(srv.addr, "/echo", "permessage-deflate; x=1").1,
        None
    );
}

#[test]
fn echo_compresses_large_messages_and_not_small_ones() {
    let srv = server(|c| c.ws_deflate = true);
    let (mut s, _) = upgrade(srv.addr, "/echo", OFFER);
    let big: String = (0..800)
        .map(|i| format!(r#"{{"row":{i},"name":"item {i}"}},"#))
        .collect();
    s.write_all(&compressed(OpCode::Text, big.as_bytes()))
        .unwrap();
    let (was_compressed, echoed) = read_message(&mut s);
    assert!(was_compressed && echoed == big.as_bytes());
    // Under --ws-deflate-min-bytes (512) the answer goes as it is, however it came.
    s.write_all(&compressed(OpCode::Binary, &[1; 100])).unwrap();
    assert_eq!(read_message(&mut s), (false, vec![1; 100]));
    s.write_all(&client_frame(OpCode::Text, true, b"plain"))
        .unwrap();
    assert_eq!(read_message(&mut s), (false, b"plain".to_vec()));
}

#[test]
fn mcp_replies_compressed_past_the_threshold() {
    let srv = server(|c| c.ws_deflate = true);
    let (mut s, _) = upgrade(srv.addr, "/mcp", OFFER);
    let initialize = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    s.write_all(&compressed(OpCode::Text, initialize.to_string().as_bytes()))
        .unwrap();
    let reply: Value = serde_json::from_slice(&read_message(&mut s).1).unwrap();
    assert_eq!(reply["id"], 1);
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
        "params":{"name":"payload","arguments":{"bytes":16384}}});
    s.write_all(&client_frame(
        OpCode::Text,
        true,
        call.to_string().as_bytes(),
    ))
    .unwrap();
    let (was_compressed, body) = read_message(&mut s);
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert!(was_compressed);
    assert_eq!(
        reply["result"]["content"][0]["text"].as_str().map(str::len),
        Some(16384)
    );
}

#[test]
fn rsv1_rules_and_a_compression_bomb_get_their_close_codes() {
    let srv = server(|c| {
        c.ws_deflate = true;
        c.max_message_bytes = 1 << 20;
    });
    let close = |frames: &[Vec<u8>], code: u16| {
        let (mut s, _) = upgrade(srv.addr, "/echo", OFFER);
        for frame in frames {
            s.write_all(frame).unwrap();
        }
        assert_eq!(read_close_code(&mut s), Some(code));
        assert!(closed_by_server(&mut s));
    };
    // RFC 7692 §6: RSV1 on a control frame or a continuation fails the connection (1002).
    let mut ping = client_frame(OpCode::Ping, true, b"p");
    ping[0] |= 0x40;
    close(&[ping], 1002);
    let mut continuation = client_frame(OpCode::Continue, true, b"x");
    continuation[0] |= 0x40;
    close(
        &[client_frame(OpCode::Text, false, b"a"), continuation],
        1002,
    );
    // 8 MiB of zeros in a few KB: refused with 1009 once it inflates past 1 MiB.
    let bomb = compressed(OpCode::Binary, &vec![0; 8 << 20]);
    assert!(bomb.len() < 16 * 1024, "{} bytes", bomb.len());
    close(&[bomb], 1009);
    // Not a DEFLATE stream: 1007.
    let mut garbage = client_frame(OpCode::Binary, true, &[0xFF; 8]);
    garbage[0] |= 0x40;
    close(&[garbage], 1007);
}
