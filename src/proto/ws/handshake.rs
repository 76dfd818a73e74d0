//! The server's side of the WebSocket opening handshake (RFC 6455 §4.2).

use crate::proto::http1::{Method, RequestHead};
use std::fmt;

/// The only protocol version this server speaks.
pub const VERSION: &str = "13";

/// A client handshake that passed every check, with what the response needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The `Sec-WebSocket-Accept` value.
    pub accept_key: String,
    /// The subprotocol selected from the client's offer, if any.
    pub protocol: Option<&'static str>,
}

/// One broken rule of the opening handshake; [`HandshakeError::status`] maps it to HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// Not a GET, or not HTTP/1.1 or later.
    NotGetHttp11,
    /// `Upgrade` does not name `websocket`.
    MissingUpgrade,
    /// `Connection` does not list `Upgrade`.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` is absent or not the base64 of 16 bytes.
    BadKey,
    /// `Sec-WebSocket-Version` is absent or not 13.
    UnsupportedVersion,
}

impl HandshakeError {
    /// The HTTP status the handshake is refused with.
    pub fn status(self) -> u16 {
        match self {
            // RFC 6455 §4.2.2: "If this version does not match a version understood by the server,
            // the server MUST abort the WebSocket handshake ... and instead send an appropriate HTTP
            // error code (such as 426 Upgrade Required) and a |Sec-WebSocket-Version| header field
            // indicating the version(s) the server is capable of understanding."
            HandshakeError::UnsupportedVersion => 426,
            // §4.2.1: "If the server, while reading the handshake, finds that the client did not
            // send a handshake that matches the description below ..., the server MUST stop
            // processing the client's handshake and return an HTTP response with an appropriate
            // error code (such as 400 Bad Request)."
            HandshakeError::NotGetHttp11
            | HandshakeError::MissingUpgrade
            | HandshakeError::MissingConnectionUpgrade
            | HandshakeError::BadKey => 400,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeError::NotGetHttp11 => "a WebSocket upgrade must be an HTTP/1.1 GET",
            HandshakeError::MissingUpgrade => "Upgrade header must be websocket",
            HandshakeError::MissingConnectionUpgrade => "Connection header must list Upgrade",
            HandshakeError::BadKey => "Sec-WebSocket-Key must be base64 of 16 bytes",
            HandshakeError::UnsupportedVersion => "Sec-WebSocket-Version must be 13",
        })
    }
}

impl std::error::Error for HandshakeError {}

/// Whether the client is asking for a WebSocket upgrade at all (then the
/// handshake rules apply; otherwise the request is plain HTTP).
pub fn is_upgrade_request(head: &RequestHead) -> bool {
    head.has_token("upgrade", "websocket")
}

