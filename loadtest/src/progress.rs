//! Live progress on stderr while a run goes, when stderr is a terminal: one line a second
//! with the connections set up, requests sent and answered, errors, and the last second's p99.
//!
//! The hot path pays nothing for it: requests count into each shard's own `Cell`s and
//! histograms as always. Once a second a task on each shard copies its counters and the
//! histogram of the second just completed into its slot of the [`Board`] (one lock per shard
//! per second), and a printing thread reads the board just after and writes the line.

use crate::ctx::Ctx;
use crate::net;
use crate::stats::{Percentiles, ShardStats};
use hdrhistogram::Histogram;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long after a second of the measured phase ends the shards publish it.
const PUBLISH_AFTER: Duration = Duration::from_millis(20);

/// How long after a second ends the line is printed: after every shard published it.
const PRINT_AFTER: Duration = Duration::from_millis(120);

/// How often the printer looks whether the run is over while it waits.
const DONE_POLL: Duration = Duration::from_millis(50);

/// Whether to show progress: only on a terminal, so logs and pipes get nothing extra.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// What one shard has done so far.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// When it was taken.
    pub at: Option<Instant>,
    /// Connections (sessions) set up.
    pub connected: u64,
    /// Requests written.
    pub sent: u64,
    /// Successful replies.
    pub answered: u64,
    /// Errors of every kind.
    pub errors: u64,
    /// The last complete second of the measured phase (from 0) and the latencies that
    /// completed in it, µs.
    pub second: Option<(usize, Histogram<u64>)>,
}

impl Snapshot {
    /// The snapshot of `stats` at `now`, for a measured phase starting at `phase_start`.
    fn of(stats: &ShardStats, phase_start: Option<Instant>, now: Instant) -> Snapshot {
        let second = phase_start.and_then(|start| {
            let last = (now.checked_duration_since(start)?.as_secs() as usize).checked_sub(1)?;
            Some((last, stats.by_second.borrow().get(last)?.clone()))
        });
        Snapshot {
            at: Some(now),
            connected: stats.connected.get(),
            sent: stats.sent.get(),
            answered: stats.ok.get(),
            errors: stats.errors.borrow().values().sum(),
            second,
        }
    }
}

/// The sums over the shards that one line shows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// Connections set up.
    pub connected: u64,
    /// Requests written.
    pub sent: u64,
    /// Successful replies.
    pub answered: u64,
    /// Errors.
    pub errors: u64,
    /// The p99 of the last complete second of the measured phase, ms.
    pub p99_ms: Option<f64>,
    /// When the latest of the snapshots summed was taken.
    pub at: Option<Instant>,
}

/// Every shard's latest [`Snapshot`]: written by the shards, read by the printer.
#[derive(Debug)]
pub struct Board {
    slots: Mutex<Vec<Snapshot>>,
}

impl Board {
    /// A board for `shards` shards.
    pub fn new(shards: usize) -> Board {
        Board {
            slots: Mutex::new(vec![Snapshot::default(); shards]),
        }
    }

    fn publish(&self, shard: usize, snapshot: Snapshot) {
        if let Some(slot) = self
            .slots
            .lock()
            .ok()
            .as_mut()
            .and_then(|s| s.get_mut(shard))
        {
            *slot = snapshot;
        }
    }

    /// The sums; the p99 is that of the latest second published, merged over the shards
    /// that published it.
    pub fn totals(&self) -> Totals {
        let Ok(slots) = self.slots.lock() else {
            return Totals::default();
        };
        let latest = slots
            .iter()
            .filter_map(|s| s.second.as_ref())
            .map(|s| s.0)
            .max();
        let mut merged: Option<Histogram<u64>> = None;
        for (second, h) in slots.iter().filter_map(|s| s.second.as_ref()) {
            if Some(*second) != latest {
                continue;
            }
            match &mut merged {
                // Same bounds on every shard, so adding cannot fail.
                Some(m) => {
                    let _ = m.add(h);
                }
                None => merged = Some(h.clone()),
            }
        }
        Totals {
            connected: slots.iter().map(|s| s.connected).sum(),
            sent: slots.iter().map(|s| s.sent).sum(),
            answered: slots.iter().map(|s| s.answered).sum(),
            errors: slots.iter().map(|s| s.errors).sum(),
            p99_ms: merged
                .filter(|h| !h.is_empty())
                .map(|h| Percentiles::of(&h).p99_ms),
            at: slots.iter().filter_map(|s| s.at).max(),
        }
    }
}

