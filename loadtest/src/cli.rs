//! Command line: flags, the target URL (loopback only) and the scenario names.

use clap::{Parser, ValueEnum};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// ringmcp-load: open-loop load generator for WebSocket and Streamable HTTP MCP servers.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "ringmcp-load",
    version,
    about = "Thread-per-core (glommio) load generator for MCP over WebSocket and Streamable HTTP",
    long_about = "ringmcp-load drives a WebSocket or MCP Streamable HTTP server on a loopback address \
                  with an open-loop schedule: every request has an intended send time fixed by --rate, \
                  and its latency counts from that time, so a stalled server cannot hide its stalls \
                  (no coordinated omission). Latencies go into one hdrhistogram per shard, merged at \
                  the end. It works against any server that speaks the same protocol."
)]
pub struct Args {
    /// Server URL: ws://host:port/path or http://host:port/path. Loopback hosts only.
    #[arg(long, default_value = "ws://127.0.0.1:8080/mcp")]
    pub target: String,

    /// What to run.
    #[arg(long, value_enum, default_value_t = Scenario::WsMcp)]
    pub scenario: Scenario,

    /// Connections (WebSocket connections, Streamable HTTP sessions, or listen streams), total
    /// across shards.
    #[arg(long, default_value_t = 100)]
    pub connections: usize,

    /// Requests per second (sse-fanout/sse-resume: events per second; listen: tool-list
    /// changes per second), total across shards. The schedule is fixed in advance; 0 sends
    /// nothing (idle).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,

    /// Length of the measured phase, in seconds (after every connection is up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// New connections per second, total across shards; 0 opens them all at once.
    #[arg(long, default_value_t = 5000.0)]
    pub ramp: f64,

    /// Payload bytes per request (echo message length; SSE event size for the stream tool).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,

    /// Load shards (one glommio executor pinned per allowed CPU); 0 means every CPU this process may use.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,

    /// Write the full results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// The server's process id, to report its resident memory (VmRSS in /proc/PID/status).
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// The server's Prometheus endpoint (http://host:port/path), read at the start and end of
    /// the measured phase for ringmcp's `ringmcp_shard_busy_seconds_total`: the report then
    /// has the server's busy share (CPU use without idle spinning). Other servers: leave unset.
    #[arg(long)]
    pub server_metrics: Option<String>,

    /// idle-hold: hold WebSocket MCP sessions, or Streamable HTTP sessions each with an open GET stream.
    #[arg(long, value_enum, default_value_t = Transport::Ws)]
    pub transport: Transport,

    /// slow-readers: share of connections that stop reading (0..1).
    #[arg(long, default_value_t = 0.1)]
    pub slow_share: f64,

    /// slow-readers: payload bytes of the requests the slow readers keep sending.
    #[arg(long, default_value_t = 64 * 1024)]
    pub slow_payload: usize,

    /// A request (or a stream's next event) not answered this long after its intended time counts as a timeout, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,

    /// sse-resume: forced disconnects in total, spread at random over sessions and time.
    #[arg(long, default_value_t = 100)]
    pub disconnects: usize,

    /// idle-hold --transport http: before opening its GET stream, each session calls the
    /// `stream` tool for this many events of --payload bytes, so its replay ring holds them.
    #[arg(long, default_value_t = 0)]
    pub fill_events: usize,

    /// listen: tool-list changes to trigger at most (at --rate, within --duration).
    #[arg(long, default_value_t = 10)]
    pub changes: usize,

    /// sse-fanout: also hold each session's standalone GET stream on a second connection.
    #[arg(long)]
    pub get_stream: bool,

    /// Seed for the random choices (masks excepted), so runs are repeatable.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// The MCP revision the client speaks. 2026-07-28 (http-mcp, ws-mcp, and listen, which
    /// needs it) sends no initialize: every request carries its own `_meta`, and over HTTP
    /// the Mcp-Method and Mcp-Name headers.
    #[arg(long, value_enum, default_value_t = Protocol::Session)]
    pub protocol: Protocol,
}

