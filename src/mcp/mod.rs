//! MCP server layer: lifecycle, tools, resources, prompts, completion,
//! logging and server-to-client requests, independent of transport.
//!
//! Transports parse nothing themselves: they hand each message's bytes to
//! [`Dispatcher::handle`] with the session's [`SessionRef`] and a [`Peer`]
//! for out-of-band messages, and write back whatever reply it returns.

pub mod catalogue;
pub mod client;
pub mod dispatch;
mod input;
pub mod listen;
pub mod peer;
pub mod prompt;
pub mod registry;
pub mod request_state;
pub mod resource;
pub mod session;
mod shard_state;
pub mod stateless;
mod table;
#[cfg(test)]
pub(crate) mod testing;
pub mod tool;
pub mod typed;
pub mod version;

pub use catalogue::CatalogueUpdate;
pub use client::{ClientError, ClientRequest};
pub use dispatch::{classify, split_frame, DispatchLimits, Dispatcher, Kind};
pub use listen::{Announcement, ListKind};
pub use peer::Peer;
pub use prompt::{
    CompletionFuture, CompletionRef, CompletionRequest, Prompt, PromptFuture, PromptMessage,
    PromptResult, Role,
};
pub use registry::{CacheHints, CacheScope, CatalogueChange, Registry, RegistryBuilder};
pub use resource::{
    Resource, ResourceBody, ResourceContents, ResourceFuture, ResourceRead, ResourceTemplate,
};
pub use session::{LogLevel, SessionRef, SessionState};
pub use tool::{
    Content, Icon, IconTheme, SleepFuture, Tool, ToolAnnotations, ToolContext, ToolError,
    ToolFuture, ToolResult,
};
pub use typed::{IntoToolResult, Structured};
