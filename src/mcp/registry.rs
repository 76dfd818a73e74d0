//! The server's static catalogue: identity, capabilities, and the tables of
//! tools, resources, resource templates, prompts and completions.
//!
//! Built once and shared by every shard as `Arc<Registry>`; handlers are
//! `Send + Sync`, the futures they return need not be.

use crate::mcp::listen::ListKind;
use crate::mcp::prompt::{
    CompletionHandler, CompletionRef, CompletionRequest, Prompt, PromptHandler, PromptResult,
};
use crate::mcp::resource::{
    Resource, ResourceBody, ResourceContents, ResourceHandler, ResourceRead, ResourceTemplate,
};
use crate::mcp::shard_state::{self, ShardStateFactory};
use crate::mcp::table::{upsert, Listed, Table};
use crate::mcp::tool::{call_outcome, Tool, ToolContext, ToolError, ToolHandler, ToolResult};
use crate::mcp::typed::{typed_tool, IntoToolResult};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::any::TypeId;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

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

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResourcesCapability {
    subscribe: bool,
    list_changed: bool,
}

/// The `capabilities` object of the `initialize` result (and of `server/discover`), derived
/// from what is registered.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServerCapabilities {
    // Always present: `ToolContext::log` can emit `notifications/message`.
    // Spec (logging): "Servers that emit log message notifications MUST
    // declare the `logging` capability".
    logging: Empty,
    // Spec (completion): "Servers that support completions **MUST** declare
    // the `completions` capability". Prompts and templates have arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    completions: Option<Empty>,
    // Spec (prompts): "Servers that support prompts **MUST** declare the
    // `prompts` capability".
    #[serde(skip_serializing_if = "Option::is_none")]
    prompts: Option<ListChanged>,
    // Spec (resources): "Servers that support resources **MUST** declare the
    // `resources` capability". Every resource can be subscribed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<ResourcesCapability>,
    // Spec (tools): "Servers that support tools MUST declare the `tools`
    // capability".
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<ListChanged>,
}

/// Whether a cached result may be shared between users (MCP 2026-07-28 caching hints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheScope {
    /// Any client may share the cached result.
    Public,
    /// Only the user that asked may reuse it.
    Private,
}

/// How long, and for whom, a client may reuse a result (MCP 2026-07-28, `ttlMs` and
/// `cacheScope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheHints {
    /// Milliseconds the result stays fresh (0: ask again every time).
    pub ttl_ms: u64,
    /// Who may reuse it.
    pub scope: CacheScope,
}

impl CacheHints {
    /// Not to be kept: 0 ms, private.
    pub const NONE: CacheHints = CacheHints {
        ttl_ms: 0,
        scope: CacheScope::Private,
    };

    /// The result members `"ttlMs":…,"cacheScope":…`.
    pub(crate) fn members(self) -> String {
        let scope = match self.scope {
            CacheScope::Public => "public",
            CacheScope::Private => "private",
        };
        format!(r#""ttlMs":{},"cacheScope":"{scope}""#, self.ttl_ms)
    }
}

/// Everything a server offers; see [`RegistryBuilder`].
pub struct Registry {
    pub(crate) server_info: Implementation,
    pub(crate) instructions: Option<String>,
    pub(crate) capabilities: ServerCapabilities,
    /// The result members of a complete 2026-07-28 result of `server/discover` and the lists.
    pub(crate) catalogue_result_members: String,
    pub(crate) tools: Table<Tool, ToolHandler>,
    pub(crate) resources: Table<Resource, ResourceHandler>,
    pub(crate) templates: Table<ResourceTemplate, ResourceHandler>,
    pub(crate) prompts: Table<Prompt, PromptHandler>,
    pub(crate) completions: HashMap<(CompletionRef, String), CompletionHandler>,
    /// The factories of the state each shard has its own instance of.
    pub(crate) shard_states: Vec<(TypeId, ShardStateFactory)>,
    /// What the builder was told besides the catalogue, to rebuild a changed registry.
    page_size: usize,
    list_changes: bool,
    catalogue_cache: CacheHints,
    read_cache: CacheHints,
}

/// A resource read, resolved: who reads it, with what, and how long its result may be kept.
pub(crate) struct Resolved<'r> {
    pub(crate) handler: &'r ResourceHandler,
    pub(crate) read: ResourceRead,
    pub(crate) cache: CacheHints,
}

