//! Tool definitions, results, errors, and the context a tool handler runs in.

use crate::mcp::catalogue::Catalogue;
use crate::mcp::client::ClientRequest;
use crate::mcp::input::InputRound;
use crate::mcp::listen::{Announcement, ListKind, ListenHub, SessionIndex};
use crate::mcp::peer::Peer;
use crate::mcp::registry::CatalogueChange;
use crate::mcp::registry::Registry;
use crate::mcp::request_state::States;
use crate::mcp::resource::{ResourceContents, ResourceHub};
use crate::mcp::session::{LogLevel, RequestSignal, SessionRef};
use crate::mcp::shard_state::ShardStates;
use crate::mcp::table::Listed;
use crate::proto::jsonrpc::{self, Id};
use futures_lite::future::BoxedLocal;
use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// A tool as listed by `tools/list`.
///
/// Spec (2025-11-25, tools): a tool has a `name`, an optional `title` "for display
/// purposes", a `description`, optional `icons`, an `inputSchema`, an optional
/// `outputSchema` and optional `annotations` describing its behaviour.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    icons: Vec<Icon>,
    input_schema: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<ToolAnnotations>,
    /// Client capabilities the tool cannot run without (not listed).
    #[serde(skip)]
    required_client_capabilities: Vec<&'static str>,
    /// Arguments the client also sends as `Mcp-Param-*` headers (from `inputSchema`).
    #[serde(skip)]
    header_params: Vec<HeaderParam>,
}

/// An argument a 2026-07-28 client mirrors in an `Mcp-Param-{name}` header: a property of
/// `inputSchema` annotated with `x-mcp-header`.
///
/// Spec (2026-07-28, streamable-http): the annotation applies to string, integer and
/// boolean properties reachable from the root through `properties` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderParam {
    /// The header's name after `Mcp-Param-`.
    pub name: String,
    /// The property's path below `arguments`.
    pub path: Vec<String>,
}

/// The `x-mcp-header` properties of `schema`, depth first.
fn header_params(schema: &Value, path: &mut Vec<String>, found: &mut Vec<HeaderParam>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, property) in properties {
        path.push(key.clone());
        let scalar = matches!(
            property.get("type").and_then(Value::as_str),
            Some("string" | "integer" | "boolean")
        );
        match property.get("x-mcp-header").and_then(Value::as_str) {
            Some(name) if scalar => found.push(HeaderParam {
                name: name.to_owned(),
                path: path.clone(),
            }),
            _ => header_params(property, path, found),
        }
        path.pop();
    }
}

