//! Per-shard counters and latency histograms, and the merged report.
//!
//! Each shard records into its own [`ShardStats`] (plain `Cell`s and
//! `RefCell`s: never shared across threads) and hands a [`ShardResult`] to the
//! main thread when it finishes; the main thread merges them.

use crate::nodes::NodeTallies;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Highest latency the histograms track, in microseconds (larger values are clamped).
const MAX_TRACKED_US: u64 = 120_000_000;

/// The width of one bin of [`ShardStats::connected_by_bin`]: fine enough to show a ramp of a
/// few seconds, coarse enough that an hour-long ramp stays a few tens of thousands of counters.
pub const RAMP_BIN: Duration = Duration::from_millis(100);

/// A fresh latency histogram (microseconds, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 120 s at 3 significant figures is a valid configuration.
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid"))
    })
}

/// A histogram for one second of the measured phase (microseconds, 2 significant figures:
/// enough for that second's p99, at a fraction of the memory of the whole-run histogram).
fn new_second_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 2).unwrap_or_else(|_| {
        Histogram::new(2).unwrap_or_else(|_| unreachable!("2 significant figures is valid"))
    })
}

/// What one shard measured; lives on that shard only.
#[derive(Debug)]
pub struct ShardStats {
    /// Request (or event delivery) latency from the intended time, µs.
    pub latency: RefCell<Histogram<u64>>,
    /// The same latencies by the second of the measured phase they completed in, µs: shows
    /// whether a tail is steady or comes in bursts.
    pub by_second: RefCell<Vec<Histogram<u64>>>,
    /// Start of the measured phase, once it is known.
    phase_start: Cell<Option<Instant>>,
    /// Errors by the second of the measured phase they occurred in (errors before it are in
    /// `errors` only).
    pub errors_by_second: RefCell<Vec<u64>>,
    /// This shard's first connection attempt, once it is made.
    ramp_start: Cell<Option<Instant>>,
    /// Connections set up, by the [`RAMP_BIN`] since `ramp_start` they completed in.
    pub connected_by_bin: RefCell<Vec<u64>>,
    /// Connect plus handshake (and initialize) time, µs.
    pub connect: RefCell<Histogram<u64>>,
    /// How late requests went out against their intended time, µs (the load generator's own lag).
    pub send_lag: RefCell<Histogram<u64>>,
    /// Errors by kind.
    pub errors: RefCell<BTreeMap<String, u64>>,
    /// Requests written.
    pub sent: Cell<u64>,
    /// Successful replies (or delivered events).
    pub ok: Cell<u64>,
    /// Connections (sessions) fully set up.
    pub connected: Cell<u64>,
    /// Connection attempts.
    pub attempted: Cell<u64>,
    /// Bytes written and read.
    pub bytes_out: Cell<u64>,
    /// Bytes read.
    pub bytes_in: Cell<u64>,
    /// idle-hold over HTTP: event data bytes received while filling the replay rings.
    pub fill_bytes: Cell<u64>,
    /// SSE delivery checks.
    pub sse: RefCell<SseTally>,
    /// Slow-reader observations.
    pub slow: RefCell<SlowTally>,
    /// listen: the streams and each change's delivery.
    pub listen: RefCell<ListenTally>,
    /// What each node served (HTTP scenarios).
    pub nodes: RefCell<NodeTallies>,
    /// sse scenarios: per stream cut off by a failure, the time from the cut until its next
    /// event arrived, µs.
    pub failover_gap: RefCell<Histogram<u64>>,
    /// This shard's executor busy time over the measured phase (tasks and I/O polls, no spin).
    pub busy: Cell<Duration>,
}

