//! Server configuration: one struct, built with [`Config::default`] plus field edits by
//! library users and, with the `cli` feature, parsed from the command line by the binary.
//!
//! The clap attributes sit behind `cfg_attr(feature = "cli", ...)` so the options are declared
//! once (name, help text, default) and the library itself never needs clap.

use crate::mcp::request_state::StateSeal;
use crate::mcp::DispatchLimits;
use crate::proto::http1;
use crate::store::sessions::NodeId;
use crate::transport::admission::{AdmissionLimits, Rate};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

/// Everything the server can be told; every limit has a default and, in the binary, a flag.
///
/// The fields' comments are the flags' `--help` text too, where brackets are usage syntax
/// (`redis://[[user]:password@]host`), not rustdoc links.
#[allow(rustdoc::broken_intra_doc_links)]
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Parser))]
#[cfg_attr(
    feature = "cli",
    command(
        name = "ringmcp",
        version,
        about = "Thread-per-core io_uring MCP server: WebSocket and Streamable HTTP with resumable SSE",
        long_about = "ringmcp serves MCP (JSON-RPC 2.0) at /mcp over WebSocket (subprotocol `mcp`) and \
                  Streamable HTTP with resumable SSE (POST/GET/DELETE), the legacy HTTP+SSE transport \
                  at /sse and /messages, liveness at /healthz and, with --echo, a raw WebSocket echo \
                  at /echo. \
                  It runs one io_uring executor per core, each with its own SO_REUSEPORT listener.\n\n\
                  Logging goes through RUST_LOG (default: warn)."
    )
)]
pub struct Config {
    /// Address to listen on. Binding anything but a loopback address is an explicit choice.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.bind))]
    pub bind: SocketAddr,

    /// Number of shards (one executor pinned per core). 0 means one per online CPU.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.shards))]
    pub shards: usize,

    /// This node's name among several behind a balancer: 1 to 24 of A-Z a-z 0-9 _ -. It
    /// starts every session id the node issues (`<node>.<shard><random>`), and the HAProxy
    /// configuration routes by it. Default: the bind address spelled out (`127-0-0-1-8080`).
    #[cfg_attr(feature = "cli", arg(long, value_name = "NAME", value_parser = NodeId::parse))]
    pub node_id: Option<NodeId>,

    /// Receive with a readiness poll and a `recv` call per arrival (the path for kernels before
    /// 6.17) instead of a multishot receive into each shard's ring of provided buffers. The
    /// multishot path is used when the kernel has it; this forces the other one (tests run both).
    #[cfg_attr(feature = "cli", arg(long))]
    pub readiness_recv: bool,

    /// Serve a raw WebSocket echo (text and binary) at /echo, for Autobahn|Testsuite and raw benchmarks.
    #[cfg_attr(feature = "cli", arg(long))]
    pub echo: bool,

    /// Offer WebSocket compression, permessage-deflate (RFC 7692), on /mcp and /echo to clients
    /// that ask for it. Both sides reset their compression context after every message, so a
    /// connection holds no compressor state: one compressor and one decompressor per shard.
    #[cfg_attr(feature = "cli", arg(long))]
    pub ws_deflate: bool,

    /// With --ws-deflate, messages we send that are shorter than this many bytes go out
    /// uncompressed (small JSON-RPC replies do not pay for compression).
    #[cfg_attr(feature = "cli", arg(long, value_name = "BYTES", default_value_t = DEFAULT.ws_deflate_min_bytes))]
    pub ws_deflate_min_bytes: usize,

    /// With --ws-deflate, the zlib level messages are compressed at, 1 (fastest) to 9. On
    /// 16 KiB of JSON, 1 saves about 70% of the bytes and 2 about 80% at 1.7 times the CPU.
    #[cfg_attr(feature = "cli", arg(long, value_name = "1-9", default_value_t = DEFAULT.ws_deflate_level, value_parser = clap::value_parser!(u8).range(1..=9)))]
    pub ws_deflate_level: u8,

    /// Largest WebSocket message accepted, in bytes, after reassembly of fragments and, with
    /// --ws-deflate, after decompression, checked while it inflates (larger: close 1009).
    /// 1 MiB: at 15,000 connections each holding a part-sent message of the largest size, the
    /// per-shard inbound budget (`--max-inbound-bytes-per-shard`) is what still bounds the total.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_message_bytes))]
    pub max_message_bytes: usize,