impl Tool {
    /// Describes a tool; `input_schema` must be a JSON Schema object.
    ///
    /// Spec (tools): "inputSchema ... MUST be a valid JSON Schema object (not `null`)".
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: Value,
    ) -> Self {
        Tool {
            name: name.into(),
            title: None,
            description: description.into(),
            icons: Vec::new(),
            input_schema: Value::Null,
            output_schema: None,
            annotations: None,
            required_client_capabilities: Vec::new(),
            header_params: Vec::new(),
        }
        .input_schema(input_schema)
    }

    /// Describes a tool that takes any object as its arguments (`inputSchema`
    /// `{"type": "object"}`), for a tool without arguments or one registered with
    /// [`RegistryBuilder::typed_tool`](crate::RegistryBuilder::typed_tool), which puts its
    /// argument type's schema in.
    ///
    /// ```
    /// use ringmcp::Tool;
    /// let ping = Tool::named("ping", "Answers pong");
    /// assert_eq!(ping.name(), "ping");
    /// ```
    pub fn named(name: impl Into<String>, description: impl Into<String>) -> Self {
        Tool::new(name, description, serde_json::json!({"type": "object"}))
    }

    /// Replaces the JSON Schema of the arguments (and the `Mcp-Param-*` headers its
    /// `x-mcp-header` properties name).
    pub(crate) fn input_schema(mut self, schema: Value) -> Self {
        let mut params = Vec::new();
        header_params(&schema, &mut Vec::new(), &mut params);
        self.input_schema = schema;
        self.header_params = params;
        self
    }

    /// A human-readable name for display.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Adds an icon for display.
    pub fn icon(mut self, icon: Icon) -> Self {
        self.icons.push(icon);
        self
    }

    /// Hints about the tool's behaviour (clients treat them as untrusted).
    pub fn annotations(mut self, annotations: ToolAnnotations) -> Self {
        self.annotations = Some(annotations);
        self
    }

    /// The JSON Schema (an object) of the tool's `structuredContent`; every successful
    /// result must then carry one ([`ToolResult::structured`]).
    ///
    /// Spec (2025-11-25, tools): "If an output schema is provided: Servers MUST provide
    /// structured results that conform to this schema."
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    /// Whether successful results must carry `structuredContent`.
    pub(crate) fn has_output_schema(&self) -> bool {
        self.output_schema.is_some()
    }

    /// The arguments a 2026-07-28 client also sends as `Mcp-Param-*` headers.
    pub(crate) fn header_params(&self) -> &[HeaderParam] {
        &self.header_params
    }

    /// Declares a client capability (`"sampling"`, `"elicitation"`, `"roots"`) the tool cannot
    /// run without: an MCP 2026-07-28 call from a client that did not declare it is refused
    /// before the handler runs.
    ///
    /// Spec (2026-07-28, basic/index): "the server MUST return a
    /// MissingRequiredClientCapabilityError (`-32021`) whose `data.requiredCapabilities`
    /// lists the missing capabilities. On HTTP, the response status MUST be `400 Bad
    /// Request`."
    pub fn requires_client_capability(mut self, capability: &'static str) -> Self {
        self.required_client_capabilities.push(capability);
        self
    }

    /// The tool's unique name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Of the capabilities this tool requires, those `declared` (a client's capabilities
    /// object, as JSON text) lacks.
    pub(crate) fn missing_client_capabilities(&self, declared: &str) -> Vec<&'static str> {
        if self.required_client_capabilities.is_empty() {
            return Vec::new();
        }
        let declared: Value = serde_json::from_str(declared).unwrap_or(Value::Null);
        self.required_client_capabilities
            .iter()
            .copied()
            .filter(|capability| !declared.get(capability).is_some_and(Value::is_object))
            .collect()
    }
}

impl Listed for Tool {
    fn key(&self) -> &str {
        &self.name
    }
}

/// An icon a client may show for a tool.
///
/// Spec (2025-11-25, schema `Icon`): `src` (an HTTP(S) or `data:` URI), optional `mimeType`,
/// `sizes` (e.g. `"48x48"`, `"any"`) and `theme` (`light` or `dark`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Icon {
    src: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mime_type: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sizes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    theme: Option<IconTheme>,
}

/// The background an icon is drawn for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IconTheme {
    /// For a light background.
    Light,
    /// For a dark background.
    Dark,
}

impl Icon {
    /// An icon at `src`.
    pub fn new(src: impl Into<String>) -> Self {
        Icon {
            src: src.into(),
            mime_type: None,
            sizes: Vec::new(),
            theme: None,
        }
    }

    /// Its MIME type.
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }

    /// A size it is drawn at (`"48x48"`, `"any"`).
    pub fn size(mut self, size: impl Into<String>) -> Self {
        self.sizes.push(size.into());
        self
    }

    /// The background it is meant for.
    pub fn theme(mut self, theme: IconTheme) -> Self {
        self.theme = Some(theme);
        self
    }
}

/// Hints about a tool's behaviour.
///
/// Spec (2025-11-25, schema `ToolAnnotations`): every field is a hint, and "clients MUST
/// consider tool annotations to be untrusted unless they come from trusted servers".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolAnnotations {
    /// A human-readable title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The tool does not modify its environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    /// The tool may perform destructive updates (meaningful when not read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    /// Calling it again with the same arguments has no further effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    /// The tool reaches an open world of external entities (a search engine, not a memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

