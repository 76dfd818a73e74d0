//! Command line: flags, the target URL (loopback only, plain or TLS) and the scenario names.

use clap::{Parser, ValueEnum};
use rustls::pki_types::{DnsName, ServerName};
use rustls::ClientConfig;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Server URL: ws://, wss://, http:// or https://host:port/path. Loopback hosts only;
    /// wss:// and https:// need --tls-ca.
    #[arg(long, default_value = "ws://127.0.0.1:8080/mcp")]
    pub target: String,

    /// PEM certificates of the roots that verify a wss:// or https:// target (and an https://
    /// --server-metrics). Required with TLS: there is no mode that skips verification.
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,

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

    /// WebSocket scenarios: offer permessage-deflate (RFC 7692, both sides resetting their
    /// context per message). Where the server accepts, requests from the server's default
    /// --ws-deflate-min-bytes on go compressed at its default level and compressed replies
    /// are inflated, so a run measures what compression costs and saves on the wire.
    #[arg(long)]
    pub ws_deflate: bool,

    /// Load shards (one glommio executor pinned per allowed CPU); 0 means every CPU this process may use.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,

    /// Write the full results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Write this run's HTML report (self-contained: plots of latency, throughput, errors,
    /// server memory and the connection ramp) to this file.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,

    /// The server's process id, to report its resident memory (VmRSS in /proc/PID/status).
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// The server's Prometheus endpoint (http:// or https://host:port/path), read at the start
    /// and end of the measured phase for ringmcp's `ringmcp_shard_busy_seconds_total`: the
    /// report then has the server's busy share (CPU use without idle spinning). Other servers:
    /// leave unset.
    #[arg(long)]
    pub server_metrics: Option<String>,

    /// idle-hold: hold WebSocket MCP sessions, Streamable HTTP sessions each with an open GET
    /// stream, or raw WebSocket connections (an echo endpoint, no subprotocol).
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

    /// sse scenarios: how long, in seconds, a stream cut off by a failure (a node that died,
    /// a balancer with no live node yet) has to deliver again. Its resumes and its calls are
    /// tried again on connection failures and 502, 503 and 504 answers, 50 ms apart doubling
    /// to 1 s, within this time; a stream still stuck after it counts as "hung".
    #[arg(long, default_value_t = 15.0)]
    pub patience: f64,

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

    /// Searches for the highest rate whose p99 stays at or below P99_MS milliseconds with no
    /// errors (ws-echo, ws-mcp, http-mcp): probing runs of --probe-duration rise from --rate
    /// by doubling, then bisect to --capacity-resolution; a confirming run at the rate found
    /// lasts --duration. Exit status 1 when no rate was found or the confirming run missed.
    #[arg(long, value_name = "P99_MS")]
    pub find_capacity: Option<f64>,

    /// --find-capacity: each probing run's measured phase, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub probe_duration: f64,

    /// --find-capacity: bisection stops when the lowest failing rate is within this many
    /// percent above the highest passing one.
    #[arg(long, default_value_t = 5.0)]
    pub capacity_resolution: f64,
}

/// `ringmcp-load compare --base A1.json A2.json … --new B1.json B2.json …`: two builds'
/// runs, made in pairs (A1 then B1, B2 then A2, …), compared pair by pair. Exit status 1
/// when the new build is slower beyond the threshold on some metric, or has errors the base
/// had not; 2 when the runs cannot be read.
#[derive(Parser, Debug)]
#[command(
    name = "ringmcp-load compare",
    about = "Compares two builds' paired runs (--json reports): per metric the geometric mean of \
             new/base with its 95% interval, and a verdict against the threshold"
)]
pub struct CompareArgs {
    /// The base build's runs (reports written with --json), in the order they were made.
    #[arg(long, num_args = 1.., required = true)]
    pub base: Vec<PathBuf>,

    /// The new build's runs, paired with --base by position.
    #[arg(long, num_args = 1.., required = true)]
    pub new: Vec<PathBuf>,

