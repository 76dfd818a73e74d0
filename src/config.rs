//! Server configuration: one struct, parsed from the command line by the
//! binary and built with [`Config::default`] plus field edits by library users.

use crate::mcp::DispatchLimits;
use crate::proto::http1;
use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything the server can be told. Every limit has a default and a flag.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "ringmcp",
    version,
    about = "Thread-per-core io_uring MCP server: WebSocket and Streamable HTTP with resumable SSE",
    long_about = "ringmcp serves MCP (JSON-RPC 2.0) at /mcp over WebSocket (subprotocol `mcp`) and \
                  Streamable HTTP with resumable SSE (POST/GET/DELETE), the legacy HTTP+SSE transport \
                  at /sse and /messages, liveness at /healthz and, with --echo, a raw WebSocket echo \
                  at /echo. \
                  It runs one io_uring executor per core, each with its own SO_REUSEPORT listener.\n\n\
                  Logging goes through RUST_LOG (default: warn)."
)]
pub struct Config {
    /// Address to listen on. Binding anything but a loopback address is an explicit choice.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Number of shards (one executor pinned per core). 0 means one per online CPU.
    #[arg(long, default_value_t = 0)]
    pub shards: usize,

    /// Serve a raw WebSocket echo (text and binary) at /echo, for Autobahn|Testsuite and raw benchmarks.
    #[arg(long)]
    pub echo: bool,

    /// Largest WebSocket message accepted, in bytes, after reassembly of fragments (larger: close 1009).
    /// 1 MiB: at 15,000 connections each holding a part-sent message of the largest size, the
    /// per-shard inbound budget (`--max-inbound-bytes-per-shard`) is what still bounds the total.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Largest HTTP request head (request line and headers), in bytes (larger: 431).
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_head_bytes: usize,

    /// Most HTTP header lines in one request, at most 128 (more: 431).
    #[arg(long, default_value_t = 64)]
    pub max_headers: usize,

    /// Longest HTTP request-target, in bytes (longer: 414).
    #[arg(long, default_value_t = 8 * 1024)]
    pub max_uri_bytes: usize,

    /// Largest HTTP request body, in bytes (larger: 413).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Bytes of partly received WebSocket messages and HTTP bodies one shard may hold across all
    /// its connections; a connection whose input would pass it is refused: WebSocket close 1009,
    /// HTTP 503 with Retry-After (a single client cannot take the process's memory in slices).
    #[arg(long, default_value_t = 256 * 1024 * 1024)]
    pub max_inbound_bytes_per_shard: usize,

    /// Requests one MCP session (one per WebSocket connection) may have running at once; a
    /// request over it gets JSON-RPC error -32000 at once (the connection stays readable, so
    /// `notifications/cancelled` still reaches the ones running).
    #[arg(long, default_value_t = DispatchLimits::DEFAULT.max_in_flight)]
    pub max_in_flight: usize,

    /// Resources one MCP session may subscribe to (more: JSON-RPC error -32000).
    #[arg(long, default_value_t = DispatchLimits::DEFAULT.max_subscriptions)]
    pub max_subscriptions: usize,

    /// Most messages in one JSON-RPC batch (2025-03-26 sessions; more: -32600, nothing run).
    #[arg(long, default_value_t = DispatchLimits::DEFAULT.max_batch_items)]
    pub max_batch_items: usize,

    /// Bytes of replies one JSON-RPC batch may collect; requests after the bound are not run
    /// and get JSON-RPC error -32000 instead.
    #[arg(long, default_value_t = DispatchLimits::DEFAULT.max_batch_reply_bytes)]
    pub max_batch_reply_bytes: usize,

    /// Time allowed for a request head (and body) to arrive once its first byte has, in milliseconds (slowloris guard; then 408).
    #[arg(long, default_value_t = 10_000)]
    pub header_timeout_ms: u64,

    /// How long a keep-alive HTTP connection may sit idle between requests, in seconds.
    #[arg(long, default_value_t = 60)]
    pub http_idle_timeout_secs: u64,

    /// Time allowed for a fragmented or partially received WebSocket message to complete, in milliseconds (then close 1008).
    #[arg(long, default_value_t = 30_000)]
    pub fragment_timeout_ms: u64,

    /// A WebSocket silent for this long is sent a ping, in seconds.
    #[arg(long, default_value_t = 30)]
    pub ws_ping_interval_secs: u64,

    /// A WebSocket that stays silent this long after our ping is closed with 1001, in seconds.
    #[arg(long, default_value_t = 30)]
    pub ws_pong_timeout_secs: u64,

    /// After sending or receiving a Close frame, how long to wait for the peer before dropping TCP, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub close_timeout_ms: u64,

    /// Bytes a connection may have queued for a client that is not reading; past it the server stops reading from that client.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_outbound_bytes: usize,

    /// A client stuck at the outbound bound this long is dropped, in milliseconds: WebSocket with
    /// 1008, an SSE stream ended resumably (its events stay in the ring), a plain HTTP reply by
    /// closing the connection (the write timeout).
    #[arg(long, default_value_t = 10_000)]
    pub slow_reader_timeout_ms: u64,

