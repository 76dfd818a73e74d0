//! The merged results: a human summary and the JSON written by `--json`.

use crate::cli::{Args, Protocol, Scenario, Target};
use crate::nodes::{NodeTallies, NO_NODE};
use crate::run::PhaseSamples;
use crate::stats::{Percentiles, ShardResult, SlowTally, SseTally, RAMP_BIN};
use clap::ValueEnum;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

/// Server memory at the phase points (bytes, VmRSS).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ServerMemory {
    /// Bytes before the first connection.
    pub before: Option<u64>,
    /// Bytes when every connection was up.
    pub connected: Option<u64>,
    /// Bytes at the end of the measured phase.
    pub end: Option<u64>,
    /// Bytes half a second after every connection closed.
    pub after_close: Option<u64>,
    /// (seconds since the load generator started, bytes), every 500 ms.
    pub series: Vec<(f64, u64)>,
}

/// The server's heap in use at the phase points (bytes, its `ringmcp_heap_bytes{state="in_use"}`
/// gauge, read with `--server-metrics`): what glibc counts as allocated, without the holes and
/// page rounding RSS also carries, so a change of a few bytes per connection shows.
#[derive(Debug, Default, Clone, Serialize, schemars::JsonSchema)]
pub struct ServerHeap {
    /// Bytes before the first connection.
    pub before: Option<u64>,
    /// Bytes when every connection was up.
    pub connected: Option<u64>,
    /// Bytes at the end of the measured phase.
    pub end: Option<u64>,
}

impl ServerHeap {
    /// Bytes per connection set up: (the figure at the end, else when every connection was
    /// up, − the figure before) / `connections`.
    fn per_connection(&self, connections: u64) -> Option<f64> {
        per_connection(self.before, self.end.or(self.connected), connections)
    }
}

/// (`after` − `before`) / `connections`, when all are known.
fn per_connection(before: Option<u64>, after: Option<u64>, connections: u64) -> Option<f64> {
    match (before, after) {
        (Some(before), Some(after)) if connections > 0 => {
            Some((after as f64 - before as f64) / connections as f64)
        }
        _ => None,
    }
}

/// The latencies that completed, and the errors that occurred, in one second of the measured
/// phase (and of the seconds after it, while the last replies arrive or time out).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SecondLatency {
    /// Seconds since the measured phase started.
    pub second: usize,
    /// Samples: the replies (or events) answered in this second.
    pub count: u64,
    /// Median (2 significant figures).
    pub p50_ms: f64,
    /// 99th percentile (2 significant figures).
    pub p99_ms: f64,
    /// Largest value.
    pub max_ms: f64,
    /// Errors of any kind counted in this second.
    pub errors: u64,
}

impl SecondLatency {
    fn of(second: usize, h: &Histogram<u64>, errors: u64) -> SecondLatency {
        let p = Percentiles::of(h);
        SecondLatency {
            second,
            count: p.count,
            p50_ms: p.p50_ms,
            p99_ms: p.p99_ms,
            max_ms: p.max_ms,
            errors,
        }
    }

    /// Every second that saw a latency or an error, in order.
    fn all(r: &ShardResult) -> Vec<SecondLatency> {
        let empty = crate::stats::new_histogram();
        let seconds = r.by_second.len().max(r.errors_by_second.len());
        (0..seconds)
            .map(|second| {
                let h = r.by_second.get(second).unwrap_or(&empty);
                let errors = r.errors_by_second.get(second).copied().unwrap_or(0);
                SecondLatency::of(second, h, errors)
            })
            .collect()
    }
}

/// How many connections were up at one point of the ramp.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RampPoint {
    /// Seconds since the first connection attempt: the end of a 100 ms bin.
    pub time_s: f64,
    /// Connections set up by then, across load shards.
    pub connections_up: u64,
}

impl RampPoint {
    /// The cumulative ramp from connections set up per [`RAMP_BIN`].
    fn all(connected_by_bin: &[u64]) -> Vec<RampPoint> {
        let mut up = 0;
        (connected_by_bin.iter().enumerate())
            .map(|(bin, n)| {
                up += n;
                RampPoint {
                    time_s: ((bin + 1) as u128 * RAMP_BIN.as_millis()) as f64 / 1000.0,
                    connections_up: up,
                }
            })
            .collect()
    }
}