    /// The smallest change that counts, in percent.
    #[arg(long, default_value_t = 10.0)]
    pub threshold: f64,

    /// Also writes the comparison as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Also writes the A/B HTML report to this file: the verdicts, then both builds' runs
    /// overlaid on every plot.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
}

/// `ringmcp-load report --out FILE.html RUN.json …`: runs already on disk (reports written
/// with --json) on one self-contained HTML page, a section per run.
#[derive(Parser, Debug)]
#[command(
    name = "ringmcp-load report",
    about = "Renders runs on disk (--json reports) as one self-contained HTML page with plots"
)]
pub struct ReportArgs {
    /// The page to write.
    #[arg(long, value_name = "FILE.html")]
    pub out: PathBuf,

    /// The runs, one section each, in this order.
    #[arg(required = true, value_name = "RUN.json")]
    pub runs: Vec<PathBuf>,
}

impl Args {
    /// The target and the `--server-metrics` endpoint, parsed, the TLS ones with the roots
    /// read from `--tls-ca`.
    pub fn targets(&self) -> Result<(Target, Option<Target>), String> {
        let roots = match &self.tls_ca {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("cannot read --tls-ca {}: {e}", path.display()))?;
                let config = crate::net::tls_client_config(&pem)
                    .map_err(|e| format!("--tls-ca {}: {e}", path.display()))?;
                Some(config)
            }
            None => None,
        };
        let target = Target::parse(&self.target, roots.as_ref()).map_err(|e| e.to_string())?;
        let metrics = match &self.server_metrics {
            Some(url) => match Target::parse(url, roots.as_ref())
                .map_err(|e| format!("--server-metrics: {e}"))?
            {
                t if t.scheme == Scheme::Http => Some(t),
                _ => return Err("--server-metrics must be an http:// or https:// URL".into()),
            },
            None => None,
        };
        Ok((target, metrics))
    }
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
            Scenario::IdleHold => transport != Transport::Http,
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
    /// Raw WebSocket, no subprotocol and no MCP (ringmcp's `/echo`).
    Echo,
}

/// What the target speaks above TCP or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `ws://` or `wss://`
    Ws,
    /// `http://` or `https://`
    Http,
}

/// What the connections to a `wss://` or `https://` target verify.
#[derive(Debug, Clone)]
pub struct TlsTarget {
    /// The roots from --tls-ca, ALPN `http/1.1`.
    pub config: Arc<ClientConfig>,
    /// The name the server's certificate must carry (SNI when a DNS name): the target's host.
    pub name: ServerName<'static>,
}

/// A parsed, loopback-only target.
#[derive(Debug, Clone)]
pub struct Target {
    /// ws or http.
    pub scheme: Scheme,
    /// TLS (`wss://`, `https://`), or None for plain TCP.
    pub tls: Option<TlsTarget>,
    /// The host as written, with the port (sent in `Host`).
    pub host: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// Request path (with query), starting with `/`.
    pub path: String,
}

