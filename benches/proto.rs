//! Criterion benches of the sans-IO protocol code over in-memory buffers, with
//! byte throughput. Socket-level throughput and latency belong to `loadtest/`.
//!
//! Kept short by default (0.3 s warm-up, 1 s measurement, 30 samples per bench); raise with
//! `cargo bench -- --measurement-time 10` for careful comparisons.

// The binary's fixture set, compiled into the benches from the same file.
#[path = "../src/fixtures.rs"]
mod fixtures;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringmcp::dispatch::{Dispatcher, Peer, SessionState};
use ringmcp::proto::http1::{Limits, RequestHead};
use ringmcp::proto::jsonrpc::Id;
use ringmcp::proto::sse::{write_event, EventId};
use ringmcp::proto::ws::{
    apply_mask, apply_mask_naive, encode_frame, Decoder, Event, FrameHeader, OpCode, Role,
};
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Masked client frames of `len`-byte payloads: one header of each encoding size.
fn frame_headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_frame_header_decode");
    for len in [5usize, 300, 70_000] {
        let mut buf = Vec::new();
        encode_frame(&mut buf, OpCode::Binary, true, &vec![0u8; len], Some(KEY));
        let header_len = buf.len() - len;
        group.throughput(Throughput::Bytes(header_len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(len), &buf, |b, buf| {
            b.iter(|| FrameHeader::parse(black_box(&buf[..])))
        });
    }
    group.finish();
}

fn unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_unmask");
    for len in [125usize, 4096, 65_536] {
        let mut buf: Vec<u8> = (0..len).map(|i| i as u8).collect();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("fast", len), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), KEY, 0))
        });
        group.bench_function(BenchmarkId::new("naive", len), |b| {
            b.iter(|| apply_mask_naive(black_box(&mut buf), KEY, 0))
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_frame_encode");
    for len in [64usize, 4096, 65_536] {
        let payload = vec![b'x'; len];
        let mut out = Vec::with_capacity(len + 14);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("server_unmasked", len), |b| {
            b.iter(|| {
                out.clear();
                encode_frame(&mut out, OpCode::Text, true, black_box(&payload), None);
            })
        });
        group.bench_function(BenchmarkId::new("client_masked", len), |b| {
            b.iter(|| {
                out.clear();
                encode_frame(&mut out, OpCode::Text, true, black_box(&payload), Some(KEY));
            })
        });
    }
    group.finish();
}

/// A whole masked text message through the server-role decoder: header, unmask and
/// simdutf8 validation of the payload.
fn utf8_text_message(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_decode_text_utf8");
    for (name, text) in [
        ("ascii_4k", "a".repeat(4096)),
        ("mixed_4k", "héllo wörld – ünïcødé ✓ ".repeat(4096 / 32)),
        ("ascii_64k", "a".repeat(65_536)),
    ] {
        let mut frame = Vec::new();
        encode_frame(&mut frame, OpCode::Text, true, text.as_bytes(), Some(KEY));
        let mut work = frame.clone();
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                // Decoding unmasks in place, so start from a fresh copy each time.
                work.copy_from_slice(&frame);
                let mut decoder = Decoder::new(Role::Server, 1 << 20);
                match decoder.decode(black_box(&mut work)) {
                    Ok(d) => matches!(d.event, Some(Event::Text(_))),
                    Err(_) => false,
                }
            })
        });
    }
    group.finish();
}

fn http_head(c: &mut Criterion) {
    let mut group = c.benchmark_group("http_head_parse");
    let limits = Limits::default();
    let post = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n\
Accept: application/json, text/event-stream\r\nMcp-Session-Id: 0-4f3c2a1b9e8d7c6b5a4f3e2d1c0b9a88\r\n\
MCP-Protocol-Version: 2025-11-25\r\nContent-Length: 120\r\n\r\n";
    let upgrade = b"GET /mcp HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mcp\r\n\
User-Agent: ringmcp-bench/1\r\n\r\n";
    for (name, head) in [("mcp_post", &post[..]), ("ws_upgrade", &upgrade[..])] {
        group.throughput(Throughput::Bytes(head.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| RequestHead::parse(black_box(head), &limits).is_ok())
        });
    }
    group.finish();
}

fn sse_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse_encode");
    let single = br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}"#.to_vec();
    let multi = "line of text\n".repeat(64).into_bytes();
    let big = vec![b'y'; 16 * 1024];
    let mut out = Vec::with_capacity(32 * 1024);
    for (name, data) in [
        ("json_256", &single),
        ("multiline_832", &multi),
        ("json_16k", &big),
    ] {
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                write_event(
                    &mut out,
                    Some(EventId {
                        stream: 3,
                        seq: 12_345,
                    }),
                    None,
                    black_box(data),
                );
            })
        });
    }
    group.finish();
}

/// A peer that drops what it is given (the echo tool sends nothing out of band).
struct NullPeer;

impl Peer for NullPeer {
    fn send(&self, _message: Vec<u8>, _related_request: Option<&Id>) -> bool {
        true
    }
}