/// Quantile steps per halving of the distance to 100% in [`Report::latency_distribution`]:
/// a histogram of n samples gives about 5·log2(n) points (about 100 for a million samples,
/// 200 at most below 2^40), like HdrHistogram's own percentile output.
const DISTRIBUTION_TICKS: u32 = 5;

/// One point of the latency distribution: the latency below which `percentile` percent of
/// the samples fall.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DistributionPoint {
    /// Percent of the samples, below 100 (the largest is `latency.max_ms`).
    pub percentile: f64,
    /// Latency at that percentile (3 significant figures).
    pub ms: f64,
}

impl DistributionPoint {
    /// The percentile points of a µs histogram, from 0% on to just below 100%.
    fn all(h: &Histogram<u64>) -> Vec<DistributionPoint> {
        (h.iter_quantiles(DISTRIBUTION_TICKS))
            .filter(|v| v.quantile_iterated_to() < 1.0)
            .map(|v| DistributionPoint {
                percentile: v.quantile_iterated_to() * 100.0,
                ms: v.value_iterated_to() as f64 / 1000.0,
            })
            .collect()
    }
}

/// How one listen change reached the streams.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ChangeDelivery {
    /// The change's number, from 1 (its trigger's request id).
    pub change: usize,
    /// Streams that heard of it.
    pub reached: u64,
    /// Delivery latency from the trigger's send: median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// From the trigger's send until the last stream heard of it: the largest latency if
    /// every stream did, else none.
    pub last_stream_ms: Option<f64>,
}

/// What the listen scenario measured.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ListenReport {
    /// Streams acknowledged and held.
    pub streams: u64,
    /// Seconds from the first connection attempt until every stream had its acknowledgment
    /// (the slowest load shard's; --ramp paces the attempts).
    pub open_all_s: Option<f64>,
    /// Changes on the control connection's schedule.
    pub changes_planned: u64,
    /// Changes triggered.
    pub changes_sent: u64,
    /// Streams that heard of fewer changes than were triggered (must be 0).
    pub streams_missing_changes: u64,
    /// Each triggered change, in order.
    pub changes: Vec<ChangeDelivery>,
}

impl ListenReport {
    fn of(r: &ShardResult) -> ListenReport {
        let t = &r.listen;
        let empty = crate::stats::new_histogram();
        let changes = (0..t.changes_sent as usize)
            .map(|n| {
                let delivered = t.by_change.get(n).unwrap_or(&empty);
                let p = Percentiles::of(delivered);
                ChangeDelivery {
                    change: n + 1,
                    reached: p.count,
                    p50_ms: p.p50_ms,
                    p99_ms: p.p99_ms,
                    max_ms: p.max_ms,
                    last_stream_ms: (p.count == t.streams && p.count > 0).then_some(p.max_ms),
                }
            })
            .collect();
        ListenReport {
            streams: t.streams,
            open_all_s: r.connect_window,
            changes_planned: t.changes_planned,
            changes_sent: t.changes_sent,
            streams_missing_changes: t.streams_missing_changes,
            changes,
        }
    }
}