    /// Largest HTTP request head (request line and headers), in bytes (larger: 431).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_head_bytes))]
    pub max_head_bytes: usize,

    /// Most HTTP header lines in one request, at most 128 (more: 431).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_headers))]
    pub max_headers: usize,

    /// Longest HTTP request-target, in bytes (longer: 414).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_uri_bytes))]
    pub max_uri_bytes: usize,

    /// Largest HTTP request body, in bytes (larger: 413).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_body_bytes))]
    pub max_body_bytes: usize,

    /// Bytes of partly received WebSocket messages and HTTP bodies one shard may hold across all
    /// its connections; a connection whose input would pass it is refused: WebSocket close 1009,
    /// HTTP 503 with Retry-After (a single client cannot take the process's memory in slices).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_inbound_bytes_per_shard))]
    pub max_inbound_bytes_per_shard: usize,

    /// Requests one MCP session (one per WebSocket connection) may have running at once; a
    /// request over it gets JSON-RPC error -32000 at once (the connection stays readable, so
    /// `notifications/cancelled` still reaches the ones running).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_in_flight))]
    pub max_in_flight: usize,

    /// Resources one MCP session may subscribe to (more: JSON-RPC error -32000).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_subscriptions))]
    pub max_subscriptions: usize,

    /// Most messages in one JSON-RPC batch (2025-03-26 sessions; more: -32600, nothing run).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_batch_items))]
    pub max_batch_items: usize,

    /// Bytes of replies one JSON-RPC batch may collect; requests after the bound are not run
    /// and get JSON-RPC error -32000 instead.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_batch_reply_bytes))]
    pub max_batch_reply_bytes: usize,

    /// MCP 2026-07-28 `subscriptions/listen` streams open at once per shard (more: -32000).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_listen_streams_per_shard))]
    pub max_listen_streams_per_shard: usize,

    /// Time allowed for a request head (and body) to arrive once its first byte has, in milliseconds (slowloris guard; then 408).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.header_timeout_ms))]
    pub header_timeout_ms: u64,

    /// How long a keep-alive HTTP connection may sit idle between requests, in seconds.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.http_idle_timeout_secs))]
    pub http_idle_timeout_secs: u64,

    /// Time allowed for a fragmented or partially received WebSocket message to complete, in milliseconds (then close 1008).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.fragment_timeout_ms))]
    pub fragment_timeout_ms: u64,

    /// A WebSocket silent for this long is sent a ping, in seconds.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.ws_ping_interval_secs))]
    pub ws_ping_interval_secs: u64,

    /// A WebSocket that stays silent this long after our ping is closed with 1001, in seconds.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.ws_pong_timeout_secs))]
    pub ws_pong_timeout_secs: u64,

    /// After sending or receiving a Close frame, how long to wait for the peer before dropping TCP, in milliseconds.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.close_timeout_ms))]
    pub close_timeout_ms: u64,

    /// Bytes a connection may have queued for a client that is not reading; past it the server stops reading from that client (at most 4 GiB).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_outbound_bytes))]
    pub max_outbound_bytes: usize,

    /// A client stuck at the outbound bound this long is dropped, in milliseconds: WebSocket with
    /// 1008, an SSE stream ended resumably (its events stay in the ring), a plain HTTP reply by
    /// closing the connection (the write timeout).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.slow_reader_timeout_ms))]
    pub slow_reader_timeout_ms: u64,

    /// Open connections per shard; past it new connections get 503 and are closed, existing ones are unaffected.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_connections_per_shard))]
    pub max_connections_per_shard: usize,

    /// Connections open at once from one client address, per shard (IPv6 by its /64); a further
    /// one gets 429 and is closed. 0: no cap (the default: on a loopback bind or behind a
    /// proxy every client has the same address).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_connections_per_ip))]
    pub max_connections_per_ip: usize,

    /// New connections one client address may open per second, per shard, after a burst of
    /// `--new-connection-burst`; a connection over it gets 429 with Retry-After and is closed.
    /// 0: no limit (the default, for the reason `--max-connections-per-ip` gives).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_new_connections_per_ip_per_sec))]
    pub max_new_connections_per_ip_per_sec: u32,

    /// New connections one client address may open at once above its steady rate (a client
    /// opening a few connections together, or reconnecting after a restart).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.new_connection_burst, value_parser = clap::value_parser!(u32).range(1..)))]
    pub new_connection_burst: u32,