impl Default for ShardStats {
    fn default() -> Self {
        ShardStats {
            latency: RefCell::new(new_histogram()),
            by_second: RefCell::new(Vec::new()),
            phase_start: Cell::new(None),
            errors_by_second: RefCell::new(Vec::new()),
            ramp_start: Cell::new(None),
            connected_by_bin: RefCell::new(Vec::new()),
            connect: RefCell::new(new_histogram()),
            send_lag: RefCell::new(new_histogram()),
            errors: RefCell::new(BTreeMap::new()),
            sent: Cell::new(0),
            ok: Cell::new(0),
            connected: Cell::new(0),
            attempted: Cell::new(0),
            bytes_out: Cell::new(0),
            bytes_in: Cell::new(0),
            fill_bytes: Cell::new(0),
            sse: RefCell::new(SseTally::default()),
            slow: RefCell::new(SlowTally::default()),
            listen: RefCell::new(ListenTally::default()),
            nodes: RefCell::new(NodeTallies::default()),
            failover_gap: RefCell::new(new_histogram()),
            busy: Cell::new(Duration::ZERO),
        }
    }
}

impl ShardStats {
    /// Counts one error of `kind`, and in the measured phase, in the second it occurred in.
    pub fn error(&self, kind: impl Into<String>) {
        *self.errors.borrow_mut().entry(kind.into()).or_insert(0) += 1;
        if let Some(start) = self.phase_start.get() {
            let second = Instant::now().saturating_duration_since(start).as_secs() as usize;
            bump(&mut self.errors_by_second.borrow_mut(), second);
        }
    }

    /// Sets the measured phase's start, from which [`ShardStats::record`] and
    /// [`ShardStats::error`] count seconds.
    pub fn begin_phase(&self, start: Instant) {
        self.phase_start.set(Some(start));
    }

    /// Sets the time of the shard's first connection attempt, from which
    /// [`ShardStats::record_connect`] counts ramp bins.
    pub fn begin_ramp(&self, start: Instant) {
        self.ramp_start.set(Some(start));
    }

    /// Records a latency of something that completed at `done`.
    pub fn record(&self, done: Instant, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_TRACKED_US);
        // Clamped into the histogram's range, so recording cannot fail.
        let _ = self.latency.borrow_mut().record(us);
        if let Some(start) = self.phase_start.get() {
            // Bounded by the run: the last replies complete within the timeout after its end.
            let second = done.saturating_duration_since(start).as_secs() as usize;
            let mut by_second = self.by_second.borrow_mut();
            if by_second.len() <= second {
                by_second.resize_with(second + 1, new_second_histogram);
            }
            let _ = by_second[second].record(us);
        }
    }

    /// Records a listen stream hearing of change `change` (counted from 0) at `done`,
    /// `latency` after its trigger went out: in that change's histogram and the run's.
    pub fn record_change(&self, change: usize, done: Instant, latency: Duration) {
        self.record(done, latency);
        let us = (latency.as_micros() as u64).clamp(1, MAX_TRACKED_US);
        let by_change = &mut self.listen.borrow_mut().by_change;
        if by_change.len() <= change {
            by_change.resize_with(change + 1, new_histogram);
        }
        let _ = by_change[change].record(us);
    }

    /// Records how late a request was written against its intended time.
    pub fn record_lag(&self, lag: Duration) {
        let us = (lag.as_micros() as u64).clamp(1, MAX_TRACKED_US);
        let _ = self.send_lag.borrow_mut().record(us);
    }

    /// Records a failover gap: a cut-off stream's wait for its next event.
    pub fn record_gap(&self, gap: Duration) {
        let us = (gap.as_micros() as u64).clamp(1, MAX_TRACKED_US);
        let _ = self.failover_gap.borrow_mut().record(us);
    }

    /// Counts one occurrence of `kind` in a tally's `map`.
    pub fn count(map: &mut BTreeMap<String, u64>, kind: impl Into<String>) {
        *map.entry(kind.into()).or_insert(0) += 1;
    }

    /// Records a connection set up now, after `took`: its connect time, and once the ramp's
    /// start is known, its [`RAMP_BIN`].
    pub fn record_connect(&self, took: Duration) {
        let us = (took.as_micros() as u64).clamp(1, MAX_TRACKED_US);
        let _ = self.connect.borrow_mut().record(us);
        if let Some(start) = self.ramp_start.get() {
            let since = Instant::now().saturating_duration_since(start);
            let bin = (since.as_nanos() / RAMP_BIN.as_nanos()) as usize;
            bump(&mut self.connected_by_bin.borrow_mut(), bin);
        }
    }

    /// Adds to a counter cell.
    pub fn add(cell: &Cell<u64>, n: u64) {
        cell.set(cell.get() + n);
    }

    /// Moves everything recorded so far into a `Send` result for the main thread.
    pub fn take_result(&self) -> ShardResult {
        ShardResult {
            latency: self.latency.replace(new_histogram()),
            by_second: self.by_second.take(),
            errors_by_second: self.errors_by_second.take(),
            connected_by_bin: self.connected_by_bin.take(),
            connect: self.connect.replace(new_histogram()),
            send_lag: self.send_lag.replace(new_histogram()),
            errors: self.errors.take(),
            sent: self.sent.take(),
            ok: self.ok.take(),
            connected: self.connected.take(),
            attempted: self.attempted.take(),
            bytes_out: self.bytes_out.take(),
            bytes_in: self.bytes_in.take(),
            fill_bytes: self.fill_bytes.take(),
            sse: self.sse.take(),
            slow: self.slow.take(),
            listen: self.listen.take(),
            nodes: self.nodes.take(),
            failover_gap: self.failover_gap.replace(new_histogram()),
            busy: self.busy.take(),
            connect_window: None,
        }
    }
}

