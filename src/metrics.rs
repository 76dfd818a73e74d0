//! Per-shard counters. Each shard owns one [`Metrics`] (plain `Cell`s: no
//! atomics on the request path); a scrape gathers a [`Snapshot`] from every
//! shard by message passing and [`render`]s them as Prometheus text.

use crate::store::redis::ClientStats;
use crate::store::Evictions;
use hdrhistogram::Histogram;
use std::cell::{Cell, RefCell};
use std::fmt::Write;
use std::time::Duration;

/// Which transport a connection ended up speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP/1.1 (before or without an upgrade).
    Http,
    /// WebSocket carrying MCP at /mcp.
    WsMcp,
    /// Raw WebSocket echo at /echo.
    WsEcho,
}

impl Transport {
    /// Every transport, in label order.
    pub const ALL: [Transport; 3] = [Transport::Http, Transport::WsMcp, Transport::WsEcho];

    /// The Prometheus label value.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::WsMcp => "ws_mcp",
            Transport::WsEcho => "ws_echo",
        }
    }
}

/// Kinds of error the server counts; each bad input ticks exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A request head or body that broke an HTTP rule.
    HttpParse,
    /// A refused WebSocket opening handshake.
    WsHandshake,
    /// A WebSocket frame or message that broke an RFC 6455 rule.
    WsProtocol,
    /// A request head or message that did not arrive in time.
    Timeout,
    /// Origin or Host refused by policy.
    Policy,
    /// A JSON-RPC message that failed to parse or validate.
    JsonRpc,
    /// A socket error other than a clean close.
    Io,
    /// A connection refused because the shard was at its cap.
    ConnectionCap,
    /// A TLS handshake or record that failed (bad hello, no common protocol, bad record).
    Tls,
    /// A request refused by authorization (401, 400 for a token in the query, 403 for a
    /// missing scope, 503 when a token could not be checked).
    Auth,
}

impl ErrorKind {
    /// Every kind, in label order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::HttpParse,
        ErrorKind::WsHandshake,
        ErrorKind::WsProtocol,
        ErrorKind::Timeout,
        ErrorKind::Policy,
        ErrorKind::JsonRpc,
        ErrorKind::Io,
        ErrorKind::ConnectionCap,
        ErrorKind::Tls,
        ErrorKind::Auth,
    ];

    /// The Prometheus label value.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::HttpParse => "http_parse",
            ErrorKind::WsHandshake => "ws_handshake",
            ErrorKind::WsProtocol => "ws_protocol",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Policy => "policy",
            ErrorKind::JsonRpc => "jsonrpc",
            ErrorKind::Io => "io",
            ErrorKind::ConnectionCap => "connection_cap",
            ErrorKind::Tls => "tls",
            ErrorKind::Auth => "auth",
        }
    }
}

/// The bounds whose hits are counted: each hit is one message dropped, one request refused or
/// deferred, or one connection closed for that bound (see the configuration table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A notification or server request was not sent: its connection or stream already queues
    /// `--max-outbound-bytes` for a client that is not keeping up (the handler is told; results
    /// are always sent).
    NotificationQueue,
    /// A WebSocket stopped dispatching because its outbound queue was full.
    OutboundQueue,
    /// A request was refused at `--max-in-flight`.
    InFlight,
    /// A `resources/subscribe` was refused at `--max-subscriptions`.
    Subscriptions,
    /// A batch was refused at `--max-batch-items` or a request in it at `--max-batch-reply-bytes`.
    Batch,
    /// A connection was refused for the shard's `--max-inbound-bytes-per-shard`.
    InboundBudget,
    /// A plain HTTP reply was not read within `--slow-reader-timeout-ms`: the connection closed.
    WriteTimeout,
    /// A 2026-07-28 retry was refused for its `requestState`: tampered, expired, replayed,
    /// sealed for another request, or the shard's ledger of used states was full.
    RequestState,
    /// A `subscriptions/listen` was refused at `--max-listen-streams-per-shard`.
    ListenStreams,
    /// A connection was refused at `--max-connections-per-ip`.
    ConnectionsPerIp,
    /// A connection was refused at `--max-new-connections-per-ip-per-sec`.
    ConnectionRate,
    /// A JSON-RPC message was refused at `--max-requests-per-sec`.
    RequestRate,
    /// A new client was refused: the shard tracks `--max-tracked-clients-per-shard`, none idle.
    AdmissionTable,
}

