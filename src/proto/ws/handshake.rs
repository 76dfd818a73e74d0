//! The WebSocket opening handshake (RFC 6455 §4): the server's side (§4.2) and the
//! client's (§4.1).

use super::deflate::{PerMessageDeflate, CLIENT_OFFER};
use crate::proto::base64;
use crate::proto::http1::{self, Method, RequestHead, ResponseHead};
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
    /// permessage-deflate, when the server offers it and accepted one of the client's offers.
    pub deflate: Option<PerMessageDeflate>,
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
        deflate: None,
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
    let extensions = accepted.deflate.map(|deflate| deflate.answer());
    if let Some(extensions) = &extensions {
        headers.push(("sec-websocket-extensions", extensions));
    }
    http1::write_head(out, 101, &headers, http1::ResponseBody::None, true);
}

/// The client's side of the opening handshake (RFC 6455 §4.1): the request it sends and the
/// checks on the server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHandshake<'a> {
    /// `Sec-WebSocket-Key`: the base64 of the client's nonce.
    key: String,
    /// The subprotocols offered, in order of preference.
    protocols: &'a [&'a str],
    /// permessage-deflate is offered ([`CLIENT_OFFER`]).
    deflate: bool,
}

/// What a server's 101 agreed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switched<'a> {
    /// The subprotocol it selected, if any.
    pub protocol: Option<&'a str>,
    /// permessage-deflate, if it accepted the offer.
    pub deflate: Option<PerMessageDeflate>,
}

/// One rule of §4.1 the server's answer broke; every one fails the WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientHandshakeError {
    /// The status is not 101; the response is plain HTTP.
    NotSwitching(u16),
    /// `Upgrade` is missing or not `websocket`.
    MissingUpgrade,
    /// `Connection` is missing or does not list `Upgrade`.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Accept` is missing or does not match the key.
    BadAccept,
    /// `Sec-WebSocket-Extensions` names an extension the client did not offer.
    UnofferedExtension,
    /// `Sec-WebSocket-Protocol` names a subprotocol the client did not offer.
    UnofferedProtocol,
}

impl fmt::Display for ClientHandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientHandshakeError::NotSwitching(status) => {
                write!(f, "the server answered the upgrade with {status}, not 101")
            }
            ClientHandshakeError::MissingUpgrade => f.write_str("Upgrade header is not websocket"),
            ClientHandshakeError::MissingConnectionUpgrade => {
                f.write_str("Connection header does not list Upgrade")
            }
            ClientHandshakeError::BadAccept => f.write_str("bad Sec-WebSocket-Accept"),
            ClientHandshakeError::UnofferedExtension => {
                f.write_str("the server chose an extension that was not offered")
            }
            ClientHandshakeError::UnofferedProtocol => {
                f.write_str("the server chose a subprotocol that was not offered")
            }
        }
    }
}

impl std::error::Error for ClientHandshakeError {}