    /// Open connections per shard; past it new connections get 503 and are closed, existing ones are unaffected.
    #[arg(long, default_value_t = 20_000)]
    pub max_connections_per_shard: usize,

    /// On SIGTERM/SIGINT, how long in-flight work may take before the shard exits, in milliseconds. A second signal exits at once.
    #[arg(long, default_value_t = 5_000)]
    pub shutdown_grace_ms: u64,

    /// MCP sessions per shard (Streamable HTTP and legacy SSE); past it `initialize` gets 503 with Retry-After.
    #[arg(long, default_value_t = 25_000)]
    pub max_sessions_per_shard: usize,

    /// A session with no open stream and no request in flight expires after this long idle, in seconds.
    #[arg(long, default_value_t = 600)]
    pub session_idle_timeout_secs: u64,

    /// Events kept per SSE stream for Last-Event-ID replay (oldest evicted first).
    #[arg(long, default_value_t = 256)]
    pub ring_max_events: usize,

    /// Payload bytes kept per SSE stream for replay.
    #[arg(long, default_value_t = 256 * 1024)]
    pub ring_max_bytes: usize,

    /// Events older than this are no longer replayed, in seconds (at most 1,073,741: about 12 days).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(..=crate::store::ring::MAX_AGE.as_secs()))]
    pub ring_max_age_secs: u64,

    /// Replay bytes per shard across all streams; past it the shard's oldest events are evicted first.
    #[arg(long, default_value_t = 1024 * 1024 * 1024)]
    pub event_budget_bytes: usize,

    /// An SSE stream with nothing to send gets a keep-alive comment this often, in seconds.
    #[arg(long, default_value_t = 15)]
    pub sse_keepalive_secs: u64,

    /// The `retry:` reconnection delay announced on SSE streams, in milliseconds.
    #[arg(long, default_value_t = 1_000)]
    pub sse_retry_ms: u64,

    /// Turn off the legacy HTTP+SSE transport (GET /sse, POST /messages).
    #[arg(long)]
    pub no_legacy_sse: bool,

    /// Browser origins allowed to connect (repeatable). Requests without Origin always pass;
    /// by default only localhost origins (http/https on localhost, 127.0.0.1, `[::1]`, any port) are allowed.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["ringmcp"])
    }
}

impl Config {
    /// The shard count to run: the flag, or one per online CPU.
    pub fn shard_count(&self) -> usize {
        if self.shards > 0 {
            self.shards
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// The HTTP parsing limits.
    pub fn http_limits(&self) -> http1::Limits {
        http1::Limits {
            max_head_bytes: self.max_head_bytes,
            max_headers: self.max_headers.min(http1::HEADER_SLOTS),
            max_uri_bytes: self.max_uri_bytes,
            max_body_bytes: self.max_body_bytes,
        }
    }

    /// Header read timeout.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// Idle time allowed between keep-alive requests.
    pub fn http_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.http_idle_timeout_secs)
    }

    /// Completion timeout for an open WebSocket message.
    pub fn fragment_timeout(&self) -> Duration {
        Duration::from_millis(self.fragment_timeout_ms)
    }

    /// Silence before the server pings.
    pub fn ws_ping_interval(&self) -> Duration {
        Duration::from_secs(self.ws_ping_interval_secs)
    }

    /// Silence after a ping before the connection is dropped.
    pub fn ws_pong_timeout(&self) -> Duration {
        Duration::from_secs(self.ws_pong_timeout_secs)
    }

    /// Bounded wait for the peer during the close handshake.
    pub fn close_timeout(&self) -> Duration {
        Duration::from_millis(self.close_timeout_ms)
    }

    /// Time a client may stay at the outbound bound.
    pub fn slow_reader_timeout(&self) -> Duration {
        Duration::from_millis(self.slow_reader_timeout_ms)
    }

    /// Idle time after which a session expires.
    pub fn session_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.session_idle_timeout_secs)
    }

    /// Interval of SSE keep-alive comments.
    pub fn sse_keepalive(&self) -> Duration {
        Duration::from_secs(self.sse_keepalive_secs)
    }

    /// The MCP layer's per-session and per-batch bounds.
    pub fn dispatch_limits(&self) -> DispatchLimits {
        DispatchLimits {
            max_in_flight: self.max_in_flight,
            max_subscriptions: self.max_subscriptions,
            max_batch_items: self.max_batch_items,
            max_batch_reply_bytes: self.max_batch_reply_bytes,
        }
    }

    /// Grace period for draining on shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.bind, "127.0.0.1:8080".parse().unwrap());
        assert!(!c.echo);
        assert_eq!(c.max_message_bytes, 1024 * 1024);
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert!(c.shard_count() >= 1);
    }

    #[test]
    fn header_count_is_clamped_to_the_parser_slots() {
        let c = Config::parse_from(["ringmcp", "--max-headers", "1000"]);
        assert_eq!(c.http_limits().max_headers, http1::HEADER_SLOTS);
    }

    #[test]
    fn replay_age_beyond_what_the_ring_can_time_is_refused() {
        let parse = |secs: &str| Config::try_parse_from(["ringmcp", "--ring-max-age-secs", secs]);
        assert_eq!(parse("1073741").unwrap().ring_max_age_secs, 1_073_741);
        assert!(parse("1073742").is_err());
    }
}