/// A change to the tools or prompts being served; see
/// [`ToolContext::change_catalogue`](crate::mcp::ToolContext::change_catalogue).
///
/// ```
/// use ringmcp::{CatalogueChange, Registry, Tool, ToolContext, ToolResult};
///
/// // A tool that unlocks another: every shard serves `advanced` from now on, and clients
/// // that listen for list changes hear of it.
/// let registry = Registry::builder()
///     .list_changes(true)
///     .tool(Tool::named("unlock", "Adds the advanced tool"), |ctx: ToolContext, _| async move {
///         ctx.change_catalogue(CatalogueChange::add_tool(
///             Tool::named("advanced", "Only after unlock"),
///             |_, _| async { Ok(ToolResult::text("advanced")) },
///         ));
///         Ok(ToolResult::text("unlocked"))
///     })
///     .build();
/// # drop(registry);
/// ```
pub struct CatalogueChange(Change);

enum Change {
    AddTool(Tool, ToolHandler),
    RemoveTool(String),
    AddPrompt(Prompt, PromptHandler),
    RemovePrompt(String),
    AddResource(Resource, ResourceHandler),
    RemoveResource(String),
}

impl CatalogueChange {
    /// Adds a tool (or replaces the one with its name).
    pub fn add_tool<F, Fut>(tool: Tool, handler: F) -> Self
    where
        F: Fn(ToolContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolResult, ToolError>> + 'static,
    {
        CatalogueChange(Change::AddTool(tool, tool_handler(handler)))
    }

    /// Adds a typed tool (see [`RegistryBuilder::typed_tool`]).
    pub fn add_typed_tool<A, R, F, Fut>(tool: Tool, handler: F) -> Self
    where
        A: DeserializeOwned + JsonSchema + 'static,
        R: IntoToolResult + 'static,
        F: Fn(ToolContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ToolError>> + 'static,
    {
        let (tool, handler) = typed_tool(tool, handler);
        CatalogueChange(Change::AddTool(tool, handler))
    }

    /// Removes the tool called `name`.
    pub fn remove_tool(name: impl Into<String>) -> Self {
        CatalogueChange(Change::RemoveTool(name.into()))
    }

    /// Adds a prompt (or replaces the one with its name).
    pub fn add_prompt<F, Fut>(prompt: Prompt, handler: F) -> Self
    where
        F: Fn(ToolContext, HashMap<String, String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<PromptResult, ToolError>> + 'static,
    {
        CatalogueChange(Change::AddPrompt(prompt, prompt_handler(handler)))
    }

    /// Removes the prompt called `name`.
    pub fn remove_prompt(name: impl Into<String>) -> Self {
        CatalogueChange(Change::RemovePrompt(name.into()))
    }

    /// Adds a resource whose contents `handler` reads (or replaces the one with its URI).
    pub fn add_resource<F, Fut>(resource: Resource, handler: F) -> Self
    where
        F: Fn(ToolContext, ResourceRead) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, ToolError>> + 'static,
    {
        CatalogueChange(Change::AddResource(resource, resource_handler(handler)))
    }

    /// Removes the resource at `uri`.
    pub fn remove_resource(uri: impl Into<String>) -> Self {
        CatalogueChange(Change::RemoveResource(uri.into()))
    }

    /// The list this change changes.
    pub(crate) fn list(&self) -> ListKind {
        match self.0 {
            Change::AddTool(..) | Change::RemoveTool(_) => ListKind::Tools,
            Change::AddPrompt(..) | Change::RemovePrompt(_) => ListKind::Prompts,
            Change::AddResource(..) | Change::RemoveResource(_) => ListKind::Resources,
        }
    }
}

impl ServerCapabilities {
    /// Whether the tool list may change.
    pub(crate) fn tools_change(&self) -> bool {
        self.tools.as_ref().is_some_and(|t| t.list_changed)
    }

    /// Whether the prompt list may change.
    pub(crate) fn prompts_change(&self) -> bool {
        self.prompts.as_ref().is_some_and(|p| p.list_changed)
    }

    /// Whether the resource list may change.
    pub(crate) fn resources_change(&self) -> bool {
        self.resources.as_ref().is_some_and(|r| r.list_changed)
    }

    /// Whether any list may change.
    pub(crate) fn lists_change(&self) -> bool {
        self.tools_change() || self.prompts_change() || self.resources_change()
    }
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
            resources: Vec::new(),
            templates: Vec::new(),
            prompts: Vec::new(),
            completions: HashMap::new(),
            shard_states: Vec::new(),
            page_size: usize::MAX,
            list_changes: false,
            // The catalogue is fixed once built: a minute is safe to share. Contents may
            // change (resources can be updated), and may be the user's own.
            catalogue_cache: CacheHints {
                ttl_ms: 60_000,
                scope: CacheScope::Public,
            },
            read_cache: CacheHints::NONE,
        }
    }

    /// The registered tools, in listing order.
    pub fn tools(&self) -> &[Tool] {
        self.tools.items()
    }

    /// The registered resources, in listing order.
    pub fn resources(&self) -> &[Resource] {
        self.resources.items()
    }

    /// The registered resource templates, in listing order.
    pub fn resource_templates(&self) -> &[ResourceTemplate] {
        self.templates.items()
    }

    /// The registered prompts, in listing order.
    pub fn prompts(&self) -> &[Prompt] {
        self.prompts.items()
    }

    /// This registry with `change` made, and whether it changed anything.
    pub(crate) fn changed(&self, change: CatalogueChange) -> Option<Registry> {
        let mut builder = RegistryBuilder {
            server_info: self.server_info.clone(),
            instructions: self.instructions.clone(),
            tools: self.tools.entries(),
            resources: self.resources.entries(),
            templates: self.templates.entries(),
            prompts: self.prompts.entries(),
            completions: self.completions.clone(),
            shard_states: self.shard_states.clone(),
            page_size: self.page_size,
            list_changes: self.list_changes,
            catalogue_cache: self.catalogue_cache,
            read_cache: self.read_cache,
        };
        let changed = match change.0 {
            Change::AddTool(tool, handler) => {
                upsert(&mut builder.tools, tool, handler);
                true
            }
            Change::AddPrompt(prompt, handler) => {
                upsert(&mut builder.prompts, prompt, handler);
                true
            }
            Change::AddResource(resource, handler) => {
                upsert(&mut builder.resources, resource, handler);
                true
            }
            Change::RemoveTool(name) => remove(&mut builder.tools, &name),
            Change::RemovePrompt(name) => remove(&mut builder.prompts, &name),
            Change::RemoveResource(uri) => remove(&mut builder.resources, &uri),
        };
        changed.then(|| builder.build())
    }

    /// The tool called `name`, if registered.
    pub(crate) fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.get(name).map(|(tool, _)| tool)
    }

