//! Close status codes (RFC 6455 7.4) and Close frame bodies (RFC 6455 5.5.1).

use super::error::ProtocolError;

/// A Close frame status code (RFC 6455 7.4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke a protocol rule.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1007: data inconsistent with the message type (non-UTF-8 text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: the message violates the endpoint's policy.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: the message is too big to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);

    /// May a peer send this code in a Close frame (RFC 6455 7.4.1/7.4.2 plus the IANA registry)?
    pub fn is_valid_on_wire(self) -> bool {
        match self.0 {
            // 7.4.2: "Status codes in the range 0-999 are not used."
            0..=999 => false,
            1000..=1003 => true,
            // 1004 is reserved; 7.4.1: 1005 and 1006 "MUST NOT be set as a status code in a
            // Close control frame by an endpoint."
            1004..=1006 => false,
            // 1007-1011 are in RFC 6455; 1012-1014 were assigned later in the IANA registry.
            1007..=1014 => true,
            // 7.4.1: 1015 "MUST NOT be set as a status code in a Close control frame"; the rest
            // of 1000-2999 is unassigned and reserved for this protocol and its extensions.
            1015..=2999 => false,
            // 7.4.2: 3000-3999 for libraries/frameworks, 4000-4999 for private use.
            3000..=4999 => true,
            _ => false,
        }
    }
}

/// A decoded Close frame body: status code and UTF-8 reason (borrowed from the payload).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CloseFrame<'a> {
    /// The status code, already checked with [`CloseCode::is_valid_on_wire`].
    pub code: CloseCode,
    /// The reason, possibly empty.
    pub reason: &'a str,
}

impl<'a> CloseFrame<'a> {
    /// Parses an (unmasked) Close payload; `Ok(None)` for an empty body.
    pub fn parse(payload: &'a [u8]) -> Result<Option<CloseFrame<'a>>, ProtocolError> {
        let Some((code, reason)) = payload.split_first_chunk::<2>() else {
            // 5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte
            // unsigned integer (in network byte order) representing a status code".
            return if payload.is_empty() {
                Ok(None)
            } else {
                Err(ProtocolError::CloseFrameTooShort)
            };
        };
        let code = CloseCode(u16::from_be_bytes(*code));
        if !code.is_valid_on_wire() {
            return Err(ProtocolError::InvalidCloseCode(code.0));
        }
        // 5.5.1: "Following the 2-byte integer, the body MAY contain UTF-8-encoded data".
        // 8.1: a byte stream to be interpreted as UTF-8 that is not "MUST _Fail the WebSocket
        // Connection_".
        let reason =
            simdutf8::basic::from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
        Ok(Some(CloseFrame { code, reason }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_codes() {
        let valid: Vec<u16> = (0..=u16::MAX)
            .filter(|&c| CloseCode(c).is_valid_on_wire())
            .collect();
        let expected: Vec<u16> = (1000..=1003)
            .chain(1007..=1014)
            .chain(3000..=4999)
            .collect();
        assert_eq!(valid, expected);
        // Autobahn 7.9.x: every one of these must be rejected.
        for c in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(c).is_valid_on_wire(), "{c}");
        }
    }

    #[test]
    fn parse_bodies() {
        assert_eq!(CloseFrame::parse(b""), Ok(None));
        assert_eq!(
            CloseFrame::parse(b"\x03"),
            Err(ProtocolError::CloseFrameTooShort)
        );
        assert_eq!(
            CloseFrame::parse(b"\x03\xe8"),
            Ok(Some(CloseFrame {
                code: CloseCode::NORMAL,
                reason: ""
            }))
        );
        let body = [&[0x0f, 0xa0][..], "bye \u{e9}".as_bytes()].concat();
        assert_eq!(
            CloseFrame::parse(&body),
            Ok(Some(CloseFrame {
                code: CloseCode(4000),
                reason: "bye \u{e9}"
            }))
        );
        assert_eq!(
            CloseFrame::parse(b"\x03\xed"),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
        assert_eq!(
            CloseFrame::parse(b"\x03\xe8\xff"),
            Err(ProtocolError::InvalidCloseReason)
        );
        // A reason cut in the middle of a sequence is invalid too: the body is complete.
        assert_eq!(
            CloseFrame::parse(b"\x03\xe8\xce"),
            Err(ProtocolError::InvalidCloseReason)
        );
    }
}