impl Limit {
    /// Every limit, in label order.
    pub const ALL: [Limit; 13] = [
        Limit::NotificationQueue,
        Limit::OutboundQueue,
        Limit::InFlight,
        Limit::Subscriptions,
        Limit::Batch,
        Limit::InboundBudget,
        Limit::WriteTimeout,
        Limit::RequestState,
        Limit::ListenStreams,
        Limit::ConnectionsPerIp,
        Limit::ConnectionRate,
        Limit::RequestRate,
        Limit::AdmissionTable,
    ];

    /// The Prometheus label value.
    pub fn label(self) -> &'static str {
        match self {
            Limit::NotificationQueue => "notification_queue",
            Limit::OutboundQueue => "outbound_queue",
            Limit::InFlight => "in_flight",
            Limit::Subscriptions => "subscriptions",
            Limit::Batch => "batch",
            Limit::InboundBudget => "inbound_budget",
            Limit::WriteTimeout => "write_timeout",
            Limit::RequestState => "request_state",
            Limit::ListenStreams => "listen_streams",
            Limit::ConnectionsPerIp => "connections_per_ip",
            Limit::ConnectionRate => "connection_rate",
            Limit::RequestRate => "request_rate",
            Limit::AdmissionTable => "admission_table",
        }
    }
}

/// The HTTP statuses the server sends, for the per-status counter.
pub const STATUSES: [u16; 23] = [
    101, 200, 202, 204, 400, 401, 403, 404, 405, 406, 408, 409, 410, 413, 414, 415, 421, 426, 429,
    431, 500, 501, 503,
];

/// The close codes counted when sent or received.
pub const CLOSE_CODES: [u16; 9] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 0];

/// Which request path a latency was measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// JSON-RPC requests over WebSocket.
    WebSocket,
    /// JSON-RPC requests over Streamable HTTP and legacy SSE.
    Http,
}

impl Path {
    /// Every path, in label order.
    pub const ALL: [Path; 2] = [Path::WebSocket, Path::Http];

    /// The Prometheus label value.
    pub fn label(self) -> &'static str {
        match self {
            Path::WebSocket => "websocket",
            Path::Http => "http",
        }
    }
}

/// Upper bounds (seconds) of the exported latency buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 1.0, 10.0,
];

fn new_latency_histogram() -> Histogram<u64> {
    // Microseconds from 1 µs to 1 h at 3 significant digits: constant, valid bounds.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid")
}

/// One shard's counters.
#[derive(Debug)]
pub struct Metrics {
    /// Connections currently open, by [`Transport`].
    pub open: [Cell<u64>; 3],
    /// Connections accepted since start.
    pub accepted: Cell<u64>,
    /// Responses sent, by index into [`STATUSES`].
    pub statuses: [Cell<u64>; STATUSES.len()],
    /// Close frames sent, by index into [`CLOSE_CODES`] (last slot: any other code).
    pub close_sent: [Cell<u64>; CLOSE_CODES.len()],
    /// Errors by [`ErrorKind`].
    pub errors: [Cell<u64>; ErrorKind::ALL.len()],
    /// Bound hits by [`Limit`].
    pub limits: [Cell<u64>; Limit::ALL.len()],
    /// WebSocket or JSON-RPC messages received.
    pub messages_in: Cell<u64>,
    /// WebSocket or JSON-RPC messages sent.
    pub messages_out: Cell<u64>,
    /// Bytes read from sockets.
    pub bytes_in: Cell<u64>,
    /// Bytes written to sockets.
    pub bytes_out: Cell<u64>,
    /// Times a connection hit its outbound bound (stopped being read, or was closed for it).
    pub backpressure: Cell<u64>,
    /// Connections moved to the shard that owns their session.
    pub handoffs: Cell<u64>,
    /// Sessions taken over from another node through the shared event store.
    pub adoptions: Cell<u64>,
    /// Requests whose handler died with another node, answered with the retry error.
    pub requests_lost: Cell<u64>,
    /// Request latency (µs, from the request's arrival to its reply being queued), per [`Path`].
    latency: [RefCell<Histogram<u64>>; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            open: Default::default(),
            accepted: Cell::default(),
            statuses: Default::default(),
            close_sent: Default::default(),
            errors: Default::default(),
            limits: Default::default(),
            messages_in: Cell::default(),
            messages_out: Cell::default(),
            bytes_in: Cell::default(),
            bytes_out: Cell::default(),
            backpressure: Cell::default(),
            handoffs: Cell::default(),
            adoptions: Cell::default(),
            requests_lost: Cell::default(),
            latency: [
                RefCell::new(new_latency_histogram()),
                RefCell::new(new_latency_histogram()),
            ],
        }
    }
}

fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get().wrapping_add(by));
}

impl Metrics {
    /// Counts one error of `kind`.
    pub fn error(&self, kind: ErrorKind) {
        bump(&self.errors[kind as usize], 1);
    }

    /// Counts one hit of `limit`.
    pub fn limit(&self, limit: Limit) {
        bump(&self.limits[limit as usize], 1);
    }

    /// Counts one response with `status`.
    pub fn status(&self, status: u16) {
        if let Some(i) = STATUSES.iter().position(|&s| s == status) {
            bump(&self.statuses[i], 1);
        }
    }

    /// Counts one Close frame sent with `code`.
    pub fn close_sent(&self, code: u16) {
        let i = CLOSE_CODES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(CLOSE_CODES.len() - 1);
        bump(&self.close_sent[i], 1);
    }

    /// A connection of `transport` opened.
    pub fn opened(&self, transport: Transport) {
        bump(&self.open[transport as usize], 1);
    }

    /// A connection of `transport` closed.
    pub fn closed(&self, transport: Transport) {
        let cell = &self.open[transport as usize];
        cell.set(cell.get().saturating_sub(1));
    }

    /// Counts bytes read.
    pub fn read(&self, n: usize) {
        bump(&self.bytes_in, n as u64);
    }

    /// Counts bytes written.
    pub fn wrote(&self, n: usize) {
        bump(&self.bytes_out, n as u64);
    }

    /// Counts one message received.
    pub fn message_in(&self) {
        bump(&self.messages_in, 1);
    }

    /// Counts one message sent.
    pub fn message_out(&self) {
        bump(&self.messages_out, 1);
    }

    /// Counts one backpressure event.
    pub fn backpressure(&self) {
        bump(&self.backpressure, 1);
    }

    /// Counts one connection handed to another shard.
    pub fn handoff(&self) {
        bump(&self.handoffs, 1);
    }

    /// Counts a session taken over from another node.
    pub fn session_adopted(&self) {
        bump(&self.adoptions, 1);
    }

    /// Counts a request whose handler died with another node.
    pub fn request_lost(&self) {
        bump(&self.requests_lost, 1);
    }

    /// Records one request's latency on `path`.
    pub fn latency(&self, path: Path, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency[path as usize]
            .borrow_mut()
            .saturating_record(micros);
    }

    /// A copy of every counter, plus the shard-level gauges and the executor's busy time
    /// the caller supplies.
    pub fn snapshot(&self, shard: usize, gauges: Gauges, busy: Duration) -> Snapshot {
        let read = |cells: &[Cell<u64>]| cells.iter().map(Cell::get).collect::<Vec<_>>();
        Snapshot {
            shard,
            open: read(&self.open),
            accepted: self.accepted.get(),
            statuses: read(&self.statuses),
            close_sent: read(&self.close_sent),
            errors: read(&self.errors),
            limits: read(&self.limits),
            messages_in: self.messages_in.get(),
            messages_out: self.messages_out.get(),
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            backpressure: self.backpressure.get(),
            handoffs: self.handoffs.get(),
            adoptions: self.adoptions.get(),
            requests_lost: self.requests_lost.get(),
            latency: self.latency.iter().map(|h| h.borrow().clone()).collect(),
            gauges,
            busy_seconds: busy.as_secs_f64(),
            event_store: None,
        }
    }
}