/// Adds one to `counts[index]`, growing `counts` with zeros to reach it. Indices are bounded
/// by the run's length (seconds, or ramp bins until the last setup deadline).
fn bump(counts: &mut Vec<u64>, index: usize) {
    if counts.len() <= index {
        counts.resize(index + 1, 0);
    }
    counts[index] += 1;
}

/// Adds `theirs` to `mine` index by index, growing `mine` with zeros to its length.
fn add_counts(mine: &mut Vec<u64>, theirs: &[u64]) {
    if mine.len() < theirs.len() {
        mine.resize(theirs.len(), 0);
    }
    for (m, t) in mine.iter_mut().zip(theirs) {
        *m += t;
    }
}

/// SSE delivery accounting (sse-fanout, sse-resume).
#[derive(Debug, Default, Clone, Serialize, schemars::JsonSchema)]
pub struct SseTally {
    /// Streams (tools/call stream requests) started.
    pub streams: u64,
    /// Streams that reached their final result.
    pub completed: u64,
    /// Events the server was asked for.
    pub expected: u64,
    /// Distinct events received.
    pub received: u64,
    /// Events received more than once.
    pub duplicated: u64,
    /// Events missing at the end of their stream.
    pub lost: u64,
    /// Events that arrived after a later one.
    pub out_of_order: u64,
    /// Forced disconnects.
    pub disconnects: u64,
    /// Successful Last-Event-ID resumes.
    pub resumes: u64,
    /// Resumes the server refused (HTTP status other than 200) in a way another try could
    /// not change (a 404 or 410, not a 502, 503 or 504).
    pub resume_refused: u64,
    /// Streams cut off without being asked to (not a planned disconnect), by how: each was
    /// resumed, or called again from its next event.
    pub cuts: BTreeMap<String, u64>,
    /// Failed attempts that were tried again after a backoff, by what failed: `resume:<kind>`
    /// for a resume, `call:<kind>` for a call's POST.
    pub retried: BTreeMap<String, u64>,
    /// Calls that ended with -31000 (the node running their handler stopped), each called
    /// again from its next sequence number.
    pub retried_calls: u64,
    /// Calls whose response was cut before its first event (the node died before it
    /// answered anything): with no event id to resume from, each was called again from its
    /// next sequence number, as after -31000.
    pub unanswered_calls: u64,
    /// Events that carried a server timestamp (latency measured from it).
    pub timestamped: u64,
    /// Events seen on the held GET streams (sse-fanout --get-stream).
    pub get_stream_events: u64,
}