/// One content item of a tool result or prompt message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// An image.
    Image {
        /// Base64-encoded image data.
        data: String,
        /// The image's MIME type.
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    /// A sound clip.
    Audio {
        /// Base64-encoded audio data.
        data: String,
        /// The audio's MIME type.
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    /// An embedded resource.
    Resource {
        /// The resource's contents.
        resource: ResourceContents,
    },
}

impl Content {
    /// A text item.
    pub fn text(text: impl Into<String>) -> Self {
        Content::Text { text: text.into() }
    }

    /// An image item; `data` is base64.
    ///
    /// Spec (prompts): "The image data **MUST** be base64-encoded and
    /// include a valid MIME type."
    pub fn image(data: impl Into<String>, mime_type: impl Into<String>) -> Self {
        Content::Image {
            data: data.into(),
            mime_type: mime_type.into(),
        }
    }

    /// An audio item; `data` is base64.
    pub fn audio(data: impl Into<String>, mime_type: impl Into<String>) -> Self {
        Content::Audio {
            data: data.into(),
            mime_type: mime_type.into(),
        }
    }

    /// An embedded resource item.
    pub fn resource(resource: ResourceContents) -> Self {
        Content::Resource { resource }
    }
}

/// The result of `tools/call`: content, optional structured content, and whether the tool
/// itself failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    content: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    structured_content: Option<Map<String, Value>>,
    is_error: bool,
}

impl ToolResult {
    /// A successful result with the given content items.
    pub fn new(content: Vec<Content>) -> Self {
        ToolResult {
            content,
            structured_content: None,
            is_error: false,
        }
    }

    /// A successful result carrying `object` as `structuredContent`, and its JSON text as
    /// the one text item.
    ///
    /// Spec (2025-11-25, tools): "For backwards compatibility, a tool that returns
    /// structured content SHOULD also return the serialized JSON in a TextContent block."
    pub fn structured(object: Map<String, Value>) -> Self {
        // A map of JSON values with string keys always serialises.
        let text = serde_json::to_string(&object).unwrap_or_default();
        ToolResult {
            content: vec![Content::text(text)],
            structured_content: Some(object),
            is_error: false,
        }
    }

    /// Whether this is a success without `structuredContent` (which a tool with an
    /// `outputSchema` must not return).
    pub(crate) fn lacks_structure(&self) -> bool {
        !self.is_error && self.structured_content.is_none()
    }

    /// A successful result holding one text item.
    pub fn text(text: impl Into<String>) -> Self {
        ToolResult::new(vec![Content::text(text)])
    }

    /// A tool execution failure the model can read and react to.
    ///
    /// Spec (tools): "Tool Execution Errors: Reported in tool results with
    /// `isError: true`".
    pub fn error(text: impl Into<String>) -> Self {
        ToolResult {
            content: vec![Content::text(text)],
            structured_content: None,
            is_error: true,
        }
    }
}

/// A handler failure (tool, resource, prompt or completion) that becomes a
/// JSON-RPC error instead of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolError {
    /// The arguments do not fit the handler (-32602).
    InvalidParams(String),
    /// The server failed (-32603).
    Internal(String),
    /// The tool ran and failed: an API it called failed, a value was out of range, a rule
    /// of its domain said no. Answered as a result with `isError: true` and this text, which
    /// the model reads and can act on (from a resource or prompt handler, -32603).
    ///
    /// Spec (2025-11-25, tools): "Tool Execution Errors: Reported in tool results with
    /// `isError: true`: API failures, Input validation errors [...], Business logic errors".
    Failed(String),
    /// No resource has this URI (-32002); carries the URI.
    ResourceNotFound(String),
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::InvalidParams(m) => write!(f, "invalid params: {m}"),
            ToolError::Internal(m) => write!(f, "internal error: {m}"),
            ToolError::Failed(m) => write!(f, "failed: {m}"),
            ToolError::ResourceNotFound(uri) => write!(f, "resource not found: {uri}"),
        }
    }
}

