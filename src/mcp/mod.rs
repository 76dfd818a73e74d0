//! MCP server layer: lifecycle, tools and dispatch, independent of transport.
//!
//! Transports parse nothing themselves: they hand each message's bytes to
//! [`Dispatcher::handle`] with the session's [`SessionRef`] and a [`Peer`]
//! for out-of-band messages, and write back whatever reply it returns.

pub mod dispatch;
pub mod fixtures;
pub mod peer;
pub mod registry;
pub mod session;
pub mod tool;
pub mod version;

pub use dispatch::{classify, split_frame, Dispatcher, Kind};
pub use peer::Peer;
pub use registry::{Registry, RegistryBuilder};
pub use session::{LogLevel, SessionRef, SessionState};
pub use tool::{Content, Tool, ToolContext, ToolError, ToolFuture, ToolResult};