/// Checks a client's opening handshake (RFC 6455 §4.2.1) and selects a
/// subprotocol from `supported` (first one the client offered, in our order).
pub fn accept(head: &RequestHead, supported: &[&'static str]) -> Result<Accepted, HandshakeError> {
    // §4.2.1 1: "An HTTP/1.1 or higher GET request".
    if head.method() != Method::Get || head.minor_version() < 1 {
        return Err(HandshakeError::NotGetHttp11);
    }
    // §4.2.1 3: "An |Upgrade| header field containing the value "websocket", treated as an ASCII
    // case-insensitive value."
    if !head.has_token("upgrade", "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    // §4.2.1 4: "A |Connection| header field that includes the token "Upgrade", treated as an
    // ASCII case-insensitive value."
    if !head.has_token("connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    // §4.2.1 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
    let mut versions = head.header_values("sec-websocket-version");
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.trim_ascii() == VERSION.as_bytes() => {}
        _ => return Err(HandshakeError::UnsupportedVersion),
    }
    // §4.2.1 5: "A |Sec-WebSocket-Key| header field with a base64-encoded value that, when
    // decoded, is 16 bytes in length."
    let mut keys = head.header_values("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(k), None) if is_base64_of_16_bytes(k.trim_ascii()) => k.trim_ascii(),
        _ => return Err(HandshakeError::BadKey),
    };
    let protocol = supported
        .iter()
        .copied()
        .find(|p| head.has_token("sec-websocket-protocol", p));
    Ok(Accepted {
        accept_key: tungstenite::handshake::derive_accept_key(key),
        protocol,
    })
}

/// 16 bytes encode to 22 base64 characters and `==`; the 22nd character
/// carries only 2 data bits, so its low 4 bits must be zero.
fn is_base64_of_16_bytes(key: &[u8]) -> bool {
    fn is_b64(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
    }
    key.len() == 24
        && key[..21].iter().all(|&c| is_b64(c))
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
        && &key[22..] == b"=="
}

/// Appends the 101 response for an accepted handshake.
pub fn write_switching_protocols(out: &mut Vec<u8>, accepted: &Accepted) {
    let mut headers = vec![
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-accept", accepted.accept_key.as_str()),
    ];
    if let Some(protocol) = accepted.protocol {
        headers.push(("sec-websocket-protocol", protocol));
    }
    crate::proto::http1::write_head(
        out,
        101,
        &headers,
        crate::proto::http1::ResponseBody::None,
        true,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http1::Limits;

    fn head(extra: &str) -> RequestHead {
        let text = format!("GET /mcp HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        RequestHead::parse(text.as_bytes(), &Limits::default())
            .unwrap()
            .complete()
            .unwrap()
            .0
    }

    const GOOD: &str = "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    #[test]
    fn rfc_sample_key_gives_rfc_accept() {
        // RFC 6455 §1.3's worked example.
        let ok = accept(&head(GOOD), &["mcp"]).unwrap();
        assert_eq!(ok.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(ok.protocol, None);
    }

    #[test]
    fn selects_mcp_when_offered() {
        let h = head(&format!("{GOOD}Sec-WebSocket-Protocol: chat, MCP\r\n"));
        assert_eq!(accept(&h, &["mcp"]).unwrap().protocol, Some("mcp"));
    }

    #[test]
    fn refusals() {
        let cases = [
            (
                GOOD.replace("13", "8"),
                HandshakeError::UnsupportedVersion,
                426,
            ),
            (
                GOOD.replace("Sec-WebSocket-Version: 13\r\n", ""),
                HandshakeError::UnsupportedVersion,
                426,
            ),
            (
                GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR=="),
                HandshakeError::BadKey,
                400,
            ),
            (
                GOOD.replace("dGhlIHNhbXBsZSBub25jZQ==", "abc"),
                HandshakeError::BadKey,
                400,
            ),
            (
                GOOD.replace("keep-alive, Upgrade", "keep-alive"),
                HandshakeError::MissingConnectionUpgrade,
                400,
            ),
            (
                GOOD.replace("Upgrade: websocket", "Upgrade: h2c"),
                HandshakeError::MissingUpgrade,
                400,
            ),
        ];
        for (headers, error, status) in cases {
            let got = accept(&head(&headers), &["mcp"]).unwrap_err();
            assert_eq!((got, got.status()), (error, status), "{headers}");
        }
        let post = format!("POST /mcp HTTP/1.1\r\nHost: x\r\n{GOOD}\r\n");
        let post = RequestHead::parse(post.as_bytes(), &Limits::default())
            .unwrap()
            .complete()
            .unwrap()
            .0;
        assert_eq!(
            accept(&post, &[]).unwrap_err(),
            HandshakeError::NotGetHttp11
        );
    }

    #[test]
    fn switching_protocols_response() {
        let mut out = Vec::new();
        let accepted = Accepted {
            accept_key: "k".into(),
            protocol: Some("mcp"),
        };
        write_switching_protocols(&mut out, &accepted);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("sec-websocket-protocol: mcp\r\n"));
        assert!(!text.contains("content-length"));
        assert!(text.ends_with("\r\n\r\n"));
    }
}
