//! permessage-deflate (RFC 7692): the negotiation, both roles, and the payload transform.
//!
//! Memory is bounded per connection by construction: both sides are always asked to reset
//! their compression context after every message (`server_no_context_takeover` and
//! `client_no_context_takeover`), so a connection keeps no zlib state at all; what it agreed
//! on is [`PerMessageDeflate`], two bytes. The compressors and the decompressor live once
//! per thread (one shard = one thread) and serve one message at a time.

use super::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use super::mask::apply_mask;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;
use std::num::NonZeroU8;

/// The extension's registered name (RFC 7692 §7).
pub const EXTENSION: &str = "permessage-deflate";

/// What a client of ours offers: resetting both contexts per message is what keeps it free
/// of per-connection zlib state, like the server.
pub const CLIENT_OFFER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

/// The largest LZ77 window (RFC 7692 §7.1.2.1: the value is "between 8 to 15, inclusive").
const MAX_WINDOW_BITS: u8 = 15;

/// The smallest window zlib will compress with: a raw stream asked for 8 bits is refused.
/// A 9-bit compressor never reaches back further than 512 - 262 = 250 bytes (zlib keeps
/// MIN_LOOKAHEAD bytes of its window for the match ahead), so its output inflates within
/// a 256-byte window: it honours a peer's limit of 8.
const MIN_COMPRESS_WINDOW_BITS: u8 = 9;

/// Decompression works through the output in steps of this size, so a message is refused as
/// soon as it crosses the limit, not after it was inflated whole.
const INFLATE_STEP: usize = 16 * 1024;

/// RFC 7692 §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the payload
/// of the message."
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// permessage-deflate as agreed for one connection: both contexts reset per message, so this
/// is all the connection holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PerMessageDeflate {
    /// The base-2 log of the window our compressor may use: the peer's `server_max_window_bits`
    /// (we serve) or `client_max_window_bits` (we are the client); 15 when it set none.
    pub send_window_bits: u8,
    /// The `server_max_window_bits` the client offered, echoed in our answer (server role).
    pub answer_window_bits: Option<u8>,
}

/// One extension parameter as written: its name and its value, if any (quotes removed).
type Param<'a> = (&'a str, Option<&'a str>);

/// Splits a `Sec-WebSocket-Extensions` value into extensions, each a name and its parameters
/// (RFC 6455 §9.1: `extension-list = 1#extension`, `extension = extension-token *( ";"
/// extension-param )`, `extension-param = token [ "=" (token | quoted-string) ]`).
fn extensions(value: &str) -> impl Iterator<Item = (&str, Vec<Param<'_>>)> {
    value.split(',').filter_map(|element| {
        let mut parts = element.split(';').map(str::trim);
        let name = parts.next().filter(|n| !n.is_empty())?;
        let params = parts
            .map(|param| match param.split_once('=') {
                Some((k, v)) => {
                    let v = v.trim();
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(v);
                    (k.trim(), Some(v))
                }
                None => (param, None),
            })
            .collect();
        Some((name, params))
    })
}

/// A window size value (RFC 7692 §7.1.2.1: "a decimal integer value without leading zeroes
/// between 8 to 15, inclusive").
fn window_bits(value: &str) -> Option<u8> {
    if value.len() > 2 || value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

/// The first `permessage-deflate` offer among a request's `Sec-WebSocket-Extensions` values
/// that this server accepts, `None` when there is none (then the extension is not used).
pub fn accept_offer<'a>(values: impl Iterator<Item = &'a [u8]>) -> Option<PerMessageDeflate> {
    values
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(extensions)
        .filter(|(name, _)| name.eq_ignore_ascii_case(EXTENSION))
        .find_map(|(_, params)| accept_params(&params))
}

