//! The HTTP/1.1 front door, driven over real sockets.

mod common;

use common::*;
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn healthz_404_and_405() {
    let srv = server(|_| {});
    let (status, _, body) = http(
        srv.addr,
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let (status, _, _) = http(srv.addr, b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(status, 404);
    let (status, head, _) = http(
        srv.addr,
        b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status, 405);
    assert!(
        head.to_ascii_lowercase().contains("allow: get, head"),
        "{head}"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let srv = server(|_| {});
    let mut s = connect(srv.addr);
    s.write_all(
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let statuses: Vec<u16> = (0..3).map(|_| read_response(&mut s).0).collect();
    assert_eq!(statuses, [200, 404, 200]);
    assert!(
        closed_by_server(&mut s),
        "Connection: close must be honoured"
    );
}

#[test]
fn limits_get_their_statuses() {
    let srv = server(|c| {
        c.max_head_bytes = 2048;
        c.max_uri_bytes = 256;
        c.max_headers = 8;
        c.max_body_bytes = 64;
    });
    let long_uri = format!(
        "GET /{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "a".repeat(300)
    );
    assert_eq!(http(srv.addr, long_uri.as_bytes()).0, 414);
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: {}\r\n\r\n",
        "b".repeat(3000)
    );
    assert_eq!(http(srv.addr, big_header.as_bytes()).0, 431);
    let many = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n",
        "X: y\r\n".repeat(10)
    );
    assert_eq!(http(srv.addr, many.as_bytes()).0, 431);
    let body = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 65\r\n\r\n";
    assert_eq!(http(srv.addr, body).0, 413);
    let chunked = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n{}\r\n0\r\n\r\n",
        "z".repeat(65)
    );
    assert_eq!(http(srv.addr, chunked.as_bytes()).0, 413);
    let garbage = b"\x01\x02garbage\r\n\r\n";
    assert_eq!(http(srv.addr, garbage).0, 400);
}

#[test]
fn slow_head_gets_408_and_the_connection_closes() {
    let srv = server(|c| c.header_timeout_ms = 200);
    let mut s = connect(srv.addr);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let (status, _, _) = read_response(&mut s);
    assert_eq!(status, 408);
    assert!(closed_by_server(&mut s));
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let srv = server(|c| c.http_idle_timeout_secs = 1);
    let mut s = connect(srv.addr);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s).0, 200);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(closed_by_server(&mut s));
}

#[test]
fn origin_and_host_policy() {
    let srv = server(|_| {});
    let evil = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://evil.example\r\n\r\n";
    assert_eq!(http(srv.addr, evil).0, 403);
    let local =
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://localhost:5173\r\n\r\n";
    assert_eq!(http(srv.addr, local).0, 200);
    let rebinding = b"GET /healthz HTTP/1.1\r\nHost: attacker.example\r\n\r\n";
    assert_eq!(http(srv.addr, rebinding).0, 403);
}

#[test]
fn connections_over_the_shard_cap_get_503() {
    let srv = server(|c| c.max_connections_per_shard = 1);
    let mut first = connect(srv.addr);
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut first).0, 200);
    let (status, head, _) = http(
        srv.addr,
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert_eq!(status, 503, "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after"));
    // The existing connection is unaffected.
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut first).0, 200);
}

