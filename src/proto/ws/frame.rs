//! Frame header parsing and encoding (RFC 6455 5.2).

use super::error::ProtocolError;
use crate::proto::Status;

/// Longest possible frame header: 2 bytes + 8-byte length + 4-byte masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// Largest control frame payload (RFC 6455 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode; the reserved values are rejected at parse time, so they have no variant.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum OpCode {
    /// 0x0: continuation of a fragmented message.
    Continue,
    /// 0x1: first frame of a text message.
    Text,
    /// 0x2: first frame of a binary message.
    Binary,
    /// 0x8: connection close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// Close, Ping and Pong are control frames (opcodes with the high bit set).
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }

    /// The opcode for a 4-bit value, `None` for the reserved ones (0x3-0x7, 0xB-0xF).
    pub fn from_u8(value: u8) -> Option<OpCode> {
        match value {
            0x0 => Some(OpCode::Continue),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continue => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }
}

/// A parsed frame header (everything before the payload).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FrameHeader {
    /// Last frame of the message.
    pub fin: bool,
    /// RSV1-3 as the low 3 bits (RSV1 = 0b100); the decoder rejects nonzero values.
    pub rsv: u8,
    /// Frame opcode.
    pub opcode: OpCode,
    /// Masking key, present on client-to-server frames.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes (at most 2^63 - 1).
    pub payload_len: u64,
}