    /// JSON-RPC messages one client (its address; its principal once authorization is on) may
    /// send per second, per shard, after a burst of `--request-burst`: over it, a POST gets 429
    /// with Retry-After, a request on the legacy /messages gets -32000 on its SSE stream, a
    /// WebSocket is closed with 1008. 0: no limit (the default; see `--max-connections-per-ip`).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_requests_per_sec))]
    pub max_requests_per_sec: u32,

    /// JSON-RPC messages one client may send at once above its steady rate (an MCP client's
    /// opening handshake and listings, an agent's parallel tool calls).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.request_burst, value_parser = clap::value_parser!(u32).range(1..)))]
    pub request_burst: u32,

    /// Clients (addresses, principals) one shard tracks for the per-client limits, about 64
    /// bytes each; idle ones (no connection, buckets full) are forgotten, and when none is, a
    /// new client is refused (503 with Retry-After) rather than letting one that cycles
    /// through addresses reset the buckets of others. Keep it above --max-connections-per-shard.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_tracked_clients_per_shard))]
    pub max_tracked_clients_per_shard: usize,

    /// On SIGTERM/SIGINT, how long in-flight work may take before the shard exits, in milliseconds. A second signal exits at once.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.shutdown_grace_ms))]
    pub shutdown_grace_ms: u64,

    /// MCP sessions per shard (Streamable HTTP and legacy SSE); past it `initialize` gets 503 with Retry-After.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.max_sessions_per_shard))]
    pub max_sessions_per_shard: usize,

    /// A session with no open stream and no request in flight expires after this long idle, in seconds.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.session_idle_timeout_secs))]
    pub session_idle_timeout_secs: u64,

    /// Events kept per SSE stream for Last-Event-ID replay (oldest evicted first).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.ring_max_events))]
    pub ring_max_events: usize,

    /// Payload bytes kept per SSE stream for replay.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.ring_max_bytes))]
    pub ring_max_bytes: usize,

    /// Events older than this are no longer replayed, in seconds (at most 1,073,741: about 12 days).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.ring_max_age_secs, value_parser = clap::value_parser!(u64).range(..=crate::store::ring::MAX_AGE.as_secs())))]
    pub ring_max_age_secs: u64,

    /// Replay bytes per shard across all streams; past it the shard's oldest events are evicted first.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.event_budget_bytes))]
    pub event_budget_bytes: usize,

    /// Redis Streams event store for multi-node failover: redis://[[user]:password@]host[:port][/db] (off: in-memory rings only)
    #[cfg_attr(feature = "cli", arg(long, value_name = "URL"))]
    pub event_store: Option<crate::store::redis::RedisUrl>,

    /// An SSE stream with nothing to send gets a keep-alive comment this often, in seconds.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.sse_keepalive_secs))]
    pub sse_keepalive_secs: u64,

    /// The `retry:` reconnection delay announced on SSE streams, in milliseconds.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.sse_retry_ms))]
    pub sse_retry_ms: u64,

    /// Turn off the legacy HTTP+SSE transport (GET /sse, POST /messages).
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_legacy_sse: bool,

    /// Browser origins allowed to connect (repeatable). Requests without Origin always pass;
    /// by default only localhost origins (http/https on localhost, 127.0.0.1, `[::1]`, any port) are allowed.
    #[cfg_attr(feature = "cli", arg(long = "allow-origin", value_name = "ORIGIN"))]
    pub allowed_origins: Vec<String>,

    /// Hosts the server answers for (repeatable; `name` or `name:port`): a request whose
    /// `Host` names another gets 403. On a loopback bind they come on top of the local names
    /// (the DNS-rebinding guard); on any other bind, without this, every host passes.
    #[cfg_attr(feature = "cli", arg(long = "allow-host", value_name = "HOST"))]
    pub allowed_hosts: Vec<String>,

    /// File holding the key (at least 32 bytes; trailing whitespace ignored) that seals the
    /// `requestState` of MCP 2026-07-28 multi-round results. Processes and nodes given the same
    /// file accept each other's states; without it each process draws a random key.
    #[cfg_attr(feature = "cli", arg(long, value_name = "PATH"))]
    pub state_key_file: Option<std::path::PathBuf>,

