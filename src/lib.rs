//! ringmcp: a thread-per-core io_uring server that carries MCP (JSON-RPC 2.0)
//! over WebSocket (RFC 6455) and over MCP Streamable HTTP with Server-Sent Events.
//!
//! The crate is split so that protocol code never does I/O:
//! - [`proto`]: sans-IO parsers and codecs (HTTP/1.1 heads, WebSocket, JSON-RPC);
//! - [`mcp`]: the MCP lifecycle, dispatcher, handler API and built-in fixtures;
//! - [`shard`]: the glommio executors, listeners and connection tasks (the only I/O).

pub mod config;
pub mod mcp;
pub mod metrics;
pub mod proto;
pub mod shard;