/// The counter line `ringmcp_errors_total{shard="0",kind="KIND"}` of a scrape.
fn error_count(addr: std::net::SocketAddr, kind: &str) -> u64 {
    let (_, _, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let text = String::from_utf8(body).unwrap();
    let prefix = format!("ringmcp_errors_total{{shard=\"0\",kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .expect("error counter")
        .parse()
        .unwrap()
}

#[test]
fn head_responses_have_the_get_head_and_no_content() {
    let srv = server(|_| {});
    for (target, extra) in [
        ("/healthz", ""),
        ("/nope", ""),
        ("/echo", ""),
        ("/healthz", "Origin: https://evil.example\r\n"),
    ] {
        let get = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n");
        let (get_status, get_head, get_body) = http(srv.addr, get.as_bytes());
        // The HEAD is pipelined with a GET: content after the HEAD's head would be read as the
        // start of the next response.
        let mut s = connect(srv.addr);
        let head = get.replacen("GET", "HEAD", 1);
        s.write_all(format!("{head}GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .unwrap();
        let (status, head) = read_head(&mut s);
        assert_eq!(status, get_status, "{target}: {head}");
        let length = header(&head, "content-length");
        assert_eq!(length, header(&get_head, "content-length"), "{target}");
        assert_eq!(
            length,
            Some(get_body.len().to_string().as_str()),
            "{target}"
        );
        assert_eq!(
            read_response(&mut s).2,
            b"ok\n",
            "{target}: content after HEAD"
        );
    }
    // /metrics answers HEAD like GET (RFC 9110 §9.1: servers support GET and HEAD); a
    // refused method answers HEAD's sibling with 405.
    let mut s = connect(srv.addr);
    s.write_all(b"HEAD /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nPUT /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let (status, head) = read_head(&mut s);
    assert_eq!(status, 200, "{head}");
    assert_ne!(header(&head, "content-length"), Some("0"), "{head}");
    let (status, head, _) = read_response(&mut s);
    assert_eq!((status, header(&head, "allow")), (405, Some("GET, HEAD")));
    assert_eq!(read_response(&mut s).2, b"ok\n");
    // A HEAD refused from its head gets its error without content, then the connection closes.
    let mut s = connect(srv.addr);
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: localhost:80@evil.com\r\n\r\n")
        .unwrap();
    let (status, head) = read_head(&mut s);
    assert_eq!(status, 400, "{head}");
    assert_ne!(header(&head, "content-length"), Some("0"), "{head}");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"", "content after a HEAD's 400");
}

#[test]
fn invalid_host_is_400_and_counted() {
    let srv = server(|_| {});
    let before = error_count(srv.addr, "http_parse");
    let hosts = [
        "localhost:80@evil.com",
        "[::1]evil.com",
        "localhost:99999999",
    ];
    for host in hosts {
        let get = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(http(srv.addr, get.as_bytes()).0, 400, "{host}");
    }
    let upgrade = upgrade_request("/echo", "").replace("127.0.0.1", "localhost:80@evil.com");
    assert_eq!(http(srv.addr, upgrade.as_bytes()).0, 400);
    assert_eq!(
        error_count(srv.addr, "http_parse"),
        before + hosts.len() as u64 + 1
    );
}

#[test]
fn origins_with_invalid_authorities_are_refused() {
    let srv = server(|_| {});
    for origin in ["http://localhost:80@evil.com", "http://localhost:abc"] {
        let get = format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {origin}\r\n\r\n");
        assert_eq!(http(srv.addr, get.as_bytes()).0, 403, "{origin}");
    }
}

#[test]
fn http10_transfer_encoding_is_400_and_closes() {
    let srv = server(|_| {});
    let mut s = connect(srv.addr);
    s.write_all(b"POST /mcp HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s).0, 400);
    assert!(closed_by_server(&mut s));
}

#[test]
fn absolute_form_targets_are_served_for_their_authority() {
    let srv = server(|_| {});
    let port = srv.addr.port();
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let post = mcp_post(init, None, "").replacen(
        "POST /mcp",
        &format!("POST http://127.0.0.1:{port}/mcp"),
        1,
    );
    let (status, head, _) = http(srv.addr, post.as_bytes());
    assert_eq!(status, 200, "{head}");
    assert!(header(&head, "mcp-session-id").is_some(), "{head}");
    // RFC 9112 §3.2.2: the target's authority replaces Host, for the rebinding check too.
    let local_target =
        format!("GET http://localhost:{port}/healthz HTTP/1.1\r\nHost: attacker.example\r\n\r\n");
    assert_eq!(http(srv.addr, local_target.as_bytes()).0, 200);
    let foreign_target = b"GET http://attacker.example/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_eq!(http(srv.addr, foreign_target).0, 403);
    let userinfo = b"GET http://localhost:80@evil.com/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_eq!(http(srv.addr, userinfo).0, 400);
}

#[test]
fn responses_carry_a_date() {
    let srv = server(|_| {});
    for request in [
        &b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"[..],
        b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let (status, head, _) = http(srv.addr, request);
        let date = header(&head, "date").unwrap_or_else(|| panic!("{status} without Date: {head}"));
        // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
        assert_eq!(date.len(), 29, "{date}");
        assert!(
            date.ends_with(" GMT") && date.as_bytes()[3] == b',',
            "{date}"
        );
    }
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let srv = server(|c| c.max_body_bytes = 64);
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let request = mcp_post(ping, None, "Expect: 100-continue\r\n");
    let (head, body) = request.split_at(request.find("\r\n\r\n").unwrap() + 4);
    let mut s = connect(srv.addr);
    s.write_all(head.as_bytes()).unwrap();
    let (status, interim) = read_head(&mut s);
    assert_eq!(
        (status, interim.as_str()),
        (100, "HTTP/1.1 100 Continue\r\n\r\n")
    );
    s.write_all(body.as_bytes()).unwrap();
    // No session: the final answer is the missing Mcp-Session-Id's 400, after the body.
    assert_eq!(read_response(&mut s).0, 400);
    // A head refused outright gets its final status, no 100.
    let big = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: 65\r\n\r\n";
    assert_eq!(http(srv.addr, big.as_bytes()).0, 413);
}