/// When the next line (or publication) is due: the first instant `after` past the end of a
/// whole second since `origin` (the measured phase's start once known, else the run's) that
/// is later than `last`, the previous one.
fn next_tick(origin: Instant, last: Instant, after: Duration) -> Instant {
    let ticks = origin + after;
    ticks + Duration::from_secs(last.saturating_duration_since(ticks).as_secs() + 1)
}

/// Shard `shard`'s publisher: copies the shard's counters to `board` once a second, just
/// after each second of the measured phase ends. Runs until cancelled.
pub async fn publish(ctx: &Ctx, board: &Board, shard: usize) {
    let began = Instant::now();
    loop {
        let origin = ctx.start.opened().unwrap_or(began);
        net::sleep_until(next_tick(origin, Instant::now(), PUBLISH_AFTER)).await;
        board.publish(
            shard,
            Snapshot::of(&ctx.stats, ctx.start.opened(), Instant::now()),
        );
    }
}

/// Where the run is, for the start of a line: connecting, the measured phase's second, or
/// closing after a phase of `duration`.
fn stage(phase_start: Option<Instant>, began: Instant, now: Instant, duration: Duration) -> String {
    match phase_start {
        Some(start) if now >= start + duration => "closing".to_owned(),
        Some(start) if now >= start => format!("{:>5} s", (now - start).as_secs()),
        _ => format!("ramp {:>2}s", (now - began).as_secs()),
    }
}

/// One progress line: `now`'s totals, with the rates since `before`, `secs` earlier, of a
/// run of `connections` connections.
pub fn line(stage: &str, connections: usize, now: &Totals, before: &Totals, secs: f64) -> String {
    let per_s = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs.max(1e-3);
    let p99 = now
        .p99_ms
        .map_or("-".to_owned(), |ms| format!("{ms:.2} ms"));
    format!(
        "{stage:<8} connected {}/{connections}  sent {} (+{:.0}/s)  answered {} (+{:.0}/s)  errors {}  p99 {p99}",
        now.connected,
        now.sent,
        per_s(now.sent, before.sent),
        now.answered,
        per_s(now.answered, before.answered),
        now.errors,
    )
}