/// Any error a handler meets, with `?`: the tool failed ([`ToolError::Failed`], its text the
/// error's). For that reason `ToolError` is not itself a `std::error::Error` (as with
/// `anyhow::Error`, the blanket conversion would otherwise overlap `From<T> for T`).
impl<E: std::error::Error> From<E> for ToolError {
    fn from(e: E) -> Self {
        ToolError::Failed(e.to_string())
    }
}

/// A tool handler's outcome as `tools/call` answers it: a [`ToolError::Failed`] becomes a
/// result with `isError: true`, other errors stay protocol errors.
pub(crate) fn call_outcome(
    outcome: Result<ToolResult, ToolError>,
) -> Result<ToolResult, ToolError> {
    match outcome {
        Err(ToolError::Failed(why)) => Ok(ToolResult::error(why)),
        other => other,
    }
}

impl From<ToolError> for jsonrpc::Error {
    fn from(e: ToolError) -> Self {
        match e {
            ToolError::InvalidParams(m) => jsonrpc::Error::InvalidParams(Cow::Owned(m)),
            ToolError::Internal(m) | ToolError::Failed(m) => {
                jsonrpc::Error::Internal(Cow::Owned(m))
            }
            ToolError::ResourceNotFound(uri) => jsonrpc::Error::ResourceNotFound(uri),
        }
    }
}

/// What a tool handler returns: a future that may be `!Send`.
pub type ToolFuture = BoxedLocal<Result<ToolResult, ToolError>>;

/// A type-erased handler; `Send + Sync` so one registry serves every shard.
pub(crate) type ToolHandler = Arc<dyn Fn(ToolContext, Value) -> ToolFuture + Send + Sync>;

/// What [`ToolContext::sleep`] returns.
pub type SleepFuture = BoxedLocal<()>;

/// The timer hook a transport installs with
/// [`Dispatcher::with_sleep`](crate::mcp::Dispatcher::with_sleep).
pub(crate) type SleepFn = dyn Fn(Duration) -> SleepFuture;

/// The hook a transport installs with
/// [`Dispatcher::with_broadcast`](crate::mcp::Dispatcher::with_broadcast).
pub(crate) type BroadcastFn = dyn Fn(&Announcement);

/// Per-shard services shared by every handler running on the shard.
#[derive(Clone)]
pub(crate) struct Services {
    pub(crate) hub: Rc<ResourceHub>,
    pub(crate) sleep: Rc<SleepFn>,
    /// 2026-07-28 listen streams on this shard.
    pub(crate) listeners: Rc<ListenHub>,
    /// 2025 sessions on this shard that hear of list changes.
    pub(crate) sessions: Rc<SessionIndex>,
    /// Carries announcements to the other shards.
    pub(crate) broadcast: Rc<BroadcastFn>,
    /// Seals and opens the `requestState` of 2026-07-28 multi-round results.
    pub(crate) states: Rc<States>,
    /// The registry served now.
    pub(crate) catalogue: Rc<Catalogue>,
    /// This shard's instances of the registry's shard states.
    pub(crate) shard_states: Rc<ShardStates>,
}

impl Services {
    /// Tells this shard's subscribers and listen streams, and hands the announcement to the
    /// broadcast hook for the other shards; returns how many were reached here.
    pub(crate) fn announce(&self, announcement: Announcement) -> usize {
        (self.broadcast)(&announcement);
        self.announce_here(&announcement)
    }

    /// Makes a catalogue change (or hands it to the writer shard); each shard that installs
    /// the new version tells its own sessions and listen streams.
    pub(crate) fn change_catalogue(&self, change: CatalogueChange) {
        self.catalogue
            .change(change, &|list| self.list_changed(list));
    }

    /// Serves a version the writer shard sent, unless a newer one is served already.
    pub(crate) fn install_catalogue(&self, version: u64, registry: Arc<Registry>, list: ListKind) {
        self.catalogue
            .install(version, registry, list, &|list| self.list_changed(list));
    }

    fn list_changed(&self, list: ListKind) {
        self.announce_here(&Announcement::ListChanged(list));
    }

