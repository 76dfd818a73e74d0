//! Payload masking (RFC 6455 5.3): XOR with a 4-byte key, cycling from the payload start.

/// XORs `buf` with `key`; `buf[0]` is payload byte `phase` (only `phase % 4` matters).
///
/// Works a 64-bit word at a time on byte arrays, so any buffer alignment is fine and there is
/// no unsafe code; LLVM vectorises the loop.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], phase: usize) {
    // 5.3: "Octet i of the transformed data ("transformed-octet-i") is the XOR of octet i of
    // the original data ("original-octet-i") with octet at index i modulo 4 of the masking
    // key ("masking-key-octet-j")". Rotating the key makes buf[0] line up with key[phase % 4].
    let mut k = key;
    k.rotate_left(phase & 3);
    let word = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let (words, tail) = buf.as_chunks_mut::<8>();
    for chunk in words {
        *chunk = (u64::from_ne_bytes(*chunk) ^ word).to_ne_bytes();
    }
    // Whole words are a multiple of 4 bytes, so the tail starts at the same key phase.
    for (byte, m) in tail.iter_mut().zip(k.iter().cycle()) {
        *byte ^= m;
    }
}

/// Reference byte-at-a-time masking, same contract as [`apply_mask`]; for tests and benches.
pub fn apply_mask_naive(buf: &mut [u8], key: [u8; 4], phase: usize) {
    for (i, byte) in buf.iter_mut().enumerate() {
        // Reduce before adding so a huge `phase` cannot overflow.
        *byte ^= key[((i & 3) + (phase & 3)) & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_example() {
        // 5.7: masked "Hello" is 0x7f 0x9f 0x4d 0x51 0x58 with key 0x37 0xfa 0x21 0x3d.
        let mut data = *b"Hello";
        apply_mask(&mut data, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn fast_matches_naive_every_length_phase_and_offset() {
        let key = [0x6d, 0xb6, 0xb2, 0x80];
        let backing: Vec<u8> = (0..320u32).map(|i| (i * 7 + 3) as u8).collect();
        for offset in 0..8 {
            for len in 0..=300 {
                for phase in 0..4 {
                    let mut fast = backing.clone();
                    let mut slow = backing.clone();
                    apply_mask(&mut fast[offset..offset + len], key, phase);
                    apply_mask_naive(&mut slow[offset..offset + len], key, phase);
                    assert_eq!(fast, slow, "offset {offset} len {len} phase {phase}");
                }
            }
        }
    }

    #[test]
    fn phase_continues_a_split_payload() {
        let key = [1, 2, 3, 4];
        let original: Vec<u8> = (0..=255).collect();
        let mut whole = original.clone();
        apply_mask_naive(&mut whole, key, 0);
        for cut in 0..original.len() {
            let mut split = original.clone();
            let (a, b) = split.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut);
            assert_eq!(split, whole, "cut {cut}");
        }
        // Large phases are reduced, not overflowed.
        let mut x = [0u8; 5];
        apply_mask(&mut x, key, usize::MAX);
        let mut y = [0u8; 5];
        apply_mask_naive(&mut y, key, usize::MAX);
        assert_eq!(x, y);
        assert_eq!(x, [4, 1, 2, 3, 4]);
    }
}