    /// How long a `requestState` stays valid, in milliseconds (the client must retry within it).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.request_state_ttl_ms))]
    pub request_state_ttl_ms: u64,

    /// PEM certificate chain (leaf first) for TLS: with it and `--tls-key`, the port speaks
    /// TLS 1.3 and 1.2 only (https:// and wss://, ALPN http/1.1). Both files are read again on
    /// SIGHUP; connections already open keep the certificate they started with.
    #[cfg_attr(feature = "cli", arg(long, value_name = "PATH", requires = "tls_key"))]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the `--tls-cert` leaf.
    #[cfg_attr(feature = "cli", arg(long, value_name = "PATH", requires = "tls_cert"))]
    pub tls_key: Option<std::path::PathBuf>,

    /// Time a TLS client has to finish its handshake, in milliseconds (then the connection
    /// closes without an answer, counted as `kind="timeout"`).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.tls_handshake_timeout_ms))]
    pub tls_handshake_timeout_ms: u64,

    /// Turns authorization on: the authorization server (issuer) whose access tokens this
    /// server accepts. Every request to /mcp, /sse, /messages, /echo (and /healthz, /metrics
    /// unless --auth-open-health) then needs `Authorization: Bearer`; needs a key source
    /// (--auth-jwks-file or --auth-jwks-url) or --auth-introspection-url.
    #[cfg_attr(feature = "cli", arg(long, value_name = "URL"))]
    pub auth_issuer: Option<String>,

    /// This server's resource identifier (RFC 8707), what tokens must be issued for and what
    /// the protected resource metadata names. Default: https://BIND/mcp with TLS,
    /// http://BIND/mcp without (set it to the public URL behind a proxy or a DNS name).
    #[cfg_attr(feature = "cli", arg(long, value_name = "URL"))]
    pub auth_resource: Option<String>,

    /// The `aud` a token must carry, when the authorization server maps the resource to
    /// another audience. Default: the resource.
    #[cfg_attr(feature = "cli", arg(long, value_name = "AUDIENCE"))]
    pub auth_audience: Option<String>,

    /// JWKS file with the issuer's signing keys (read at start).
    #[cfg_attr(feature = "cli", arg(long, value_name = "PATH"))]
    pub auth_jwks_file: Option<std::path::PathBuf>,

    /// The issuer's JWKS URL: each shard fetches it at start, then every
    /// --auth-jwks-refresh-secs and when a token names a key it lacks (at most every 30 s).
    #[cfg_attr(feature = "cli", arg(long, value_name = "URL"))]
    pub auth_jwks_url: Option<String>,

    /// Seconds between two fetches of --auth-jwks-url.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.auth_jwks_refresh_secs))]
    pub auth_jwks_refresh_secs: u64,

    /// RFC 7662 introspection endpoint for opaque (non-JWT) tokens; answers are cached per
    /// shard up to the token's expiry and at most 60 s.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "URL", requires = "auth_client_id")
    )]
    pub auth_introspection_url: Option<String>,

    /// This server's client id at the introspection endpoint.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "ID", requires = "auth_client_secret_file")
    )]
    pub auth_client_id: Option<String>,

    /// File holding this server's client secret for the introspection endpoint.
    #[cfg_attr(feature = "cli", arg(long, value_name = "PATH"))]
    pub auth_client_secret_file: Option<std::path::PathBuf>,

    /// PEM roots trusted for https:// key-set and introspection URLs. Default: the system
    /// bundle at /etc/ssl/certs/ca-certificates.crt.
    #[cfg_attr(feature = "cli", arg(long, value_name = "PATH"))]
    pub auth_ca_file: Option<std::path::PathBuf>,

    /// A scope every request needs (repeatable); named in the 401 challenge.
    #[cfg_attr(feature = "cli", arg(long = "auth-scope", value_name = "SCOPE"))]
    pub auth_scopes: Vec<String>,

    /// Scopes a tool needs besides those, as TOOL=SCOPE[,SCOPE] (repeatable); a call without
    /// them gets 403 insufficient_scope (HTTP) or JSON-RPC -32003 (WebSocket).
    #[cfg_attr(
        feature = "cli",
        arg(long = "auth-tool-scope", value_name = "TOOL=SCOPES")
    )]
    pub auth_tool_scopes: Vec<String>,

    /// Scope hierarchy, as BROAD=NARROW[,NARROW] (repeatable, followed transitively): a token
    /// granted BROAD has the narrower scopes too (e.g. `mcp:admin=mcp:tools`).
    #[cfg_attr(
        feature = "cli",
        arg(long = "auth-scope-implies", value_name = "BROAD=NARROW")
    )]
    pub auth_implied_scopes: Vec<String>,

    /// Seconds of clock skew allowed on `exp` and `nbf`.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT.auth_leeway_secs))]
    pub auth_leeway_secs: u64,

    /// Accept JWTs whose `typ` is not `at+jwt` (RFC 9068 requires it; some providers send `JWT`).
    #[cfg_attr(feature = "cli", arg(long))]
    pub auth_any_typ: bool,

    /// Serve /healthz and /metrics without a token (for probes and scrapers).
    #[cfg_attr(feature = "cli", arg(long))]
    pub auth_open_health: bool,
}