impl<'a> ClientHandshake<'a> {
    /// A handshake with the key made from `nonce` (§4.1: "a nonce consisting of a randomly
    /// selected 16-byte value that has been base64-encoded"), offering `protocols` (none:
    /// no `Sec-WebSocket-Protocol` is sent).
    pub fn new(nonce: [u8; 16], protocols: &'a [&'a str]) -> Self {
        ClientHandshake {
            key: base64::encode(&nonce),
            protocols,
            deflate: false,
        }
    }

    /// The same handshake offering permessage-deflate (RFC 7692) too.
    pub fn offering_deflate(mut self) -> Self {
        self.deflate = true;
        self
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Appends the opening handshake's GET request for `target` on `host`.
    pub fn write_request(&self, out: &mut Vec<u8>, target: &str, host: &str) {
        let offer = self.protocols.join(", ");
        let mut headers = vec![
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key", self.key.as_str()),
            ("sec-websocket-version", VERSION),
        ];
        if !offer.is_empty() {
            headers.push(("sec-websocket-protocol", offer.as_str()));
        }
        if self.deflate {
            headers.push(("sec-websocket-extensions", CLIENT_OFFER));
        }
        http1::write_request_head(out, "GET", target, host, &headers, None);
    }

    /// Checks the server's answer (§4.1: "the client MUST validate the server's response as
    /// follows"); what it agreed to.
    pub fn check(&self, head: &ResponseHead) -> Result<Switched<'a>, ClientHandshakeError> {
        // 1. "If the status code received from the server is not 101, the client handles the
        // response per HTTP [RFC2616] procedures."
        if head.status() != 101 {
            return Err(ClientHandshakeError::NotSwitching(head.status()));
        }
        let headers = head.headers();
        // 2. "If the response lacks an |Upgrade| header field or the |Upgrade| header field
        // contains a value that is not an ASCII case-insensitive match for the value
        // "websocket", the client MUST _Fail the WebSocket Connection_."
        if !headers
            .get("upgrade")
            .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"websocket"))
        {
            return Err(ClientHandshakeError::MissingUpgrade);
        }
        // 3. "If the response lacks a |Connection| header field or the |Connection| header field
        // doesn't contain a token that is an ASCII case-insensitive match for the value
        // "Upgrade", the client MUST _Fail the WebSocket Connection_."
        if !headers.has_token("connection", "upgrade") {
            return Err(ClientHandshakeError::MissingConnectionUpgrade);
        }
        // 4. "If the response lacks a |Sec-WebSocket-Accept| header field or the
        // |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of the
        // concatenation of the |Sec-WebSocket-Key| (as a string, not base64-decoded) with the
        // string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" ... the client MUST _Fail the WebSocket
        // Connection_."
        let expected = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        if headers.get_str("sec-websocket-accept") != Some(expected.as_str()) {
            return Err(ClientHandshakeError::BadAccept);
        }
        // 5. "If the response includes a |Sec-WebSocket-Extensions| header field and this header
        // field indicates the use of an extension that was not present in the client's handshake
        // ..., the client MUST _Fail the WebSocket Connection_." The only one this client
        // may offer is permessage-deflate, in the one configuration it can serve.
        let answers: Vec<&str> = headers
            .values("sec-websocket-extensions")
            .map(|v| std::str::from_utf8(v).map(str::trim))
            .filter(|v| v.is_ok_and(|v| !v.is_empty()))
            .collect::<Result<_, _>>()
            .map_err(|_| ClientHandshakeError::UnofferedExtension)?;
        let deflate = match answers.as_slice() {
            [] => None,
            _ if !self.deflate => return Err(ClientHandshakeError::UnofferedExtension),
            answers => Some(
                PerMessageDeflate::from_answer(&answers.join(", "))
                    .ok_or(ClientHandshakeError::UnofferedExtension)?,
            ),
        };
        // 6. "If the response includes a |Sec-WebSocket-Protocol| header field and this header
        // field indicates the use of a subprotocol that was not present in the client's handshake
        // ..., the client MUST _Fail the WebSocket Connection_."
        let protocol = match headers.get_str("sec-websocket-protocol") {
            None => None,
            Some(chosen) => Some(
                self.protocols
                    .iter()
                    .copied()
                    .find(|p| p.eq_ignore_ascii_case(chosen))
                    .ok_or(ClientHandshakeError::UnofferedProtocol)?,
            ),
        };
        Ok(Switched { protocol, deflate })
    }
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
            deflate: None,
        };
        write_switching_protocols(&mut out, &accepted);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("sec-websocket-protocol: mcp\r\n"));
        assert!(!text.contains("content-length"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn every_client_key_is_one_the_server_accepts() {
        // Every 16-byte nonce gives a key the server side accepts.
        for seed in 0..64u8 {
            let nonce: [u8; 16] =
                std::array::from_fn(|i| seed.wrapping_mul(37).wrapping_add(i as u8 * 11));
            assert!(
                is_base64_of_16_bytes(base64::encode(&nonce).as_bytes()),
                "{nonce:?}"
            );
        }
    }

    /// The server's answer to `client`, through the server side of this module.
    fn answer(client: &ClientHandshake<'_>, supported: &[&'static str]) -> Vec<u8> {
        let mut request = Vec::new();
        client.write_request(&mut request, "/mcp", "127.0.0.1:1");
        let request = RequestHead::parse(&request, &Limits::default())
            .unwrap()
            .complete()
            .unwrap()
            .0;
        let mut accepted = accept(&request, supported).unwrap();
        accepted.deflate = crate::proto::ws::deflate::accept_offer(
            request.header_values("sec-websocket-extensions"),
        );
        let mut out = Vec::new();
        write_switching_protocols(&mut out, &accepted);
        out
    }

    fn switched(protocol: Option<&str>) -> Result<Switched<'_>, ClientHandshakeError> {
        Ok(Switched {
            protocol,
            deflate: None,
        })
    }

    fn response(raw: &[u8]) -> ResponseHead {
        ResponseHead::parse(raw, &Limits::default(), Method::Get)
            .unwrap()
            .complete()
            .unwrap()
            .0
    }

    #[test]
    fn client_handshake_round_trips_with_the_server_side() {
        // RFC 6455 §1.3's worked example.
        let client = ClientHandshake::new(*b"the sample nonce", &["mcp"]);
        assert_eq!(client.key(), "dGhlIHNhbXBsZSBub25jZQ==");
        let raw = answer(&client, &["mcp"]);
        assert_eq!(client.check(&response(&raw)), switched(Some("mcp")));
        let plain = ClientHandshake::new([7; 16], &[]);
        let raw = answer(&plain, &["mcp"]);
        assert_eq!(plain.check(&response(&raw)), switched(None));
        // Our offer of permessage-deflate, the server's answer, and back.
        let compressing = ClientHandshake::new([7; 16], &["mcp"]).offering_deflate();
        let raw = answer(&compressing, &["mcp"]);
        let agreed = compressing.check(&response(&raw)).unwrap();
        assert_eq!(agreed.protocol, Some("mcp"));
        assert_eq!(agreed.deflate.map(|d| d.send_window_bits), Some(15));
    }

    #[test]
    fn client_refuses_answers_that_break_4_1() {
        let client = ClientHandshake::new(*b"the sample nonce", &["mcp"]);
        let good =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
        let cases = [
            (
                "HTTP/1.1 426 Upgrade Required\r\ncontent-length: 0\r\n".to_owned(),
                ClientHandshakeError::NotSwitching(426),
            ),
            (
                good.replace("Upgrade: websocket\r\n", ""),
                ClientHandshakeError::MissingUpgrade,
            ),
            (
                good.replace("Upgrade: websocket", "Upgrade: h2c"),
                ClientHandshakeError::MissingUpgrade,
            ),
            (
                good.replace("Connection: Upgrade", "Connection: keep-alive"),
                ClientHandshakeError::MissingConnectionUpgrade,
            ),
            (
                good.replace("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "dGhlIHNhbXBsZSBub25jZQ=="),
                ClientHandshakeError::BadAccept,
            ),
            (
                good.replace("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", ""),
                ClientHandshakeError::BadAccept,
            ),
            (
                format!("{good}Sec-WebSocket-Extensions: permessage-deflate\r\n"),
                ClientHandshakeError::UnofferedExtension,
            ),
            (
                format!("{good}Sec-WebSocket-Protocol: chat\r\n"),
                ClientHandshakeError::UnofferedProtocol,
            ),
        ];
        for (raw, error) in cases {
            let head = response(format!("{raw}\r\n").as_bytes());
            assert_eq!(client.check(&head), Err(error), "{raw}");
        }
        // Offered, but answered in a configuration this client cannot serve: the server
        // keeps its compression context.
        let offering = client.clone().offering_deflate();
        let keeps = format!("{good}Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
        assert_eq!(
            offering.check(&response(keeps.as_bytes())),
            Err(ClientHandshakeError::UnofferedExtension)
        );
        let upper = format!("{}\r\n", good.replace("websocket", "WebSocket"));
        assert_eq!(client.check(&response(upper.as_bytes())), switched(None));
    }
}
