//! Frame encoders that append to a caller-owned buffer.

use super::close::CloseCode;
use super::frame::{FrameHeader, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use super::mask::apply_mask;

/// Appends one frame; mask is Some(key) in the client role, None for the server.
///
/// The caller keeps control frames within the rules (FIN set, payload <= 125 bytes); this is
/// our own output, so it is only checked in debug builds.
pub fn encode_frame(
    out: &mut Vec<u8>,
    opcode: OpCode,
    fin: bool,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) {
    debug_assert!(
        !opcode.is_control() || (fin && payload.len() <= MAX_CONTROL_PAYLOAD),
        "control frames must be unfragmented and at most 125 bytes"
    );
    let header = FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    out.reserve(head_len + payload.len());
    out.extend_from_slice(&head[..head_len]);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        // 5.3: "The masking key is contained completely within the frame" and masking
        // starts at the first payload byte, so the phase is 0.
        apply_mask(&mut out[start..], key, 0);
    }
}

/// Appends a Close frame; the reason is truncated at a char boundary to fit 125 bytes.
pub fn encode_close(out: &mut Vec<u8>, code: CloseCode, reason: &str, mask: Option<[u8; 4]>) {
    // 5.5: control payloads are at most 125 bytes, two of which hold the code.
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    let mut body = [0u8; MAX_CONTROL_PAYLOAD];
    body[..2].copy_from_slice(&code.0.to_be_bytes());
    body[2..2 + reason.len()].copy_from_slice(reason);
    encode_frame(out, OpCode::Close, true, &body[..2 + reason.len()], mask);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples() {
        let mut out = Vec::new();
        encode_frame(&mut out, OpCode::Text, true, b"Hello", None);
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);

        out.clear();
        encode_frame(
            &mut out,
            OpCode::Text,
            true,
            b"Hello",
            Some([0x37, 0xfa, 0x21, 0x3d]),
        );
        assert_eq!(
            out,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );

        // 5.7: "A fragmented unmasked text message 0x01 0x03 0x48 0x65 0x6c (contains "Hel")
        // 0x80 0x02 0x6c 0x6f (contains "lo")"
        out.clear();
        encode_frame(&mut out, OpCode::Text, false, b"Hel", None);
        encode_frame(&mut out, OpCode::Continue, true, b"lo", None);
        assert_eq!(out, [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);

        out.clear();
        encode_frame(&mut out, OpCode::Binary, true, &[0u8; 256], None);
        assert_eq!(&out[..4], &[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(out.len(), 4 + 256);

        out.clear();
        encode_frame(&mut out, OpCode::Binary, true, &vec![0u8; 65536], None);
        assert_eq!(&out[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn close_frames() {
        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::NORMAL, "", None);
        assert_eq!(out, [0x88, 0x02, 0x03, 0xe8]);

        out.clear();
        encode_close(&mut out, CloseCode::GOING_AWAY, "bye", Some([1, 2, 3, 4]));
        let mut payload = out[6..].to_vec();
        crate::proto::ws::mask::apply_mask_naive(&mut payload, [1, 2, 3, 4], 0);
        assert_eq!(&out[..6], &[0x88, 0x85, 1, 2, 3, 4]);
        assert_eq!(payload, b"\x03\xe9bye");
    }

    #[test]
    fn close_reason_truncated_at_char_boundary() {
        // 61 two-byte chars = 122 bytes, then a 3-byte char that does not fit in 123.
        let reason = format!("{}\u{20ac}tail", "\u{e9}".repeat(61));
        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::POLICY, &reason, None);
        assert_eq!(out[1] as usize, 2 + 122);
        let body = &out[2..];
        assert_eq!(body.len(), 124);
        assert_eq!(
            std::str::from_utf8(&body[2..]),
            Ok("\u{e9}".repeat(61).as_str())
        );

        out.clear();
        let ascii = "x".repeat(500);
        encode_close(&mut out, CloseCode::NORMAL, &ascii, None);
        assert_eq!(out[1] as usize, MAX_CONTROL_PAYLOAD);
    }
}