impl FrameHeader {
    /// Ok(Status::Partial) when more bytes are needed (consumes nothing); Complete(header, header_len).
    ///
    /// Context-free rules are checked as soon as the byte carrying them is present, so a bad
    /// frame is refused before its length or key arrives. RSV bits and masking depend on the
    /// connection (extensions, role) and are left to the decoder.
    pub fn parse(buf: &[u8]) -> Result<Status<FrameHeader>, ProtocolError> {
        let Some(&b0) = buf.first() else {
            return Ok(Status::Partial);
        };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x07;
        // 5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail the
        // WebSocket Connection_."
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(ProtocolError::UnknownOpCode(b0 & 0x0F))?;
        if opcode.is_control() && !fin {
            // 5.5: "All control frames MUST have a payload length of 125 bytes or less and
            // MUST NOT be fragmented."
            return Err(ProtocolError::FragmentedControlFrame);
        }

        let Some(&b1) = buf.get(1) else {
            return Ok(Status::Partial);
        };
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        if opcode.is_control() && usize::from(len7) > MAX_CONTROL_PAYLOAD {
            // 5.5: "All control frames MUST have a payload length of 125 bytes or less".
            // 126 and 127 announce an extended length, which is necessarily over 125 when
            // minimal, so there is no need to wait for it.
            return Err(ProtocolError::ControlFrameTooBig);
        }

        let (payload_len, mut pos) = match len7 {
            126 => {
                let Some(ext) = buf.get(2..).and_then(|rest| rest.first_chunk::<2>()) else {
                    return Ok(Status::Partial);
                };
                let len = u64::from(u16::from_be_bytes(*ext));
                // 5.2: "in all cases, the minimal number of bytes MUST be used to encode the
                // length, for example, the length of a 124-byte-long string can't be encoded
                // as the sequence 126, 0, 124."
                if len < 126 {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (len, 4)
            }
            127 => {
                let Some(ext) = buf.get(2..).and_then(|rest| rest.first_chunk::<8>()) else {
                    return Ok(Status::Partial);
                };
                let len = u64::from_be_bytes(*ext);
                // 5.2: "If 127, the following 8 bytes interpreted as a 64-bit unsigned integer
                // (the most significant bit MUST be 0) are the payload length."
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthMsbSet);
                }
                // 5.2: "the minimal number of bytes MUST be used to encode the length".
                if len <= u64::from(u16::MAX) {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (len, 10)
            }
            short => (u64::from(short), 2),
        };

        let mask = if masked {
            let Some(key) = buf.get(pos..).and_then(|rest| rest.first_chunk::<4>()) else {
                return Ok(Status::Partial);
            };
            pos += 4;
            Some(*key)
        } else {
            None
        };

        let header = FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        };
        Ok(Status::Complete(header, pos))
    }

    /// Length of this header on the wire with minimal length encoding (2..=14).
    pub fn encoded_len(&self) -> usize {
        let ext = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header into out (minimal length encoding), returns bytes written (2..=14).
    pub fn encode(&self, out: &mut [u8; 14]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x07) << 4) | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut pos = match self.payload_len {
            len @ 0..=125 => {
                out[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[pos..pos + 4].copy_from_slice(&key);
            pos += 4;
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(buf: &[u8]) -> Result<Status<FrameHeader>, ProtocolError> {
        // Every strict prefix of a valid header must be Partial: nothing consumed early.
        let full = FrameHeader::parse(buf);
        if let Ok(Status::Complete(_, n)) = full {
            for cut in 0..n {
                assert_eq!(
                    FrameHeader::parse(&buf[..cut]),
                    Ok(Status::Partial),
                    "cut {cut}"
                );
            }
        }
        full
    }

    fn header(opcode: OpCode, len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn opcode_round_trip() {
        for v in 0..16u8 {
            match OpCode::from_u8(v) {
                Some(op) => {
                    assert_eq!(op.as_u8(), v);
                    assert_eq!(op.is_control(), v >= 8);
                }
                None => assert!(matches!(v, 3..=7 | 0xB..=0xF)),
            }
        }
    }

    #[test]
    fn parses_rfc_examples() {
        // 5.7: "A single-frame unmasked text message 0x81 0x05 0x48 0x65 0x6c 0x6c 0x6f"
        assert_eq!(
            parse_all(&[0x81, 0x05, 0x48]),
            Ok(Status::Complete(header(OpCode::Text, 5, None), 2))
        );
        // 5.7: "A single-frame masked text message 0x81 0x85 0x37 0xfa 0x21 0x3d ..."
        assert_eq!(
            parse_all(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f]),
            Ok(Status::Complete(
                header(OpCode::Text, 5, Some([0x37, 0xfa, 0x21, 0x3d])),
                6
            ))
        );
        // 5.7: "256 bytes binary message in a single unmasked frame 0x82 0x7E 0x0100"
        assert_eq!(
            parse_all(&[0x82, 0x7E, 0x01, 0x00]),
            Ok(Status::Complete(header(OpCode::Binary, 256, None), 4))
        );
        // 5.7: "64KiB binary message in a single unmasked frame 0x82 0x7F 0x0000000000010000"
        assert_eq!(
            parse_all(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]),
            Ok(Status::Complete(header(OpCode::Binary, 65536, None), 10))
        );
        let mut fragment = header(OpCode::Continue, 0, None);
        fragment.fin = false;
        fragment.rsv = 0b101;
        assert_eq!(parse_all(&[0x50, 0x00]), Ok(Status::Complete(fragment, 2)));
    }

    #[test]
    fn rejects_reserved_opcodes_from_first_byte() {
        for op in (3..=7).chain(0xB..=0xF) {
            assert_eq!(
                FrameHeader::parse(&[0x80 | op]),
                Err(ProtocolError::UnknownOpCode(op))
            );
        }
    }

    #[test]
    fn rejects_bad_control_frames_early() {
        assert_eq!(
            FrameHeader::parse(&[0x09]),
            Err(ProtocolError::FragmentedControlFrame)
        );
        assert_eq!(
            FrameHeader::parse(&[0x89, 126]),
            Err(ProtocolError::ControlFrameTooBig)
        );
        assert_eq!(
            FrameHeader::parse(&[0x88, 0xFF]),
            Err(ProtocolError::ControlFrameTooBig)
        );
        assert!(matches!(
            FrameHeader::parse(&[0x8A, 125]),
            Ok(Status::Complete(_, 2))
        ));
    }

    #[test]
    fn rejects_non_minimal_lengths() {
        assert_eq!(
            FrameHeader::parse(&[0x82, 126, 0, 125]),
            Err(ProtocolError::NonMinimalLength)
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
            Err(ProtocolError::NonMinimalLength)
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::LengthMsbSet)
        );
        assert!(matches!(
            FrameHeader::parse(&[0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            Ok(Status::Complete(
                FrameHeader {
                    payload_len: 0x7FFF_FFFF_FFFF_FFFF,
                    ..
                },
                10
            ))
        ));
    }

    #[test]
    fn encode_parse_round_trip_at_length_boundaries() {
        for len in [
            0,
            1,
            125,
            126,
            127,
            0xFFFF,
            0x1_0000,
            16 << 20,
            u64::MAX >> 1,
        ] {
            for mask in [None, Some([1, 2, 3, 4])] {
                for opcode in [OpCode::Text, OpCode::Binary, OpCode::Continue] {
                    for fin in [false, true] {
                        let h = FrameHeader {
                            fin,
                            rsv: 0,
                            opcode,
                            mask,
                            payload_len: len,
                        };
                        let mut out = [0u8; 14];
                        let n = h.encode(&mut out);
                        assert_eq!(n, h.encoded_len());
                        assert_eq!(parse_all(&out[..n]), Ok(Status::Complete(h, n)));
                    }
                }
            }
        }
        let max = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: Some([0; 4]),
            payload_len: 1 << 40,
        };
        assert_eq!(max.encoded_len(), MAX_HEADER_LEN);
    }
}