impl Default for Config {
    fn default() -> Self {
        DEFAULT
    }
}

/// Entries of `--FLAG NAME=SCOPE[,SCOPE]` as (name, scopes).
fn scope_lists(
    flag: &str,
    name: &str,
    entries: &[String],
) -> Result<Vec<(String, Vec<String>)>, String> {
    entries
        .iter()
        .map(|entry| {
            let (key, scopes) = entry
                .split_once('=')
                .filter(|(key, scopes)| !key.is_empty() && !scopes.is_empty())
                .ok_or_else(|| format!("--{flag} {entry:?}: expected {name}=SCOPE[,SCOPE]"))?;
            let scopes = scopes.split([',', ' ']).filter(|s| !s.is_empty());
            Ok((key.to_owned(), scopes.map(str::to_owned).collect()))
        })
        .collect()
}

/// The system's trusted roots (Debian's ca-certificates bundle).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Authorization as configured, checked at start: what every shard builds its authorizer from.
pub(crate) struct AuthSettings {
    pub config: crate::auth::AuthConfig,
    /// The JWKS document of `--auth-jwks-file`.
    pub jwks_file: Option<Vec<u8>>,
    pub jwks_url: Option<crate::auth::HttpUrl>,
    pub jwks_refresh: Duration,
    pub introspection: Option<crate::auth::Introspection>,
    /// PEM roots for https:// endpoints.
    pub roots: Vec<u8>,
    pub open_health: bool,
}

/// The defaults, written once: [`Config::default`] returns them and the command line shows them
/// as each flag's default.
const DEFAULT: Config = Config {
    bind: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080)),
    shards: 0,
    node_id: None,
    readiness_recv: false,
    echo: false,
    ws_deflate: false,
    ws_deflate_min_bytes: 512,
    ws_deflate_level: 1,
    max_message_bytes: 1024 * 1024,
    max_head_bytes: 16 * 1024,
    max_headers: 64,
    max_uri_bytes: 8 * 1024,
    max_body_bytes: 1024 * 1024,
    max_inbound_bytes_per_shard: 256 * 1024 * 1024,
    max_in_flight: DispatchLimits::DEFAULT.max_in_flight,
    max_subscriptions: DispatchLimits::DEFAULT.max_subscriptions,
    max_batch_items: DispatchLimits::DEFAULT.max_batch_items,
    max_batch_reply_bytes: DispatchLimits::DEFAULT.max_batch_reply_bytes,
    max_listen_streams_per_shard: DispatchLimits::DEFAULT.max_listen_streams,
    header_timeout_ms: 10_000,
    http_idle_timeout_secs: 60,
    fragment_timeout_ms: 30_000,
    ws_ping_interval_secs: 30,
    ws_pong_timeout_secs: 30,
    close_timeout_ms: 2_000,
    max_outbound_bytes: 64 * 1024,
    slow_reader_timeout_ms: 10_000,
    max_connections_per_shard: 20_000,
    max_connections_per_ip: 0,
    max_new_connections_per_ip_per_sec: 0,
    new_connection_burst: 20,
    max_requests_per_sec: 0,
    request_burst: 100,
    max_tracked_clients_per_shard: 65_536,
    shutdown_grace_ms: 5_000,
    max_sessions_per_shard: 25_000,
    session_idle_timeout_secs: 600,
    ring_max_events: 256,
    ring_max_bytes: 256 * 1024,
    ring_max_age_secs: 300,
    event_budget_bytes: 1024 * 1024 * 1024,
    event_store: None,
    sse_keepalive_secs: 15,
    sse_retry_ms: 1_000,
    no_legacy_sse: false,
    allowed_origins: Vec::new(),
    allowed_hosts: Vec::new(),
    state_key_file: None,
    request_state_ttl_ms: 300_000,
    tls_cert: None,
    tls_key: None,
    tls_handshake_timeout_ms: 10_000,
    auth_issuer: None,
    auth_resource: None,
    auth_audience: None,
    auth_jwks_file: None,
    auth_jwks_url: None,
    auth_jwks_refresh_secs: 3600,
    auth_introspection_url: None,
    auth_client_id: None,
    auth_client_secret_file: None,
    auth_ca_file: None,
    auth_scopes: Vec::new(),
    auth_tool_scopes: Vec::new(),
    auth_implied_scopes: Vec::new(),
    auth_leeway_secs: crate::auth::DEFAULT_LEEWAY_SECS,
    auth_any_typ: false,
    auth_open_health: false,
};

