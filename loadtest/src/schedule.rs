//! The open-loop schedule: every request's intended send time is fixed before
//! the run starts, from the total rate alone. A connection that falls behind
//! sends late, and its latency still counts from the intended time, so a
//! stalled server shows up in the percentiles instead of slowing the load
//! (no coordinated omission).

use std::time::{Duration, Instant};

/// The intended send times of one connection: evenly spaced at `period`,
/// starting at `first`, `count` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    first: Instant,
    period: Duration,
    count: u64,
    next: u64,
}

impl Schedule {
    /// The schedule of connection `index` of `total`, sharing `rate` requests per second
    /// (total) over `duration` from `start`. Connections are phase-shifted evenly so the
    /// aggregate is a smooth `rate`, not `total` requests in a burst every period.
    pub fn for_connection(
        start: Instant,
        duration: Duration,
        rate: f64,
        index: usize,
        total: usize,
    ) -> Schedule {
        if rate <= 0.0 || !rate.is_finite() || total == 0 {
            return Schedule::empty(start);
        }
        let period_s = total as f64 / rate;
        let offset_s = period_s * (index as f64 / total as f64);
        let span = duration.as_secs_f64();
        let count = if offset_s >= span {
            0
        } else {
            ((span - offset_s) / period_s).ceil() as u64
        };
        Schedule {
            first: start + Duration::from_secs_f64(offset_s),
            period: Duration::from_secs_f64(period_s),
            count,
            next: 0,
        }
    }

    /// A schedule with nothing in it.
    pub fn empty(start: Instant) -> Schedule {
        Schedule {
            first: start,
            period: Duration::ZERO,
            count: 0,
            next: 0,
        }
    }

    /// The same schedule cut to its first `count` requests.
    pub fn at_most(self, count: u64) -> Schedule {
        Schedule {
            count: self.count.min(count),
            ..self
        }
    }

    /// Requests not yet taken.
    pub fn remaining(&self) -> u64 {
        self.count - self.next
    }

    /// The intended time of the next unsent request, if any remain.
    pub fn peek(&self) -> Option<Instant> {
        (self.next < self.count).then(|| self.first + self.period.mul_f64(self.next as f64))
    }

    /// Takes the next request's intended time if it is due at `now`.
    pub fn take_due(&mut self, now: Instant) -> Option<Instant> {
        let at = self.peek()?;
        if at <= now {
            self.next += 1;
            Some(at)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_matches_rate_and_duration() {
        let start = Instant::now();
        let total = 7;
        let rate = 1000.0;
        let duration = Duration::from_secs(3);
        let mut all = Vec::new();
        for i in 0..total {
            let mut s = Schedule::for_connection(start, duration, rate, i, total);
            let end = start + duration * 2;
            while let Some(at) = s.take_due(end) {
                all.push(at);
            }
        }
        // rate * duration requests, give or take one per connection at the edge.
        assert!(
            (all.len() as i64 - 3000).abs() <= total as i64,
            "{}",
            all.len()
        );
        all.sort();
        assert!(all.iter().all(|t| *t >= start && *t < start + duration));
        // Evenly phase-shifted: gaps are about 1 ms, never a burst of `total`.
        let max_gap = all.windows(2).map(|w| w[1] - w[0]).max().expect("gaps");
        assert!(max_gap <= Duration::from_micros(1100), "{max_gap:?}");
    }

    #[test]
    fn late_sends_keep_their_intended_times() {
        let start = Instant::now();
        let mut s = Schedule::for_connection(start, Duration::from_secs(1), 10.0, 0, 1);
        assert_eq!(s.remaining(), 10);
        // Nothing taken until due.
        assert_eq!(s.take_due(start - Duration::from_millis(1)), None);
        // Way behind: every overdue request comes out, each with its own intended time.
        let late = start + Duration::from_millis(350);
        let taken: Vec<_> = std::iter::from_fn(|| s.take_due(late)).collect();
        assert_eq!(taken.len(), 4);
        assert_eq!(taken[3] - start, Duration::from_millis(300));
        assert_eq!(s.peek(), Some(start + Duration::from_millis(400)));
    }

    #[test]
    fn at_most_keeps_the_first_requests() {
        let start = Instant::now();
        let whole = Schedule::for_connection(start, Duration::from_secs(10), 2.0, 0, 1);
        assert_eq!(whole.remaining(), 20);
        let mut cut = whole.at_most(3);
        let end = start + Duration::from_secs(60);
        let taken: Vec<_> = std::iter::from_fn(|| cut.take_due(end)).collect();
        assert_eq!(
            taken,
            [0, 500, 1000].map(|ms| start + Duration::from_millis(ms))
        );
        assert_eq!(whole.at_most(50).remaining(), 20);
    }

    #[test]
    fn zero_rate_is_empty() {
        let start = Instant::now();
        let mut s = Schedule::for_connection(start, Duration::from_secs(5), 0.0, 0, 10);
        assert_eq!(s.remaining(), 0);
        assert_eq!(s.take_due(start + Duration::from_secs(10)), None);
    }
}