    /// Tells this shard's 2025 sessions (those subscribed to the resource, or every indexed
    /// one for a list change) and the listen streams that asked; returns how many were
    /// reached.
    pub(crate) fn announce_here(&self, announcement: &Announcement) -> usize {
        let sessions = match announcement {
            Announcement::ResourceUpdated(uri) => self.hub.notify(uri),
            Announcement::ListChanged(list) => self.sessions.list_changed(*list),
        };
        sessions + self.listeners.announce(announcement)
    }
}

struct CallState {
    request_id: Id,
    progress_token: Option<Id>,
    peer: Rc<dyn Peer>,
    session: SessionRef,
    signal: Rc<RequestSignal>,
    services: Services,
    last_progress: Cell<Option<f64>>,
    /// A 2026-07-28 call's multi-round input; `None` in a 2025 session, whose requests go
    /// to the client at once.
    round: Option<Rc<InputRound>>,
}

/// What a handler (tool, resource read, prompt, completion) can do besides computing its
/// result: report progress, log, wait, ask the client (sampling, elicitation), announce
/// resource changes, check for cancellation, and see the client, the revision it speaks and
/// the shard's own state.
///
/// ```
/// use ringmcp::{LogLevel, Registry, Tool, ToolContext, ToolError, ToolResult};
/// use serde_json::json;
/// use std::time::Duration;
///
/// let registry = Registry::builder()
///     .tool(Tool::named("import", "Imports ten batches"), |ctx: ToolContext, _| async move {
///         for batch in 1..=10 {
///             if ctx.is_cancelled() {
///                 return Err(ToolError::Failed("cancelled".into()));
///             }
///             ctx.sleep(Duration::from_millis(10)).await; // the shard's timer
///             ctx.progress(f64::from(batch), Some(10.0), Some("importing"));
///         }
///         ctx.log(LogLevel::Info, &json!({"imported": 10}));
///         if ctx.client_supports("elicitation") {
///             let answer = ctx.elicit(json!({
///                 "message": "Publish the import?",
///                 "requestedSchema": {"type": "object", "properties": {"publish": {"type": "boolean"}}},
///             })).await?;
///             if answer["content"]["publish"] == true {
///                 ctx.resource_updated("imports://latest");
///             }
///         }
///         Ok(ToolResult::text("imported 10 batches"))
///     })
///     .build();
/// # drop(registry);
/// ```
#[derive(Clone)]
pub struct ToolContext {
    call: Rc<CallState>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProgressParams<'a> {
    progress_token: &'a Id,
    progress: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

#[derive(Serialize)]
struct LogParams<'a, T: ?Sized> {
    level: LogLevel,
    data: &'a T,
}

impl ToolContext {
    pub(crate) fn new(
        request_id: Id,
        progress_token: Option<Id>,
        peer: Rc<dyn Peer>,
        session: SessionRef,
        signal: Rc<RequestSignal>,
        services: Services,
        round: Option<Rc<InputRound>>,
    ) -> Self {
        ToolContext {
            call: Rc::new(CallState {
                request_id,
                progress_token,
                peer,
                session,
                signal,
                services,
                last_progress: Cell::new(None),
                round,
            }),
        }
    }