impl SseTally {
    fn merge(&mut self, o: &SseTally) {
        self.streams += o.streams;
        self.completed += o.completed;
        self.expected += o.expected;
        self.received += o.received;
        self.duplicated += o.duplicated;
        self.lost += o.lost;
        self.out_of_order += o.out_of_order;
        self.disconnects += o.disconnects;
        self.resumes += o.resumes;
        self.resume_refused += o.resume_refused;
        for (k, v) in &o.cuts {
            *self.cuts.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &o.retried {
            *self.retried.entry(k.clone()).or_insert(0) += v;
        }
        self.retried_calls += o.retried_calls;
        self.unanswered_calls += o.unanswered_calls;
        self.timestamped += o.timestamped;
        self.get_stream_events += o.get_stream_events;
    }
}

/// What happened to the clients that stopped reading (slow-readers).
#[derive(Debug, Default, Clone, Serialize, schemars::JsonSchema)]
pub struct SlowTally {
    /// Slow readers that were set up.
    pub clients: u64,
    /// Slow readers the server closed (FIN seen) before the end.
    pub closed_by_server: u64,
    /// Slow readers that saw a reset or broken pipe.
    pub resets: u64,
    /// Still open at the end.
    pub still_open: u64,
    /// Close codes found in what the server had sent, by code.
    pub close_codes: BTreeMap<String, u64>,
    /// Seconds from "stopped reading" to the server closing, per closed client.
    pub seconds_to_close: Vec<f64>,
    /// Payload bytes the slow readers managed to write before their writes stalled.
    pub bytes_written: u64,
}

impl SlowTally {
    fn merge(&mut self, o: &SlowTally) {
        self.clients += o.clients;
        self.closed_by_server += o.closed_by_server;
        self.resets += o.resets;
        self.still_open += o.still_open;
        for (k, v) in &o.close_codes {
            *self.close_codes.entry(k.clone()).or_insert(0) += v;
        }
        self.seconds_to_close.extend_from_slice(&o.seconds_to_close);
        self.bytes_written += o.bytes_written;
    }
}

/// listen: the streams and how each change reached them.
#[derive(Debug, Default)]
pub struct ListenTally {
    /// Streams acknowledged and held through the measured phase.
    pub streams: u64,
    /// Streams that heard of fewer changes than were triggered.
    pub streams_missing_changes: u64,
    /// Changes the control connection had on its schedule (--changes, --rate, --duration).
    pub changes_planned: u64,
    /// Changes it triggered.
    pub changes_sent: u64,
    /// Delivery latency of each change from its trigger's send, µs, by change (from 0): at
    /// the whole run's precision (150 KB each), as its max is the time to the last stream.
    pub by_change: Vec<Histogram<u64>>,
}

impl ListenTally {
    fn merge(&mut self, o: &ListenTally) {
        self.streams += o.streams;
        self.streams_missing_changes += o.streams_missing_changes;
        // Only the shard that runs the control connection counts changes.
        self.changes_planned = self.changes_planned.max(o.changes_planned);
        self.changes_sent = self.changes_sent.max(o.changes_sent);
        if self.by_change.len() < o.by_change.len() {
            self.by_change.resize_with(o.by_change.len(), new_histogram);
        }
        for (mine, theirs) in self.by_change.iter_mut().zip(&o.by_change) {
            let _ = mine.add(theirs);
        }
    }
}

/// One shard's results, sent to the main thread.
#[derive(Debug)]
pub struct ShardResult {
    /// Latency histogram, µs.
    pub latency: Histogram<u64>,
    /// Latency by second of the measured phase, µs.
    pub by_second: Vec<Histogram<u64>>,
    /// Errors by second of the measured phase.
    pub errors_by_second: Vec<u64>,
    /// Connections set up by [`RAMP_BIN`] since the first attempt.
    pub connected_by_bin: Vec<u64>,
    /// Connect histogram, µs.
    pub connect: Histogram<u64>,
    /// Send lag histogram, µs.
    pub send_lag: Histogram<u64>,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Requests written.
    pub sent: u64,
    /// Successful replies or events.
    pub ok: u64,
    /// Connections set up.
    pub connected: u64,
    /// Connection attempts.
    pub attempted: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Bytes read.
    pub bytes_in: u64,
    /// Event data bytes received while filling replay rings.
    pub fill_bytes: u64,
    /// SSE tallies.
    pub sse: SseTally,
    /// Slow-reader tallies.
    pub slow: SlowTally,
    /// listen tallies.
    pub listen: ListenTally,
    /// What each node served.
    pub nodes: NodeTallies,
    /// Failover gaps, µs.
    pub failover_gap: Histogram<u64>,
    /// Executor busy time over the measured phase, summed over shards.
    pub busy: Duration,
    /// Seconds the shard spent opening its connections.
    pub connect_window: Option<f64>,
}

impl ShardResult {
    /// Folds `other` into `self`.
    pub fn merge(&mut self, other: &ShardResult) {
        // Same bounds on every shard, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        if self.by_second.len() < other.by_second.len() {
            self.by_second
                .resize_with(other.by_second.len(), new_second_histogram);
        }
        for (mine, theirs) in self.by_second.iter_mut().zip(&other.by_second) {
            let _ = mine.add(theirs);
        }
        add_counts(&mut self.errors_by_second, &other.errors_by_second);
        add_counts(&mut self.connected_by_bin, &other.connected_by_bin);
        let _ = self.connect.add(&other.connect);
        let _ = self.send_lag.add(&other.send_lag);
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_insert(0) += v;
        }
        self.sent += other.sent;
        self.ok += other.ok;
        self.connected += other.connected;
        self.attempted += other.attempted;
        self.bytes_out += other.bytes_out;
        self.bytes_in += other.bytes_in;
        self.fill_bytes += other.fill_bytes;
        self.sse.merge(&other.sse);
        self.slow.merge(&other.slow);
        self.listen.merge(&other.listen);
        self.nodes.merge(&other.nodes);
        let _ = self.failover_gap.add(&other.failover_gap);
        self.busy += other.busy;
        self.connect_window = match (self.connect_window, other.connect_window) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// 50th percentile.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value.
    pub max_ms: f64,
}

