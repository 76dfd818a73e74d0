//! An instant in 8 bytes, for state that every connection holds (a `std::time::Instant` is
//! 16, an `Option` of one too).

use std::num::NonZeroU64;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// Where every [`Stamp`] counts from: the first time a stamp is made or [`Stamp::start`] is
/// called, whichever comes first.
static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);

/// An instant in 8 bytes: nanoseconds since the process's stamp origin, plus one (584 years
/// of range; `Option<Stamp>` is 8 bytes too). An instant before the origin is stamped as the
/// origin, so the origin is fixed early ([`Stamp::start`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(NonZeroU64);

impl Stamp {
    /// Fixes the origin now, before any instant the caller will stamp.
    pub fn start() {
        LazyLock::force(&ORIGIN);
    }

    pub fn of(at: Instant) -> Stamp {
        let nanos = at.saturating_duration_since(*ORIGIN).as_nanos();
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX - 1);
        Stamp(NonZeroU64::MIN.saturating_add(nanos))
    }

    pub fn instant(self) -> Instant {
        *ORIGIN + Duration::from_nanos(self.0.get() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::Stamp;
    use std::time::{Duration, Instant};

    #[test]
    fn a_stamp_gives_back_the_instant_it_was_made_of() {
        Stamp::start();
        let at = Instant::now() + Duration::from_millis(1234);
        assert_eq!(Stamp::of(at).instant(), at);
        assert_eq!(size_of::<Option<Stamp>>(), 8);
    }
}
