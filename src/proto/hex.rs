//! Lowercase hexadecimal, the form of the ids and tags the server writes (session ids, the
//! principal tags the shared event store keeps).

/// The digits, by value.
pub(crate) const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lowercase hex, two digits a byte.
pub(crate) fn push_lower(out: &mut Vec<u8>, bytes: &[u8]) {
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0xf)]);
    }
}

/// The value of one hex digit, either case.
pub(crate) fn digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte that exactly two hex digits write (a `%XX` escape's), or None.
pub(crate) fn pair(digits: &[u8]) -> Option<u8> {
    match digits {
        &[high, low] => Some(digit(high)? << 4 | digit(low)?),
        _ => None,
    }
}

/// The 16 bytes that exactly 32 hex digits write, or None.
pub(crate) fn decode_16(hex: &[u8]) -> Option<[u8; 16]> {
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (byte, digits) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = pair(digits)?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bytes_round_trip_and_anything_else_is_refused() {
        let bytes: [u8; 16] = std::array::from_fn(|i| (i * 17) as u8);
        let mut hex = Vec::new();
        push_lower(&mut hex, &bytes);
        assert_eq!(hex, b"00112233445566778899aabbccddeeff");
        assert_eq!(decode_16(&hex), Some(bytes));
        assert_eq!(decode_16(&hex.to_ascii_uppercase()), Some(bytes));
        assert_eq!(decode_16(&hex[..30]), None);
        hex[7] = b'g';
        assert_eq!(decode_16(&hex), None);
        // Signs and spaces, which `u8::from_str_radix` would take in a pair, are not digits.
        assert_eq!(decode_16(b"+1 1223344556677889900aabbccddee"), None);
    }

    #[test]
    fn a_pair_is_two_digits_of_either_case() {
        assert_eq!(pair(b"2f"), Some(0x2f));
        assert_eq!(pair(b"2F"), Some(0x2f));
        assert_eq!(pair(b"+f"), None);
        assert_eq!(pair(b"2"), None);
        assert_eq!(pair(b"2f0"), None);
    }
}