impl Percentiles {
    /// Summarises a µs histogram.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles {
                count: 0,
                mean_ms: 0.0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                p999_ms: 0.0,
                max_ms: 0.0,
            };
        }
        Percentiles {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_histograms_and_counters() {
        let now = Instant::now();
        let a = ShardStats::default();
        a.record(now, Duration::from_micros(100));
        a.error("http_503");
        ShardStats::add(&a.ok, 1);
        let b = ShardStats::default();
        b.record(now, Duration::from_micros(300));
        b.record(now, Duration::from_secs(1000)); // clamped, not dropped
        b.error("http_503");
        b.error("timeout");
        ShardStats::add(&b.ok, 2);
        let mut merged = a.take_result();
        merged.merge(&b.take_result());
        assert_eq!(merged.latency.len(), 3);
        assert_eq!(merged.ok, 3);
        assert_eq!(merged.errors["http_503"], 2);
        assert_eq!(merged.errors["timeout"], 1);
        let p = Percentiles::of(&merged.latency);
        assert_eq!(p.count, 3);
        assert!(p.max_ms >= 119_000.0);
        // No phase start was set: nothing is kept by second.
        assert!(merged.by_second.is_empty());
    }

    #[test]
    fn failover_counts_and_gaps_merge() {
        let a = ShardStats::default();
        a.record_gap(Duration::from_millis(300));
        ShardStats::count(&mut a.sse.borrow_mut().cuts, "eof");
        ShardStats::count(&mut a.sse.borrow_mut().retried, "resume:http_503");
        a.sse.borrow_mut().retried_calls = 2;
        a.nodes.borrow_mut().session(Some("n2.ab"));
        let b = ShardStats::default();
        b.record_gap(Duration::from_millis(900));
        ShardStats::count(&mut b.sse.borrow_mut().cuts, "eof");
        ShardStats::count(&mut b.sse.borrow_mut().retried, "call:io:ConnectionRefused");
        b.sse.borrow_mut().retried_calls = 1;
        b.nodes.borrow_mut().session(Some("n2.cd"));
        let mut merged = a.take_result();
        merged.merge(&b.take_result());
        assert_eq!(merged.sse.cuts["eof"], 2);
        assert_eq!(merged.sse.retried.len(), 2);
        assert_eq!(merged.sse.retried_calls, 3);
        assert_eq!(merged.nodes.by_node["n2"].sessions, 2);
        let gap = Percentiles::of(&merged.failover_gap);
        assert_eq!(gap.count, 2);
        assert!((899.0..901.0).contains(&gap.max_ms), "{gap:?}");
        // Taken, not copied: the shard starts over.
        assert!(a.failover_gap.borrow().is_empty() && a.nodes.borrow().by_node.is_empty());
    }

    #[test]
    fn listen_deliveries_are_kept_by_change() {
        let now = Instant::now();
        let a = ShardStats::default();
        a.record_change(0, now, Duration::from_millis(2));
        a.record_change(2, now, Duration::from_millis(40));
        a.listen.borrow_mut().changes_sent = 3;
        let b = ShardStats::default();
        b.record_change(0, now, Duration::from_millis(4));
        let mut merged = a.take_result();
        merged.merge(&b.take_result());
        let counts: Vec<u64> = merged.listen.by_change.iter().map(|h| h.len()).collect();
        assert_eq!(counts, [2, 0, 1]);
        assert_eq!(merged.listen.changes_sent, 3);
        // Every delivery is in the run's latency too.
        assert_eq!(merged.latency.len(), 3);
        let first = Percentiles::of(&merged.listen.by_change[0]);
        assert!((3.9..4.1).contains(&first.max_ms), "{first:?}");
    }

    #[test]
    fn errors_by_second_and_the_connection_ramp_merge() {
        let now = Instant::now();
        let a = ShardStats::default();
        a.error("setup:refused"); // before the phase: in the totals only
        a.record_connect(Duration::from_millis(1)); // before the ramp is known: no bin
        a.begin_ramp(now - Duration::from_millis(250));
        a.record_connect(Duration::from_millis(1));
        a.begin_phase(now - Duration::from_millis(1_500));
        a.error("timeout");
        let b = ShardStats::default();
        b.begin_ramp(now);
        b.record_connect(Duration::from_millis(1));
        b.record_connect(Duration::from_millis(1));
        b.begin_phase(now - Duration::from_millis(200));
        b.error("timeout");
        let mut merged = a.take_result();
        merged.merge(&b.take_result());
        assert_eq!(merged.errors_by_second, [1, 1]);
        assert_eq!(merged.connected_by_bin, [2, 0, 1]);
        assert_eq!(merged.errors["timeout"], 2);
        assert_eq!(merged.connect.len(), 4);
    }

    #[test]
    fn latencies_are_kept_by_the_second_they_completed_in() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let a = ShardStats::default();
        a.record(at(0), Duration::from_micros(100)); // before the phase: whole run only
        a.begin_phase(start);
        a.record(at(10), Duration::from_micros(100));
        a.record(at(2_500), Duration::from_millis(40));
        let b = ShardStats::default();
        b.begin_phase(start);
        b.record(at(900), Duration::from_micros(200));
        b.record(at(3_100), Duration::from_micros(300));
        let mut merged = a.take_result();
        merged.merge(&b.take_result());
        let counts: Vec<u64> = merged.by_second.iter().map(|h| h.len()).collect();
        assert_eq!(counts, [2, 0, 1, 1]);
        assert_eq!(merged.latency.len(), 5);
        let worst = Percentiles::of(&merged.by_second[2]);
        assert!((39.0..41.0).contains(&worst.max_ms), "{worst:?}");
    }
}