/// Why a target URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// Not ws://, wss://, http:// or https://.
    Scheme(String),
    /// A wss:// or https:// target without --tls-ca.
    NoTlsCa(String),
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
                "unsupported target {url:?}: use ws://, wss://, http:// or https://host:port/path"
            ),
            TargetError::NoTlsCa(url) => write!(
                f,
                "target {url:?} speaks TLS: give --tls-ca PATH, the PEM roots that verify its \
                 certificate"
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
    /// Parses `ws://host[:port][/path]`, `http://...`, or with TLS `wss://...` and `https://...`
    /// (port 443 by default, verified with `tls`, the --tls-ca roots); the host must be loopback.
    pub fn parse(url: &str, tls: Option<&Arc<ClientConfig>>) -> Result<Target, TargetError> {
        let (scheme, secure, rest) = [
            ("ws://", Scheme::Ws, false),
            ("wss://", Scheme::Ws, true),
            ("http://", Scheme::Http, false),
            ("https://", Scheme::Http, true),
        ]
        .into_iter()
        .find_map(|(prefix, scheme, secure)| {
            url.strip_prefix(prefix).map(|rest| (scheme, secure, rest))
        })
        .ok_or_else(|| TargetError::Scheme(url.to_owned()))?;
        let config = match (secure, tls) {
            (false, _) => None,
            (true, Some(config)) => Some(config),
            (true, None) => return Err(TargetError::NoTlsCa(url.to_owned())),
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
            None if secure => 443,
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
        let tls = match config {
            None => None,
            Some(config) => Some(TlsTarget {
                config: Arc::clone(config),
                name: server_name(host).ok_or_else(|| TargetError::BadAuthority(url.to_owned()))?,
            }),
        };
        Ok(Target {
            scheme,
            tls,
            host: host_header,
            addr: SocketAddr::new(ip, port),
            path: path.to_owned(),
        })
    }
}

/// The name a TLS target's certificate must carry: its address, or its DNS name
/// (`localhost`, the only loopback host allowed by name). RFC 6066 §3: "Literal IPv4 and IPv6
/// addresses are not permitted in "HostName"", so an address is matched against the
/// certificate's IP entries and goes without SNI.
fn server_name(host: &str) -> Option<ServerName<'static>> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Some(ServerName::IpAddress(ip.into())),
        Err(_) => DnsName::try_from(host.to_ascii_lowercase())
            .ok()
            .map(ServerName::DnsName),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loopback_targets() {
        let t = Target::parse("ws://127.0.0.1:8080/echo", None).expect("valid");
        assert_eq!(t.scheme, Scheme::Ws);
        assert_eq!(t.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(t.path, "/echo");
        assert_eq!(t.host, "127.0.0.1:8080");

        let t = Target::parse("http://localhost:9000", None).expect("valid");
        assert_eq!(t.scheme, Scheme::Http);
        assert_eq!(t.path, "/");
        assert_eq!(t.addr.port(), 9000);

        let t = Target::parse("http://[::1]:8080/mcp?x=1", None).expect("valid");
        assert_eq!(t.host, "[::1]:8080");
        assert_eq!(t.path, "/mcp?x=1");

        let t = Target::parse("ws://127.3.2.1/mcp", None).expect("127/8 is loopback");
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
    fn idle_hold_transport_picks_the_wire() {
        assert!(Scenario::IdleHold.wants_ws(Transport::Ws));
        assert!(Scenario::IdleHold.wants_ws(Transport::Echo));
        assert!(!Scenario::IdleHold.wants_ws(Transport::Http));
        let parsed = Args::try_parse_from(["ringmcp-load", "--transport", "echo"]);
        assert_eq!(parsed.map(|a| a.transport).ok(), Some(Transport::Echo));
    }

    #[test]
    fn refuses_non_loopback_and_junk() {
        for (url, want) in [
            ("ws://10.0.0.1:8080/mcp", "loopback"),
            ("http://example.com/mcp", "loopback"),
            ("http://0.0.0.0:80/", "loopback"),
            ("ftp://127.0.0.1/mcp", "unsupported"),
            ("wss://127.0.0.1/mcp", "--tls-ca"),
            ("https://localhost/mcp", "--tls-ca"),
            ("ws://127.0.0.1:0/", "port"),
            ("ws://127.0.0.1:99999/", "port"),
            ("ws:///mcp", "no usable host"),
            ("ws://user@127.0.0.1/", "no usable host"),
            ("ws://[::1/", "no usable host"),
        ] {
            let err = Target::parse(url, None).expect_err(url).to_string();
            assert!(err.contains(want), "{url}: {err}");
        }
    }

    /// The test CA (tests/data/tls), which signed a leaf for 127.0.0.1 and localhost.
    const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/tls/ca.pem");

    fn roots() -> Arc<ClientConfig> {
        crate::net::tls_client_config(&std::fs::read(CA).expect("test CA")).expect("roots")
    }

    #[test]
    fn parses_tls_targets() {
        let roots = roots();
        let t = Target::parse("wss://127.0.0.1:8443/mcp", Some(&roots)).expect("valid");
        assert_eq!(t.scheme, Scheme::Ws);
        assert_eq!(t.addr, "127.0.0.1:8443".parse().expect("addr"));
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("127.0.0.1:8443", "/mcp")
        );
        let tls = t.tls.expect("TLS");
        assert!(Arc::ptr_eq(&tls.config, &roots));
        // An address is the name the certificate must carry, as an address.
        assert_eq!(tls.name, ServerName::from(IpAddr::V4(Ipv4Addr::LOCALHOST)));

        // Port 443 unless given; localhost is a DNS name (sent as SNI).
        let t = Target::parse("https://localhost/mcp", Some(&roots)).expect("valid");
        assert_eq!(t.scheme, Scheme::Http);
        assert_eq!(t.addr, "127.0.0.1:443".parse().expect("addr"));
        assert_eq!(t.host, "localhost:443");
        let name = t.tls.expect("TLS").name;
        assert_eq!(name, ServerName::try_from("localhost").expect("name"));
        assert!(matches!(name, ServerName::DnsName(_)));

        let t = Target::parse("https://[::1]:9443", Some(&roots)).expect("valid");
        assert_eq!((t.host.as_str(), t.path.as_str()), ("[::1]:9443", "/"));
        assert_eq!(
            t.tls.expect("TLS").name,
            ServerName::from(IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]))
        );

        // Roots make no plain target a TLS one; the other rules hold for TLS targets too.
        let t = Target::parse("ws://127.0.0.1:8080/mcp", Some(&roots)).expect("valid");
        assert!(t.tls.is_none());
        assert_eq!(t.addr.port(), 8080);
        for (url, want) in [
            ("https://10.0.0.1/mcp", "loopback"),
            ("wss://127.0.0.1:0/", "port"),
            ("https://user@localhost/", "no usable host"),
        ] {
            let err = Target::parse(url, Some(&roots)).expect_err(url).to_string();
            assert!(err.contains(want), "{url}: {err}");
        }
    }

    #[test]
    fn targets_read_the_tls_roots_and_a_tls_target_needs_them() {
        let targets = |extra: &[&str]| {
            Args::try_parse_from(["ringmcp-load"].iter().chain(extra))
                .expect("flags")
                .targets()
        };
        let err = targets(&["--target", "https://127.0.0.1:8443/mcp"]).expect_err("no CA");
        assert!(err.contains("--tls-ca PATH"), "{err}");
        let err = targets(&["--server-metrics", "https://127.0.0.1:1/metrics"]).expect_err("no CA");
        assert!(
            err.starts_with("--server-metrics") && err.contains("--tls-ca"),
            "{err}"
        );

        let (target, metrics) = targets(&[
            "--target",
            "wss://localhost:8443/mcp",
            "--tls-ca",
            CA,
            "--server-metrics",
            "https://127.0.0.1:8443/metrics",
        ])
        .expect("valid");
        let (Some(a), Some(b)) = (target.tls, metrics.and_then(|m| m.tls)) else {
            panic!("both speak TLS");
        };
        // One configuration for every connection of the run.
        assert!(Arc::ptr_eq(&a.config, &b.config));
        assert_eq!(a.config.alpn_protocols, [b"http/1.1".to_vec()]);

        let (target, _) = targets(&["--tls-ca", CA]).expect("a plain target may have roots");
        assert!(target.tls.is_none());
        let err = targets(&["--server-metrics", "ws://127.0.0.1:1/metrics"]).expect_err("ws");
        assert!(err.contains("http:// or https://"), "{err}");
        let err = targets(&["--tls-ca", "/nonexistent/ca.pem"]).expect_err("missing");
        assert!(err.starts_with("cannot read --tls-ca"), "{err}");
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/tls/server.key");
        let err = targets(&["--tls-ca", key]).expect_err("a key, not a certificate");
        assert!(err.contains("no usable CERTIFICATE"), "{err}");
    }
}