/// Accepts one offer's parameters, or declines it (`None`).
fn accept_params(params: &[Param<'_>]) -> Option<PerMessageDeflate> {
    let mut answer_window_bits = None;
    for (i, &(name, value)) in params.iter().enumerate() {
        // RFC 7692 §7: "A server MUST decline an extension negotiation offer for this
        // extension if any of the following conditions are met: ... The negotiation offer
        // contains multiple extension parameters with the same name."
        if params[..i].iter().any(|&(seen, _)| seen == name) {
            return None;
        }
        match (name, value) {
            // We reset both contexts whatever the client says (below), so these are met.
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            // RFC 7692 §7.1.2.2: "This parameter has no value or a decimal integer value
            // without leading zeroes between 8 to 15 inclusive". Our decompressor has the
            // full window, so the answer does not restrict the client's.
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(v)) => {
                window_bits(v)?;
            }
            // RFC 7692 §7.1.2.1: "A server accepts an extension negotiation offer with this
            // parameter by including the "server_max_window_bits" extension parameter in the
            // extension negotiation response to send back to the client with the same or
            // smaller value as the offer."
            ("server_max_window_bits", Some(v)) => answer_window_bits = Some(window_bits(v)?),
            // RFC 7692 §7: "The negotiation offer contains an extension parameter not defined
            // for use in an offer. The negotiation offer contains an extension parameter with
            // an invalid value."
            _ => return None,
        }
    }
    Some(PerMessageDeflate {
        send_window_bits: answer_window_bits.unwrap_or(MAX_WINDOW_BITS),
        answer_window_bits,
    })
}

impl PerMessageDeflate {
    /// The server's `Sec-WebSocket-Extensions` answer.
    ///
    /// RFC 7692 §7.1.1.1: "A server MAY include the "server_no_context_takeover" extension
    /// parameter in an extension negotiation response even if the extension negotiation offer
    /// being accepted by the extension negotiation response didn't include the
    /// "server_no_context_takeover" extension parameter." §7.1.1.2: "A server MAY include the
    /// "client_no_context_takeover" extension parameter in an extension negotiation
    /// response." Both always: neither side keeps a window between messages, so a connection
    /// costs no zlib memory at all.
    pub fn answer(&self) -> String {
        let mut answer =
            format!("{EXTENSION}; server_no_context_takeover; client_no_context_takeover");
        if let Some(bits) = self.answer_window_bits {
            answer.push_str(&format!("; server_max_window_bits={bits}"));
        }
        answer
    }

    /// Reads a server's answer to [`CLIENT_OFFER`] (client role); `None` when it names
    /// something the offer did not allow.
    pub fn from_answer(value: &str) -> Option<PerMessageDeflate> {
        let mut found = extensions(value).filter(|(name, _)| name.eq_ignore_ascii_case(EXTENSION));
        let (_, params) = found.next()?;
        let mut server_resets = false;
        let mut send_window_bits = MAX_WINDOW_BITS;
        for (i, &(name, value)) in params.iter().enumerate() {
            if params[..i].iter().any(|&(seen, _)| seen == name) || found.next().is_some() {
                return None;
            }
            match (name, value) {
                ("server_no_context_takeover", None) => server_resets = true,
                ("client_no_context_takeover", None) => {}
                ("server_max_window_bits", Some(v)) => {
                    window_bits(v)?;
                }
                // RFC 7692 §7.1.2.2: the server's client_max_window_bits bounds the window
                // the client compresses with.
                ("client_max_window_bits", Some(v)) => send_window_bits = window_bits(v)?,
                _ => return None,
            }
        }
        // The offer asked for server_no_context_takeover: our decompressor is shared and
        // reset per message, so an answer that keeps the server's context is refused.
        server_resets.then_some(PerMessageDeflate {
            send_window_bits,
            answer_window_bits: None,
        })
    }
}

/// How one connection sends data messages once permessage-deflate is agreed: eight bytes,
/// copied where messages are queued, and eight as an `Option` too (the level is never 0),
/// which keeps a WebSocket's shared sending side in a 112 B allocator chunk, not 128.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CompressPolicy {
    /// The window we compress with: what the peer allows us
    /// ([`PerMessageDeflate::send_window_bits`]), at least 9 (zlib's smallest).
    window_bits: u8,
    /// zlib level, 1 (fastest) to 9.
    level: NonZeroU8,
    /// Messages shorter than this go uncompressed.
    min_bytes: u32,
}

