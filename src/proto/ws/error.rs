//! Every RFC 6455 rule the decoder enforces, one variant each.

use std::fmt;

use super::close::CloseCode;

/// A broken RFC 6455 rule; the connection must be failed with [`ProtocolError::close_code`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProtocolError {
    /// Server role received a frame without a masking key (RFC 6455 5.1).
    UnmaskedFrameFromClient,
    /// Client role received a frame with a masking key (RFC 6455 5.1).
    MaskedFrameFromServer,
    /// RSV1-3 set while no extension is negotiated (RFC 6455 5.2).
    ReservedBitsSet,
    /// Opcode 0x3-0x7 or 0xB-0xF (RFC 6455 5.2).
    UnknownOpCode(u8),
    /// Control frame with FIN clear (RFC 6455 5.5).
    FragmentedControlFrame,
    /// Control frame payload over 125 bytes (RFC 6455 5.5).
    ControlFrameTooBig,
    /// Continuation frame while no fragmented message is open (RFC 6455 5.4).
    UnexpectedContinuation,
    /// New Text/Binary frame while a fragmented message is still open (RFC 6455 5.4).
    ExpectedContinuation,
    /// Payload length not encoded in the minimal number of bytes (RFC 6455 5.2).
    NonMinimalLength,
    /// 64-bit payload length with the most significant bit set (RFC 6455 5.2).
    LengthMsbSet,
    /// Message would exceed the configured maximum size (RFC 6455 10.4).
    MessageTooBig,
    /// Text message is not valid UTF-8 (RFC 6455 8.1).
    InvalidUtf8,
    /// Close frame with a 1-byte payload (RFC 6455 5.5.1).
    CloseFrameTooShort,
    /// Close frame with a status code that must not appear on the wire (RFC 6455 7.4).
    InvalidCloseCode(u16),
    /// Close frame reason is not valid UTF-8 (RFC 6455 5.5.1).
    InvalidCloseReason,
    /// Bytes arrived after the peer's Close frame (RFC 6455 5.5.1).
    FrameAfterClose,
    /// RSV1 ("Per-Message Compressed") set on a control frame (RFC 7692 6).
    CompressedControlFrame,
    /// RSV1 ("Per-Message Compressed") set on a continuation frame (RFC 7692 6).
    CompressedContinuation,
    /// A compressed message's payload is not a DEFLATE stream (RFC 7692 7.2.2).
    InvalidCompressedData,
}

impl ProtocolError {
    /// The status code to put in our Close frame when failing the connection for this error.
    pub fn close_code(&self) -> CloseCode {
        match self {
            // 7.4.1: "1007 indicates that an endpoint is terminating the connection because it
            // has received data within a message that was not consistent with the type of the
            // message (e.g., non-UTF-8 [RFC3629] data within a text message)."
            // A compressed payload that does not inflate is data that does not fit the
            // message's framing, the same outcome.
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidCloseReason
            | ProtocolError::InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            // 7.4.1: "1009 indicates that an endpoint is terminating the connection because it
            // has received a message that is too big for it to process."
            ProtocolError::MessageTooBig => CloseCode::MESSAGE_TOO_BIG,
            // Every framing rule is a protocol error (1002).
            ProtocolError::UnmaskedFrameFromClient
            | ProtocolError::MaskedFrameFromServer
            | ProtocolError::ReservedBitsSet
            | ProtocolError::UnknownOpCode(_)
            | ProtocolError::FragmentedControlFrame
            | ProtocolError::ControlFrameTooBig
            | ProtocolError::UnexpectedContinuation
            | ProtocolError::ExpectedContinuation
            | ProtocolError::NonMinimalLength
            | ProtocolError::LengthMsbSet
            | ProtocolError::CloseFrameTooShort
            | ProtocolError::InvalidCloseCode(_)
            | ProtocolError::FrameAfterClose
            | ProtocolError::CompressedControlFrame
            | ProtocolError::CompressedContinuation => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnmaskedFrameFromClient => f.write_str("unmasked frame from client"),
            ProtocolError::MaskedFrameFromServer => f.write_str("masked frame from server"),
            ProtocolError::ReservedBitsSet => f.write_str("reserved bits set"),
            ProtocolError::UnknownOpCode(op) => write!(f, "unknown opcode {op:#x}"),
            ProtocolError::FragmentedControlFrame => f.write_str("fragmented control frame"),
            ProtocolError::ControlFrameTooBig => {
                f.write_str("control frame payload over 125 bytes")
            }
            ProtocolError::UnexpectedContinuation => {
                f.write_str("continuation frame with no message open")
            }
            ProtocolError::ExpectedContinuation => {
                f.write_str("new data frame while a fragmented message is open")
            }
            ProtocolError::NonMinimalLength => f.write_str("non-minimal payload length encoding"),
            ProtocolError::LengthMsbSet => f.write_str("64-bit payload length has its MSB set"),
            ProtocolError::MessageTooBig => f.write_str("message too big"),
            ProtocolError::InvalidUtf8 => f.write_str("text message is not valid UTF-8"),
            ProtocolError::CloseFrameTooShort => f.write_str("close frame payload of 1 byte"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            ProtocolError::InvalidCloseReason => f.write_str("close reason is not valid UTF-8"),
            ProtocolError::FrameAfterClose => f.write_str("data after close frame"),
            ProtocolError::CompressedControlFrame => f.write_str("compressed control frame"),
            ProtocolError::CompressedContinuation => {
                f.write_str("compressed bit set on a continuation frame")
            }
            ProtocolError::InvalidCompressedData => {
                f.write_str("compressed message does not inflate")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes() {
        assert_eq!(ProtocolError::InvalidUtf8.close_code(), CloseCode(1007));
        assert_eq!(
            ProtocolError::InvalidCloseReason.close_code(),
            CloseCode(1007)
        );
        assert_eq!(
            ProtocolError::InvalidCompressedData.close_code(),
            CloseCode(1007)
        );
        assert_eq!(ProtocolError::MessageTooBig.close_code(), CloseCode(1009));
        for e in [
            ProtocolError::UnmaskedFrameFromClient,
            ProtocolError::MaskedFrameFromServer,
            ProtocolError::ReservedBitsSet,
            ProtocolError::UnknownOpCode(3),
            ProtocolError::FragmentedControlFrame,
            ProtocolError::ControlFrameTooBig,
            ProtocolError::UnexpectedContinuation,
            ProtocolError::ExpectedContinuation,
            ProtocolError::NonMinimalLength,
            ProtocolError::LengthMsbSet,
            ProtocolError::CloseFrameTooShort,
            ProtocolError::InvalidCloseCode(1005),
            ProtocolError::FrameAfterClose,
            ProtocolError::CompressedControlFrame,
            ProtocolError::CompressedContinuation,
        ] {
            assert_eq!(e.close_code(), CloseCode(1002), "{e}");
        }
    }

    #[test]
    fn small_and_displayable() {
        assert!(std::mem::size_of::<ProtocolError>() <= 4);
        assert_eq!(
            ProtocolError::UnknownOpCode(0xB).to_string(),
            "unknown opcode 0xb"
        );
    }
}
