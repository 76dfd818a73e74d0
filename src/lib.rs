//! ringmcp: a thread-per-core io_uring server that carries MCP (JSON-RPC 2.0)
//! over WebSocket (RFC 6455) and over MCP Streamable HTTP with Server-Sent Events.
//!
//! Register your tools, resources and prompts on a [`Registry`], hand it to a [`Server`]
//! and start it. Handlers are plain closures, registered once (so they are `Send + Sync`),
//! that run on whichever shard owns the session; the futures they return need not be `Send`.
//! A tool's arguments and result can be Rust types ([`RegistryBuilder::typed_tool`], with
//! `serde` and `schemars`), or JSON values with a hand-written schema ([`RegistryBuilder::tool`]).
//!
//! ```no_run
//! use ringmcp::{Registry, Server, ServerError, Structured, Tool, ToolContext};
//! use schemars::JsonSchema;
//! use serde::{Deserialize, Serialize};
//!
//! /// The arguments: their JSON Schema is the tool's `inputSchema`.
//! #[derive(Deserialize, JsonSchema)]
//! struct Add {
//!     /// The first term.
//!     a: f64,
//!     /// The second term.
//!     b: f64,
//! }
//!
//! /// The result: its JSON Schema is the tool's `outputSchema`.
//! #[derive(Serialize, JsonSchema)]
//! struct Sum {
//!     sum: f64,
//! }
//!
//! fn main() -> Result<(), ServerError> {
//!     let registry = Registry::builder()
//!         .server_info("calculator", "1.0.0")
//!         // {"a": 1, "b": "x"} never reaches the closure: the result is a tool error,
//!         // "Invalid arguments: b: invalid type: string \"x\", expected f64".
//!         .typed_tool(
//!             Tool::named("add", "Adds two numbers"),
//!             |_ctx: ToolContext, args: Add| async move {
//!                 Ok(Structured(Sum { sum: args.a + args.b }))
//!             },
//!         )
//!         .build();
//!     let server = Server::new(registry).bind(([127, 0, 0, 1], 8080)).start()?;
//!     println!("MCP on ws://{0}/mcp and http://{0}/mcp", server.local_addr());
//!     server.join()
//! }
//! ```
//!
//! Every limit the server enforces is a field of [`Config`] (see [`Server::with_config`]).
//! The `cli` feature (on by default) adds the command line of the `ringmcp` binary; an
//! embedder can turn it off (`default-features = false`) and build without clap.
#![deny(missing_docs)]

mod config;
mod mcp;
mod server;

// Modules below are public only for the load generator, the integration tests, the benches
// and the fuzz targets in this repository; they are not part of the supported API.
#[doc(hidden)]
pub mod auth;
#[doc(hidden)]
pub mod metrics;
#[doc(hidden)]
pub mod proto;
#[doc(hidden)]
pub mod shard;
#[doc(hidden)]
pub mod store;
#[doc(hidden)]
pub mod transport;
pub(crate) mod wake;

/// The MCP layer without a transport, for the benches and fuzz targets.
#[doc(hidden)]
pub mod dispatch {
    pub use crate::mcp::stateless::{Envelope, EnvelopeError};
    pub use crate::mcp::{
        classify, split_frame, Announcement, CatalogueUpdate, DispatchLimits, Dispatcher, Kind,
        ListKind, Peer, SessionRef, SessionState,
    };
}

pub use config::Config;
pub use mcp::{
    CacheHints, CacheScope, CatalogueChange, ClientError, ClientRequest, CompletionFuture,
    CompletionRef, CompletionRequest, Content, Icon, IconTheme, IntoToolResult, LogLevel, Prompt,
    PromptFuture, PromptMessage, PromptResult, Registry, RegistryBuilder, Resource, ResourceBody,
    ResourceContents, ResourceFuture, ResourceRead, ResourceTemplate, Role, SleepFuture,
    Structured, Tool, ToolAnnotations, ToolContext, ToolError, ToolFuture, ToolResult,
};
pub use proto::jsonrpc::Id;
pub use server::Server;
pub use shard::{ServerError, ServerHandle, Stopper, TlsReloader};

// The binary's fixture set (src/fixtures.rs) is written against the public API as
// `ringmcp::...`; the MCP layer's unit tests compile the same file.
#[cfg(test)]
extern crate self as ringmcp;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod fixtures_tests;