impl CompressPolicy {
    /// Compress with `window_bits` (held to 9..=15) at zlib `level` (held to 1..=9) every
    /// message of `min_bytes` (held to 4 GiB) or more.
    pub fn new(window_bits: u8, level: u8, min_bytes: usize) -> CompressPolicy {
        CompressPolicy {
            window_bits: window_bits.clamp(MIN_COMPRESS_WINDOW_BITS, MAX_WINDOW_BITS),
            level: NonZeroU8::new(level.clamp(1, 9)).unwrap_or(NonZeroU8::MIN),
            min_bytes: u32::try_from(min_bytes).unwrap_or(u32::MAX),
        }
    }
}

/// Why a compressed message could not be inflated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum InflateError {
    /// The output crossed the limit.
    TooBig,
    /// The payload is not a DEFLATE stream.
    Corrupt,
}

/// The thread's codecs, created on first use. A connection borrows them for one message.
struct Codecs {
    inflate: Option<Decompress>,
    /// One compressor per window size in use (9..=15), as peers may each ask for another,
    /// with the level it was made for.
    deflate: [Option<(Compress, u8)>; 7],
}

thread_local! {
    static CODECS: RefCell<Codecs> = const {
        RefCell::new(Codecs {
            inflate: None,
            deflate: [None, None, None, None, None, None, None],
        })
    };
}

/// Inflates one message's payload, appending to `out`, which may grow to `limit` bytes and
/// not one more: a small payload that inflates past it is refused while it inflates.
pub fn inflate(payload: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
    CODECS.with_borrow_mut(|codecs| {
        let inflater = codecs
            .inflate
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, MAX_WINDOW_BITS));
        // No context takeover: every message starts from an empty window.
        inflater.reset(false);
        inflate_with(inflater, payload, out, limit)
    })
}