/// Prints a line to `out` a second, from `board`, until `done` is set, in step with the
/// measured phase once `phase_start` is set. `connections` and `duration` are the run's.
pub fn print_until(
    board: &Board,
    phase_start: &OnceLock<Instant>,
    done: &AtomicBool,
    connections: usize,
    duration: Duration,
    out: &mut dyn Write,
) {
    let began = Instant::now();
    let mut before = Totals::default();
    let mut last = began;
    loop {
        // Bounded by `done`, which the main thread sets once the shards are joined; the due
        // time moves into step with the measured phase once it is known.
        loop {
            if done.load(Ordering::Acquire) {
                return;
            }
            let origin = phase_start.get().copied().unwrap_or(began);
            let wait =
                next_tick(origin, last, PRINT_AFTER).saturating_duration_since(Instant::now());
            if wait.is_zero() {
                break;
            }
            std::thread::sleep(DONE_POLL.min(wait));
        }
        last = Instant::now();
        let totals = board.totals();
        let stage = stage(phase_start.get().copied(), began, last, duration);
        // Rates over the time between the snapshots, not between the lines.
        let secs = match (totals.at, before.at) {
            (Some(now), Some(then)) => (now - then).as_secs_f64(),
            (Some(now), None) => (now - began).as_secs_f64(),
            _ => 1.0,
        };
        let _ = writeln!(out, "{}", line(&stage, connections, &totals, &before, secs));
        before = totals;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_totals_rates_and_the_p99() {
        let before = Totals {
            connected: 15_000,
            sent: 100_000,
            answered: 99_990,
            errors: 0,
            p99_ms: None,
            at: None,
        };
        let now = Totals {
            sent: 160_000,
            answered: 159_980,
            errors: 2,
            p99_ms: Some(1.234),
            ..before
        };
        assert_eq!(
            line("   12 s", 15_000, &now, &before, 1.0),
            "   12 s  connected 15000/15000  sent 160000 (+60000/s)  answered 159980 (+59990/s)  errors 2  p99 1.23 ms"
        );
        // During the ramp: no latency yet, and rates over the time since the last line.
        let ramp = Totals {
            connected: 2_500,
            ..Totals::default()
        };
        assert_eq!(
            line("ramp  1s", 15_000, &ramp, &Totals::default(), 0.5),
            "ramp  1s connected 2500/15000  sent 0 (+0/s)  answered 0 (+0/s)  errors 0  p99 -"
        );
    }

    #[test]
    fn stages_and_ticks_follow_the_measured_phase() {
        let began = Instant::now();
        let start = began + Duration::from_millis(3_250);
        let long = Duration::from_secs(10);
        let at = |ms: u64| began + Duration::from_millis(ms);
        assert_eq!(stage(None, began, at(1_100), long), "ramp  1s");
        assert_eq!(stage(Some(start), began, at(3_000), long), "ramp  3s");
        assert_eq!(stage(Some(start), began, at(4_400), long), "    1 s");
        assert_eq!(stage(Some(start), began, at(13_300), long), "closing");
        let after = Duration::from_millis(100);
        // During the ramp: seconds since the run began.
        assert_eq!(next_tick(began, began, after), at(1_100));
        assert_eq!(next_tick(began, at(1_100), after), at(2_100));
        // The phase's start known: its first second's end, even from before it; then each
        // following second's.
        assert_eq!(next_tick(start, at(2_100), after), at(4_350));
        assert_eq!(next_tick(start, at(4_349), after), at(4_350));
        assert_eq!(next_tick(start, at(4_350), after), at(5_350));
        assert_eq!(next_tick(start, at(4_400), after), at(5_350));
    }

    #[test]
    fn the_board_sums_shards_and_merges_the_latest_second() {
        let board = Board::new(2);
        let start = Instant::now();
        let with = |second: usize, us: &[u64]| {
            let mut h = Histogram::new_with_bounds(1, 120_000_000, 2).expect("bounds");
            for &v in us {
                h.record(v).expect("in range");
            }
            Some((second, h))
        };
        board.publish(
            0,
            Snapshot {
                at: Some(start),
                connected: 3,
                sent: 10,
                answered: 9,
                errors: 1,
                second: with(4, &[1_000; 99]),
            },
        );
        board.publish(
            1,
            Snapshot {
                at: Some(start + Duration::from_millis(2)),
                connected: 2,
                sent: 5,
                answered: 5,
                errors: 0,
                second: with(4, &[50_000; 2]),
            },
        );
        let t = board.totals();
        assert_eq!((t.connected, t.sent, t.answered, t.errors), (5, 15, 14, 1));
        // 101 samples, the top 2 at 50 ms: the merged p99 is 50 ms, neither shard's alone.
        assert!(
            t.p99_ms.is_some_and(|ms| (49.0..51.0).contains(&ms)),
            "{t:?}"
        );
        // A shard a second behind is left out of the latest second's p99.
        board.publish(
            1,
            Snapshot {
                second: with(3, &[50_000; 2]),
                ..Snapshot::default()
            },
        );
        assert!(board.totals().p99_ms.is_some_and(|ms| ms < 1.1));
        assert_eq!(t.at, Some(start + Duration::from_millis(2)));
    }
}