    /// This shard's `T`, made by the factory given to
    /// [`RegistryBuilder::shard_state`](crate::RegistryBuilder::shard_state); `None` without
    /// one. Every handler on the shard gets the same instance.
    pub fn shard_state<T: 'static>(&self) -> Option<Rc<T>> {
        self.call.services.shard_states.get()
    }

    /// The `clientInfo` the client gave (in `initialize`, or in a 2026-07-28 request's
    /// `_meta`), as JSON: `{"name": …, "version": …}` and what else it sent.
    pub fn client_info(&self) -> Option<Value> {
        let session = self.call.session.borrow();
        serde_json::from_str(session.client_info()?.get()).ok()
    }

    /// Whether the client declared `capability` (`"elicitation"`, `"sampling"`, `"roots"`)
    /// in its capabilities: before asking it with [`elicit`](Self::elicit),
    /// [`create_message`](Self::create_message) or [`list_roots`](Self::list_roots), a tool
    /// can offer another way.
    pub fn client_supports(&self, capability: &str) -> bool {
        let session = self.call.session.borrow();
        session.client_capabilities().is_some_and(|declared| {
            serde_json::from_str::<Map<String, Value>>(declared.get())
                .is_ok_and(|declared| declared.get(capability).is_some_and(Value::is_object))
        })
    }

    /// The MCP revision the request speaks (`"2025-11-25"`, `"2026-07-28"`, …).
    pub fn protocol_version(&self) -> Option<&'static str> {
        self.call.session.borrow().protocol_version()
    }

    /// The id of the `tools/call` request being served.
    pub fn request_id(&self) -> &Id {
        &self.call.request_id
    }

    /// Who the call acts for when authorization is on (`--auth-issuer`): the token's
    /// issuer, subject, client and scopes. `None` without authorization.
    pub fn principal(&self) -> Option<Rc<crate::auth::Principal>> {
        self.call.session.borrow().principal().cloned()
    }

    /// The `progressToken` the client gave, if any.
    pub fn progress_token(&self) -> Option<&Id> {
        self.call.progress_token.as_ref()
    }

    /// Whether the client cancelled this request.
    ///
    /// The dispatcher stops polling a cancelled handler at its next await, so
    /// this is for handlers doing long synchronous stretches.
    pub fn is_cancelled(&self) -> bool {
        self.call.signal.is_cancelled()
    }

    /// Sends `notifications/progress`; returns whether it was sent.
    ///
    /// Nothing is sent when the client gave no `progressToken`, when the
    /// request is cancelled or finished, when `progress` is not finite or
    /// does not exceed the last value sent, or when the transport's queue
    /// to a client that is not reading is full.
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) -> bool {
        let call = &self.call;
        // Spec (progress): "Progress notifications MUST only reference tokens
        // that: Were provided in an active request; Are associated with an
        // in-progress operation".
        let Some(token) = &call.progress_token else {
            return false;
        };
        if call.signal.is_finished() || call.signal.is_cancelled() {
            return false;
        }
        // Spec (progress): "The `progress` value MUST increase with each
        // notification, even if the total is unknown."
        if !progress.is_finite()
            || call
                .last_progress
                .get()
                .is_some_and(|last| progress <= last)
        {
            return false;
        }
        let params = ProgressParams {
            progress_token: token,
            progress,
            total: total.filter(|t| t.is_finite()),
            message,
        };
        let mut out = Vec::new();
        if let Err(e) =
            jsonrpc::write_notification(&mut out, "notifications/progress", Some(&params))
        {
            log::warn!("progress notification not serializable: {e}");
            return false;
        }
        call.last_progress.set(Some(progress));
        call.peer.send(out, Some(&call.request_id))
    }

    /// Sends `notifications/message` with `data` at `level`; returns whether
    /// it was sent (it is dropped below the level set by `logging/setLevel`,
    /// and when the transport's queue to a client that is not reading is full).
    pub fn log<T: Serialize + ?Sized>(&self, level: LogLevel, data: &T) -> bool {
        let call = &self.call;
        let (min, stateless) = match call.session.try_borrow() {
            Ok(session) => (session.log_level(), session.is_stateless()),
            Err(_) => (None, false),
        };
        // Spec (logging): "If no `logging/setLevel` request has been sent from
        // the client, the server MAY decide which messages to send
        // automatically." We send everything until a level is set. Spec (2026-07-28,
        // logging): "The server MUST NOT emit `notifications/message` for a request that
        // does not include this field" (`_meta` logLevel).
        if min.is_none() && stateless {
            return false;
        }
        if min.is_some_and(|min| level < min) || call.signal.is_finished() {
            return false;
        }
        let mut out = Vec::new();
        let params = LogParams { level, data };
        if let Err(e) =
            jsonrpc::write_notification(&mut out, "notifications/message", Some(&params))
        {
            log::warn!("log notification not serializable: {e}");
            return false;
        }
        call.peer.send(out, Some(&call.request_id))
    }

    /// Completes after `duration`, using the timer the transport installed
    /// (without one, at once).
    pub fn sleep(&self, duration: Duration) -> SleepFuture {
        (self.call.services.sleep)(duration)
    }

    /// Asks the transport to end this request's stream now; the client
    /// resumes it and gets the result there (Streamable HTTP, SEP-1699).
    pub fn close_stream(&self) {
        self.call.peer.close_stream(&self.call.request_id);
    }

    /// Sends `notifications/resources/updated` for `uri` to every session
    /// subscribed to it (see [`Dispatcher::resource_updated`](crate::mcp::Dispatcher::resource_updated));
    /// returns how many on this shard were reached.
    pub fn resource_updated(&self, uri: &str) -> usize {
        self.call
            .services
            .announce(Announcement::ResourceUpdated(uri.to_owned()))
    }

    /// Adds or removes a tool or prompt on every shard; listen streams that asked hear of
    /// it (see [`Dispatcher::change_catalogue`](crate::mcp::Dispatcher::change_catalogue)).
    pub fn change_catalogue(&self, change: CatalogueChange) {
        self.call.services.change_catalogue(change);
    }

    /// Asks the client (`sampling/createMessage`, `elicitation/create`, `roots/list`) and
    /// resolves to its answer; the same call serves both protocol revisions.
    ///
    /// In a 2025 session the request goes out at once, with a fresh id unique within the
    /// session, on this call's stream. In a 2026-07-28 request, which may not carry
    /// server-to-client requests, it resolves at once when the client's retry already holds
    /// the answer; otherwise the handler waits, the call ends with an `input_required` result
    /// asking for it, and the handler runs again when the client retries with the answers.
    /// Requests are keyed `input-1`, `input-2`, ... in the order the handler makes them (see
    /// [`ToolContext::request_as`] for a key of your own). Either way, a request needing a
    /// capability the client did not declare fails with
    /// [`ClientError::Unsupported`](crate::mcp::ClientError) without being sent.
    pub fn request(&self, method: &str, params: Value) -> ClientRequest {
        match &self.call.round {
            Some(round) => self.ask(round, round.next_key(), method, params),
            None => self.send(method, params),
        }
    }

    /// [`ToolContext::request`] under the `inputRequests` key `key` (2026-07-28); in a 2025
    /// session the key is not used.
    pub fn request_as(&self, key: &str, method: &str, params: Value) -> ClientRequest {
        match &self.call.round {
            Some(round) => self.ask(round, key.to_owned(), method, params),
            None => self.send(method, params),
        }
    }

    fn ask(
        &self,
        round: &Rc<InputRound>,
        key: String,
        method: &str,
        params: Value,
    ) -> ClientRequest {
        // Parsed per request made (rare), not per call.
        let declared: Option<Value> = self.call.session.try_borrow().ok().and_then(|session| {
            session
                .client_capabilities()
                .and_then(|raw| serde_json::from_str(raw.get()).ok())
        });
        ClientRequest::ask(round, declared.as_ref(), key, method, params)
    }

    fn send(&self, method: &str, params: Value) -> ClientRequest {
        let call = &self.call;
        ClientRequest::send(
            &call.session,
            &call.peer,
            Some(&call.request_id),
            method,
            params,
        )
    }

    /// How many times the client has already answered this call's input requests
    /// (2026-07-28 multi-round results, counted in the verified `requestState`); 0 on a
    /// first call and in a 2025 session.
    pub fn input_rounds(&self) -> u32 {
        self.call.round.as_ref().map_or(0, |round| round.rounds())
    }

    /// `sampling/createMessage`: asks the client's model for a completion.
    pub fn create_message(&self, params: Value) -> ClientRequest {
        self.request("sampling/createMessage", params)
    }

    /// `elicitation/create`: asks the user for input through the client.
    pub fn elicit(&self, params: Value) -> ClientRequest {
        self.request("elicitation/create", params)
    }

    /// `roots/list`: asks for the client's roots.
    pub fn list_roots(&self) -> ClientRequest {
        self.request("roots/list", Value::Object(serde_json::Map::new()))
    }
}
