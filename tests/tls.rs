//! TLS on the listening port: https:// and wss:// against a rustls client, the handshake
//! timeout, refusals, and a certificate reload that keeps open connections.

mod common;

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tls");

type Tls = StreamOwned<ClientConnection, Sock>;

fn client_config(versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let ca = std::fs::read(Path::new(DATA).join("ca.pem")).unwrap();
    Arc::new(ringmcp::transport::tls::client_config(&ca, versions).unwrap())
}

fn tls_connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> Tls {
    let conn = ClientConnection::new(
        Arc::clone(config),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut tls = StreamOwned::new(conn, Sock(connect(addr)));
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls
}

/// The leaf certificate the server presented.
fn leaf(tls: &Tls) -> Vec<u8> {
    tls.conn.peer_certificates().unwrap()[0].to_vec()
}

fn pem_leaf(name: &str) -> Vec<u8> {
    CertificateDer::pem_file_iter(Path::new(DATA).join(name))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// A server with TLS from copies of the test certificate (so a test may replace them).
fn tls_server(dir: &Path, edit: impl FnOnce(&mut ringmcp::Config)) -> TestServer {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(Path::new(DATA).join("server.pem"), dir.join("cert.pem")).unwrap();
    std::fs::copy(Path::new(DATA).join("server.key"), dir.join("key.pem")).unwrap();
    server(|c| {
        c.tls_cert = Some(dir.join("cert.pem"));
        c.tls_key = Some(dir.join("key.pem"));
        edit(c);
    })
}

fn scratch_dir(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ringmcp-tls-{test}-{}", std::process::id()))
}

fn metric(addr: SocketAddr, config: &Arc<ClientConfig>, needle: &str) -> u64 {
    let mut tls = tls_connect(addr, config);
    tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (_, _, body) = read_response(&mut tls);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(needle))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn mcp_over_https_in_tls_13_and_12_with_sessions_on_both_shards() {
    let dir = scratch_dir("https");
    let server = tls_server(&dir, |c| c.shards = 2);
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let config = client_config(versions);
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let mut tls = tls_connect(server.addr, &config);
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        tls.write_all(mcp_post(init, None, "").as_bytes()).unwrap();
        let (status, head, _) = read_response(&mut tls);
        assert_eq!(status, 200, "{head}");
        let session = header(&head, "mcp-session-id").unwrap().to_string();
        // Fresh connections land on either shard; the one not owning the session hands the
        // connection over with its TLS state.
        for id in 1..=8 {
            let mut tls = tls_connect(server.addr, &config);
            let call = format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{}"}}}}}}"#,
                "x".repeat(40_000)
            );
            let extra = "Mcp-Protocol-Version: 2025-11-25\r\n";
            tls.write_all(mcp_post(&call, Some(&session), extra).as_bytes())
                .unwrap();
            let (status, head, body) = read_response(&mut tls);
            assert_eq!(status, 200, "{head}");
            let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(reply["id"], id);
            assert_eq!(
                reply["result"]["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .len(),
                40_000
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn wss_echo_carries_messages_across_many_records() {
    let dir = scratch_dir("wss");
    let server = tls_server(&dir, |_| {});
    let tls = tls_connect(server.addr, &client_config(&[&rustls::version::TLS13]));
    let url = format!("wss://localhost:{}/echo", server.addr.port());
    let (mut ws, response) = tungstenite::client(url.as_str(), tls).unwrap();
    assert_eq!(response.status(), 101);
    for size in [0, 1, 16_383, 16_384, 16_385, 100_000, 700_000] {
        let text = "y".repeat(size);
        ws.send(tungstenite::Message::text(text.clone())).unwrap();
        match ws.read().unwrap() {
            tungstenite::Message::Text(got) => assert!(got.as_str() == text, "size {size}"),
            other => panic!("expected text, got {other:?}"),
        }
    }
    ws.close(None).unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_client_that_does_not_finish_its_handshake_is_closed_and_counted() {
    let dir = scratch_dir("timeout");
    let server = tls_server(&dir, |c| c.tls_handshake_timeout_ms = 300);
    let config = client_config(&[&rustls::version::TLS13]);
    let before = metric(
        server.addr,
        &config,
        "ringmcp_errors_total{shard=\"0\",kind=\"timeout\"}",
    );
    // `Sock` retries the `EINTR` this process's shards cause now and then (2 of 5 runs).
    let mut silent = Sock(connect(server.addr));
    let started = Instant::now();
    let mut byte = [0u8; 1];
    // Closed without a byte sent (the read timeout of `connect` is 10 s).
    assert_eq!(silent.read(&mut byte).unwrap(), 0);
    assert!(started.elapsed() < Duration::from_secs(10));
    let after = metric(
        server.addr,
        &config,
        "ringmcp_errors_total{shard=\"0\",kind=\"timeout\"}",
    );
    assert_eq!(after, before + 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn plain_http_and_clients_without_a_common_protocol_are_refused_and_counted() {
    let dir = scratch_dir("refused");
    let server = tls_server(&dir, |_| {});
    let config = client_config(&[&rustls::version::TLS13]);
    let tls_errors = "ringmcp_errors_total{shard=\"0\",kind=\"tls\"}";
    let before = metric(server.addr, &config, tls_errors);

    let mut plain = connect(server.addr);
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "a plain answer on a TLS port"
    );

    let mut h2_only = (*client_config(&[&rustls::version::TLS13])).clone();
    h2_only.alpn_protocols = vec![b"h2".to_vec()];
    let conn = ClientConnection::new(
        Arc::new(h2_only),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut tls = StreamOwned::new(conn, Sock(connect(server.addr)));
    let err = loop {
        match tls.conn.complete_io(&mut tls.sock) {
            Ok(_) if tls.conn.is_handshaking() => continue,
            Ok(_) => panic!("handshake completed without a common protocol"),
            Err(e) => break e,
        }
    };
    assert!(err.to_string().contains("NoApplicationProtocol"), "{err}");

    assert_eq!(metric(server.addr, &config, tls_errors), before + 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_reload_serves_the_new_certificate_to_new_connections_and_keeps_open_ones() {
    let dir = scratch_dir("reload");
    let server = tls_server(&dir, |_| {});
    let config = client_config(&[&rustls::version::TLS13]);
    let mut open = tls_connect(server.addr, &config);
    assert_eq!(leaf(&open), pem_leaf("server.pem"));

    // A key that does not belong to the certificate: refused, the old pair stays.
    std::fs::copy(Path::new(DATA).join("renewed.pem"), dir.join("cert.pem")).unwrap();
    let err = server.reload_tls().unwrap_err().to_string();
    assert!(err.contains("certificate and key"), "{err}");
    assert_eq!(
        leaf(&tls_connect(server.addr, &config)),
        pem_leaf("server.pem")
    );

    std::fs::copy(Path::new(DATA).join("renewed.key"), dir.join("key.pem")).unwrap();
    assert!(server.reload_tls().unwrap());
    assert_eq!(
        leaf(&tls_connect(server.addr, &config)),
        pem_leaf("renewed.pem")
    );

    // The connection opened before the reload still answers, with its first certificate.
    open.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (status, _, body) = read_response(&mut open);
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    assert_eq!(leaf(&open), pem_leaf("server.pem"));
    let _ = std::fs::remove_dir_all(dir);
}