    /// The read handler for `uri`, what it is asked, and the caching hints of its result:
    /// an exact resource first, else the first template that matches.
    pub(crate) fn resolve_resource(&self, uri: &str) -> Option<Resolved<'_>> {
        let read = |variables| ResourceRead {
            uri: uri.to_owned(),
            variables,
        };
        if let Some((resource, handler)) = self.resources.get(uri) {
            return Some(Resolved {
                handler,
                read: read(HashMap::new()),
                cache: resource.cache.unwrap_or(self.read_cache),
            });
        }
        self.templates.iter().find_map(|(template, handler)| {
            Some(Resolved {
                handler,
                read: read(template.matches(uri)?),
                cache: template.cache.unwrap_or(self.read_cache),
            })
        })
    }
}

/// Collects server identity and handlers, then freezes them into a [`Registry`].
///
/// ```
/// use ringmcp::{Registry, Server, Tool, ToolContext, ToolResult};
/// use serde_json::{json, Value};
/// use std::rc::Rc;
///
/// let registry = Registry::builder()
///     .server_info("calculator", "1.0.0")
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
/// assert_eq!(registry.tools()[0].name(), "add");
///
/// // One registry serves every shard.
/// let server = Server::new(registry);
/// # drop(server);
/// ```
pub struct RegistryBuilder {
    server_info: Implementation,
    instructions: Option<String>,
    tools: Vec<(Tool, ToolHandler)>,
    resources: Vec<(Resource, ResourceHandler)>,
    templates: Vec<(ResourceTemplate, ResourceHandler)>,
    prompts: Vec<(Prompt, PromptHandler)>,
    completions: HashMap<(CompletionRef, String), CompletionHandler>,
    shard_states: Vec<(TypeId, ShardStateFactory)>,
    page_size: usize,
    list_changes: bool,
    catalogue_cache: CacheHints,
    read_cache: CacheHints,
}

