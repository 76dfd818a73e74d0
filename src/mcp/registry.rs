//! The server's static catalogue: identity, capabilities and tool table.
//!
//! Built once and shared by every shard as `Arc<Registry>`; handlers are
//! `Send + Sync`, the futures they return need not be. Resources, prompts and
//! completions are meant to be further tables beside `tools`.

use crate::mcp::tool::{Tool, ToolContext, ToolError, ToolHandler, ToolResult};
use crate::proto::jsonrpc::Error;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;

/// Name and version reported as `serverInfo`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Implementation {
    name: String,
    version: String,
}

/// An empty JSON object, for capabilities without options and empty results.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Empty {}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListChanged {
    list_changed: bool,
}

/// The `capabilities` object of the `initialize` result.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServerCapabilities {
    // Always present: `ToolContext::log` can emit `notifications/message`.
    // Spec (logging): "Servers that emit log message notifications MUST
    // declare the `logging` capability".
    logging: Empty,
    // Spec (tools): "Servers that support tools MUST declare the `tools`
    // capability". The table is fixed at build time, so no list changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<ListChanged>,
}

/// Prefix making tool cursors distinct from any other list's cursors.
const TOOL_CURSOR_PREFIX: &str = "tools:";

/// Tools in registration order, with lookup by name and pagination.
pub(crate) struct ToolTable {
    tools: Vec<Tool>,
    handlers: Vec<ToolHandler>,
    by_name: HashMap<String, usize>,
    page_size: usize,
}

impl ToolTable {
    pub(crate) fn handler(&self, name: &str) -> Option<&ToolHandler> {
        self.by_name.get(name).and_then(|&i| self.handlers.get(i))
    }

    /// One page of tools and the cursor of the next page, if any.
    ///
    /// Spec (pagination): "Invalid cursors SHOULD result in an error with
    /// code -32602 (Invalid params)."
    pub(crate) fn page(&self, cursor: Option<&str>) -> Result<(&[Tool], Option<String>), Error> {
        let start = match cursor {
            None => 0,
            Some(cursor) => cursor
                .strip_prefix(TOOL_CURSOR_PREFIX)
                .and_then(|n| n.parse::<usize>().ok())
                // We never hand out 0 or an offset past the end.
                .filter(|&n| n > 0 && n < self.tools.len())
                .ok_or(Error::InvalidParams(Cow::Borrowed("Invalid cursor")))?,
        };
        let end = start.saturating_add(self.page_size).min(self.tools.len());
        let next = (end < self.tools.len()).then(|| format!("{TOOL_CURSOR_PREFIX}{end}"));
        Ok((self.tools.get(start..end).unwrap_or_default(), next))
    }
}

/// Everything a server offers; see [`RegistryBuilder`].
pub struct Registry {
    pub(crate) server_info: Implementation,
    pub(crate) instructions: Option<String>,
    pub(crate) capabilities: ServerCapabilities,
    pub(crate) tools: ToolTable,
}

impl Registry {
    /// Starts an empty registry.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder {
            server_info: Implementation {
                name: "ringmcp".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            instructions: None,
            tools: Vec::new(),
            page_size: usize::MAX,
        }
    }

    /// A registry holding only the built-in fixture tools.
    pub fn with_builtin_tools() -> Registry {
        crate::mcp::fixtures::builtin().build()
    }

    /// The registered tools, in listing order.
    pub fn tools(&self) -> &[Tool] {
        &self.tools.tools
    }
}

/// Collects server identity and handlers, then freezes them into a [`Registry`].
///
/// ```
/// use ringmcp::mcp::{Dispatcher, Registry, SessionState, Tool, ToolContext, ToolResult};
/// use serde_json::{json, Value};
/// use std::{rc::Rc, sync::Arc};
///
/// let registry = Registry::builder()
///     .server_info("ringmcp", env!("CARGO_PKG_VERSION"))
///     .tool(
///         Tool::new(
///             "add",
///             "Adds two numbers",
///             json!({"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}),
///         ),
///         |ctx: ToolContext, args: Value| async move {
///             let local = Rc::new(()); // handler futures may be !Send
///             let (a, b) = (args["a"].as_f64().unwrap_or(0.0), args["b"].as_f64().unwrap_or(0.0));
///             ctx.progress(1.0, Some(1.0), None);
///             drop(local);
///             Ok(ToolResult::text((a + b).to_string()))
///         },
///     )
///     .page_size(50)
///     .build();
///
/// // One registry for all shards; one cheap dispatcher clone per shard.
/// let dispatcher = Dispatcher::new(Arc::new(registry));
/// # struct NoPeer;
/// # impl ringmcp::mcp::Peer for NoPeer {
/// #     fn send(&self, _: Vec<u8>, _: Option<&ringmcp::proto::jsonrpc::Id>) {}
/// # }
/// let session = SessionState::new_ref();
/// let reply = futures_lite::future::block_on(dispatcher.handle(
///     session,
///     Rc::new(NoPeer),
///     br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.to_vec(),
/// ));
/// assert_eq!(reply.as_deref(), Some(&br#"{"jsonrpc":"2.0","id":1,"result":{}}"#[..]));
/// ```
pub struct RegistryBuilder {
    server_info: Implementation,
    instructions: Option<String>,
    tools: Vec<(Tool, ToolHandler)>,
    page_size: usize,
}

impl RegistryBuilder {
    /// Sets `serverInfo` (defaults to this crate's name and version).
    pub fn server_info(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.server_info = Implementation {
            name: name.into(),
            version: version.into(),
        };
        self
    }

    /// Sets the optional `instructions` string of the `initialize` result.
    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        self.instructions = Some(instructions.into());
        self
    }

    /// Sets how many items one `tools/list` page holds (at least 1; default: all).
    pub fn page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Registers a tool; a second tool with the same name replaces the first.
    ///
    /// The handler gets the call's [`ToolContext`] and its `arguments`
    /// object (`{}` when absent).
    pub fn tool<F, Fut>(mut self, tool: Tool, handler: F) -> Self
    where
        F: Fn(ToolContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolResult, ToolError>> + 'static,
    {
        let handler: ToolHandler = Box::new(move |ctx, args| Box::pin(handler(ctx, args)));
        // Spec (tools): "Tool names SHOULD be unique within a server."
        if let Some(slot) = self.tools.iter_mut().find(|(t, _)| t.name() == tool.name()) {
            log::warn!("tool {:?} registered twice; keeping the last", tool.name());
            *slot = (tool, handler);
        } else {
            self.tools.push((tool, handler));
        }
        self
    }

    /// Freezes the registry.
    pub fn build(self) -> Registry {
        let (tools, handlers): (Vec<_>, Vec<_>) = self.tools.into_iter().unzip();
        let by_name = tools
            .iter()
            .enumerate()
            .map(|(i, t): (usize, &Tool)| (t.name().to_owned(), i))
            .collect();
        let capabilities = ServerCapabilities {
            logging: Empty {},
            tools: (!tools.is_empty()).then_some(ListChanged {
                list_changed: false,
            }),
        };
        Registry {
            server_info: self.server_info,
            instructions: self.instructions,
            capabilities,
            tools: ToolTable {
                tools,
                handlers,
                by_name,
                page_size: self.page_size,
            },
        }
    }
}