fn dispatch(c: &mut Criterion) {
    let mut group = c.benchmark_group("jsonrpc_tools_call_echo");
    let dispatcher = Dispatcher::new(Arc::new(fixtures::builtin(Duration::ZERO).build()));
    let session = SessionState::new_ref();
    let peer: Rc<dyn Peer> = Rc::new(NullPeer);
    let init = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
    let initialized = futures_lite::future::block_on(dispatcher.handle(
        session.clone(),
        Rc::clone(&peer),
        init.to_vec(),
    ));
    assert!(initialized.is_some(), "initialize answered");
    for len in [16usize, 1024, 16 * 1024] {
        let message = "m".repeat(len);
        let request = format!(
            r#"{{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{message}"}}}}}}"#
        )
        .into_bytes();
        group.throughput(Throughput::Bytes(request.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(len), |b| {
            b.iter(|| {
                let reply = futures_lite::future::block_on(dispatcher.handle(
                    session.clone(),
                    Rc::clone(&peer),
                    black_box(request.clone()),
                ));
                reply.map_or(0, |r| r.len())
            })
        });
    }
    group.finish();
}

/// The cost of authorization per request: a JWT verified against the key set (ES256, and
/// RS256 which many providers sign with), and a token the shard's cache already holds (a JWT
/// seen before, or an opaque token introspected before): what a request pays after its first.
fn authorization(c: &mut Criterion) {
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use ringmcp::auth::{validate_jwt, AuthConfig, Introspection, KeySet};
    use ringmcp::transport::auth::{unix_now, Authorizer, Credential};
    const ISSUER: &str = "https://as.example";
    const RESOURCE: &str = "https://127.0.0.1:8443/mcp";
    // Before the JWK helpers below, which would otherwise fix jsonwebtoken's default provider.
    ringmcp::auth::install_crypto_provider();
    let keys = [
        (
            Algorithm::ES256,
            EncodingKey::from_ec_der(include_bytes!("../src/auth/testdata/p256-pkcs8.der")),
        ),
        (
            Algorithm::RS256,
            EncodingKey::from_rsa_der(include_bytes!("../src/auth/testdata/rsa2048-pkcs1.der")),
        ),
    ];
    let jwks: Vec<serde_json::Value> = keys
        .iter()
        .map(|(alg, key)| {
            let mut jwk = Jwk::from_encoding_key(key, *alg).expect("public key");
            jwk.common.key_id = Some(format!("{alg:?}"));
            serde_json::to_value(jwk).expect("JWK")
        })
        .collect();
    let jwks = serde_json::json!({ "keys": jwks }).to_string();
    let now = unix_now();
    let claims = serde_json::json!({"iss": ISSUER, "sub": "bench", "aud": RESOURCE,
                                    "exp": now + 3600, "scope": "mcp:tools"});
    let token = |alg: Algorithm, key: &EncodingKey| {
        let mut header = Header::new(alg);
        header.kid = Some(format!("{alg:?}"));
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, &claims, key).expect("signed")
    };
    let config = AuthConfig::new(ISSUER, RESOURCE);
    let set = KeySet::from_jwks(jwks.as_bytes()).expect("key set");
    let mut group = c.benchmark_group("authorization");
    for (alg, key) in &keys {
        let token = token(*alg, key);
        group.bench_function(format!("jwt_verify_{alg:?}"), |b| {
            b.iter(|| validate_jwt(black_box(&token), &set, &config, now).is_ok())
        });
    }
    let introspection =
        Introspection::new("https://as.example/introspect", "rs", "secret").unwrap();
    let authorizer = Authorizer::new(
        config,
        Some(KeySet::from_jwks(jwks.as_bytes()).unwrap()),
        Some(introspection),
        false,
    );
    let opaque = "an-opaque-token-of-the-authorization-server";
    let answer = serde_json::json!({"active": true, "iss": ISSUER, "sub": "bench", "aud": RESOURCE,
                                    "exp": now + 3600, "scope": "mcp:tools"});
    authorizer.introspected(opaque, Some((200, answer.to_string().into_bytes())), now);
    let jwt = token(keys[0].0, &keys[0].1);
    for (name, token) in [
        ("cached_jwt", jwt.as_str()),
        ("cached_introspection", opaque),
    ] {
        let request = format!(
            "POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n\r\n"
        );
        let ringmcp::proto::Status::Complete(head, _) =
            RequestHead::parse(request.as_bytes(), &Limits::default()).expect("a head")
        else {
            panic!("a whole head");
        };
        assert!(matches!(
            authorizer.authenticate(&head, now),
            Ok(Credential::Principal(_))
        ));
        group.bench_function(name, |b| {
            b.iter(|| {
                matches!(
                    authorizer.authenticate(black_box(&head), now),
                    Ok(Credential::Principal(_))
                )
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = frame_headers, unmask, encode, utf8_text_message, http_head, sse_encode, dispatch,
        authorization
}
criterion_main!(benches);