/// The MCP revision the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// MCP 2025-11-25: `initialize` opens a session, whose id every later request carries.
    #[value(name = "2025-11-25")]
    Session,
    /// MCP 2026-07-28: no session; every request carries `_meta` and the standard headers.
    #[value(name = "2026-07-28")]
    Stateless,
}

impl Protocol {
    /// The version string, as on the command line and in `MCP-Protocol-Version`.
    pub fn version(self) -> &'static str {
        match self {
            Protocol::Session => "2025-11-25",
            Protocol::Stateless => "2026-07-28",
        }
    }
}

/// The load scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Raw WebSocket echo (any RFC 6455 echo server).
    WsEcho,
    /// MCP over WebSocket: initialize (not with --protocol 2026-07-28), then tools/call echo.
    WsMcp,
    /// MCP Streamable HTTP: initialize (not with --protocol 2026-07-28), then tools/call echo
    /// over keep-alive connections.
    HttpMcp,
    /// Sessions receiving server-sent events at a set rate; measures delivery latency.
    SseFanout,
    /// sse-fanout with forced disconnects and Last-Event-ID resumes; checks exactly-once, in-order delivery.
    SseResume,
    /// Initialized sessions held open; reports server memory per connection.
    IdleHold,
    /// A share of WebSocket MCP clients stop reading; reports what the server did about them.
    SlowReaders,
    /// MCP 2026-07-28 `subscriptions/listen` streams (one per connection) hearing of tool-list
    /// changes triggered on a control connection; measures each change's delivery to them.
    Listen,
}

impl Scenario {
    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::WsEcho => "ws-echo",
            Scenario::WsMcp => "ws-mcp",
            Scenario::HttpMcp => "http-mcp",
            Scenario::SseFanout => "sse-fanout",
            Scenario::SseResume => "sse-resume",
            Scenario::IdleHold => "idle-hold",
            Scenario::SlowReaders => "slow-readers",
            Scenario::Listen => "listen",
        }
    }

    /// Whether the scenario can speak `protocol`. http-mcp and ws-mcp have a 2026-07-28
    /// client (ws-mcp's is ringmcp's own WebSocket binding of the revision); the other HTTP
    /// scenarios hold sessions (GET streams, `Last-Event-ID` resumption), and idle-hold and
    /// slow-readers measure 2025 sessions. listen's `subscriptions/listen` is 2026-07-28's.
    pub fn speaks(self, protocol: Protocol) -> bool {
        match self {
            Scenario::HttpMcp | Scenario::WsMcp => true,
            Scenario::Listen => protocol == Protocol::Stateless,
            _ => protocol == Protocol::Session,
        }
    }

    /// Whether the scenario speaks WebSocket (else Streamable HTTP).
    pub fn wants_ws(self, transport: Transport) -> bool {
        match self {
            Scenario::WsEcho | Scenario::WsMcp | Scenario::SlowReaders => true,
            Scenario::HttpMcp | Scenario::SseFanout | Scenario::SseResume | Scenario::Listen => {
                false
            }
            Scenario::IdleHold => transport == Transport::Ws,
        }
    }
}

/// Transport of the idle-hold scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// WebSocket, subprotocol mcp.
    Ws,
    /// Streamable HTTP with a held GET stream.
    Http,
}

/// URL scheme of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `ws://`
    Ws,
    /// `http://`
    Http,
}

/// A parsed, loopback-only target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// ws or http.
    pub scheme: Scheme,
    /// The host as written (sent in `Host`).
    pub host: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// Request path (with query), starting with `/`.
    pub path: String,
}

