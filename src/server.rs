//! The embedder's entry point: a registry of handlers plus the options to serve it with,
//! started in one call.

use crate::config::Config;
use crate::mcp::Registry;
use crate::shard::{self, ServerError, ServerHandle};
use std::net::SocketAddr;
use std::sync::Arc;

/// An MCP server that has not started yet: what it serves and how.
///
/// Options not covered by a method here are fields of [`Config`]; start from one with
/// [`Server::with_config`].
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

    /// The options the server will start with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Starts every shard and returns once all of them listen; the server runs on its own
    /// threads until [`ServerHandle::shutdown`] (or a [`Stopper`](crate::Stopper)).
    pub fn start(self) -> Result<ServerHandle, ServerError> {
        shard::start(self.config, self.registry)
    }
}
