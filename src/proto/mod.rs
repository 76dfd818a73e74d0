//! Sans-IO protocol code: plain functions and state machines over byte slices.
//! Nothing in here names glommio or touches a socket.

pub mod auth;
pub mod authority;
pub mod base64;
pub(crate) mod date;
pub(crate) mod hex;
pub mod http1;
pub mod jsonrpc;
pub mod origin;
pub mod sse;
pub mod ws;

/// What a decoder made of the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole item, and how many input bytes it used.
    Complete(T, usize),
    /// Not enough input yet. Decoders consume nothing then, except where their
    /// docs say they keep partial state (the SSE decoder absorbs comment lines
    /// instead of letting a keep-alive stream grow the caller's buffer).
    Partial,
}

impl<T> Status<T> {
    /// The item, if complete.
    pub fn complete(self) -> Option<(T, usize)> {
        match self {
            Status::Complete(item, used) => Some((item, used)),
            Status::Partial => None,
        }
    }
}

/// Appends `n` in decimal ASCII (no `fmt` machinery: this runs for every response head and
/// SSE event).
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
pub(crate) mod testutil {
    /// Runs `check` with `input` delivered as two chunks split at every byte
    /// position (and once whole), so decoders are proven not to depend on
    /// how the network happens to slice the stream.
    pub fn at_every_split(input: &[u8], mut check: impl FnMut(&[&[u8]])) {
        check(&[input]);
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            check(&[a, b]);
        }
    }
}
