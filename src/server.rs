//! The embedder's entry point: a registry of handlers plus the options to serve it with,
//! started in one call.

use crate::config::Config;
use crate::mcp::Registry;
use crate::shard::{self, ServerError, ServerHandle};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// An MCP server that has not started yet: what it serves and how.
///
/// Deadlines are [`Duration`]s here (the command line's `--…-ms` and `--…-secs` integers are
/// fields of [`Config`]); options not covered by a method are set with
/// [`configure`](Server::configure), or start from a whole [`Config`] (the one the binary
/// parses) with [`Server::with_config`].
///
/// ```no_run
/// use ringmcp::{Registry, Server, ServerError};
/// use std::time::Duration;
///
/// fn main() -> Result<(), ServerError> {
///     let registry = Registry::builder().server_info("tools", "1.0.0").build();
///     Server::new(registry)
///         .bind(([127, 0, 0, 1], 8080))
///         .session_idle_timeout(Duration::from_secs(30 * 60))
///         .header_timeout(Duration::from_secs(5))
///         .configure(|config| config.max_sessions_per_shard = 50_000)
///         .serve()
/// }
/// ```
pub struct Server {
    config: Config,
    registry: Arc<Registry>,
}

impl Server {
    /// A server for `registry` with every option at its default (loopback port 8080, one shard
    /// per CPU this process may use).
    pub fn new(registry: impl Into<Arc<Registry>>) -> Server {
        Server::with_config(Config::default(), registry)
    }

    /// A server for `registry` with options already decided (by hand, or parsed by the binary).
    pub fn with_config(config: Config, registry: impl Into<Arc<Registry>>) -> Server {
        Server {
            config,
            registry: registry.into(),
        }
    }

    /// Listens on `addr` (port 0 picks a free port; [`ServerHandle::local_addr`] tells which).
    pub fn bind(mut self, addr: impl Into<SocketAddr>) -> Server {
        self.config.bind = addr.into();
        self
    }

    /// Runs `shards` executors, each pinned to a core; 0 means one per CPU this process may use.
    pub fn shards(mut self, shards: usize) -> Server {
        self.config.shards = shards;
        self
    }

    /// Sets any other option of [`Config`] (limits, authorization, TLS, …).
    pub fn configure(mut self, change: impl FnOnce(&mut Config)) -> Server {
        change(&mut self.config);
        self
    }

    /// Time a request head (and its body) may take once its first byte has come; then 408
    /// (default 10 s).
    pub fn header_timeout(mut self, timeout: Duration) -> Server {
        self.config.header_timeout_ms = millis(timeout);
        self
    }

    /// How long a keep-alive HTTP connection may sit idle between requests (default 60 s;
    /// whole seconds, rounded up).
    pub fn http_idle_timeout(mut self, timeout: Duration) -> Server {
        self.config.http_idle_timeout_secs = seconds(timeout);
        self
    }

    /// How long a session with no open stream and no request in flight lives (default
    /// 10 min; whole seconds, rounded up).
    pub fn session_idle_timeout(mut self, timeout: Duration) -> Server {
        self.config.session_idle_timeout_secs = seconds(timeout);
        self
    }

    /// A WebSocket silent this long is pinged (default 30 s; whole seconds, rounded up).
    pub fn ws_ping_interval(mut self, interval: Duration) -> Server {
        self.config.ws_ping_interval_secs = seconds(interval);
        self
    }

    /// A pinged WebSocket still silent after this long is closed with 1001 (default 30 s;
    /// whole seconds, rounded up).
    pub fn ws_pong_timeout(mut self, timeout: Duration) -> Server {
        self.config.ws_pong_timeout_secs = seconds(timeout);
        self
    }

    /// Time a started WebSocket message may take to complete; then close 1008 (default 30 s).
    pub fn ws_fragment_timeout(mut self, timeout: Duration) -> Server {
        self.config.fragment_timeout_ms = millis(timeout);
        self
    }

    /// A client that reads nothing while its outbound bound is full is dropped after this
    /// long (default 10 s).
    pub fn slow_reader_timeout(mut self, timeout: Duration) -> Server {
        self.config.slow_reader_timeout_ms = millis(timeout);
        self
    }

    /// On SIGTERM or [`ServerHandle::shutdown`], how long requests in flight may take to
    /// finish (default 5 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Server {
        self.config.shutdown_grace_ms = millis(grace);
        self
    }

    /// An SSE stream with nothing to send gets a comment this often (default 15 s; whole
    /// seconds, rounded up).
    pub fn sse_keepalive(mut self, interval: Duration) -> Server {
        self.config.sse_keepalive_secs = seconds(interval);
        self
    }

    /// How long the events of an SSE stream stay replayable with `Last-Event-ID` (default
    /// 5 min; whole seconds, rounded up, at most about 12 days).
    pub fn replay_max_age(mut self, age: Duration) -> Server {
        self.config.ring_max_age_secs = seconds(age).min(crate::store::ring::MAX_AGE.as_secs());
        self
    }

    /// The options the server will start with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Starts every shard and returns once all of them listen; the server runs on its own
    /// threads until [`ServerHandle::shutdown`] (or a [`Stopper`](crate::Stopper)).
    pub fn start(self) -> Result<ServerHandle, ServerError> {
        shard::start(self.config, self.registry)
    }

    /// Starts the server and serves until it stops (SIGTERM or SIGINT, or a
    /// [`Stopper`](crate::Stopper)): [`start`](Server::start), then
    /// [`ServerHandle::join`].
    pub fn serve(self) -> Result<(), ServerError> {
        self.start()?.join()
    }
}

/// `duration` in whole milliseconds, rounded up (a nonzero duration never becomes 0).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// `duration` in whole seconds, rounded up.
fn seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_the_configs_units_rounded_up() {
        let server = Server::new(Registry::builder().build())
            .header_timeout(Duration::from_micros(1500))
            .session_idle_timeout(Duration::from_millis(1500))
            .ws_ping_interval(Duration::from_secs(7))
            .replay_max_age(Duration::from_secs(u64::MAX))
            .configure(|config| config.max_sessions_per_shard = 7);
        let config = server.config();
        assert_eq!(config.header_timeout_ms, 2);
        assert_eq!(config.session_idle_timeout_secs, 2);
        assert_eq!(config.ws_ping_interval_secs, 7);
        assert_eq!(
            config.ring_max_age_secs,
            crate::store::ring::MAX_AGE.as_secs()
        );
        assert_eq!(config.max_sessions_per_shard, 7);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