/// Shard state the metrics do not own but report.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Live Streamable HTTP and legacy sessions.
    pub sessions: u64,
    /// Payload bytes held in SSE replay rings.
    pub ring_bytes: u64,
    /// Events held in SSE replay rings.
    pub ring_events: u64,
    /// Replay rings (one per open stream).
    pub rings: u64,
    /// 1 when the shard receives with multishot receives, 0 with readiness polls.
    pub recv_multishot: u64,
    /// Multishot receives the kernel ended because the shard's provided-buffer ring was
    /// empty (a counter: each waits a turn to be armed again).
    pub recv_buffer_shortages: u64,
    /// Events evicted from the rings, by reason.
    pub evictions: Evictions,
}

/// One shard's metrics at one moment, sent to the shard that renders a scrape.
#[derive(Debug, Clone)]
pub struct Snapshot {
    shard: usize,
    open: Vec<u64>,
    accepted: u64,
    statuses: Vec<u64>,
    close_sent: Vec<u64>,
    errors: Vec<u64>,
    limits: Vec<u64>,
    messages_in: u64,
    messages_out: u64,
    bytes_in: u64,
    bytes_out: u64,
    backpressure: u64,
    handoffs: u64,
    adoptions: u64,
    requests_lost: u64,
    latency: Vec<Histogram<u64>>,
    gauges: Gauges,
    busy_seconds: f64,
    /// The event store client's counters, when `--event-store` is set.
    event_store: Option<ClientStats>,
}

impl Snapshot {
    /// The snapshot with the shard's event store counters (`None`: no event store).
    pub fn with_event_store(mut self, stats: Option<ClientStats>) -> Snapshot {
        self.event_store = stats;
        self
    }
}

/// Writes one metric family: its HELP and TYPE lines, then one sample per shard and label.
fn family<V: std::fmt::Display>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    snapshots: &[Snapshot],
    samples: impl Fn(&Snapshot) -> Vec<(String, V)>,
) {
    let _ = writeln!(out, "# HELP ringmcp_{name} {help}");
    let _ = writeln!(out, "# TYPE ringmcp_{name} {kind}");
    for snap in snapshots {
        for (labels, value) in samples(snap) {
            let sep = if labels.is_empty() { "" } else { "," };
            let _ = writeln!(
                out,
                "ringmcp_{name}{{shard=\"{}\"{sep}{labels}}} {value}",
                snap.shard
            );
        }
    }
}

fn one(value: u64) -> Vec<(String, u64)> {
    vec![(String::new(), value)]
}

fn labelled(key: &str, names: impl Iterator<Item = String>, values: &[u64]) -> Vec<(String, u64)> {
    names
        .zip(values)
        .map(|(n, v)| (format!("{key}=\"{n}\""), *v))
        .collect()
}

/// A metric family with one value per shard: name, type, help, and the value.
type SingleValued = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Snapshot) -> u64,
);