fn inflate_with(
    inflater: &mut Decompress,
    payload: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), InflateError> {
    for input in [payload, &TAIL[..]] {
        let mut at = 0;
        loop {
            // Capacity grows by doubling, in steps of at least INFLATE_STEP, and never past
            // one byte over the limit: that byte is enough to know the limit was crossed.
            if out.len() == out.capacity() {
                let grown = out
                    .capacity()
                    .saturating_mul(2)
                    .max(out.len() + INFLATE_STEP);
                out.reserve_exact(grown.min(limit.saturating_add(1)) - out.len());
            }
            let before = (inflater.total_in(), out.len());
            let status = inflater
                .decompress_vec(&input[at..], out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            at += (inflater.total_in() - before.0) as usize;
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            if status == Status::StreamEnd {
                // RFC 7692 §7.2.3.5: a sender may end a message with a block that has BFINAL
                // set; nothing after it belongs to the message.
                return Ok(());
            }
            let stalled = at == before.0 as usize && out.len() == before.1;
            // Done with this input once it is consumed and the output was not the limit.
            if stalled || (at == input.len() && out.len() < out.capacity()) {
                break;
            }
        }
    }
    Ok(())
}

/// Appends one whole data message as a frame: compressed with RSV1 set when the payload is
/// at least `policy.min_bytes` and compression makes it smaller, as is otherwise. `mask` is
/// the client role's masking key.
pub fn encode_message(
    out: &mut Vec<u8>,
    opcode: OpCode,
    payload: &[u8],
    policy: CompressPolicy,
    mask: Option<[u8; 4]>,
) {
    let start = out.len();
    let small = payload.len() < policy.min_bytes as usize;
    if small || !compress_frame(out, opcode, payload, policy, mask) {
        out.truncate(start);
        super::encode_frame(out, opcode, true, payload, mask);
    }
}

/// Compresses `payload` into a frame at the end of `out`; false when it did not get smaller.
fn compress_frame(
    out: &mut Vec<u8>,
    opcode: OpCode,
    payload: &[u8],
    policy: CompressPolicy,
    mask: Option<[u8; 4]>,
) -> bool {
    let start = out.len();
    // The header goes in front; its length depends on the compressed length, so room for
    // the longest is kept and the payload moved down once the length is known.
    out.resize(start + MAX_HEADER_LEN, 0);
    let body = out.len();
    let (bits, level) = (policy.window_bits, policy.level.get());
    let compressed = CODECS.with_borrow_mut(|codecs| {
        let slot = &mut codecs.deflate[usize::from(bits - MIN_COMPRESS_WINDOW_BITS)];
        if slot.as_ref().is_none_or(|&(_, made)| made != level) {
            let fresh = Compress::new_with_window_bits(Compression::new(level.into()), false, bits);
            *slot = Some((fresh, level));
        }
        let Some((deflater, _)) = slot else {
            return false;
        };
        // RFC 7692 §7.1.1.1: with server_no_context_takeover agreed, no message may refer to
        // an earlier one's window. §7.2.1: "Compress all the octets of the payload of the
        // message using DEFLATE."
        deflater.reset();
        let mut at = 0;
        loop {
            out.reserve((payload.len() - at).max(64) + 64);
            let before = deflater.total_in();
            // A sync flush ends the data with an empty stored block, 0x00 0x00 0xff 0xff.
            let Ok(_) = deflater.compress_vec(&payload[at..], out, FlushCompress::Sync) else {
                return false;
            };
            at += (deflater.total_in() - before) as usize;
            if at == payload.len() && out.len() < out.capacity() {
                return true;
            }
        }
    });
    // RFC 7692 §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end."
    if !compressed || !out.ends_with(&TAIL) {
        return false;
    }
    out.truncate(out.len() - TAIL.len());
    let len = out.len() - body;
    if len >= payload.len() {
        return false;
    }
    // RFC 7692 §6: RSV1 on a message's first frame (here its only one) marks it compressed.
    let header = FrameHeader {
        fin: true,
        rsv: RSV1,
        opcode,
        mask,
        payload_len: len as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    let at = body - head_len;
    out[at..body].copy_from_slice(&head[..head_len]);
    out.drain(start..at);
    if let Some(key) = mask {
        apply_mask(&mut out[start + head_len..], key, 0);
    }
    true
}

/// RSV1, the "Per-Message Compressed" bit (RFC 7692 §6), in [`FrameHeader::rsv`]'s layout.
pub const RSV1: u8 = 0b100;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ws::{Decoder, Event, Role};
    use proptest::prelude::*;

    fn offer(value: &str) -> Option<PerMessageDeflate> {
        accept_offer([value.as_bytes()].into_iter())
    }

    #[test]
    fn per_connection_state_is_a_few_bytes() {
        use std::mem::size_of;
        assert!(size_of::<PerMessageDeflate>() <= 3);
        assert!(size_of::<Option<CompressPolicy>>() <= 12);
    }

    #[test]
    fn accepts_offers_and_answers_without_context_takeover() {
        let plain = offer("permessage-deflate").unwrap();
        assert_eq!(plain.send_window_bits, 15);
        assert_eq!(
            plain.answer(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        // What browsers and the websockets library send.
        let browser = offer("permessage-deflate; client_max_window_bits").unwrap();
        assert_eq!(browser, plain);
        let small = offer("permessage-deflate; server_max_window_bits=\"10\"; client_max_window_bits=9; server_no_context_takeover").unwrap();
        assert_eq!(small.send_window_bits, 10);
        assert!(small.answer().ends_with("; server_max_window_bits=10"));
        // Another extension first, then a declined offer, then an accepted one.
        let second = offer("x-webkit-deflate-frame, permessage-deflate; foo, PerMessage-Deflate; server_max_window_bits=8").unwrap();
        assert_eq!(second.send_window_bits, 8);
    }

    #[test]
    fn declines_what_rfc_7692_section_7_says_to() {
        for declined in [
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=x",
            "permessage-deflate; server_no_context_takeover=1",
            "x-other",
            "",
        ] {
            assert_eq!(offer(declined), None, "{declined}");
        }
    }

    #[test]
    fn client_reads_answers() {
        let answer = offer("permessage-deflate; server_max_window_bits=12")
            .unwrap()
            .answer();
        let ours = PerMessageDeflate::from_answer(&answer).unwrap();
        assert_eq!(ours.send_window_bits, 15);
        let limited = PerMessageDeflate::from_answer(
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=9",
        )
        .unwrap();
        assert_eq!(limited.send_window_bits, 9);
        for refused in [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover; foo",
            "permessage-deflate; server_no_context_takeover, permessage-deflate; server_no_context_takeover",
        ] {
            assert_eq!(PerMessageDeflate::from_answer(refused), None, "{refused}");
        }
    }

    fn policy(window_bits: u8, min_bytes: usize) -> CompressPolicy {
        CompressPolicy::new(window_bits, 1, min_bytes)
    }

    /// Encodes a message, decodes the frame with a deflate decoder, returns what came out and
    /// whether it went compressed.
    fn round_trip(payload: &[u8], bits: u8, min_bytes: usize) -> (Vec<u8>, bool) {
        let mut out = vec![0xAA; 3];
        encode_message(
            &mut out,
            OpCode::Binary,
            payload,
            policy(bits, min_bytes),
            None,
        );
        let compressed = out[3] & 0x40 != 0;
        let mut decoder = Decoder::new(Role::Client, 1 << 20).with_deflate();
        let len = out.len() - 3;
        let decoded = decoder.decode(&mut out[3..]).unwrap();
        let Some(Event::Binary(data)) = decoded.event else {
            panic!("no binary message");
        };
        assert_eq!(decoded.consumed, len);
        (data.to_vec(), compressed)
    }

    #[test]
    fn small_or_incompressible_messages_go_as_they_are() {
        let json = br#"{"jsonrpc":"2.0","id":1,"result":{}}"#.repeat(20);
        for (min_bytes, compressed) in [(1024, false), (256, true)] {
            let (data, went) = round_trip(&json, 15, min_bytes);
            assert!(data == json && went == compressed, "min_bytes {min_bytes}");
        }
        // xorshift noise does not compress: it goes as it is.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let (data, went) = round_trip(&noise, 15, 0);
        assert!(data == noise && !went);
    }

    #[test]
    fn inflate_refuses_a_bomb_as_it_crosses_the_limit() {
        let zeros = vec![0u8; 4 << 20];
        let mut compress = Compress::new(Compression::best(), false);
        let mut payload = Vec::with_capacity(8 * 1024);
        compress
            .compress_vec(&zeros, &mut payload, FlushCompress::Sync)
            .unwrap();
        assert!(
            payload.len() < 8 * 1024,
            "4 MiB of zeros in {} bytes",
            payload.len()
        );
        let payload = &payload[..payload.len() - TAIL.len()];
        let mut out = Vec::new();
        assert_eq!(
            inflate(payload, &mut out, 1 << 20),
            Err(InflateError::TooBig)
        );
        assert!(
            out.capacity() <= (1 << 20) + 1,
            "never more than the limit held"
        );
        out.clear();
        assert_eq!(inflate(payload, &mut out, 4 << 20), Ok(()));
        assert!(out == zeros);
        assert_eq!(
            inflate(&[0xFF, 0xFF, 0xFF], &mut Vec::new(), 100),
            Err(InflateError::Corrupt)
        );
    }

    #[test]
    fn a_final_block_ends_the_message() {
        // What a sender without sync flush produces (RFC 7692 §7.2.3.5): BFINAL set.
        let mut c = Compress::new(Compression::default(), false);
        let mut data = Vec::with_capacity(256);
        c.compress_vec(b"hello hello hello", &mut data, FlushCompress::Finish)
            .unwrap();
        let mut out = Vec::new();
        assert_eq!(inflate(&data, &mut out, 100), Ok(()));
        assert_eq!(out, b"hello hello hello");
    }

    proptest! {
        #[test]
        fn compress_inflate_round_trip(
            words in proptest::collection::vec(0u8..8, 0..3000),
            bits in 8u8..=15,
            masked in any::<bool>(),
        ) {
            // Repetitive, so that it compresses.
            let payload: Vec<u8> = words.iter().flat_map(|w| [b'a' + w, b' ']).collect();
            let mut frame = Vec::new();
            let mask = masked.then_some([1, 2, 3, 4]);
            let policy = CompressPolicy::new(bits, 1 + bits % 9, 0);
            encode_message(&mut frame, OpCode::Text, &payload, policy, mask);
            let role = if masked { Role::Server } else { Role::Client };
            let mut decoder = Decoder::new(role, 1 << 20).with_deflate();
            let decoded = decoder.decode(&mut frame).unwrap();
            prop_assert_eq!(decoded.event, Some(Event::Text(std::str::from_utf8(&payload).unwrap())));
        }
    }
}