impl Config {
    /// The shard count to run: the flag, or one per online CPU.
    pub fn shard_count(&self) -> usize {
        if self.shards > 0 {
            self.shards
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }

    /// This node's id: `--node-id`, or the one the bind address spells.
    pub fn node(&self) -> NodeId {
        self.node_id.unwrap_or_else(|| NodeId::from_bind(self.bind))
    }

    /// The HTTP parsing limits.
    pub(crate) fn http_limits(&self) -> http1::Limits {
        http1::Limits {
            max_head_bytes: self.max_head_bytes,
            max_headers: self.max_headers.min(http1::HEADER_SLOTS),
            max_uri_bytes: self.max_uri_bytes,
            max_body_bytes: self.max_body_bytes,
        }
    }

    /// The seal of multi-round `requestState`s: the key file's, or a random key.
    pub(crate) fn state_seal(&self) -> Result<StateSeal, String> {
        let ttl = Duration::from_millis(self.request_state_ttl_ms);
        match &self.state_key_file {
            None => StateSeal::random(ttl),
            Some(path) => {
                let key = std::fs::read(path)
                    .map_err(|e| format!("cannot read --state-key-file {}: {e}", path.display()))?;
                let end = key
                    .iter()
                    .rposition(|b| !b.is_ascii_whitespace())
                    .map_or(0, |i| i + 1);
                StateSeal::new(&key[..end], ttl)
                    .map_err(|e| format!("--state-key-file {}: {e}", path.display()))
            }
        }
    }

    /// The TLS server configuration from `--tls-cert` and `--tls-key` (read now), or `None`
    /// for plain TCP.
    pub fn tls_server_config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return match (&self.tls_cert, &self.tls_key) {
                (None, None) => Ok(None),
                _ => Err("TLS needs both --tls-cert and --tls-key".into()),
            };
        };
        let read = |flag: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| format!("cannot read --{flag} {}: {e}", path.display()))
        };
        let chain = read("tls-cert", cert)?;
        let key_pem = read("tls-key", key)?;
        crate::transport::tls::server_config(&chain, &key_pem)
            .map(Some)
            .map_err(|e| {
                format!(
                    "--tls-cert {} / --tls-key {}: {e}",
                    cert.display(),
                    key.display()
                )
            })
    }

    /// What authorization needs, read and checked now (files, URLs, scopes), or `None` when
    /// it is off. `local` is the bound address, for the default resource identifier.
    pub(crate) fn auth_settings(&self, local: SocketAddr) -> Result<Option<AuthSettings>, String> {
        use crate::auth::{AuthConfig, HttpUrl, Introspection, KeySet};
        let Some(issuer) = &self.auth_issuer else {
            return Ok(None);
        };
        let scheme = if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        let resource =
            (self.auth_resource.clone()).unwrap_or_else(|| format!("{scheme}://{local}/mcp"));
        let mut config = AuthConfig::new(issuer.clone(), resource);
        if let Some(audience) = &self.auth_audience {
            config.audience = audience.clone();
        }
        config.leeway_secs = self.auth_leeway_secs;
        config.accept_any_typ = self.auth_any_typ;
        config.scopes = self.auth_scopes.clone();
        config.tool_scopes = scope_lists("auth-tool-scope", "TOOL", &self.auth_tool_scopes)?;
        config.implied_scopes =
            scope_lists("auth-scope-implies", "BROAD", &self.auth_implied_scopes)?;
        config
            .validate()
            .map_err(|e| format!("authorization: {e}"))?;
        let read = |flag: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| format!("cannot read --{flag} {}: {e}", path.display()))
        };
        let jwks_file = match &self.auth_jwks_file {
            Some(path) => {
                let jwks = read("auth-jwks-file", path)?;
                KeySet::from_jwks(&jwks)
                    .map_err(|e| format!("--auth-jwks-file {}: {e}", path.display()))?;
                Some(jwks)
            }
            None => None,
        };
        let jwks_url = (self.auth_jwks_url.as_deref())
            .map(|url| HttpUrl::parse(url).map_err(|e| format!("--auth-jwks-url: {e}")))
            .transpose()?;
        let introspection =
            match (
                &self.auth_introspection_url,
                &self.auth_client_id,
                &self.auth_client_secret_file,
            ) {
                (None, _, _) => None,
                (Some(url), Some(id), Some(secret)) => {
                    let secret = read("auth-client-secret-file", secret)?;
                    let secret = String::from_utf8(secret)
                        .map_err(|_| "--auth-client-secret-file is not UTF-8".to_string())?;
                    let introspection =
                        Introspection::new(url, id.clone(), secret.trim_end().to_owned())
                            .map_err(|e| format!("--auth-introspection-url: {e}"))?;
                    Some(introspection)
                }
                _ => return Err(
                    "--auth-introspection-url needs --auth-client-id and --auth-client-secret-file"
                        .into(),
                ),
            };
        if jwks_file.is_none() && jwks_url.is_none() && introspection.is_none() {
            return Err("--auth-issuer needs a way to check tokens: --auth-jwks-file, --auth-jwks-url or --auth-introspection-url".into());
        }
        if jwks_file.is_some() && jwks_url.is_some() {
            return Err("give --auth-jwks-file or --auth-jwks-url, not both".into());
        }
        let roots = match &self.auth_ca_file {
            Some(path) => read("auth-ca-file", path)?,
            None if jwks_url.as_ref().is_some_and(|u| u.tls)
                || introspection.as_ref().is_some_and(|i| i.url.tls) =>
            {
                read("auth-ca-file (default)", std::path::Path::new(SYSTEM_ROOTS))?
            }
            None => Vec::new(),
        };
        Ok(Some(AuthSettings {
            config,
            jwks_file,
            jwks_url,
            jwks_refresh: Duration::from_secs(self.auth_jwks_refresh_secs.max(1)),
            introspection,
            roots,
            open_health: self.auth_open_health,
        }))
    }

    /// Time a TLS client has to finish its handshake.
    pub(crate) fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.tls_handshake_timeout_ms)
    }

    /// Header read timeout.
    pub(crate) fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    /// Idle time allowed between keep-alive requests.
    pub(crate) fn http_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.http_idle_timeout_secs)
    }

    /// Completion timeout for an open WebSocket message.
    pub(crate) fn fragment_timeout(&self) -> Duration {
        Duration::from_millis(self.fragment_timeout_ms)
    }

    /// Silence before the server pings.
    pub(crate) fn ws_ping_interval(&self) -> Duration {
        Duration::from_secs(self.ws_ping_interval_secs)
    }

    /// Silence after a ping before the connection is dropped.
    pub(crate) fn ws_pong_timeout(&self) -> Duration {
        Duration::from_secs(self.ws_pong_timeout_secs)
    }

    /// Bounded wait for the peer during the close handshake.
    pub(crate) fn close_timeout(&self) -> Duration {
        Duration::from_millis(self.close_timeout_ms)
    }

    /// Time a client may stay at the outbound bound.
    pub(crate) fn slow_reader_timeout(&self) -> Duration {
        Duration::from_millis(self.slow_reader_timeout_ms)
    }

    /// Idle time after which a session expires.
    pub(crate) fn session_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.session_idle_timeout_secs)
    }

    /// Interval of SSE keep-alive comments.
    pub(crate) fn sse_keepalive(&self) -> Duration {
        Duration::from_secs(self.sse_keepalive_secs)
    }

    /// The MCP layer's per-session and per-batch bounds.
    pub(crate) fn dispatch_limits(&self) -> DispatchLimits {
        DispatchLimits {
            max_in_flight: self.max_in_flight,
            max_subscriptions: self.max_subscriptions,
            max_batch_items: self.max_batch_items,
            max_batch_reply_bytes: self.max_batch_reply_bytes,
            max_listen_streams: self.max_listen_streams_per_shard,
        }
    }

    /// The per-client admission rules.
    pub(crate) fn admission_limits(&self) -> AdmissionLimits {
        AdmissionLimits {
            max_connections_per_ip: self.max_connections_per_ip,
            connection_rate: Rate::per_second(
                self.max_new_connections_per_ip_per_sec,
                self.new_connection_burst,
            ),
            request_rate: Rate::per_second(self.max_requests_per_sec, self.request_burst),
            max_tracked: self.max_tracked_clients_per_shard,
        }
    }

    /// Grace period for draining on shutdown.
    pub(crate) fn shutdown_grace(&self) -> Duration {
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
        assert!(!c.ws_deflate);
        assert_eq!(c.max_message_bytes, 1024 * 1024);
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert!(c.shard_count() >= 1);
    }

    #[cfg(feature = "cli")]
    #[test]
    fn the_command_line_defaults_are_the_library_defaults() {
        use clap::Parser;
        let parsed = Config::parse_from(["ringmcp"]);
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Config::default()));
    }

    #[test]
    fn admission_is_off_by_default() {
        // Every client of a loopback bind, or of a proxy, has one address: see the flags.
        let limits = Config::default().admission_limits();
        assert_eq!(limits.max_connections_per_ip, 0);
        assert_eq!(limits.connection_rate, None);
        assert_eq!(limits.request_rate, None);
    }

    #[cfg(feature = "cli")]
    #[test]
    fn a_burst_is_at_least_one() {
        use clap::Parser;
        for flag in ["--request-burst", "--new-connection-burst"] {
            assert!(
                Config::try_parse_from(["ringmcp", flag, "0"]).is_err(),
                "{flag}"
            );
            assert!(
                Config::try_parse_from(["ringmcp", flag, "1"]).is_ok(),
                "{flag}"
            );
        }
    }

    #[cfg(feature = "cli")]
    #[test]
    fn header_count_is_clamped_to_the_parser_slots() {
        use clap::Parser;
        let c = Config::parse_from(["ringmcp", "--max-headers", "1000"]);
        assert_eq!(c.http_limits().max_headers, http1::HEADER_SLOTS);
    }

    #[test]
    fn the_state_key_file_needs_32_bytes_besides_trailing_whitespace() {
        let dir = std::env::temp_dir().join(format!("ringmcp-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let with_key = |bytes: &[u8]| {
            let path = dir.join("key");
            std::fs::write(&path, bytes).unwrap();
            Config {
                state_key_file: Some(path),
                ..Config::default()
            }
            .state_seal()
        };
        assert!(with_key(&[b'k'; 32]).is_ok());
        // `openssl rand -hex 32 > key` ends with a newline, which is not key material.
        let short = with_key(b"0123456789abcdef0123456789abcde\n").unwrap_err();
        assert!(short.contains("31 bytes"), "{short}");
        let missing = Config {
            state_key_file: Some(dir.join("absent")),
            ..Config::default()
        }
        .state_seal()
        .unwrap_err();
        assert!(
            missing.contains("cannot read --state-key-file"),
            "{missing}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            Config::default().state_seal().is_ok(),
            "a random key without a file"
        );
    }

    #[cfg(feature = "cli")]
    #[test]
    fn the_event_store_is_off_unless_given_a_redis_url() {
        use clap::Parser;
        assert!(Config::parse_from(["ringmcp"]).event_store.is_none());
        let c = Config::parse_from(["ringmcp", "--event-store", "redis://:pw@cache:6380/2"]);
        let url = c.event_store.expect("an event store");
        assert_eq!((url.host.as_str(), url.port, url.db), ("cache", 6380, 2));
        let refused = Config::try_parse_from(["ringmcp", "--event-store", "rediss://cache"])
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("rediss:// (TLS) is not supported"),
            "{refused}"
        );
    }

    #[cfg(feature = "cli")]
    #[test]
    fn replay_age_beyond_what_the_ring_can_time_is_refused() {
        use clap::Parser;
        let parse = |secs: &str| Config::try_parse_from(["ringmcp", "--ring-max-age-secs", secs]);
        assert_eq!(parse("1073741").unwrap().ring_max_age_secs, 1_073_741);
        assert!(parse("1073742").is_err());
    }
}