/// The families with one value per shard.
const SINGLE_VALUED: &[SingleValued] = &[
    (
        "connections_accepted_total",
        "counter",
        "Connections accepted.",
        |s| s.accepted,
    ),
    (
        "sessions",
        "gauge",
        "Live Streamable HTTP and legacy SSE sessions.",
        |s| s.gauges.sessions,
    ),
    (
        "messages_in_total",
        "counter",
        "Messages received (WebSocket messages, JSON-RPC messages).",
        |s| s.messages_in,
    ),
    ("messages_out_total", "counter", "Messages sent.", |s| {
        s.messages_out
    }),
    (
        "bytes_in_total",
        "counter",
        "Bytes read from sockets.",
        |s| s.bytes_in,
    ),
    (
        "bytes_out_total",
        "counter",
        "Bytes written to sockets.",
        |s| s.bytes_out,
    ),
    (
        "backpressure_events_total",
        "counter",
        "Connections that hit their outbound bound.",
        |s| s.backpressure,
    ),
    (
        "handoffs_total",
        "counter",
        "Connections moved to the shard owning their session.",
        |s| s.handoffs,
    ),
    (
        "sessions_adopted_total",
        "counter",
        "Sessions taken over from another node through the shared event store.",
        |s| s.adoptions,
    ),
    (
        "requests_lost_total",
        "counter",
        "Requests whose handler died with another node, answered with the retry error.",
        |s| s.requests_lost,
    ),
    (
        "ring_bytes",
        "gauge",
        "Payload bytes held in SSE replay rings.",
        |s| s.gauges.ring_bytes,
    ),
    (
        "ring_events",
        "gauge",
        "Events held in SSE replay rings.",
        |s| s.gauges.ring_events,
    ),
    ("rings", "gauge", "SSE replay rings (streams).", |s| {
        s.gauges.rings
    }),
    (
        "recv_multishot",
        "gauge",
        "1 when the shard receives with multishot receives into provided buffers, 0 with readiness polls and recv.",
        |s| s.gauges.recv_multishot,
    ),
    (
        "recv_buffer_shortages_total",
        "counter",
        "Multishot receives the kernel ended because the shard's provided-buffer ring had no buffer left (ENOBUFS); each is armed again a turn later, so a growing count means arrivals wait for their readers.",
        |s| s.gauges.recv_buffer_shortages,
    ),
];

/// A metric family of the event store client, with one value per shard.
type EventStoreValued = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ClientStats) -> u64,
);

/// The event store families, rendered when `--event-store` is set.
const EVENT_STORE: &[EventStoreValued] = &[
    (
        "event_store_up",
        "gauge",
        "Whether the shard's connection to the Redis event store is up (1) or not (0); summed, the shards that can fail over.",
        |e| u64::from(e.up),
    ),
    (
        "event_store_commands_total",
        "counter",
        "Commands sent to the Redis event store.",
        |e| e.commands,
    ),
    (
        "event_store_unavailable_total",
        "counter",
        "Event store commands completed unavailable: Redis down, the connection broken before the reply, or the queue full.",
        |e| e.unavailable,
    ),
    (
        "event_store_reconnects_total",
        "counter",
        "Connections to the Redis event store made after the first.",
        |e| e.reconnects,
    ),
    (
        "event_store_reply_timeouts_total",
        "counter",
        "Connections to the Redis event store dropped because it answered nothing within the reply timeout (2 s) while commands awaited replies.",
        |e| e.reply_timeouts,
    ),
];

/// The process's heap as glibc counts it over every arena (`mallinfo2`): bytes handed out and
/// not freed (mmapped blocks included), and bytes its arenas hold free. RSS counts the free
/// bytes too, and they move by tens of bytes per connection from build to build, which is why
/// memory steps read `in_use` (`ringmcp-load --server-metrics` reports it per connection;
/// docs/benchmarks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heap {
    pub in_use: u64,
    pub free: u64,
}

impl Heap {
    /// The heap now; `None` where the allocator is not glibc's.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    pub fn now() -> Option<Heap> {
        // SAFETY: mallinfo2 takes no arguments and reads the allocator's totals under its
        // arenas' locks (glibc 2.33+).
        let info = unsafe { libc::mallinfo2() };
        Some(Heap {
            in_use: (info.uordblks + info.hblkhd) as u64,
            free: info.fordblks as u64,
        })
    }

    /// The heap now; `None` where the allocator is not glibc's.
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    pub fn now() -> Option<Heap> {
        None
    }
}