/// Removes the entry with `key`; returns whether there was one.
fn remove<T: Listed, H>(entries: &mut Vec<(T, H)>, key: &str) -> bool {
    let before = entries.len();
    entries.retain(|(item, _)| item.key() != key);
    entries.len() != before
}

/// Shares a tool handler.
fn tool_handler<F, Fut>(handler: F) -> ToolHandler
where
    F: Fn(ToolContext, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ToolResult, ToolError>> + 'static,
{
    Arc::new(move |ctx, args| {
        let running = handler(ctx, args);
        Box::pin(async move { call_outcome(running.await) })
    })
}

/// Shares a prompt handler.
fn prompt_handler<F, Fut>(handler: F) -> PromptHandler
where
    F: Fn(ToolContext, HashMap<String, String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<PromptResult, ToolError>> + 'static,
{
    Arc::new(move |ctx, args| Box::pin(handler(ctx, args)))
}

/// Shares a resource read handler.
fn resource_handler<F, Fut>(handler: F) -> ResourceHandler
where
    F: Fn(ToolContext, ResourceRead) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<ResourceContents>, ToolError>> + 'static,
{
    Arc::new(move |ctx, read| Box::pin(handler(ctx, read)))
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

    /// Caching hints for `server/discover` and the lists (MCP 2026-07-28; default: 60 s,
    /// public).
    pub fn catalogue_cache(mut self, hints: CacheHints) -> Self {
        self.catalogue_cache = hints;
        self
    }

    /// Declares that the tool, prompt and resource lists change while the server runs
    /// ([`ToolContext::change_catalogue`],
    /// [`Dispatcher::change_catalogue`](crate::mcp::Dispatcher::change_catalogue)): MCP
    /// 2026-07-28 `server/discover` then says `listChanged: true`, and `subscriptions/listen`
    /// streams that ask hear of each change (default: the lists are fixed).
    pub fn list_changes(mut self, changing: bool) -> Self {
        self.list_changes = changing;
        self
    }

    /// Caching hints for `resources/read` results (MCP 2026-07-28; default: 0 ms, private).
    pub fn read_cache(mut self, hints: CacheHints) -> Self {
        self.read_cache = hints;
        self
    }

    /// Sets the optional `instructions` string of the `initialize` result.
    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        self.instructions = Some(instructions.into());
        self
    }

    /// Sets how many items one page of any list holds (at least 1; default: all).
    pub fn page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Registers a tool; a second tool with the same name replaces the first.
    ///
    /// The handler gets the call's [`ToolContext`] and its `arguments`
    /// object (`{}` when absent).
    ///
    /// ```
    /// use ringmcp::{Registry, Tool, ToolContext, ToolError, ToolResult};
    /// use serde_json::{json, Value};
    ///
    /// // Arguments as JSON, with a schema written by hand: for tools made at run time. For a
    /// // fixed tool, typed_tool derives the schema from a Rust type instead.
    /// let registry = Registry::builder()
    ///     .tool(
    ///         Tool::new("shout", "Upper-cases text", json!({
    ///             "type": "object",
    ///             "properties": {"text": {"type": "string"}},
    ///             "required": ["text"],
    ///         })),
    ///         |_ctx: ToolContext, args: Value| async move {
    ///             let Some(text) = args["text"].as_str() else {
    ///                 return Err(ToolError::Failed("text must be a string".into()));
    ///             };
    ///             Ok(ToolResult::text(text.to_uppercase()))
    ///         },
    ///     )
    ///     .build();
    /// assert_eq!(registry.tools()[0].name(), "shout");
    /// ```
    pub fn tool<F, Fut>(mut self, tool: Tool, handler: F) -> Self
    where
        F: Fn(ToolContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ToolResult, ToolError>> + 'static,
    {
        upsert(&mut self.tools, tool, tool_handler(handler));
        self
    }

    /// Registers a tool whose arguments are the Rust type `A`: its `inputSchema` is generated
    /// from `A` (JSON Schema 2020-12, with `schemars`), and each call's arguments are
    /// deserialized into `A` before `handler` runs. Arguments that do not fit never reach
    /// it: the answer names the field (`Invalid arguments: b: invalid type: string "x",
    /// expected f64`), as a tool execution error (`isError: true`, which MCP 2025-11-25 asks
    /// for so the model can correct itself) or as -32602 for clients of 2025-06-18 and
    /// before. The handler returns a [`ToolResult`], or a [`Structured`](crate::Structured)
    /// value whose type's schema becomes the tool's `outputSchema`.
    ///
    /// ```
    /// use ringmcp::{Registry, Tool, ToolContext, ToolResult};
    ///
    /// #[derive(serde::Deserialize, schemars::JsonSchema)]
    /// struct Add {
    ///     /// The first term.
    ///     a: f64,
    ///     /// The second term.
    ///     b: f64,
    /// }
    ///
    /// let registry = Registry::builder()
    ///     .typed_tool(Tool::named("add", "Adds two numbers"), |_ctx: ToolContext, args: Add| async move {
    ///         Ok(ToolResult::text((args.a + args.b).to_string()))
    ///     })
    ///     .build();
    /// # drop(registry);
    /// ```
    pub fn typed_tool<A, R, F, Fut>(mut self, tool: Tool, handler: F) -> Self
    where
        A: DeserializeOwned + JsonSchema + 'static,
        R: IntoToolResult + 'static,
        F: Fn(ToolContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, ToolError>> + 'static,
    {
        let (tool, handler) = typed_tool(tool, handler);
        upsert(&mut self.tools, tool, handler);
        self
    }

    /// Gives every shard its own `T`, made by `make` once per shard on the shard's thread
    /// (and once per [`Dispatcher`](crate::dispatch::Dispatcher)); handlers borrow it with
    /// [`ToolContext::shard_state`]. A second factory for the same type replaces the first.
    ///
    /// ```
    /// use ringmcp::{Registry, Tool, ToolContext, ToolError, ToolResult};
    /// use std::cell::Cell;
    ///
    /// /// Calls served by this shard: no lock, no atomic, no `thread_local!`.
    /// struct Served(Cell<u64>);
    ///
    /// let registry = Registry::builder()
    ///     .shard_state(|| Served(Cell::new(0)))
    ///     .tool(Tool::named("served", "Calls this shard served"), |ctx: ToolContext, _| async move {
    ///         let served = ctx.shard_state::<Served>().ok_or(ToolError::Internal("no state".into()))?;
    ///         served.0.set(served.0.get() + 1);
    ///         Ok(ToolResult::text(served.0.get().to_string()))
    ///     })
    ///     .build();
    /// # drop(registry);
    /// ```
    pub fn shard_state<T: 'static>(mut self, make: impl Fn() -> T + Send + Sync + 'static) -> Self {
        let (type_id, make) = shard_state::factory(make);
        self.shard_states.retain(|(known, _)| *known != type_id);
        self.shard_states.push((type_id, make));
        self
    }

    /// Registers a resource whose contents `handler` produces on each read;
    /// a second resource with the same URI replaces the first.
    ///
    /// ```
    /// use ringmcp::{Registry, Resource, ResourceBody, ResourceContents, ResourceRead, ToolContext};
    ///
    /// let registry = Registry::builder()
    ///     .resource(
    ///         Resource::new("clock://now", "the time").mime_type("text/plain"),
    ///         |_ctx: ToolContext, read: ResourceRead| async move {
    ///             let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    ///             let body = ResourceBody::Text(now.as_secs().to_string());
    ///             Ok(vec![ResourceContents::new(read.uri, body).mime_type("text/plain")])
    ///         },
    ///     )
    ///     .build();
    /// assert_eq!(registry.resources().len(), 1);
    /// ```
    pub fn resource<F, Fut>(mut self, resource: Resource, handler: F) -> Self
    where
        F: Fn(ToolContext, ResourceRead) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, ToolError>> + 'static,
    {
        upsert(&mut self.resources, resource, resource_handler(handler));
        self
    }

    /// Registers a resource with fixed contents (its URI and MIME type plus `body`).
    ///
    /// ```
    /// use ringmcp::{Registry, Resource, ResourceBody};
    ///
    /// let registry = Registry::builder()
    ///     .static_resource(
    ///         Resource::new("docs://readme", "README").mime_type("text/markdown"),
    ///         ResourceBody::Text("# Hello".into()),
    ///     )
    ///     .build();
    /// assert_eq!(registry.resources().len(), 1);
    /// ```
    pub fn static_resource(self, resource: Resource, body: ResourceBody) -> Self {
        let contents = Arc::new(resource.contents(body));
        self.resource(resource, move |_, _| {
            std::future::ready(Ok(vec![ResourceContents::clone(&contents)]))
        })
    }

    /// Registers a resource template; `resources/read` of a URI matching it
    /// (and no plain resource) calls `handler` with the bound variables.
    ///
    /// ```
    /// use ringmcp::{Registry, ResourceBody, ResourceContents, ResourceRead, ResourceTemplate, ToolContext};
    ///
    /// let registry = Registry::builder()
    ///     .resource_template(
    ///         ResourceTemplate::new("users://{id}/profile", "a user's profile"),
    ///         |_ctx: ToolContext, read: ResourceRead| async move {
    ///             let id = read.variables["id"].clone();
    ///             let body = ResourceBody::Text(format!("profile of {id}"));
    ///             Ok(vec![ResourceContents::new(read.uri, body)])
    ///         },
    ///     )
    ///     .build();
    /// assert_eq!(registry.resource_templates().len(), 1);
    /// ```
    pub fn resource_template<F, Fut>(mut self, template: ResourceTemplate, handler: F) -> Self
    where
        F: Fn(ToolContext, ResourceRead) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<ResourceContents>, ToolError>> + 'static,
    {
        upsert(&mut self.templates, template, resource_handler(handler));
        self
    }

    /// Registers a prompt; `handler` gets the context (the same a tool gets: logging,
    /// progress, asking the client) and the string arguments after the required ones were
    /// checked.
    ///
    /// ```
    /// use ringmcp::{Content, Prompt, PromptMessage, PromptResult, Registry, Role, ToolContext};
    /// use std::collections::HashMap;
    ///
    /// let registry = Registry::builder()
    ///     .prompt(
    ///         Prompt::new("review", "Review a diff").argument("diff", "the unified diff", true),
    ///         |_ctx: ToolContext, args: HashMap<String, String>| async move {
    ///             let text = format!("Review this change:\n{}", args["diff"]);
    ///             Ok(PromptResult::new(vec![PromptMessage::new(Role::User, Content::text(text))]))
    ///         },
    ///     )
    ///     .build();
    /// assert_eq!(registry.prompts()[0].name(), "review");
    /// ```
    pub fn prompt<F, Fut>(mut self, prompt: Prompt, handler: F) -> Self
    where
        F: Fn(ToolContext, HashMap<String, String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<PromptResult, ToolError>> + 'static,
    {
        upsert(&mut self.prompts, prompt, prompt_handler(handler));
        self
    }

    /// Registers completion of one prompt argument or template variable;
    /// without one, `completion/complete` offers no values. At most the
    /// first 100 values returned are sent. `handler` gets the same context as a tool (the
    /// client, the session's shard state, logging).
    ///
    /// ```
    /// use ringmcp::{CompletionRef, CompletionRequest, Prompt, PromptResult, Registry, ToolContext};
    ///
    /// let registry = Registry::builder()
    ///     .prompt(Prompt::new("greet", "Greets in a language").argument("lang", "", true), |_, _| async {
    ///         Ok(PromptResult::new(Vec::new()))
    ///     })
    ///     .completion(
    ///         CompletionRef::Prompt("greet".into()),
    ///         "lang",
    ///         |_ctx: ToolContext, request: CompletionRequest| async move {
    ///             let known = ["english", "esperanto", "french"];
    ///             Ok(known.iter().filter(|l| l.starts_with(&request.value)).map(|l| l.to_string()).collect())
    ///         },
    ///     )
    ///     .build();
    /// # drop(registry);
    /// ```
    pub fn completion<F, Fut>(
        mut self,
        reference: CompletionRef,
        argument: impl Into<String>,
        handler: F,
    ) -> Self
    where
        F: Fn(ToolContext, CompletionRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<String>, ToolError>> + 'static,
    {
        let handler: CompletionHandler =
            Arc::new(move |ctx, request| Box::pin(handler(ctx, request)));
        self.completions
            .insert((reference, argument.into()), handler);
        self
    }

    /// Freezes the registry.
    pub fn build(self) -> Registry {
        let page_size = self.page_size;
        let tools = Table::new("tools", self.tools, page_size);
        let resources = Table::new("resources", self.resources, page_size);
        let templates = Table::new("resourceTemplates", self.templates, page_size);
        let prompts = Table::new("prompts", self.prompts, page_size);
        // Lists that may change are declared even while empty: items may come at run time.
        let changing = self.list_changes;
        let lists = ListChanged {
            list_changed: changing,
        };
        let capabilities = ServerCapabilities {
            logging: Empty {},
            completions: (!prompts.is_empty() || !templates.is_empty()).then_some(Empty {}),
            prompts: (changing || !prompts.is_empty()).then(|| lists.clone()),
            resources: (changing || !resources.is_empty() || !templates.is_empty()).then_some(
                ResourcesCapability {
                    subscribe: true,
                    list_changed: changing,
                },
            ),
            tools: (changing || !tools.is_empty()).then_some(lists),
        };
        let complete = r#""resultType":"complete","#;
        Registry {
            server_info: self.server_info,
            instructions: self.instructions,
            capabilities,
            catalogue_result_members: format!("{complete}{}", self.catalogue_cache.members()),
            tools,
            resources,
            templates,
            prompts,
            completions: self.completions,
            shard_states: self.shard_states,
            page_size,
            list_changes: self.list_changes,
            catalogue_cache: self.catalogue_cache,
            read_cache: self.read_cache,
        }
    }
}
