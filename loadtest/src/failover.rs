//! Riding out a node's death behind a balancer: which failures another try may fix, how long
//! to wait between tries, and where a stream whose handler died carries on.

use crate::net::{self, NetError};
use std::time::{Duration, Instant};

/// Waits between tries: 50 ms, doubling up to 1 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// The first wait.
    pub const FIRST: Duration = Duration::from_millis(50);
    /// The longest wait.
    pub const MAX: Duration = Duration::from_secs(1);

    /// A backoff at its first wait.
    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The wait before the next try.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// Whether another try may succeed where this one failed: the connection was refused, reset
/// or cut (a node that died, and a balancer that has not marked it down yet), it timed out,
/// or the balancer or a node answered 502, 503 or 504 (no live node yet; a node whose event
/// store is away). Anything else (404 for an unknown session, 410 for evicted events, a
/// broken response) another try would only repeat.
pub fn retryable(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Io(_) | NetError::Eof | NetError::Timeout | NetError::Status(502..=504)
    )
}

/// Runs `attempt` until it succeeds, fails in a way [`retryable`] rules out, or the next try
/// would start after `until`; `on_retry` sees each failure that is tried again. Returns the
/// last failure when it gives up.
pub async fn with_retries<T>(
    until: Instant,
    on_retry: &mut dyn FnMut(&NetError),
    mut attempt: impl AsyncFnMut() -> Result<T, NetError>,
) -> Result<T, NetError> {
    let mut backoff = Backoff::new();
    loop {
        let e = match attempt().await {
            Ok(done) => return Ok(done),
            Err(e) => e,
        };
        let wait = backoff.next_wait();
        if !retryable(&e) || Instant::now() + wait > until {
            return Err(e);
        }
        on_retry(&e);
        net::sleep_until(Instant::now() + wait).await;
    }
}

/// Where a stream of `count` events numbered from 1 carries on once its handler died, having
/// delivered up to `highest` (None: nothing yet): the first sequence number of the new call,
/// and how many events it still owes. A stream that delivered every event owes none, and the
/// call for none still brings its result.
pub fn continuation(count: u64, highest: Option<u64>) -> (u64, u64) {
    let from = highest.map_or(1, |h| h.saturating_add(1));
    (from, (count + 1).saturating_sub(from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::io::ErrorKind;

    #[test]
    fn the_backoff_doubles_up_to_a_second() {
        let mut b = Backoff::new();
        let waits: Vec<u64> = (0..8).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
    }

    #[test]
    fn what_another_try_may_fix() {
        for e in [
            NetError::Io(ErrorKind::ConnectionRefused),
            NetError::Io(ErrorKind::ConnectionReset),
            NetError::Eof,
            NetError::Timeout,
            NetError::Status(502),
            NetError::Status(503),
            NetError::Status(504),
        ] {
            assert!(retryable(&e), "{e}");
        }
        for e in [
            NetError::Status(404),
            NetError::Status(410),
            NetError::Status(400),
            NetError::Status(500),
            NetError::Protocol("stream answered without SSE"),
            NetError::JsonRpc(-31000),
        ] {
            assert!(!retryable(&e), "{e}");
        }
    }

    #[test]
    fn a_dead_handler_s_stream_carries_on_after_what_arrived() {
        assert_eq!(continuation(10, None), (1, 10));
        assert_eq!(continuation(10, Some(4)), (5, 6));
        assert_eq!(continuation(10, Some(9)), (10, 1));
        // Everything arrived but the result: a call for nothing brings it.
        assert_eq!(continuation(10, Some(10)), (11, 0));
        assert_eq!(continuation(0, None), (1, 0));
    }

    #[test]
    fn retries_what_may_pass_and_stops_at_the_rest() {
        glommio::LocalExecutor::default().run(async {
            let far = Instant::now() + Duration::from_secs(60);
            // Refused twice, then through: two retries seen.
            let tries = Cell::new(0);
            let mut seen = Vec::new();
            let got = with_retries(far, &mut |e| seen.push(e.kind()), async || {
                tries.set(tries.get() + 1);
                match tries.get() {
                    1 => Err(NetError::Io(ErrorKind::ConnectionRefused)),
                    2 => Err(NetError::Status(503)),
                    n => Ok(n),
                }
            })
            .await;
            assert_eq!(got, Ok(3));
            assert_eq!(seen, ["io:ConnectionRefused", "http_503"]);

            // A refusal another try cannot fix ends it at once.
            tries.set(0);
            let got: Result<(), _> = with_retries(far, &mut |_| panic!("no retry"), async || {
                tries.set(tries.get() + 1);
                Err(NetError::Status(404))
            })
            .await;
            assert_eq!((got, tries.get()), (Err(NetError::Status(404)), 1));

            // Out of patience: the last failure, without another try.
            tries.set(0);
            let got: Result<(), _> =
                with_retries(Instant::now(), &mut |_| panic!("no retry"), async || {
                    tries.set(tries.get() + 1);
                    Err(NetError::Eof)
                })
                .await;
            assert_eq!((got, tries.get()), (Err(NetError::Eof), 1));
        });
    }
}