/// Why a target URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// Not ws:// or http:// (wss and https are not supported).
    Scheme(String),
    /// The authority part is empty or unparsable.
    BadAuthority(String),
    /// The port is not a number in 1..=65535.
    BadPort(String),
    /// The host is not a loopback address.
    NotLoopback(String),
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Scheme(url) => write!(
                f,
                "unsupported target {url:?}: use ws://host:port/path or http://host:port/path"
            ),
            TargetError::BadAuthority(url) => write!(f, "target {url:?} has no usable host"),
            TargetError::BadPort(port) => write!(f, "target port {port:?} is not in 1..=65535"),
            TargetError::NotLoopback(host) => write!(
                f,
                "refusing target host {host:?}: ringmcp-load only drives loopback addresses \
                 (127.0.0.0/8, ::1, localhost), so it cannot be pointed at someone else's server"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

impl Target {
    /// Parses `ws://host[:port][/path]` or `http://...`; the host must be loopback.
    pub fn parse(url: &str) -> Result<Target, TargetError> {
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("ws://") {
            (Scheme::Ws, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            return Err(TargetError::Scheme(url.to_owned()));
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(TargetError::BadAuthority(url.to_owned()));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((inner, after)) = v6.split_once(']') else {
                return Err(TargetError::BadAuthority(url.to_owned()));
            };
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(TargetError::BadAuthority(url.to_owned())),
            };
            (inner, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(TargetError::BadPort(p.to_owned())),
            },
            None => 80,
        };
        let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse()
                .map_err(|_| TargetError::NotLoopback(host.to_owned()))?
        };
        if !ip.is_loopback() {
            return Err(TargetError::NotLoopback(host.to_owned()));
        }
        let host_header = if authority.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Target {
            scheme,
            host: host_header,
            addr: SocketAddr::new(ip, port),
            path: path.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loopback_targets() {
        let t = Target::parse("ws://127.0.0.1:8080/echo").expect("valid");
        assert_eq!(t.scheme, Scheme::Ws);
        assert_eq!(t.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(t.path, "/echo");
        assert_eq!(t.host, "127.0.0.1:8080");

        let t = Target::parse("http://localhost:9000").expect("valid");
        assert_eq!(t.scheme, Scheme::Http);
        assert_eq!(t.path, "/");
        assert_eq!(t.addr.port(), 9000);

        let t = Target::parse("http://[::1]:8080/mcp?x=1").expect("valid");
        assert_eq!(t.host, "[::1]:8080");
        assert_eq!(t.path, "/mcp?x=1");

        let t = Target::parse("ws://127.3.2.1/mcp").expect("127/8 is loopback");
        assert_eq!(t.addr.port(), 80);
    }

    #[test]
    fn protocol_flag() {
        let parse = |extra: &[&str]| {
            Args::try_parse_from(["ringmcp-load"].iter().chain(extra)).map(|a| a.protocol)
        };
        assert_eq!(parse(&[]).ok(), Some(Protocol::Session));
        assert_eq!(
            parse(&["--protocol", "2026-07-28"]).ok(),
            Some(Protocol::Stateless)
        );
        assert_eq!(
            parse(&["--protocol", "2025-11-25"]).ok(),
            Some(Protocol::Session)
        );
        assert!(parse(&["--protocol", "2025-06-18"]).is_err());
        for p in [Protocol::Session, Protocol::Stateless] {
            assert_eq!(
                p.to_possible_value().map(|v| v.get_name().to_owned()),
                Some(p.version().to_owned())
            );
        }
        assert!(Scenario::HttpMcp.speaks(Protocol::Stateless));
        assert!(Scenario::WsMcp.speaks(Protocol::Stateless));
        assert!(!Scenario::IdleHold.speaks(Protocol::Stateless));
        assert!(Scenario::Listen.speaks(Protocol::Stateless));
        assert!(!Scenario::Listen.speaks(Protocol::Session));
        assert!(!Scenario::SseResume.speaks(Protocol::Stateless));
        assert!(Scenario::WsMcp.speaks(Protocol::Session));
    }

    #[test]
    fn refuses_non_loopback_and_junk() {
        for (url, want) in [
            ("ws://10.0.0.1:8080/mcp", "loopback"),
            ("http://example.com/mcp", "loopback"),
            ("http://0.0.0.0:80/", "loopback"),
            ("wss://127.0.0.1/mcp", "unsupported"),
            ("https://127.0.0.1/mcp", "unsupported"),
            ("ws://127.0.0.1:0/", "port"),
            ("ws://127.0.0.1:99999/", "port"),
            ("ws:///mcp", "no usable host"),
            ("ws://user@127.0.0.1/", "no usable host"),
            ("ws://[::1/", "no usable host"),
        ] {
            let err = Target::parse(url).expect_err(url).to_string();
            assert!(err.contains(want), "{url}: {err}");
        }
    }
}