/// The format version written in [`Report::schema_version`].
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// Everything one run measured.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Report {
    /// The format version of this JSON (docs/schema/run-report.json): raised when a field
    /// changes meaning or goes, not when one is added.
    pub schema_version: u32,
    /// Scenario name.
    pub scenario: &'static str,
    /// Target URL.
    pub target: String,
    /// The settings that shape the load: `connections`, `rate` (per second), `duration_s`,
    /// `ramp` (connections per second), `payload` (bytes), `timeout_s`, `protocol`, `tls`, and
    /// the scenario's own (named after their command-line options).
    pub settings: BTreeMap<&'static str, serde_json::Value>,
    /// Load shards.
    pub shards: usize,
    /// Connection attempts.
    pub attempted: u64,
    /// Connections (sessions) set up.
    pub connected: u64,
    /// Connections set up per second during the ramp.
    pub connect_rate: f64,
    /// Connect plus handshake (plus initialize) time.
    pub connect_latency: Percentiles,
    /// Connections up over time since the first attempt, every 100 ms until the last one.
    pub connection_ramp: Vec<RampPoint>,
    /// Requests (or events) scheduled and sent.
    pub sent: u64,
    /// Successful replies (or distinct events delivered).
    pub ok: u64,
    /// `ok` per second of the measured phase.
    pub achieved_rate: f64,
    /// Latency from the intended send time (events: from the server's send time).
    pub latency: Percentiles,
    /// The latency distribution for a percentile plot: the latency at each percentile.
    pub latency_distribution: Vec<DistributionPoint>,
    /// The same latencies by the second of the measured phase they completed in, with the
    /// errors of each second.
    pub latency_by_second: Vec<SecondLatency>,
    /// How late the load generator wrote requests against their intended times (its own health:
    /// large values mean the load generator, not the server, was the bottleneck).
    pub send_lag: Percentiles,
    /// Errors by kind: kind → count.
    pub errors: BTreeMap<String, u64>,
    /// Total errors.
    pub error_total: u64,
    /// Bytes the clients wrote to their sockets.
    pub bytes_out: u64,
    /// Bytes the clients read from their sockets.
    pub bytes_in: u64,
    /// Server memory.
    pub server_rss: ServerMemory,
    /// Server memory per connection set up, bytes: (RSS at the end, else when every
    /// connection was up, − RSS before) / connections set up.
    pub server_bytes_per_connection: Option<f64>,
    /// The server's heap in use (`--server-metrics`; ringmcp only).
    pub server_heap: ServerHeap,
    /// Server heap in use per connection set up, bytes: (heap at the end, else when every
    /// connection was up, − heap before) / connections set up.
    pub server_heap_bytes_per_connection: Option<f64>,
    /// idle-hold over HTTP with --fill-events: event data received per session, the least
    /// a server that can replay them must hold.
    pub fill_bytes_per_session: Option<f64>,
    /// Server CPU use during the measured phase, percent of one core.
    pub server_cpu_percent: Option<f64>,
    /// Our CPU use during the measured phase, percent of one core.
    pub load_cpu_percent: Option<f64>,
    /// The server's busy time during the measured phase (`--server-metrics`), percent of one
    /// core: its CPU use without the idle spinning before it parks.
    pub server_busy_percent: Option<f64>,
    /// Our executors' busy time during the measured phase, percent of one core.
    pub load_busy_percent: Option<f64>,
    /// Milliseconds the server's threads were runnable but not running during the measured
    /// phase: other tasks held their core (from /proc schedstat).
    pub server_core_wait_ms: Option<f64>,
    /// Milliseconds the load generator's threads were runnable but not running during the
    /// measured phase.
    pub load_core_wait_ms: Option<f64>,
    /// SSE delivery checks (sse scenarios).
    pub sse: Option<SseTally>,
    /// Slow readers (slow-readers).
    pub slow_readers: Option<SlowTally>,
    /// Listen streams and each change's delivery (listen).
    pub listen: Option<ListenReport>,
    /// Streamable HTTP scenarios: sessions, events and resumes by node (the node part of each
    /// session id; the `X-Ringmcp-Node` header of a balancer for what each node answered),
    /// and the sessions another node answered for.
    pub nodes: Option<NodeTallies>,
    /// sse scenarios: per stream cut off by a failure, the time from the cut until its next
    /// event (or, with none left, its result) arrived.
    pub failover_gap: Option<Percentiles>,
    /// Wall-clock seconds of the whole run.
    pub wall_seconds: f64,
    /// `--find-capacity`: the search and its probes (the other fields are the confirming
    /// run's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::capacity::Capacity>,
}

/// `k=v, k=v` of a count map, or `-` when empty.
fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "-".into();
    }
    let list: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    list.join(", ")
}

/// The growth of a seconds counter between two samples, in milliseconds. A thread that exits
/// in between takes its share with it, so a shrinking sum reads as zero.
fn waited_ms(start: Option<f64>, end: Option<f64>) -> Option<f64> {
    Some((end? - start?).max(0.0) * 1e3)
}