/// Renders every shard's snapshot, and the process's `heap` when known, in the Prometheus text
/// exposition format (0.0.4).
pub fn render(snapshots: &[Snapshot], heap: Option<Heap>) -> String {
    let mut out = String::with_capacity(8192);
    let transports = || Transport::ALL.iter().map(|t| t.label().to_string());
    family(
        &mut out,
        "connections",
        "gauge",
        "Open connections by transport.",
        snapshots,
        |s| labelled("transport", transports(), &s.open),
    );
    family(
        &mut out,
        "http_responses_total",
        "counter",
        "HTTP responses by status.",
        snapshots,
        |s| labelled("status", STATUSES.iter().map(u16::to_string), &s.statuses),
    );
    family(
        &mut out,
        "ws_close_sent_total",
        "counter",
        "WebSocket Close frames sent by code (0: other).",
        snapshots,
        |s| {
            labelled(
                "code",
                CLOSE_CODES.iter().map(u16::to_string),
                &s.close_sent,
            )
        },
    );
    family(
        &mut out,
        "errors_total",
        "counter",
        "Errors by kind.",
        snapshots,
        |s| {
            labelled(
                "kind",
                ErrorKind::ALL.iter().map(|k| k.label().to_string()),
                &s.errors,
            )
        },
    );
    family(
        &mut out,
        "limit_hits_total",
        "counter",
        "Bound hits by limit: messages not sent, requests deferred or refused, connections closed.",
        snapshots,
        |s| {
            labelled(
                "limit",
                Limit::ALL.iter().map(|l| l.label().to_string()),
                &s.limits,
            )
        },
    );
    family(
        &mut out,
        "shard_busy_seconds_total",
        "counter",
        "Time the shard's executor spent running tasks and polling I/O (not spinning or parked).",
        snapshots,
        |s| vec![(String::new(), s.busy_seconds)],
    );
    family(
        &mut out,
        "ring_evictions_total",
        "counter",
        "Events evicted from SSE replay rings by reason.",
        snapshots,
        |s| {
            let e = s.gauges.evictions;
            let reasons = ["count", "bytes", "age", "budget"].map(String::from);
            labelled(
                "reason",
                reasons.into_iter(),
                &[e.count, e.bytes, e.age, e.budget],
            )
        },
    );
    for (name, kind, help, value) in SINGLE_VALUED {
        family(&mut out, name, kind, help, snapshots, |s| one(value(s)));
    }
    // Only with an event store: a server without one has no such connection to report on.
    if snapshots.iter().any(|s| s.event_store.is_some()) {
        for (name, kind, help, value) in EVENT_STORE {
            family(&mut out, name, kind, help, snapshots, |s| {
                s.event_store.map(|e| one(value(&e))).unwrap_or_default()
            });
        }
    }
    let _ = writeln!(out, "# HELP ringmcp_request_duration_seconds JSON-RPC request latency, arrival to reply queued.");
    let _ = writeln!(out, "# TYPE ringmcp_request_duration_seconds histogram");
    for snap in snapshots {
        for path in Path::ALL {
            let h = &snap.latency[path as usize];
            let labels = format!("shard=\"{}\",path=\"{}\"", snap.shard, path.label());
            for bound in LATENCY_BUCKETS {
                let micros = (bound * 1e6) as u64;
                let count = h
                    .iter_recorded()
                    .filter(|v| v.value_iterated_to() <= micros)
                    .map(|v| v.count_at_value())
                    .sum::<u64>();
                let _ = writeln!(
                    out,
                    "ringmcp_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "ringmcp_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.len()
            );
            let sum = h
                .iter_recorded()
                .map(|v| v.value_iterated_to() as f64 * v.count_at_value() as f64)
                .sum::<f64>()
                / 1e6;
            let _ = writeln!(
                out,
                "ringmcp_request_duration_seconds_sum{{{labels}}} {sum}"
            );
            let _ = writeln!(
                out,
                "ringmcp_request_duration_seconds_count{{{labels}}} {}",
                h.len()
            );
        }
    }
    if let Some(heap) = heap {
        let _ = writeln!(out, "# HELP ringmcp_heap_bytes The process's heap as glibc counts it: in use (mmapped blocks included), and free in its arenas.");
        let _ = writeln!(out, "# TYPE ringmcp_heap_bytes gauge");
        let _ = writeln!(
            out,
            "ringmcp_heap_bytes{{state=\"in_use\"}} {}",
            heap.in_use
        );
        let _ = writeln!(out, "ringmcp_heap_bytes{{state=\"free\"}} {}", heap.free);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_is_well_formed_text_exposition() {
        let m = Metrics::default();
        m.status(200);
        m.error(ErrorKind::WsProtocol);
        m.limit(Limit::InFlight);
        m.opened(Transport::WsMcp);
        m.latency(Path::WebSocket, Duration::from_micros(300));
        m.latency(Path::WebSocket, Duration::from_millis(3));
        let heap = Heap {
            in_use: 5_000,
            free: 700,
        };
        let text = render(
            &[
                m.snapshot(
                    0,
                    Gauges {
                        recv_buffer_shortages: 16,
                        ..Gauges::default()
                    },
                    Duration::from_millis(1500),
                ),
                Metrics::default().snapshot(1, Gauges::default(), Duration::ZERO),
            ],
            Some(heap),
        );
        assert!(text.contains("ringmcp_heap_bytes{state=\"in_use\"} 5000\n"));
        assert!(text.contains("ringmcp_heap_bytes{state=\"free\"} 700\n"));
        assert!(text.contains("ringmcp_http_responses_total{shard=\"0\",status=\"200\"} 1\n"));
        assert!(text.contains("ringmcp_connections{shard=\"0\",transport=\"ws_mcp\"} 1\n"));
        assert!(text.contains("ringmcp_shard_busy_seconds_total{shard=\"0\"} 1.5\n"));
        assert!(text.contains("ringmcp_shard_busy_seconds_total{shard=\"1\"} 0\n"));
        assert!(text.contains("# TYPE ringmcp_recv_buffer_shortages_total counter\n"));
        assert!(text.contains("ringmcp_recv_buffer_shortages_total{shard=\"0\"} 16\n"));
        assert!(text.contains("ringmcp_errors_total{shard=\"0\",kind=\"ws_protocol\"} 1\n"));
        assert!(text.contains("ringmcp_limit_hits_total{shard=\"0\",limit=\"in_flight\"} 1\n"));
        assert!(text.contains("ringmcp_request_duration_seconds_bucket{shard=\"0\",path=\"websocket\",le=\"0.0005\"} 1\n"));
        assert!(text.contains("ringmcp_request_duration_seconds_bucket{shard=\"0\",path=\"websocket\",le=\"0.005\"} 2\n"));
        assert!(
            text.contains("ringmcp_request_duration_seconds_count{shard=\"1\",path=\"http\"} 0\n")
        );
        assert!(
            !text.contains("event_store"),
            "no event store, no event store metrics"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(
                name.starts_with("ringmcp_") && name.ends_with('}'),
                "{line}"
            );
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_counts_a_heap_in_use() {
        // black_box: an allocation only measured by its length may be optimised away.
        let held = std::hint::black_box(vec![1u8; 1 << 20]);
        let heap = Heap::now().expect("glibc's allocator");
        assert!(heap.in_use >= held.len() as u64, "{heap:?}");
    }

    #[test]
    fn event_store_metrics_appear_with_an_event_store() {
        let up = ClientStats {
            up: true,
            commands: 7,
            unavailable: 2,
            reconnects: 1,
            reply_timeouts: 3,
        };
        let down = ClientStats {
            up: false,
            ..ClientStats::default()
        };
        let snapshot = |shard, stats| {
            Metrics::default()
                .snapshot(shard, Gauges::default(), Duration::ZERO)
                .with_event_store(Some(stats))
        };
        let text = render(&[snapshot(0, up), snapshot(1, down)], None);
        assert!(!text.contains("heap"), "no heap figures, no heap family");
        assert!(text.contains("# TYPE ringmcp_event_store_up gauge\n"));
        assert!(text.contains("ringmcp_event_store_up{shard=\"0\"} 1\n"));
        assert!(text.contains("ringmcp_event_store_up{shard=\"1\"} 0\n"));
        assert!(text.contains("ringmcp_event_store_commands_total{shard=\"0\"} 7\n"));
        assert!(text.contains("ringmcp_event_store_unavailable_total{shard=\"0\"} 2\n"));
        assert!(text.contains("ringmcp_event_store_reconnects_total{shard=\"0\"} 1\n"));
        assert!(text.contains("# TYPE ringmcp_event_store_reconnects_total counter\n"));
        assert!(text.contains("ringmcp_event_store_reply_timeouts_total{shard=\"0\"} 3\n"));
    }
}
