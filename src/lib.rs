//! ringmcp: a thread-per-core io_uring server that carries MCP (JSON-RPC 2.0)
//! over WebSocket (RFC 6455) and over MCP Streamable HTTP with Server-Sent Events.
//!
//! The crate is split so that protocol code never does I/O:
//! - [`proto`]: sans-IO parsers and codecs (HTTP/1.1 heads, WebSocket, JSON-RPC);
//! - [`mcp`]: the MCP lifecycle, dispatcher, handler API and built-in fixtures;
//! - [`shard`]: the glommio executors, listeners and connection tasks (the only I/O).
//!
//! Serving your own tool next to the built-in fixtures:
//!
//! ```no_run
//! use ringmcp::config::Config;
//! use ringmcp::mcp::{fixtures, Tool, ToolContext, ToolResult};
//! use serde_json::{json, Value};
//! use std::sync::Arc;
//!
//! let registry = fixtures::builtin()
//!     .tool(
//!         Tool::new("add", "Adds two numbers", json!({
//!             "type": "object",
//!             "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
//!             "required": ["a", "b"]
//!         })),
//!         |_ctx: ToolContext, args: Value| async move {
//!             let sum = args["a"].as_f64().unwrap_or(0.0) + args["b"].as_f64().unwrap_or(0.0);
//!             Ok(ToolResult::text(sum.to_string()))
//!         },
//!     )
//!     .build();
//! let server = ringmcp::shard::start(Config::default(), Arc::new(registry)).expect("server starts");
//! println!("listening on {}", server.local_addr());
//! server.join().expect("clean exit");
//! ```

pub mod config;
pub mod mcp;
pub mod metrics;
pub mod proto;
pub mod shard;
pub mod store;
pub mod transport;
pub(crate) mod wake;