impl Report {
    /// Builds the report of a run against `target` from the merged shard results.
    pub fn build(
        args: &Args,
        target: &Target,
        shards: usize,
        r: &ShardResult,
        memory: ServerMemory,
        samples: &PhaseSamples,
        wall: Duration,
    ) -> Report {
        let mut settings = BTreeMap::new();
        settings.insert("connections", args.connections.into());
        settings.insert("rate", args.rate.into());
        settings.insert("duration_s", args.duration.into());
        settings.insert("ramp", args.ramp.into());
        settings.insert("payload", args.payload.into());
        settings.insert("timeout_s", args.timeout.into());
        settings.insert("protocol", args.protocol.version().into());
        settings.insert("tls", target.tls.is_some().into());
        settings.insert("ws_deflate", args.ws_deflate.into());
        match args.scenario {
            Scenario::IdleHold => {
                settings.insert("transport", format!("{:?}", args.transport).into());
                settings.insert("fill_events", args.fill_events.into());
            }
            Scenario::SlowReaders => {
                settings.insert("slow_share", args.slow_share.into());
                settings.insert("slow_payload", args.slow_payload.into());
            }
            Scenario::SseResume => {
                settings.insert("disconnects", args.disconnects.into());
                settings.insert("patience_s", args.patience.into());
            }
            Scenario::SseFanout => {
                settings.insert("get_stream", args.get_stream.into());
                settings.insert("patience_s", args.patience.into());
            }
            Scenario::Listen => {
                settings.insert("changes", args.changes.into());
            }
            Scenario::WsEcho | Scenario::WsMcp | Scenario::HttpMcp => {}
        }
        if matches!(args.scenario, Scenario::SseFanout | Scenario::SseResume) {
            let (interval, count) = crate::sse::shape(args.rate, args.connections, args.duration);
            settings.insert("event_interval_ms", interval.into());
            settings.insert("events_per_session", count.into());
        }
        let bytes_per_connection =
            per_connection(memory.before, memory.end.or(memory.connected), r.connected);
        let cpu = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if args.duration > 0.0 => Some((b - a) / args.duration * 100.0),
            _ => None,
        };
        let own_cpu = (samples.own_cpu_end > 0.0).then(|| {
            (samples.own_cpu_end - samples.own_cpu_start) / args.duration.max(1e-9) * 100.0
        });
        Report {
            schema_version: REPORT_SCHEMA_VERSION,
            scenario: args.scenario.name(),
            target: args.target.clone(),
            settings,
            shards,
            attempted: r.attempted,
            connected: r.connected,
            connect_rate: match r.connect_window {
                Some(w) if w > 0.0 => r.connected as f64 / w,
                _ => 0.0,
            },
            connect_latency: Percentiles::of(&r.connect),
            connection_ramp: RampPoint::all(&r.connected_by_bin),
            sent: r.sent,
            ok: r.ok,
            achieved_rate: r.ok as f64 / args.duration.max(1e-9),
            latency: Percentiles::of(&r.latency),
            latency_distribution: DistributionPoint::all(&r.latency),
            latency_by_second: SecondLatency::all(r),
            send_lag: Percentiles::of(&r.send_lag),
            error_total: r.errors.values().sum(),
            errors: r.errors.clone(),
            bytes_out: r.bytes_out,
            bytes_in: r.bytes_in,
            server_bytes_per_connection: bytes_per_connection,
            server_heap_bytes_per_connection: samples.server_heap.per_connection(r.connected),
            server_heap: samples.server_heap.clone(),
            fill_bytes_per_session: (r.fill_bytes > 0 && r.connected > 0)
                .then(|| r.fill_bytes as f64 / r.connected as f64),
            server_rss: memory,
            server_cpu_percent: cpu(samples.server_cpu_start, samples.server_cpu_end),
            load_cpu_percent: own_cpu,
            server_busy_percent: cpu(samples.server_busy_start, samples.server_busy_end),
            load_busy_percent: (args.duration > 0.0)
                .then(|| r.busy.as_secs_f64() / args.duration * 100.0),
            server_core_wait_ms: waited_ms(
                samples.server_core_wait_start,
                samples.server_core_wait_end,
            ),
            load_core_wait_ms: waited_ms(samples.own_core_wait_start, samples.own_core_wait_end),
            sse: matches!(args.scenario, Scenario::SseFanout | Scenario::SseResume)
                .then(|| r.sse.clone()),
            slow_readers: (args.scenario == Scenario::SlowReaders).then(|| r.slow.clone()),
            listen: (args.scenario == Scenario::Listen).then(|| ListenReport::of(r)),
            nodes: (!args.scenario.wants_ws(args.transport) && args.scenario != Scenario::Listen)
                .then(|| r.nodes.clone()),
            failover_gap: matches!(args.scenario, Scenario::SseFanout | Scenario::SseResume)
                .then(|| Percentiles::of(&r.failover_gap)),
            wall_seconds: wall.as_secs_f64(),
            capacity: None,
        }
    }

    /// The summary printed on stdout.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        // Named for the scenarios whose revision is a choice.
        let has_choice = Scenario::from_str(self.scenario, false)
            .is_ok_and(|scenario| scenario.speaks(Protocol::Stateless));
        let protocol = match self.settings["protocol"].as_str() {
            Some(p) if has_choice => format!("MCP {p}, "),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "ringmcp-load {} -> {} ({protocol}{} shard{})",
            self.scenario,
            self.target,
            self.shards,
            if self.shards == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            s,
            "  connections  {}/{} up, {:.0}/s, connect p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
            self.connected,
            self.attempted,
            self.connect_rate,
            self.connect_latency.p50_ms,
            self.connect_latency.p99_ms,
            self.connect_latency.max_ms
        );
        let l = &self.latency;
        if let Some(listen) = &self.listen {
            let _ = writeln!(
                s,
                "  listen       {} streams acknowledged in {}; changes {} of {} triggered; streams that missed one {}",
                listen.streams,
                listen.open_all_s.map_or("?".into(), |t| format!("{t:.2} s")),
                listen.changes_sent,
                listen.changes_planned,
                listen.streams_missing_changes
            );
            for c in &listen.changes {
                let _ = writeln!(
                    s,
                    "  change {:<5} reached {} p50 {:.3} p99 {:.3} max {:.3} ms; last stream {}",
                    c.change,
                    c.reached,
                    c.p50_ms,
                    c.p99_ms,
                    c.max_ms,
                    c.last_stream_ms
                        .map_or("never".into(), |ms| format!("{ms:.3} ms")),
                );
            }
            let _ = writeln!(
                s,
                "  deliveries   due {} heard {} (latency below: from each trigger's send)",
                self.sent, self.ok
            );
        } else {
            let _ = writeln!(
                s,
                "  requests     sent {} ok {} achieved {:.0}/s (target {})",
                self.sent, self.ok, self.achieved_rate, self.settings["rate"]
            );
        }
        let _ = writeln!(
            s,
            "  latency ms   p50 {:.3} p90 {:.3} p99 {:.3} p99.9 {:.3} max {:.3} (n={})",
            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
        );
        let mut seconds: Vec<&SecondLatency> = self
            .latency_by_second
            .iter()
            .filter(|s| s.count > 0)
            .collect();
        seconds.sort_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms));
        if let (Some(median), Some(worst)) = (seconds.get(seconds.len() / 2), seconds.last()) {
            let _ = writeln!(
                s,
                "  per second   p99 median {:.3} worst {:.3} (second {}, max {:.3}) over {} seconds",
                median.p99_ms,
                worst.p99_ms,
                worst.second,
                worst.max_ms,
                seconds.len()
            );
        }
        if self.send_lag.count > 0 {
            let g = &self.send_lag;
            let _ = writeln!(
                s,
                "  send lag ms  p50 {:.3} p99 {:.3} max {:.3} (load generator's own lateness, included above)",
                g.p50_ms, g.p99_ms, g.max_ms
            );
        }
        if self.errors.is_empty() {
            let _ = writeln!(s, "  errors       none");
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(
                s,
                "  errors       {} ({})",
                self.error_total,
                list.join(", ")
            );
        }
        let m = &self.server_rss;
        if let Some(before) = m.before {
            let _ = writeln!(
                s,
                "  server RSS   before {:.1} MiB, connected {}, end {}, after close {}",
                mib(before),
                m.connected
                    .map_or("?".into(), |b| format!("{:.1} MiB", mib(b))),
                m.end.map_or("?".into(), |b| format!("{:.1} MiB", mib(b))),
                m.after_close
                    .map_or("?".into(), |b| format!("{:.1} MiB", mib(b))),
            );
        }
        if let Some(b) = self.server_bytes_per_connection {
            let heap = (self.server_heap_bytes_per_connection)
                .map_or(String::new(), |h| format!(", {h:.0} of its heap in use"));
            let _ = writeln!(s, "  per conn     {b:.0} bytes of server RSS{heap}");
            if let Some(fill) = self.fill_bytes_per_session {
                let _ = writeln!(
                    s,
                    "               of which replayable event data {:.0} bytes, the rest {:.0}",
                    fill,
                    b - fill
                );
            }
        } else if let Some(h) = self.server_heap_bytes_per_connection {
            // No RSS without --server-pid; the heap comes from --server-metrics alone.
            let _ = writeln!(s, "  per conn     {h:.0} bytes of server heap in use");
        }
        if self.server_cpu_percent.is_some() || self.load_cpu_percent.is_some() {
            let pct = |p: Option<f64>| p.map_or("?".into(), |p| format!("{p:.0}%"));
            let _ = writeln!(
                s,
                "  cpu          server {} load {} (of one core, measured phase)",
                pct(self.server_cpu_percent),
                pct(self.load_cpu_percent)
            );
            let _ = writeln!(
                s,
                "  busy         server {} load {} (running tasks and polling I/O, not spinning)",
                pct(self.server_busy_percent),
                pct(self.load_busy_percent)
            );
        }
        if self.server_core_wait_ms.is_some() || self.load_core_wait_ms.is_some() {
            let ms = |w: Option<f64>| w.map_or("?".into(), |w| format!("{w:.1} ms"));
            let _ = writeln!(
                s,
                "  core wait    server {} load {} (runnable while another task had the core)",
                ms(self.server_core_wait_ms),
                ms(self.load_core_wait_ms)
            );
        }
        if let Some(t) = &self.sse {
            let _ = writeln!(
                s,
                "  sse          streams {} completed {} expected {} received {} lost {} duplicated {} out-of-order {}",
                t.streams, t.completed, t.expected, t.received, t.lost, t.duplicated, t.out_of_order
            );
            let _ = writeln!(
                s,
                "               disconnects {} resumes {} refused {} timestamped {} get-stream events {}",
                t.disconnects, t.resumes, t.resume_refused, t.timestamped, t.get_stream_events
            );
            if !t.cuts.is_empty() || !t.retried.is_empty() || t.retried_calls > 0 {
                let _ = writeln!(
                    s,
                    "  failover     cuts {} ({}); calls ended by -31000 and called again {}; cut before their first event and called again {}; tried again {} ({})",
                    t.cuts.values().sum::<u64>(),
                    counts(&t.cuts),
                    t.retried_calls,
                    t.unanswered_calls,
                    t.retried.values().sum::<u64>(),
                    counts(&t.retried),
                );
            }
            if let Some(g) = self.failover_gap.as_ref().filter(|g| g.count > 0) {
                let _ = writeln!(
                    s,
                    "               gap from a cut to the stream's next event: p50 {:.1} p99 {:.1} max {:.1} ms over {} cuts",
                    g.p50_ms, g.p99_ms, g.max_ms, g.count
                );
            }
        }
        if let Some(nodes) = self
            .nodes
            .as_ref()
            .filter(|n| n.by_node.keys().any(|k| k != NO_NODE))
        {
            for (name, t) in &nodes.by_node {
                let _ = writeln!(
                    s,
                    "  node {name:<8} sessions {} events {} resumes {} adopted {} moved away {}",
                    t.sessions, t.events, t.resumes, t.moved_in, t.moved_out
                );
            }
            if !nodes.moved_sessions.is_empty() {
                let mut moves: BTreeMap<(&str, &str), u64> = BTreeMap::new();
                for m in &nodes.moved_sessions {
                    *moves.entry((&m.from, &m.to)).or_insert(0) += 1;
                }
                let list: Vec<String> = (moves.iter())
                    .map(|((from, to), n)| format!("{from}->{to} {n}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "  moved        {} (sessions answered by another node; ids in the JSON)",
                    list.join(", ")
                );
            }
        }
        if let Some(t) = &self.slow_readers {
            let mut secs = t.seconds_to_close.clone();
            secs.sort_by(f64::total_cmp);
            let median = secs.get(secs.len() / 2).copied();
            let _ = writeln!(
                s,
                "  slow readers {} : closed by server {} resets {} still open {} close codes {:?}; to close median {} max {}; wrote {:.1} MiB",
                t.clients,
                t.closed_by_server,
                t.resets,
                t.still_open,
                t.close_codes,
                median.map_or("-".into(), |v| format!("{v:.1}s")),
                secs.last().map_or("-".into(), |v| format!("{v:.1}s")),
                mib(t.bytes_written)
            );
            if let (Some(first), Some(peak)) =
                (m.series.first(), m.series.iter().map(|(_, b)| *b).max())
            {
                let _ = writeln!(
                    s,
                    "               server RSS from {:.1} MiB to a peak of {:.1} MiB",
                    mib(first.1),
                    mib(peak)
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ShardStats;
    use clap::Parser;
    use std::time::Instant;

    fn report(scenario: &str, stats: &ShardStats) -> Report {
        report_with(scenario, stats, PhaseSamples::default())
    }

    fn report_with(scenario: &str, stats: &ShardStats, samples: PhaseSamples) -> Report {
        let args = Args::try_parse_from([
            "ringmcp-load",
            "--scenario",
            scenario,
            "--target",
            "http://127.0.0.1:8080/mcp",
        ])
        .expect("flags");
        let (target, _) = args.targets().expect("target");
        let memory = ServerMemory {
            before: None,
            connected: None,
            end: None,
            after_close: None,
            series: Vec::new(),
        };
        let result = stats.take_result();
        Report::build(&args, &target, 1, &result, memory, &samples, Duration::ZERO)
    }

    #[test]
    fn heap_per_connection_counts_from_the_baseline_to_the_end() {
        let report = |connected: u64, heap: ServerHeap| {
            let stats = ShardStats::default();
            stats.connected.set(connected);
            let samples = PhaseSamples {
                server_heap: heap,
                ..PhaseSamples::default()
            };
            report_with("idle-hold", &stats, samples)
        };
        let heap_per_connection =
            |connected, heap| report(connected, heap).server_heap_bytes_per_connection;
        let mut heap = ServerHeap {
            before: Some(2_000_000),
            connected: Some(2_600_000),
            end: Some(2_700_000),
        };
        assert_eq!(heap_per_connection(1_000, heap.clone()), Some(700.0));
        // Without --server-pid there is no RSS; the summary still says the heap's figure.
        let text = report(1_000, heap.clone()).human();
        assert!(
            text.contains("  per conn     700 bytes of server heap in use\n"),
            "{text}"
        );
        assert_eq!(heap_per_connection(0, heap.clone()), None);
        // Without the end's figure, the one when every connection was up.
        heap.end = None;
        assert_eq!(heap_per_connection(1_000, heap.clone()), Some(600.0));
        // No baseline: a server without the gauge, or one that did not answer in time.
        heap.before = None;
        assert_eq!(heap_per_connection(1_000, heap), None);
    }

    #[test]
    fn a_failover_shows_by_node_in_the_summary_and_the_json() {
        let stats = ShardStats::default();
        {
            let mut nodes = stats.nodes.borrow_mut();
            for id in ["n1.aa", "n2.bb", "n3.cc"] {
                nodes.session(Some(id));
            }
            nodes.events("n1", 40);
            nodes.events("n2", 15);
            nodes.events("n3", 60);
            nodes.answered("n2.bb", "n3");
            nodes.resume("n3");
        }
        ShardStats::count(&mut stats.sse.borrow_mut().cuts, "eof");
        ShardStats::count(&mut stats.sse.borrow_mut().retried, "resume:http_503");
        stats.sse.borrow_mut().retried_calls = 1;
        stats.record_gap(Duration::from_millis(1200));
        let r = report("sse-resume", &stats);
        let text = r.human();
        for line in [
            "  failover     cuts 1 (eof=1); calls ended by -31000 and called again 1; cut before their first event and called again 0; tried again 1 (resume:http_503=1)",
            "  node n2       sessions 1 events 15 resumes 0 adopted 0 moved away 1",
            "  node n3       sessions 1 events 60 resumes 1 adopted 1 moved away 0",
            "  moved        n2->n3 1 (sessions answered by another node; ids in the JSON)",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        assert!(
            text.contains("gap from a cut to the stream's next event: p50 1200"),
            "{text}"
        );
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["nodes"]["by_node"]["n3"]["moved_in"], 1);
        assert_eq!(
            json["nodes"]["moved_sessions"][0],
            serde_json::json!({"session": "n2.bb", "from": "n2", "to": "n3"})
        );
        assert_eq!(json["failover_gap"]["count"], 1);
        assert_eq!(json["sse"]["retried_calls"], 1);
        assert_eq!(json["sse"]["cuts"]["eof"], 1);
        assert_eq!(json["settings"]["patience_s"], 15.0);
    }

    #[test]
    fn the_plots_data_is_in_the_json() {
        let stats = ShardStats::default();
        let now = Instant::now();
        stats.begin_ramp(now - Duration::from_millis(150));
        stats.record_connect(Duration::from_millis(2));
        stats.begin_phase(now - Duration::from_millis(1_200));
        for us in 1..=1_000 {
            stats.record(now, Duration::from_micros(us));
        }
        stats.error("timeout");
        let json = serde_json::to_value(report("ws-mcp", &stats)).expect("json");
        assert_eq!(
            json["connection_ramp"],
            serde_json::json!([
                {"time_s": 0.1, "connections_up": 0},
                {"time_s": 0.2, "connections_up": 1}
            ])
        );
        let seconds = json["latency_by_second"].as_array().expect("seconds");
        assert_eq!(seconds.len(), 2);
        assert_eq!(
            (seconds[0]["count"].as_u64(), seconds[0]["errors"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(
            (seconds[1]["count"].as_u64(), seconds[1]["errors"].as_u64()),
            (Some(1_000), Some(1))
        );
        let p50 = seconds[1]["p50_ms"].as_f64().expect("p50");
        assert!((0.49..0.51).contains(&p50), "p50 {p50}");
        let points: Vec<(f64, f64)> = (json["latency_distribution"].as_array())
            .expect("distribution")
            .iter()
            .map(|p| (p["percentile"].as_f64().unwrap(), p["ms"].as_f64().unwrap()))
            .collect();
        // About 5 points per halving of 1,000 samples' distance to 100%.
        assert!((20..=60).contains(&points.len()), "{} points", points.len());
        assert_eq!(points[0].0, 0.0);
        assert!(points
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        assert!(points.iter().all(|(p, ms)| *p < 100.0 && *ms <= 1.001));
    }

    #[test]
    fn one_node_without_ids_prints_no_node_lines() {
        let stats = ShardStats::default();
        stats.nodes.borrow_mut().session(Some("0001abcd"));
        stats.nodes.borrow_mut().events(NO_NODE, 3);
        let r = report("http-mcp", &stats);
        assert!(!r.human().contains("node "), "{}", r.human());
        assert!(!r.human().contains("failover"), "{}", r.human());
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["nodes"]["by_node"]["-"]["events"], 3);
        assert!(json["failover_gap"].is_null());
        // WebSocket scenarios have no sessions to place.
        assert!(report("ws-mcp", &ShardStats::default()).nodes.is_none());
    }
}
