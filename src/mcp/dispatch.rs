//! Routes JSON-RPC messages to MCP methods for one session.

use crate::auth::PrincipalTag;
use crate::mcp::catalogue::{Catalogue, CatalogueUpdate};
use crate::mcp::client::ClientError;
use crate::mcp::input::InputRound;
use crate::mcp::listen::{Announcement, ListenHub, SessionIndex, SubscriptionFilter};
use crate::mcp::peer::Peer;
use crate::mcp::prompt::{Completion, CompletionRef, CompletionRequest};
use crate::mcp::registry::{CacheHints, CatalogueChange, Empty, Registry};
use crate::mcp::request_state::{Binding, StateError, StateSeal, StateUse, States};
use crate::mcp::resource::{ResourceContents, ResourceHub};
use crate::mcp::session::{LogLevel, RequestSignal, SessionRef, SessionState};
use crate::mcp::shard_state::ShardStates;
use crate::mcp::stateless;
use crate::mcp::table::{Listed, Table};
use crate::mcp::tool::{Services, SleepFuture, ToolContext, ToolError};
use crate::mcp::version;
use crate::metrics::Limit;
use crate::proto::jsonrpc::{
    self, Error, ErrorObject, Id, Item, Message, Notification, Parsed, RawId, Request,
};
use futures_lite::future::{BoxedLocal, FutureExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// What a message is, found without running any handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request; it will get a reply.
    Request {
        /// Whether the method is `initialize`.
        is_initialize: bool,
    },
    /// A notification; no reply.
    Notification,
    /// A response or error response from the client; no reply.
    Response,
    /// A JSON array of messages.
    Batch {
        /// Whether any element gets a reply (a request or an invalid element).
        needs_reply: bool,
    },
    /// Not a valid message; `handle` replies with a JSON-RPC error.
    Invalid,
}

/// Classifies `bytes` cheaply, e.g. for Streamable HTTP to choose between
/// `202 Accepted` and a response body, and to spot `initialize`.
pub fn classify(bytes: &[u8]) -> Kind {
    match jsonrpc::parse(bytes) {
        Parsed::Single(Ok(Message::Request(r))) => Kind::Request {
            is_initialize: r.method == "initialize",
        },
        Parsed::Single(Ok(Message::Notification(_))) => Kind::Notification,
        Parsed::Single(Ok(Message::Response(_) | Message::ErrorResponse(_))) => Kind::Response,
        Parsed::Single(Err(_)) => Kind::Invalid,
        Parsed::Batch(items) => Kind::Batch {
            needs_reply: items
                .iter()
                .any(|i| matches!(i, Ok(Message::Request(_)) | Err(_))),
        },
    }
}

/// Yields each newline-separated message of a WebSocket text frame,
/// skipping blank lines (so a trailing newline is harmless).
pub fn split_frame(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.trim().is_empty())
}

/// The MCP method router of one shard.
///
/// Create one per shard with [`Dispatcher::new`]; clones are cheap and share
/// the shard's resource subscriptions and timer hook, so the type is `!Send`.
#[derive(Clone)]
pub struct Dispatcher {
    services: Services,
    limits: DispatchLimits,
    on_limit: Rc<dyn Fn(Limit)>,
}

/// What one session or one batch may hold; each bound answers with a
/// JSON-RPC error rather than growing without end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchLimits {
    /// Requests of one session running at once (more: -32000).
    pub max_in_flight: usize,
    /// Resources one session may subscribe to (more: -32000).
    pub max_subscriptions: usize,
    /// Messages in one batch (more: -32600, nothing run).
    pub max_batch_items: usize,
    /// Reply bytes one batch may collect; later requests get -32000 without running.
    pub max_batch_reply_bytes: usize,
    /// MCP 2026-07-28 `subscriptions/listen` streams open on one shard (more: -32000).
    pub max_listen_streams: usize,
}

impl DispatchLimits {
    /// The defaults, which the server's flags start from too.
    pub const DEFAULT: DispatchLimits = DispatchLimits {
        max_in_flight: 1_024,
        max_subscriptions: 1_024,
        max_batch_items: 64,
        max_batch_reply_bytes: 4 * 1024 * 1024,
        max_listen_streams: 25_000,
    };
}

impl Default for DispatchLimits {
    fn default() -> Self {
        DispatchLimits::DEFAULT
    }
}

/// A finished response, or the error to answer with instead.
type Reply = Result<Vec<u8>, Error>;

fn ok<T: Serialize + ?Sized>(id: RawId<'_>, result: &T) -> Reply {
    let mut out = Vec::new();
    match jsonrpc::write_result(&mut out, id, result) {
        Ok(()) => Ok(out),
        Err(e) => {
            log::error!("result not serializable: {e}");
            Err(Error::Internal(Cow::Borrowed(
                "Result could not be serialized",
            )))
        }
    }
}

fn error_reply(id: Option<RawId<'_>>, error: &Error) -> Vec<u8> {
    let mut out = Vec::new();
    error.write_response(&mut out, id);
    out
}

fn invalid_params(message: &'static str) -> Error {
    Error::InvalidParams(Cow::Borrowed(message))
}

/// Reads object params into `T`; absent params are an error.
fn required_params<'a, T: Deserialize<'a>>(
    params: Option<&'a RawValue>,
    what: &'static str,
) -> Result<T, Error> {
    optional_params(params, what)?.ok_or(invalid_params(what))
}

/// Reads object params into `T`; `None` when absent. MCP params are objects.
fn optional_params<'a, T: Deserialize<'a>>(
    params: Option<&'a RawValue>,
    what: &'static str,
) -> Result<Option<T>, Error> {
    match params {
        None => Ok(None),
        Some(p) if p.get().starts_with('{') => serde_json::from_str(p.get())
            .map(Some)
            .map_err(|_| invalid_params(what)),
        Some(_) => Err(invalid_params(what)),
    }
}

/// Runs a handler, turning its failures and panics into JSON-RPC errors. `what` names the
/// handler in the log; it is formatted only if the handler panics.
async fn guarded<T>(
    what: std::fmt::Arguments<'_>,
    start: impl FnOnce() -> BoxedLocal<Result<T, ToolError>>,
) -> Result<T, Error> {
    // A panicking handler must not take the shard and its other sessions down.
    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(start)) {
        Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => {
            log::error!("{what} panicked");
            Err(Error::Internal(Cow::Borrowed(
                "Handler failed unexpectedly",
            )))
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitializeParams<'a> {
    #[serde(borrow)]
    protocol_version: Cow<'a, str>,
    #[serde(default, borrow)]
    capabilities: Option<&'a RawValue>,
    #[serde(default, borrow)]
    client_info: Option<&'a RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InitializeResult<'a> {
    protocol_version: &'a str,
    capabilities: &'a crate::mcp::registry::ServerCapabilities,
    server_info: &'a crate::mcp::registry::Implementation,
    #[serde(skip_serializing_if = "Option::is_none")]
    instructions: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiscoverResult<'a> {
    supported_versions: &'a [&'a str],
    capabilities: &'a crate::mcp::registry::ServerCapabilities,
    #[serde(skip_serializing_if = "Option::is_none")]
    instructions: Option<&'a str>,
    #[serde(rename = "_meta")]
    meta: ServerInfoMeta<'a>,
}

#[derive(Serialize)]
struct ServerInfoMeta<'a> {
    #[serde(rename = "io.modelcontextprotocol/serverInfo")]
    server_info: &'a crate::mcp::registry::Implementation,
}

/// Whether `session` is the context of one 2026-07-28 request rather than a session.
fn is_stateless(session: &SessionRef) -> bool {
    session.borrow().is_stateless()
}

#[derive(Deserialize)]
struct ListenParams {
    notifications: SubscriptionFilter,
}

#[derive(Serialize)]
struct ListenResult {
    #[serde(rename = "_meta")]
    meta: SubscriptionMeta,
}

#[derive(Serialize)]
struct SubscriptionMeta {
    #[serde(rename = "io.modelcontextprotocol/subscriptionId")]
    subscription_id: Id,
}

#[derive(Deserialize, Default)]
struct ListParams {
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<&'a RawValue>,
    /// 2026-07-28 retries; `Some(Value::Null)` when the client sent `null` (malformed).
    #[serde(default, deserialize_with = "present")]
    input_responses: Option<Value>,
    #[serde(default)]
    request_state: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestMeta<'a> {
    #[serde(borrow, default)]
    progress_token: Option<&'a RawValue>,
}

/// What a 2026-07-28 call's `requestState` is bound to; digested only when a state is
/// opened or sealed, which most calls never need.
struct BindingSource {
    method: &'static str,
    target: String,
    arguments: Value,
    /// MCP 2026-07-28 (mrtr): servers SHOULD verify "the authenticated principal, rejecting
    /// state presented by a different principal".
    principal: Option<PrincipalTag>,
}

impl BindingSource {
    fn binding(&self) -> Binding {
        Binding::of(self.method, &self.target, &self.arguments, self.principal)
    }
}

/// A field that is present, `null` included (absent stays `None` through `default`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InputRequiredResult {
    input_requests: Map<String, Value>,
    request_state: String,
}

/// A tools/call, prompts/get or resources/read as its handler's run needs it.
struct Invocation<'p> {
    /// What a 2026-07-28 state binds to; `None` in a 2025 session.
    source: Option<BindingSource>,
    meta: Option<&'p RawValue>,
    input_responses: Option<Value>,
    request_state: Option<String>,
}

/// How a handler's run ended, for its method to finish.
enum Ran<T> {
    /// The handler returned this.
    Complete(T),
    /// It waits on input: the `input_required` reply.
    InputRequired(Vec<u8>),
}

/// Polls `work` until it completes (`Some`) or, in a 2026-07-28 call, waits on input the
/// client has not given (`None`; -32602 when it gave it in the wrong shape).
async fn until_input_needed<T>(
    round: Option<&InputRound>,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<Option<T>, Error> {
    let mut work = pin!(work);
    poll_fn(|cx| match work.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result.map(Some)),
        Poll::Pending => match round {
            Some(round) if round.is_blocked() => Poll::Ready(match round.invalid() {
                Some(why) => Err(Error::InvalidParams(Cow::Owned(format!(
                    "Invalid params: {why}"
                )))),
                None => Ok(None),
            }),
            _ => Poll::Pending,
        },
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadParams<'a> {
    #[serde(borrow)]
    uri: Cow<'a, str>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<&'a RawValue>,
    /// As in [`CallParams`].
    #[serde(default, deserialize_with = "present")]
    input_responses: Option<Value>,
    #[serde(default)]
    request_state: Option<String>,
}

/// How a 2026-07-28 result is shaped.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// As its method's results are (caching hints on the catalogue's).
    ByMethod,
    /// An interim `input_required` result: no caching hints.
    InputRequired,
    /// A complete result with these caching hints.
    Cached(CacheHints),
}

#[derive(Deserialize)]
struct UriParams<'a> {
    #[serde(borrow)]
    uri: Cow<'a, str>,
}

#[derive(Serialize)]
struct ReadResult {
    contents: Vec<ResourceContents>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetPromptParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    arguments: Option<HashMap<String, String>>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<&'a RawValue>,
    /// As in [`CallParams`].
    #[serde(default, deserialize_with = "present")]
    input_responses: Option<Value>,
    #[serde(default)]
    request_state: Option<String>,
}

#[derive(Deserialize)]
struct CompleteParams {
    #[serde(rename = "ref")]
    reference: RefParams,
    argument: ArgumentParams,
    #[serde(default)]
    context: Option<ContextParams>,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum RefParams {
    #[serde(rename = "ref/prompt")]
    Prompt { name: String },
    #[serde(rename = "ref/resource")]
    Resource { uri: String },
}

#[derive(Deserialize)]
struct ArgumentParams {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct ContextParams {
    #[serde(default)]
    arguments: HashMap<String, String>,
}

#[derive(Serialize)]
struct CompleteResult {
    completion: Completion,
}

#[derive(Deserialize)]
struct SetLevelParams {
    level: LogLevel,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CancelParams<'a> {
    #[serde(borrow)]
    request_id: &'a RawValue,
}

/// Unregisters an in-flight request however its future ends (reply,
/// cancellation, or the transport dropping it).
struct InFlight {
    session: SessionRef,
    id: Id,
    signal: Rc<RequestSignal>,
    /// How a 2026-07-28 result is shaped, when its handler decides.
    shape: Cell<Shape>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.signal.finish();
        match self.session.try_borrow_mut() {
            Ok(mut session) => session.end_request(&self.id),
            Err(_) => log::warn!("session busy; request {} left registered", self.id),
        }
    }
}

/// How long a `requestState` stays valid unless configured.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(300);

/// Without a transport timer, sleeps end at once.
fn no_timer(_: Duration) -> SleepFuture {
    Box::pin(std::future::ready(()))
}

impl Dispatcher {
    /// A dispatcher serving `registry` on this shard.
    pub fn new(registry: Arc<Registry>) -> Self {
        Dispatcher {
            services: Services {
                shard_states: Rc::new(ShardStates::make(&registry.shard_states)),
                catalogue: Rc::new(Catalogue::new(registry, true, Rc::new(|_| {}))),
                hub: Rc::new(ResourceHub::default()),
                sleep: Rc::new(no_timer),
                listeners: Rc::new(ListenHub::default()),
                sessions: Rc::new(SessionIndex::default()),
                broadcast: Rc::new(|_: &Announcement| {}),
                states: Rc::new(States::new(
                    StateSeal::random(DEFAULT_STATE_TTL)
                        .map_err(|e| log::error!("multi-round results unavailable: {e}"))
                        .ok()
                        .map(Arc::new),
                    0,
                    1,
                    Rc::new(|_, _| Box::pin(std::future::ready(Err(StateError::Replayed)))),
                )),
            },
            limits: DispatchLimits::default(),
            on_limit: Rc::new(|_| {}),
        }
    }

    /// Sets the per-session and per-batch bounds, and the hook told of each
    /// hit (the transport's metrics).
    pub fn with_limits(mut self, limits: DispatchLimits, on_hit: impl Fn(Limit) + 'static) -> Self {
        self.limits = limits;
        self.on_limit = Rc::new(on_hit);
        self
    }

    /// The bounds in force.
    pub fn limits(&self) -> DispatchLimits {
        self.limits
    }

    /// Installs the shard's timer behind [`ToolContext::sleep`], e.g.
    /// `|d| Box::pin(glommio::timer::sleep(d))`; without one, sleeps end at once.
    pub fn with_sleep(mut self, sleep: impl Fn(Duration) -> SleepFuture + 'static) -> Self {
        self.services.sleep = Rc::new(sleep);
        self
    }

    /// The registry being served now (a change installs a new one; this one stays valid).
    #[allow(clippy::redundant_allocation)]
    pub fn registry(&self) -> Rc<Arc<Registry>> {
        self.services.catalogue.current()
    }

    /// Keeps this shard's catalogue in step with the others': `sync` carries each
    /// [`CatalogueUpdate`] (a change to the writer shard, a new version to every other
    /// shard), whose receiver hands it to [`Dispatcher::apply_catalogue_update`]. The writer
    /// makes every change. Without this, the dispatcher is its own writer.
    pub fn with_catalogue_sync(
        mut self,
        writer: bool,
        sync: impl Fn(CatalogueUpdate) + 'static,
    ) -> Self {
        let registry = Arc::clone(&self.registry());
        self.services.catalogue = Rc::new(Catalogue::new(registry, writer, Rc::new(sync)));
        self
    }

    /// Adds or removes a tool or prompt on every shard. MCP 2026-07-28 listen streams that
    /// asked for the list hear of it once each shard serves the new catalogue; requests
    /// already running keep the catalogue they started with.
    pub fn change_catalogue(&self, change: CatalogueChange) {
        self.services.change_catalogue(change);
    }

    /// Takes an update another shard sent.
    pub fn apply_catalogue_update(&self, update: CatalogueUpdate) {
        let services = &self.services;
        match update {
            CatalogueUpdate::Change(change) => services.change_catalogue(*change),
            CatalogueUpdate::Install {
                version,
                registry,
                list,
            } => services.install_catalogue(version, registry, list),
        }
    }

    /// Installs the hook that carries announcements (resource updates, list changes) to the
    /// other shards (the transport's message passing), which deliver them with
    /// [`Dispatcher::announce_on_this_shard`]; without one, they reach this shard only.
    pub fn with_broadcast(mut self, broadcast: impl Fn(&Announcement) + 'static) -> Self {
        self.services.broadcast = Rc::new(broadcast);
        self
    }

    /// Seals the `requestState` of 2026-07-28 multi-round results with `seal` (one per
    /// process, or one key shared by several), as shard `shard` of `shards`; `remote` asks
    /// another shard's ledger to accept a state it sealed (the transport's message passing),
    /// which answers through [`Dispatcher::accept_request_state_here`]. Without this, states
    /// are sealed under a random key of this dispatcher's own.
    pub fn with_request_states(
        mut self,
        seal: Arc<StateSeal>,
        shard: usize,
        shards: usize,
        remote: impl Fn(usize, StateUse) -> BoxedLocal<Result<(), StateError>> + 'static,
    ) -> Self {
        self.services.states = Rc::new(States::new(Some(seal), shard, shards, Rc::new(remote)));
        self
    }

    /// Has `ledger` accept every use of a request state instead of the sealing shard's own
    /// ledger: a ledger every node shares (the shared event store), so a state sealed on one
    /// node and replayed on another is refused too. Call it after
    /// [`Dispatcher::with_request_states`].
    pub fn with_shared_state_ledger(
        self,
        ledger: impl Fn(StateUse) -> BoxedLocal<Result<(), StateError>> + 'static,
    ) -> Self {
        self.services.states.share_ledger(Rc::new(ledger));
        self
    }

    /// Records the use of a request state this shard sealed; refuses a second use.
    pub fn accept_request_state_here(&self, state_use: StateUse) -> Result<(), StateError> {
        self.services.states.accept_here(state_use)
    }

    /// Announces that the resource at `uri` changed: every session
    /// subscribed to it gets `notifications/resources/updated` through its
    /// peer, on this shard at once and on the others through the broadcast
    /// hook. Returns how many sessions on this shard were reached.
    pub fn resource_updated(&self, uri: &str) -> usize {
        self.services
            .announce(Announcement::ResourceUpdated(uri.to_owned()))
    }

    /// Delivers what another shard announced to this shard's subscribers and listen streams
    /// (and broadcasts nothing); returns how many were reached.
    pub fn announce_on_this_shard(&self, announcement: &Announcement) -> usize {
        self.services.announce_here(announcement)
    }

    /// Ends this shard's listen streams (shutdown): each is answered with its completion
    /// result.
    ///
    /// Spec (2026-07-28, subscriptions): the server "SHOULD respond to the original
    /// `subscriptions/listen` request with a completion result before closing the stream".
    pub fn end_listen_streams(&self) {
        self.services.listeners.end_all();
    }

    /// Fills `session` (fresh) with the state of a session another node served, from the
    /// record it left in the shared event store (see [`SessionState::record`]): its
    /// subscriptions are registered again, their updates going through `peer`. False if the
    /// record cannot be read.
    pub fn restore_session(
        &self,
        session: &SessionRef,
        record: &[u8],
        peer: &Rc<dyn Peer>,
    ) -> bool {
        let Some((state, uris)) = SessionState::from_record(record) else {
            return false;
        };
        *session.borrow_mut() = state;
        for uri in uris.iter().take(self.limits.max_subscriptions) {
            if self.registry().resolve_resource(uri).is_some() {
                session.borrow_mut().subscribe(uri, peer);
                self.services.hub.subscribe(uri, session);
            }
        }
        true
    }

    /// Ends `session` for the MCP layer; call it when the transport closes
    /// the session (connection closed, `DELETE`, expiry).
    ///
    /// Its in-flight requests are cancelled (handlers stop at their next
    /// await and get no reply; server-to-client requests they were awaiting
    /// are withdrawn), and its resource subscriptions are dropped together
    /// with the peer kept for them.
    pub fn end_session(&self, session: &SessionRef) {
        let (signals, subscriptions) = match session.try_borrow_mut() {
            Ok(mut state) => state.end(),
            Err(_) => {
                log::warn!("session busy; not ended");
                return;
            }
        };
        // The hub's index goes at once, not at a later sweep: a closed
        // session must not leave its URIs behind.
        for uri in &subscriptions {
            self.services.hub.unsubscribe(uri, session);
        }
        for signal in signals {
            signal.cancel();
        }
    }

    /// Handles one message (or batch) of `session`; resolves to the reply,
    /// or `None` for notifications, client responses and cancelled requests.
    ///
    /// The future owns everything it uses, so a transport can spawn it and
    /// keep reading; requests of one session may run concurrently. A client
    /// response completes the server-to-client request waiting for it.
    pub fn handle(
        &self,
        session: SessionRef,
        peer: Rc<dyn Peer>,
        message: Vec<u8>,
    ) -> impl Future<Output = Option<Vec<u8>>> + 'static {
        let this = self.clone();
        async move {
            match jsonrpc::parse(&message) {
                Parsed::Single(item) => this.item(&session, &peer, item, false).await,
                Parsed::Batch(items) => this.batch(&session, &peer, items).await,
            }
        }
    }

    /// Serves one MCP 2026-07-28 request: no session, its context from `meta` (checked by
    /// the transport), the revision's methods and result shapes. Returns the reply, or `None`
    /// for a notification.
    pub fn handle_stateless(
        &self,
        meta: stateless::RequestMeta,
        peer: Rc<dyn Peer>,
        message: Vec<u8>,
    ) -> impl Future<Output = Option<Vec<u8>>> + 'static {
        let this = self.clone();
        async move {
            let session = SessionState::stateless(meta);
            match jsonrpc::parse(&message) {
                Parsed::Single(item) => this.item(&session, &peer, item, false).await,
                // Spec (2026-07-28, streamable-http): "The body of the HTTP POST MUST be a
                // single JSON-RPC request or notification".
                Parsed::Batch(_) => Some(error_reply(
                    None,
                    &Error::InvalidRequest(Cow::Borrowed(
                        "Invalid Request: 2026-07-28 has no JSON-RPC batches",
                    )),
                )),
            }
        }
    }

    async fn batch(
        &self,
        session: &SessionRef,
        peer: &Rc<dyn Peer>,
        items: Vec<Item<'_>>,
    ) -> Option<Vec<u8>> {
        let allowed = session
            .borrow()
            .protocol_version()
            .is_some_and(version::allows_batches);
        if !allowed {
            return Some(error_reply(
                None,
                &Error::InvalidRequest(Cow::Borrowed(
                    "Invalid Request: JSON-RPC batches are only accepted with protocol version 2025-03-26",
                )),
            ));
        }
        if items.len() > self.limits.max_batch_items {
            (self.on_limit)(Limit::Batch);
            return Some(error_reply(
                None,
                &Error::InvalidRequest(Cow::Owned(format!(
                    "Invalid Request: a batch may hold at most {} messages",
                    self.limits.max_batch_items
                ))),
            ));
        }
        // Spec (JSON-RPC 2.0): "The Server MAY process a batch rpc call as a
        // set of concurrent tasks, processing them in any order"; we go in order.
        let mut out = Vec::new();
        for item in items {
            let reply = match item {
                // Past the reply bound a request is answered without being run: the
                // reply stays bounded and every request still gets its response.
                Ok(Message::Request(request)) if out.len() >= self.limits.max_batch_reply_bytes => {
                    (self.on_limit)(Limit::Batch);
                    Some(error_reply(
                        Some(request.id),
                        &Error::LimitExceeded(Cow::Borrowed(
                            "batch reply limit reached; request not run, send it again alone",
                        )),
                    ))
                }
                item => self.item(session, peer, item, true).await,
            };
            if let Some(reply) = reply {
                out.push(if out.is_empty() { b'[' } else { b',' });
                out.extend_from_slice(&reply);
            }
        }
        // Spec (JSON-RPC 2.0): "If there are no Response objects contained
        // within the Response array as it is to be sent to the client, the
        // server MUST NOT return an empty Array and should return nothing at all."
        if out.is_empty() {
            return None;
        }
        out.push(b']');
        Some(out)
    }

    async fn item(
        &self,
        session: &SessionRef,
        peer: &Rc<dyn Peer>,
        item: Item<'_>,
        in_batch: bool,
    ) -> Option<Vec<u8>> {
        match item {
            Err(invalid) => Some(error_reply(invalid.id, &invalid.error)),
            Ok(Message::Request(request)) => self.request(session, peer, request, in_batch).await,
            Ok(Message::Notification(notification)) => {
                self.notification(session, notification);
                None
            }
            Ok(Message::Response(response)) => {
                on_client_response(session, Some(response.id), Ok(response.result));
                None
            }
            Ok(Message::ErrorResponse(response)) => {
                on_client_response(session, response.id, Err(&response.error));
                None
            }
        }
    }

    async fn request(
        &self,
        session: &SessionRef,
        peer: &Rc<dyn Peer>,
        request: Request<'_>,
        in_batch: bool,
    ) -> Option<Vec<u8>> {
        let id = request.id;
        let method = request.method.as_ref();
        let stateless = is_stateless(session);
        let reply = match method {
            _ if stateless && !stateless::serves(method) => {
                Err(Error::MethodNotFound(method.to_owned()))
            }
            // Spec (2025-03-26 lifecycle): "The initialize request MUST NOT be
            // part of a JSON-RPC batch".
            "initialize" if in_batch => Err(Error::InvalidRequest(Cow::Borrowed(
                "Invalid Request: initialize must not be part of a batch",
            ))),
            "initialize" => self.initialize(session, peer, id, request.params),
            // Spec (ping): the receiver "MUST respond promptly with an empty
            // response", and pings are allowed before initialization.
            "ping" => ok(id, &Empty {}),
            // Spec (lifecycle): "The client SHOULD NOT send requests other
            // than pings before the server has responded to the `initialize`
            // request."
            _ if session.borrow().protocol_version().is_none() => Err(Error::InvalidRequest(
                Cow::Borrowed("Invalid Request: server not initialized; send initialize first"),
            )),
            _ => {
                return self
                    .tracked(session, peer, id, method, request.params)
                    .await
            }
        };
        Some(reply.unwrap_or_else(|e| error_reply(Some(id), &e)))
    }

    /// Runs a post-initialization request registered as in flight, so that
    /// `notifications/cancelled` can stop it.
    async fn tracked(
        &self,
        session: &SessionRef,
        peer: &Rc<dyn Peer>,
        id: RawId<'_>,
        method: &str,
        params: Option<&RawValue>,
    ) -> Option<Vec<u8>> {
        if session.borrow().in_flight_len() >= self.limits.max_in_flight {
            (self.on_limit)(Limit::InFlight);
            return Some(error_reply(
                Some(id),
                &Error::LimitExceeded(Cow::Borrowed(
                    "too many requests in flight for this session; retry when one finishes",
                )),
            ));
        }
        let owned = id.to_id();
        let signal = Rc::new(RequestSignal::default());
        let stateless = is_stateless(session);
        // Spec (basic): "The request ID MUST NOT have been previously used by
        // the requestor within the same session." We can only see reuse
        // among requests still in flight. A 2026-07-28 request's context holds it alone,
        // and the transport cancels it (closing its stream, or a WebSocket's
        // `notifications/cancelled`), so it needs no entry.
        if !stateless
            && !session
                .borrow_mut()
                .begin_request(owned.clone(), signal.clone())
        {
            return Some(error_reply(
                Some(id),
                &Error::InvalidRequest(Cow::Borrowed("Invalid Request: request id already in use")),
            ));
        }
        let guard = InFlight {
            session: session.clone(),
            id: owned,
            signal,
            shape: Cell::new(Shape::ByMethod),
        };
        let registry = self.registry();
        let work = async {
            let reply = match method {
                "server/discover" if stateless => self.discover(id),
                "subscriptions/listen" if stateless => self.listen(peer, id, params).await,
                "tools/list" => list(id, params, &registry.tools),
                "tools/call" => self.tools_call(session, peer, &guard, id, params).await,
                "resources/list" => list(id, params, &registry.resources),
                "resources/templates/list" => list(id, params, &registry.templates),
                "resources/read" => self.resources_read(session, peer, &guard, id, params).await,
                "resources/subscribe" => self.subscription(session, peer, id, params, true),
                "resources/unsubscribe" => self.subscription(session, peer, id, params, false),
                "prompts/list" => list(id, params, &registry.prompts),
                "prompts/get" => self.prompts_get(session, peer, &guard, id, params).await,
                "completion/complete" => self.complete(peer, &guard, id, params).await,
                "logging/setLevel" => set_level(session, id, params),
                _ => Err(Error::MethodNotFound(method.to_owned())),
            };
            let reply = if stateless {
                self.in_stateless_shape(id, method, reply, guard.shape.get())
            } else {
                reply
            };
            Some(reply.unwrap_or_else(|e| error_reply(Some(id), &e)))
        };
        let cancelled = async {
            guard.signal.cancelled().await;
            None
        };
        let reply = work.or(cancelled).await;
        // Spec (cancellation): "Receivers of cancellation notifications
        // SHOULD: Stop processing the cancelled request; Free associated
        // resources; Not send a response for the cancelled request".
        if guard.signal.is_cancelled() {
            log::debug!("request {} cancelled; not replying", guard.id);
            return None;
        }
        reply
    }

    /// `server/discover`.
    ///
    /// Spec (2026-07-28, server/discover): "Servers MUST implement it"; the result carries
    /// `supportedVersions`, `capabilities` and optional `instructions`, and (basic/index) the
    /// server's identity in `_meta["io.modelcontextprotocol/serverInfo"]`.
    fn discover(&self, id: RawId<'_>) -> Reply {
        let registry = self.registry();
        ok(
            id,
            &DiscoverResult {
                supported_versions: &version::ALL,
                capabilities: &registry.capabilities,
                instructions: registry.instructions.as_deref(),
                meta: ServerInfoMeta {
                    server_info: &registry.server_info,
                },
            },
        )
    }

    /// A 2026-07-28 reply: `resultType` on every result, caching hints on those the revision
    /// caches, and its error codes.
    ///
    /// Spec (2026-07-28, basic/index): "The `result` MUST include a `resultType` field".
    ///
    /// Spec (2026-07-28, caching): "Interim results with `resultType: "input_required"` ...
    /// are not cacheable and carry no caching hints."
    fn in_stateless_shape(&self, id: RawId<'_>, method: &str, reply: Reply, shape: Shape) -> Reply {
        let registry = self.registry();
        match reply {
            Ok(mut bytes) => {
                let cached;
                let members = match shape {
                    Shape::InputRequired => r#""resultType":"input_required""#,
                    Shape::Cached(hints) => {
                        cached = format!(r#""resultType":"complete",{}"#, hints.members());
                        cached.as_str()
                    }
                    Shape::ByMethod if stateless::is_cacheable(method) => {
                        registry.catalogue_result_members.as_str()
                    }
                    Shape::ByMethod => r#""resultType":"complete""#,
                };
                jsonrpc::prepend_result_members(&mut bytes, id, members);
                Ok(bytes)
            }
            Err(Error::ResourceNotFound(uri)) => Err(Error::NoSuchResource(uri)),
            Err(e) => Err(e),
        }
    }

    /// `subscriptions/listen`: acknowledges what the server will send, then runs until the
    /// client closes the stream (which drops this future) or the server ends it.
    async fn listen(&self, peer: &Rc<dyn Peer>, id: RawId<'_>, params: Option<&RawValue>) -> Reply {
        let ListenParams { notifications } = required_params(
            params,
            "subscriptions/listen params must have a \"notifications\" object",
        )?;
        let listeners = &self.services.listeners;
        if listeners.len() >= self.limits.max_listen_streams {
            (self.on_limit)(Limit::ListenStreams);
            return Err(Error::LimitExceeded(Cow::Borrowed(
                "listen stream limit reached on this server; try again later",
            )));
        }
        let registration = ListenHub::listen(
            listeners,
            id.get().to_owned(),
            self.agree(notifications),
            peer.clone(),
        );
        registration.ended.cancelled().await;
        ok(
            id,
            &ListenResult {
                meta: SubscriptionMeta {
                    subscription_id: id.to_id(),
                },
            },
        )
    }

    /// The part of `asked` this server honours.
    ///
    /// Spec (2026-07-28, subscriptions): "The `notifications` field in the acknowledgment
    /// reflects the subset the server agreed to honor."
    fn agree(&self, asked: SubscriptionFilter) -> SubscriptionFilter {
        let registry = self.registry();
        let capabilities = &registry.capabilities;
        let mut uris = asked.resource_subscriptions;
        // Spec (resources): "Servers MUST validate all resource URIs".
        uris.retain(|uri| registry.resolve_resource(uri).is_some());
        uris.sort();
        uris.dedup();
        uris.truncate(self.limits.max_subscriptions);
        SubscriptionFilter {
            tools_list_changed: asked.tools_list_changed && capabilities.tools_change(),
            prompts_list_changed: asked.prompts_list_changed && capabilities.prompts_change(),
            resources_list_changed: asked.resources_list_changed && capabilities.resources_change(),
            resource_subscriptions: uris,
        }
    }

    fn initialize(
        &self,
        session: &SessionRef,
        peer: &Rc<dyn Peer>,
        id: RawId<'_>,
        params: Option<&RawValue>,
    ) -> Reply {
        if session.borrow().protocol_version().is_some() {
            return Err(Error::InvalidRequest(Cow::Borrowed(
                "Invalid Request: initialize was already received on this session",
            )));
        }
        let params: InitializeParams<'_> = required_params(
            params,
            "initialize params must be an object with a string \"protocolVersion\"",
        )?;
        let negotiated = version::negotiate(&params.protocol_version);
        let registry = self.registry();
        let reply = ok(
            id,
            &InitializeResult {
                protocol_version: negotiated,
                capabilities: &registry.capabilities,
                server_info: &registry.server_info,
                instructions: registry.instructions.as_deref(),
            },
        )?;
        let mut state = session.borrow_mut();
        state.set_initialized(negotiated, params.client_info, params.capabilities);
        // Only a catalogue that can change needs to reach the session later.
        if registry.capabilities.lists_change() {
            state.set_notifier(peer);
            drop(state);
            self.services.sessions.add(session);
        }
        Ok(reply)
    }

    async fn tools_call(
        &self,
        session: &SessionRef,
        peer: &Rc<dyn Peer>,
        request: &InFlight,
        id: RawId<'_>,
        params: Option<&RawValue>,
    ) -> Reply {
        let call: CallParams<'_> = required_params(
            params,
            "tools/call params must be an object with a string \"name\" and an object \"arguments\"",
        )?;
        let registry = self.registry();
        let Some((tool, handler)) = registry.tools.get(&call.name) else {
            // Spec (tools): protocol errors cover "Unknown tools"; the example
            // is code -32602 with message "Unknown tool: invalid_tool_name".
            return Err(Error::InvalidParams(Cow::Owned(format!(
                "Unknown tool: {}",
                call.name
            ))));
        };
        let args = Value::Object(call.arguments.unwrap_or_default());
        let invocation = Invocation {
            source: is_stateless(session).then(|| BindingSource {
                method: "tools/call",
                target: call.name.clone().into_owned(),
                arguments: args.clone(),
                principal: session.borrow().principal().map(|p| p.tag),
            }),
            meta: call.meta,
            input_responses: call.input_responses,
            request_state: call.request_state,
        };
        let start = |ctx| handler(ctx, args);
        let ran = self
            .run_handler(
                request,
                peer,
                id,
                invocation,
                format_args!("tool {:?}", call.name),
                start,
            )
            .await?;
        let result = match ran {
            Ran::Complete(result) => result,
            Ran::InputRequired(reply) => return Ok(reply),
        };
        // Spec (2025-11-25, tools): with an output schema, "Servers MUST provide structured
        // results that conform to this schema."
        if tool.has_output_schema() && result.lacks_structure() {
            log::error!(
                "tool {:?} has an outputSchema but returned no structuredContent",
                call.name
            );
            return Err(Error::Internal(Cow::Borrowed(
                "the tool returned no structuredContent for its outputSchema",
            )));
        }
        ok(id, &result)
    }

    /// Runs a tool, prompt or resource handler with its context; in a 2026-07-28 call, with
    /// the input round its retry fields open, ending in an `input_required` reply when the
    /// handler waits on input the client has not given.
    async fn run_handler<T>(
        &self,
        request: &InFlight,
        peer: &Rc<dyn Peer>,
        id: RawId<'_>,
        invocation: Invocation<'_>,
        what: std::fmt::Arguments<'_>,
        start: impl FnOnce(ToolContext) -> BoxedLocal<Result<T, ToolError>>,
    ) -> Result<Ran<T>, Error> {
        let Invocation {
            source,
            meta,
            input_responses,
            request_state,
        } = invocation;
        let round = self
            .open_round(source.as_ref(), (input_responses, request_state))
            .await?;
        let ctx = self.context(&request.session, peer, request, meta, round.clone());
        match until_input_needed(round.as_deref(), guarded(what, || start(ctx))).await? {
            Some(value) => Ok(Ran::Complete(value)),
            None => self
                .input_required(id, request, round, source.as_ref())
                .map(Ran::InputRequired),
        }
    }

    /// The context a tool or prompt handler runs in.
    fn context(
        &self,
        session: &SessionRef,
        peer: &Rc<dyn Peer>,
        request: &InFlight,
        meta: Option<&RawValue>,
        round: Option<Rc<InputRound>>,
    ) -> ToolContext {
        // Spec (progress): "Progress tokens MUST be a string or integer value";
        // anything else means the client cannot match progress, so send none.
        let progress_token = meta
            .and_then(|meta| serde_json::from_str::<RequestMeta<'_>>(meta.get()).ok())
            .and_then(|meta| meta.progress_token)
            .and_then(RawId::new)
            .map(RawId::to_id);
        ToolContext::new(
            request.id.clone(),
            progress_token,
            peer.clone(),
            session.clone(),
            request.signal.clone(),
            self.services.clone(),
            round,
        )
    }

    /// The input round of a 2026-07-28 call (`source` is `None` in a 2025 session, which
    /// has no rounds): the answers of its `inputResponses` and, on a retry, of its verified
    /// `requestState`.
    async fn open_round(
        &self,
        source: Option<&BindingSource>,
        (input_responses, request_state): (Option<Value>, Option<String>),
    ) -> Result<Option<Rc<InputRound>>, Error> {
        let Some(source) = source else {
            return Ok(None);
        };
        let (mut answers, rounds) = match request_state.as_deref() {
            None => (Map::new(), 0),
            Some(sealed) => {
                let opened = self.services.states.open(sealed, &source.binding()).await;
                let opened = opened.map_err(|e| {
                    (self.on_limit)(Limit::RequestState);
                    match e {
                        StateError::LedgerFull => Error::LimitExceeded(Cow::Owned(e.to_string())),
                        StateError::LedgerUnreachable => Error::Internal(Cow::Owned(e.to_string())),
                        _ => Error::InvalidParams(Cow::Owned(format!("Invalid params: {e}"))),
                    }
                })?;
                (opened.answers, opened.rounds)
            }
        };
        match input_responses {
            None => {}
            // Spec (2026-07-28, mrtr): "If additional, unexpected parameters are provided
            // ... the server SHOULD ignore" them: the round uses only the keys it asks for.
            Some(Value::Object(given)) => answers.extend(given),
            Some(_) => {
                return Err(invalid_params(
                    "inputResponses must be an object of answers by key",
                ))
            }
        }
        Ok(Some(Rc::new(InputRound::new(answers, rounds))))
    }

    /// Ends a round the handler cannot finish: the requests it waits on, and the answers so
    /// far sealed into the `requestState` the client echoes.
    ///
    /// Spec (2026-07-28, mrtr): "Servers MUST include at least one of `inputRequests` or
    /// `requestState`".
    fn input_required(
        &self,
        id: RawId<'_>,
        request: &InFlight,
        round: Option<Rc<InputRound>>,
        source: Option<&BindingSource>,
    ) -> Reply {
        let (Some(round), Some(source)) = (round, source) else {
            return Err(Error::Internal(Cow::Borrowed("no input round")));
        };
        let (input_requests, answers) = round.finish();
        let request_state = self
            .services
            .states
            .seal(&source.binding(), answers, round.rounds() + 1)
            .map_err(|e| Error::Internal(Cow::Owned(e)))?;
        request.shape.set(Shape::InputRequired);
        ok(
            id,
            &InputRequiredResult {
                input_requests,
                request_state,
            },
        )
    }

    async fn resources_read(
        &self,
        session: &SessionRef,
        peer: &Rc<dyn Peer>,
        request: &InFlight,
        id: RawId<'_>,
        params: Option<&RawValue>,
    ) -> Reply {
        let read: ReadParams<'_> = required_params(
            params,
            "resources/read params must be an object with a string \"uri\"",
        )?;
        // Spec (resources): "Resource not found: `-32002`".
        let registry = self.registry();
        let resolved = registry
            .resolve_resource(&read.uri)
            .ok_or_else(|| Error::ResourceNotFound(read.uri.clone().into_owned()))?;
        let retried = read.input_responses.is_some() || read.request_state.is_some();
        let invocation = Invocation {
            source: is_stateless(session).then(|| BindingSource {
                method: "resources/read",
                target: read.uri.clone().into_owned(),
                arguments: Value::Null,
                principal: session.borrow().principal().map(|p| p.tag),
            }),
            meta: read.meta,
            input_responses: read.input_responses,
            request_state: read.request_state,
        };
        let start = |ctx| (resolved.handler)(ctx, resolved.read);
        let ran = self
            .run_handler(
                request,
                peer,
                id,
                invocation,
                format_args!("resource {:?}", read.uri),
                start,
            )
            .await?;
        let contents = match ran {
            Ran::Complete(contents) => contents,
            Ran::InputRequired(reply) => return Ok(reply),
        };
        // Spec (2026-07-28, caching): "Results produced by retrying a request through the
        // MRTR mechanism ... MUST NOT be cached"; the schema still wants the hints on a
        // complete read, so such a result says 0 ms, private.
        let hints = if retried {
            CacheHints::NONE
        } else {
            resolved.cache
        };
        request.shape.set(Shape::Cached(hints));
        ok(id, &ReadResult { contents })
    }

    /// `resources/subscribe` (`subscribe`) or `resources/unsubscribe`.
    fn subscription(
        &self,
        session: &SessionRef,
        peer: &Rc<dyn Peer>,
        id: RawId<'_>,
        params: Option<&RawValue>,
        subscribe: bool,
    ) -> Reply {
        let UriParams { uri } = required_params(
            params,
            "resources/subscribe and resources/unsubscribe params must be an object with a string \"uri\"",
        )?;
        // Spec (resources): "Servers **MUST** validate all resource URIs".
        if self.registry().resolve_resource(&uri).is_none() {
            return Err(Error::ResourceNotFound(uri.into_owned()));
        }
        let hub = &self.services.hub;
        if subscribe {
            let held = session.borrow().subscription_count();
            if held >= self.limits.max_subscriptions && !session.borrow().is_subscribed(&uri) {
                (self.on_limit)(Limit::Subscriptions);
                return Err(Error::LimitExceeded(Cow::Borrowed(
                    "subscription limit reached for this session; unsubscribe first",
                )));
            }
            session.borrow_mut().subscribe(&uri, peer);
            hub.subscribe(&uri, session);
        } else {
            session.borrow_mut().unsubscribe(&uri);
            hub.unsubscribe(&uri, session);
        }
        ok(id, &Empty {})
    }

    async fn prompts_get(
        &self,
        session: &SessionRef,
        peer: &Rc<dyn Peer>,
        request: &InFlight,
        id: RawId<'_>,
        params: Option<&RawValue>,
    ) -> Reply {
        let get: GetPromptParams<'_> = required_params(
            params,
            "prompts/get params must be an object with a string \"name\" and string \"arguments\"",
        )?;
        // Spec (prompts): "Invalid prompt name: `-32602` (Invalid params)".
        let registry = self.registry();
        let Some((prompt, handler)) = registry.prompts.get(&get.name) else {
            return Err(Error::InvalidParams(Cow::Owned(format!(
                "Unknown prompt: {}",
                get.name
            ))));
        };
        let arguments = get.arguments.unwrap_or_default();
        // Spec (prompts): "Missing required arguments: `-32602` (Invalid params)".
        if let Some(missing) = prompt.missing_argument(&arguments) {
            return Err(Error::InvalidParams(Cow::Owned(format!(
                "Missing required argument: {missing}"
            ))));
        }
        let invocation = Invocation {
            source: is_stateless(session).then(|| BindingSource {
                method: "prompts/get",
                target: get.name.clone().into_owned(),
                arguments: serde_json::to_value(&arguments).unwrap_or_default(),
                principal: session.borrow().principal().map(|p| p.tag),
            }),
            meta: get.meta,
            input_responses: get.input_responses,
            request_state: get.request_state,
        };
        let start = |ctx| handler(ctx, arguments);
        let ran = self
            .run_handler(
                request,
                peer,
                id,
                invocation,
                format_args!("prompt {:?}", get.name),
                start,
            )
            .await?;
        match ran {
            Ran::Complete(result) => ok(id, &result),
            Ran::InputRequired(reply) => Ok(reply),
        }
    }

    async fn complete(
        &self,
        peer: &Rc<dyn Peer>,
        request: &InFlight,
        id: RawId<'_>,
        params: Option<&RawValue>,
    ) -> Reply {
        let params: CompleteParams = required_params(
            params,
            "completion/complete params must be an object with \"ref\" and \"argument\"",
        )?;
        let registry = self.registry();
        // Spec (completion): "Invalid prompt name: `-32602` (Invalid params)".
        // A static resource is a known reference without variables.
        let (reference, known) = match params.reference {
            RefParams::Prompt { name } => {
                let known = registry.prompts.get(&name).is_some();
                (CompletionRef::Prompt(name), known)
            }
            RefParams::Resource { uri } => {
                let known = registry.templates.get(&uri).is_some()
                    || registry.resources.get(&uri).is_some();
                (CompletionRef::Resource(uri), known)
            }
        };
        if !known {
            return Err(invalid_params("completion/complete: unknown reference"));
        }
        let key = (reference, params.argument.name);
        let values = match registry.completions.get(&key) {
            None => Vec::new(),
            Some(handler) => {
                let completion = CompletionRequest {
                    argument: key.1.clone(),
                    value: params.argument.value,
                    context: params.context.map(|c| c.arguments).unwrap_or_default(),
                };
                let ctx = self.context(&request.session, peer, request, None, None);
                guarded(format_args!("completion handler"), || {
                    handler(ctx, completion)
                })
                .await?
            }
        };
        ok(
            id,
            &CompleteResult {
                completion: Completion::from_values(values),
            },
        )
    }

    fn notification(&self, session: &SessionRef, notification: Notification<'_>) {
        match notification.method.as_ref() {
            "notifications/initialized" => {
                let mut session = session.borrow_mut();
                if session.protocol_version().is_some() {
                    session.mark_initialized_notification();
                } else {
                    log::debug!("notifications/initialized before initialize; ignored");
                }
            }
            "notifications/cancelled" => cancel(session, notification.params),
            // Spec (basic): for notifications "The receiver MUST NOT send a response."
            other => log::debug!("ignoring notification {other:?}"),
        }
    }
}

/// One page of any catalogue (`tools/list`, `resources/list`, ...).
fn list<T: Listed, H>(id: RawId<'_>, params: Option<&RawValue>, table: &Table<T, H>) -> Reply {
    let params: ListParams = optional_params(
        params,
        "list params must be an object with an optional string \"cursor\"",
    )?
    .unwrap_or_default();
    ok(id, &table.page(params.cursor.as_deref())?)
}

fn set_level(session: &SessionRef, id: RawId<'_>, params: Option<&RawValue>) -> Reply {
    // Spec (logging): "Invalid log level: `-32602` (Invalid params)".
    let params: SetLevelParams = required_params(
        params,
        "logging/setLevel params must be an object with a valid \"level\"",
    )?;
    session.borrow_mut().set_log_level(params.level);
    // Spec (logging): the flow answers setLevel with an "Empty Result"; from
    // then on `ToolContext::log` drops messages below the level.
    ok(id, &Empty {})
}

/// Completes the server-to-client request a client response answers.
fn on_client_response(
    session: &SessionRef,
    id: Option<RawId<'_>>,
    outcome: Result<&RawValue, &ErrorObject<'_>>,
) {
    let Some(id) = id.map(RawId::to_id) else {
        if let Err(e) = outcome {
            log::info!("client error without id ignored: {} {}", e.code, e.message);
        }
        return;
    };
    let waiter = session.borrow_mut().take_pending(&id);
    let Some(waiter) = waiter else {
        log::info!("client response for unknown request {id} ignored");
        return;
    };
    waiter.resolve(match outcome {
        Ok(result) => serde_json::from_str(result.get())
            .map_err(|e| ClientError::Internal(format!("unreadable client result: {e}"))),
        Err(error) => Err(ClientError::Rejected {
            code: error.code,
            message: error.message.clone().into_owned(),
            data: error
                .data
                .and_then(|data| serde_json::from_str(data.get()).ok()),
        }),
    });
}

fn cancel(session: &SessionRef, params: Option<&RawValue>) {
    // Spec (cancellation): "Receivers MAY ignore cancellation
    // notifications if: The referenced request is unknown; Processing has
    // already completed". Malformed ones are ignored too: no reply exists.
    let Some(id) = params
        .and_then(|p| serde_json::from_str::<CancelParams<'_>>(p.get()).ok())
        .and_then(|p| RawId::new(p.request_id))
        .map(RawId::to_id)
    else {
        log::debug!("malformed notifications/cancelled ignored");
        return;
    };
    // `initialize` is never registered, so it cannot be cancelled. Spec:
    // "The `initialize` request MUST NOT be cancelled by clients".
    let signal = session.borrow().request_signal(&id);
    match signal {
        Some(signal) => signal.cancel(),
        None => log::debug!("cancellation for unknown request {id} ignored"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::prompt::{Prompt, PromptResult};
    use crate::mcp::resource::{Resource, ResourceBody, ResourceTemplate};
    use crate::mcp::testing::{assert_valid_reply, error_code, Harness};
    use crate::mcp::tool::{Tool, ToolError, ToolResult};
    use crate::proto::jsonrpc::{
        INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR,
    };
    use futures_lite::future::{block_on, poll_once};
    use proptest::prelude::*;
    use serde_json::json;
    use std::cell::RefCell;

    #[test]
    fn invalid_json_gets_parse_error_with_null_id() {
        let h = Harness::builtin();
        for input in [
            "{",
            "",
            "nope",
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}x"#,
        ] {
            let r = h.send(input).expect("reply");
            assert_eq!(error_code(&r), PARSE_ERROR);
            assert_eq!(r["id"], Value::Null);
        }
    }

    #[test]
    fn invalid_requests_get_32600() {
        let h = Harness::builtin();
        let r = h
            .send(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#)
            .expect("reply");
        assert_eq!((error_code(&r), &r["id"]), (INVALID_REQUEST, &Value::Null));
        let r = h
            .send(r#"{"jsonrpc":"1.0","id":"q","method":"ping"}"#)
            .expect("reply");
        assert_eq!((error_code(&r), &r["id"]), (INVALID_REQUEST, &json!("q")));
        let r = h.send(r#"{"id":3,"method":"ping"}"#).expect("reply");
        assert_eq!((error_code(&r), &r["id"]), (INVALID_REQUEST, &json!(3)));
        let r = h
            .send(r#"{"jsonrpc":"2.0","id":4,"method":["ping"]}"#)
            .expect("reply");
        assert_eq!((error_code(&r), &r["id"]), (INVALID_REQUEST, &json!(4)));
        let r = h.send("[]").expect("reply");
        assert_eq!((error_code(&r), &r["id"]), (INVALID_REQUEST, &Value::Null));
        let r = h.send("42").expect("reply");
        assert_eq!((error_code(&r), &r["id"]), (INVALID_REQUEST, &Value::Null));
    }

    #[test]
    fn ids_are_echoed_byte_exact() {
        let h = Harness::builtin();
        let reply = h
            .raw(r#"{"jsonrpc":"2.0","id":"a\u0062","method":"ping"}"#)
            .expect("reply");
        assert_eq!(reply, br#"{"jsonrpc":"2.0","id":"a\u0062","result":{}}"#);
        let reply =
            h.raw(r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}"#);
        assert_eq!(
            reply.as_deref(),
            Some(&br#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"result":{}}"#[..])
        );
    }

    #[test]
    fn version_negotiation_through_initialize() {
        for v in version::SUPPORTED
            .into_iter()
            .chain(["1999-01-01", "bogus"])
        {
            let h = Harness::builtin();
            let r = h.init(v);
            let expected = if version::SUPPORTED.contains(&v) {
                v
            } else {
                version::LATEST
            };
            assert_eq!(r["result"]["protocolVersion"], json!(expected));
            assert_eq!(h.session.borrow().protocol_version(), Some(expected));
        }
    }

    #[test]
    fn initialize_requires_protocol_version() {
        let h = Harness::builtin();
        for params in [
            json!(null),
            json!({}),
            json!({"protocolVersion": 1}),
            json!([]),
        ] {
            let r = h.reply(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":params}));
            assert_eq!(error_code(&r), INVALID_PARAMS, "{params}");
        }
        // A failed initialize leaves the session uninitialized.
        assert_eq!(h.session.borrow().protocol_version(), None);
        h.init(version::LATEST);
    }

    #[test]
    fn full_lifecycle_round_trip() {
        let h = Harness::builtin();
        let init = h.init("2025-06-18");
        assert_eq!(
            init,
            json!({"jsonrpc":"2.0","id":0,"result":{
                "protocolVersion":"2025-06-18",
                "capabilities":{"logging":{},"completions":{},"prompts":{"listChanged":true},
                    "resources":{"subscribe":true,"listChanged":true},"tools":{"listChanged":true}},
                "serverInfo":{"name":"ringmcp","version":env!("CARGO_PKG_VERSION")}}})
        );
        {
            let s = h.session.borrow();
            assert!(s.initialized_notification_received());
            let parsed = |raw: Option<&RawValue>| {
                serde_json::from_str::<Value>(raw.expect("sent").get()).expect("JSON")
            };
            assert_eq!(parsed(s.client_info()), json!({"name":"t","version":"1"}));
            assert_eq!(parsed(s.client_capabilities()), json!({}));
        }
        let list = h.reply(json!({"jsonrpc":"2.0","id":"l","method":"tools/list"}));
        assert_eq!(list["id"], json!("l"));
        let tools = list["result"]["tools"].as_array().expect("tools array");
        assert_eq!(tools.len(), 33);
        let echo = tools.iter().find(|t| t["name"] == "echo").expect("echo");
        assert_eq!(echo["inputSchema"]["required"], json!(["message"]));
        assert!(list["result"].get("nextCursor").is_none());

        let call = h.call(2, "echo", json!({"message": "héllo \"world\""}));
        assert_eq!(
            call,
            json!({"jsonrpc":"2.0","id":2,"result":{
                "content":[{"type":"text","text":"héllo \"world\""}],"isError":false}})
        );
        assert_eq!(
            h.reply(json!({"jsonrpc":"2.0","id":3,"method":"ping"}))["result"],
            json!({})
        );
        assert_eq!(h.session.borrow().in_flight_len(), 0);
    }

    #[test]
    fn instructions_and_custom_server_info() {
        let h = Harness::new(
            Registry::builder()
                .server_info("x", "9")
                .instructions("be nice")
                .build(),
        );
        let r = h.init(version::LATEST);
        // No tools registered: the tools capability is not advertised.
        assert_eq!(
            r["result"],
            json!({"protocolVersion":version::LATEST,"capabilities":{"logging":{}},
                "serverInfo":{"name":"x","version":"9"},"instructions":"be nice"})
        );
        let list = h.reply(json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}));
        assert_eq!(list["result"], json!({"tools": []}));
    }

    #[test]
    fn second_initialize_is_invalid_request() {
        let h = Harness::builtin();
        h.init("2025-03-26");
        let r = h.reply(json!({"jsonrpc":"2.0","id":9,"method":"initialize","params":{"protocolVersion":"2025-11-25"}}));
        assert_eq!((error_code(&r), &r["id"]), (INVALID_REQUEST, &json!(9)));
        assert_eq!(h.session.borrow().protocol_version(), Some("2025-03-26"));
    }

    #[test]
    fn requests_before_initialize_are_rejected_but_ping_works() {
        let h = Harness::builtin();
        for method in ["tools/list", "tools/call", "no/such/method"] {
            let r = h.reply(json!({"jsonrpc":"2.0","id":1,"method":method}));
            assert_eq!(error_code(&r), INVALID_REQUEST, "{method}");
            assert!(r["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("not initialized")));
        }
        let r = h.reply(json!({"jsonrpc":"2.0","id":1,"method":"ping"}));
        assert_eq!(r["result"], json!({}));
        // Notifications before initialize are ignored without reply.
        assert_eq!(
            h.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            None
        );
        assert!(!h.session.borrow().initialized_notification_received());
    }

    #[test]
    fn unknown_method_is_32601() {
        let h = Harness::builtin();
        h.init(version::LATEST);
        let r = h.reply(json!({"jsonrpc":"2.0","id":1,"method":"sampling/createMessage"}));
        assert_eq!(error_code(&r), METHOD_NOT_FOUND);
        assert_eq!(
            r["error"]["message"],
            json!("Method not found: sampling/createMessage")
        );
    }

    #[test]
    fn tools_call_param_errors_are_32602() {
        let h = Harness::builtin();
        h.init(version::LATEST);
        let r = h.call(1, "nope", json!({}));
        assert_eq!(error_code(&r), INVALID_PARAMS);
        assert_eq!(r["error"]["message"], json!("Unknown tool: nope"));
        for params in [
            json!([{"name":"echo"}]),
            json!({"arguments":{}}),
            json!({"name":5}),
            json!({"name":"echo","arguments":[1]}),
            json!({"name":"echo","arguments":"x"}),
        ] {
            let r = h.reply(json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":params}));
            assert_eq!(error_code(&r), INVALID_PARAMS, "{params}");
        }
        let r = h.reply(json!({"jsonrpc":"2.0","id":3,"method":"tools/call"}));
        assert_eq!(error_code(&r), INVALID_PARAMS);
        for args in [json!({}), json!({"message": 1}), json!({"message": null})] {
            assert_eq!(error_code(&h.call(4, "echo", args)), INVALID_PARAMS);
        }
        // Absent arguments are an empty object, which echo rejects.
        let r =
            h.reply(json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo"}}));
        assert_eq!(error_code(&r), INVALID_PARAMS);
    }

    fn numbered_tools(n: usize, page_size: usize) -> Registry {
        (0..n)
            .fold(Registry::builder().page_size(page_size), |b, i| {
                b.tool(
                    Tool::new(format!("t{i}"), "numbered", json!({"type":"object"})),
                    |_, _| async { Ok(ToolResult::text("")) },
                )
            })
            .build()
    }

    #[test]
    fn pagination_page_size_one() {
        let h = Harness::new(numbered_tools(3, 1));
        h.init(version::LATEST);
        let mut names = Vec::new();
        let mut cursor: Option<Value> = None;
        loop {
            let params = cursor.take().map_or(json!({}), |c| json!({"cursor": c}));
            let r = h.reply(json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":params}));
            let tools = r["result"]["tools"].as_array().expect("tools");
            assert_eq!(tools.len(), 1);
            names.push(tools[0]["name"].clone());
            match r["result"].get("nextCursor") {
                Some(c) => cursor = Some(c.clone()),
                None => break,
            }
        }
        assert_eq!(names, [json!("t0"), json!("t1"), json!("t2")]);
        for bad in [
            json!("bogus"),
            json!("tools:0"),
            json!("tools:3"),
            json!("tools:-1"),
            json!(7),
        ] {
            let r = h.reply(
                json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":bad}}),
            );
            assert_eq!(error_code(&r), INVALID_PARAMS, "{bad}");
        }
        let r = h.reply(json!({"jsonrpc":"2.0","id":1,"method":"tools/list","params":[]}));
        assert_eq!(error_code(&r), INVALID_PARAMS);
    }

    #[test]
    fn duplicate_tool_names_keep_the_last() {
        let registry = Registry::builder()
            .tool(Tool::new("a", "first", json!({})), |_, _| async {
                Ok(ToolResult::text("1"))
            })
            .tool(Tool::new("a", "second", json!({})), |_, _| async {
                Ok(ToolResult::text("2"))
            })
            .build();
        assert_eq!(registry.tools().len(), 1);
        let h = Harness::new(registry);
        h.init(version::LATEST);
        assert_eq!(
            h.call(1, "a", json!({}))["result"]["content"][0]["text"],
            json!("2")
        );
    }

    fn progress_registry() -> Registry {
        Registry::builder()
            .tool(
                Tool::new("work", "reports progress", json!({"type":"object"})),
                |ctx: ToolContext, _| async move {
                    let local = Rc::new(1); // !Send state across the body is fine
                    let sent = [
                        ctx.progress(1.0, Some(3.0), Some("one")),
                        ctx.progress(1.0, None, None), // not increasing: dropped
                        ctx.progress(f64::NAN, None, None),
                        ctx.progress(2.5, None, None),
                    ];
                    Ok(ToolResult::text(format!("{sent:?}{local}")))
                },
            )
            .build()
    }

    #[test]
    fn progress_is_sent_via_peer_only_with_token() {
        let h = Harness::new(progress_registry());
        h.init(version::LATEST);
        let r = h.reply(json!({"jsonrpc":"2.0","id":"p1","method":"tools/call",
            "params":{"name":"work","arguments":{},"_meta":{"progressToken":"tok"}}}));
        assert_eq!(
            r["result"]["content"][0]["text"],
            json!("[true, false, false, true]1")
        );
        let sent = h.peer.sent.take();
        let related = Id::parse(r#""p1""#);
        assert_eq!(
            sent,
            vec![
                (
                    json!({"jsonrpc":"2.0","method":"notifications/progress",
                    "params":{"progressToken":"tok","progress":1.0,"total":3.0,"message":"one"}}),
                    related.clone()
                ),
                (
                    json!({"jsonrpc":"2.0","method":"notifications/progress",
                    "params":{"progressToken":"tok","progress":2.5}}),
                    related
                ),
            ]
        );
        // Integer token echoed; invalid token types and no token: nothing sent.
        h.reply(json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
            "params":{"name":"work","_meta":{"progressToken":17}}}));
        assert_eq!(
            h.peer.sent.take()[0].0["params"]["progressToken"],
            json!(17)
        );
        for meta in [
            json!({}),
            json!({"progressToken": null}),
            json!({"progressToken": 1.5}),
            json!("x"),
        ] {
            let r = h.reply(json!({"jsonrpc":"2.0","id":3,"method":"tools/call",
                "params":{"name":"work","_meta":meta}}));
            assert_eq!(
                r["result"]["content"][0]["text"],
                json!("[false, false, false, false]1")
            );
        }
        assert!(h.peer.sent.borrow().is_empty());
    }

    #[test]
    fn log_messages_respect_set_level() {
        let registry = Registry::builder()
            .tool(
                Tool::new("log", "logs", json!({"type":"object"})),
                |ctx: ToolContext, _| async move {
                    let sent = [
                        ctx.log(LogLevel::Debug, "d"),
                        ctx.log(LogLevel::Error, &json!({"e": 1})),
                    ];
                    Ok(ToolResult::text(format!("{sent:?}")))
                },
            )
            .build();
        let h = Harness::new(registry);
        h.init(version::LATEST);
        assert_eq!(
            h.call(1, "log", json!({}))["result"]["content"][0]["text"],
            json!("[true, true]")
        );
        assert_eq!(h.peer.sent.take().len(), 2);
        let r = h.reply(json!({"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"warning"}}));
        assert_eq!(r["result"], json!({}));
        assert_eq!(
            h.call(3, "log", json!({}))["result"]["content"][0]["text"],
            json!("[false, true]")
        );
        assert_eq!(
            h.peer.sent.take(),
            vec![(
                json!({"jsonrpc":"2.0","method":"notifications/message",
                "params":{"level":"error","data":{"e":1}}}),
                Id::parse("3")
            )]
        );
        let r = h.reply(
            json!({"jsonrpc":"2.0","id":4,"method":"logging/setLevel","params":{"level":"loud"}}),
        );
        assert_eq!(error_code(&r), INVALID_PARAMS);
    }

    fn pending_registry() -> Registry {
        Registry::builder()
            .tool(
                Tool::new("wait", "never finishes", json!({"type":"object"})),
                |ctx: ToolContext, _| async move {
                    futures_lite::future::pending::<()>().await;
                    Ok(ToolResult::text(format!("{}", ctx.is_cancelled())))
                },
            )
            .build()
    }

    #[test]
    fn cancellation_suppresses_the_reply() {
        let h = Harness::new(pending_registry());
        h.init(version::LATEST);
        block_on(async {
            let mut call = Box::pin(h.future(
                r#"{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"wait"}}"#,
            ));
            assert!(poll_once(&mut call).await.is_none(), "tool is pending");
            assert_eq!(h.session.borrow().in_flight_len(), 1);
            // Same id while in flight is rejected.
            let dup = h
                .future(
                    r#"{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"wait"}}"#,
                )
                .await;
            let dup: Value = serde_json::from_slice(&dup.expect("reply")).expect("json");
            assert_eq!(error_code(&dup), INVALID_REQUEST);
            // Unknown and malformed cancellations are ignored.
            for params in [r#"{"requestId":"other"}"#, r#"{"requestId":null}"#, "{}"] {
                let n = format!(
                    r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{params}}}"#
                );
                assert_eq!(h.future(&n).await, None);
            }
            assert!(poll_once(&mut call).await.is_none(), "still pending");
            let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c","reason":"user"}}"#;
            assert_eq!(h.future(cancel).await, None);
            assert_eq!(call.await, None, "cancelled request gets no reply");
        });
        assert_eq!(h.session.borrow().in_flight_len(), 0);
        // The id is free again afterwards.
        let r = h.reply(json!({"jsonrpc":"2.0","id":"c","method":"ping"}));
        assert_eq!(r["result"], json!({}));
    }

    #[test]
    fn dropping_a_request_future_unregisters_it() {
        let h = Harness::new(pending_registry());
        h.init(version::LATEST);
        let mut call = Box::pin(
            h.future(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"wait"}}"#),
        );
        assert!(block_on(poll_once(&mut call)).is_none());
        assert_eq!(h.session.borrow().in_flight_len(), 1);
        drop(call);
        assert_eq!(h.session.borrow().in_flight_len(), 0);
    }

    #[test]
    fn tool_failures_map_to_results_or_errors() {
        let registry = Registry::builder()
            .tool(Tool::new("soft", "", json!({})), |_, _| async {
                Ok(ToolResult::error("nope"))
            })
            .tool(Tool::new("hard", "", json!({})), |_, _| async {
                Err(ToolError::Internal("db down".into()))
            })
            .tool(Tool::new("bad", "", json!({})), |_, _| async {
                Err(ToolError::InvalidParams("x must be positive".into()))
            })
            .tool(Tool::new("boom", "", json!({})), |_, _| async {
                panic!("tool bug")
            })
            .tool(Tool::new("io", "", json!({})), |_, _| async {
                std::fs::read("/nonexistent/ringmcp")?;
                Ok(ToolResult::text("read"))
            })
            .build();
        let h = Harness::new(registry);
        h.init(version::LATEST);
        assert_eq!(
            h.call(1, "soft", json!({}))["result"],
            json!({"content":[{"type":"text","text":"nope"}],"isError":true})
        );
        let r = h.call(2, "hard", json!({}));
        assert_eq!(
            (error_code(&r), &r["error"]["message"]),
            (INTERNAL_ERROR, &json!("db down"))
        );
        assert_eq!(error_code(&h.call(3, "bad", json!({}))), INVALID_PARAMS);
        assert_eq!(error_code(&h.call(4, "boom", json!({}))), INTERNAL_ERROR);
        // `?` on an I/O error: the tool failed, and the model reads why.
        let r = h.call(5, "io", json!({}));
        assert_eq!(r["result"]["isError"], true, "{r}");
        assert!(r["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|text| text.contains("No such file")));
        assert_eq!(h.session.borrow().in_flight_len(), 0);
    }

    #[test]
    fn a_handler_sees_the_revision_the_client_and_what_it_declared() {
        let registry = Registry::builder()
            .tool(Tool::named("who", ""), |ctx, _| async move {
                Ok(ToolResult::text(format!(
                    "{} {} elicitation={} sampling={}",
                    ctx.protocol_version().unwrap_or("none"),
                    ctx.client_info()
                        .map_or(Value::Null, |info| info["name"].clone()),
                    ctx.client_supports("elicitation"),
                    ctx.client_supports("sampling"),
                )))
            })
            .build();
        let h = Harness::new(registry);
        h.init_with("2025-06-18", json!({"elicitation": {}, "sampling": true}));
        let r = h.call(1, "who", json!({}));
        assert_eq!(
            r["result"]["content"][0]["text"],
            "2025-06-18 \"t\" elicitation=true sampling=false"
        );
    }

    #[test]
    fn a_tool_with_an_output_schema_must_return_structured_content() {
        let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
        let registry = Registry::builder()
            .tool(
                Tool::new("unstructured", "", json!({})).output_schema(schema.clone()),
                |_, _| async { Ok(ToolResult::text("7")) },
            )
            .tool(
                Tool::new("failing", "", json!({})).output_schema(schema.clone()),
                |_, _| async { Ok(ToolResult::error("no n today")) },
            )
            .tool(
                Tool::new("structured", "", json!({})).output_schema(schema),
                |_, _| async {
                    let mut n = Map::new();
                    n.insert("n".into(), json!(7));
                    Ok(ToolResult::structured(n))
                },
            )
            .build();
        let h = Harness::new(registry);
        h.init(version::LATEST);
        // Spec (2025-11-25, tools): "Servers MUST provide structured results that conform to
        // this schema."
        assert_eq!(
            error_code(&h.call(1, "unstructured", json!({}))),
            INTERNAL_ERROR
        );
        // A tool execution error has no result to structure.
        assert_eq!(h.call(2, "failing", json!({}))["result"]["isError"], true);
        assert_eq!(
            h.call(3, "structured", json!({}))["result"]["structuredContent"],
            json!({"n": 7})
        );
    }

    #[test]
    fn notifications_and_client_responses_get_no_reply() {
        let h = Harness::builtin();
        h.init(version::LATEST);
        for message in [
            r#"{"jsonrpc":"2.0","method":"notifications/whatever","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":"s1","error":{"code":-1,"message":"no"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#,
        ] {
            assert_eq!(h.send(message), None, "{message}");
        }
    }

    #[test]
    fn batches_only_with_2025_03_26() {
        let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"}]"#;
        let h = Harness::builtin();
        let r = h.send(batch).expect("reply");
        assert_eq!((error_code(&r), &r["id"]), (INVALID_REQUEST, &Value::Null));
        h.init("2025-06-18");
        assert_eq!(error_code(&h.send(batch).expect("reply")), INVALID_REQUEST);

        let h = Harness::builtin();
        h.init("2025-03-26");
        assert_eq!(
            h.send(batch),
            Some(json!([{"jsonrpc":"2.0","id":1,"result":{}}]))
        );
        let mixed = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"m"}}},
            5, {"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2025-03-26"}},
            {"jsonrpc":"2.0","id":3,"method":"nope"}]"#;
        let r = h.send(mixed).expect("reply");
        assert_eq!(r[0]["result"]["content"][0]["text"], json!("m"));
        assert_eq!(
            (error_code(&r[1]), &r[1]["id"]),
            (INVALID_REQUEST, &Value::Null)
        );
        assert_eq!(
            (error_code(&r[2]), &r[2]["id"]),
            (INVALID_REQUEST, &json!(2))
        );
        assert_eq!(error_code(&r[3]), METHOD_NOT_FOUND);
        assert_eq!(
            h.send(r#"[{"jsonrpc":"2.0","method":"a"},{"jsonrpc":"2.0","id":9,"result":{}}]"#),
            None
        );
        assert_eq!(error_code(&h.send("[]").expect("reply")), INVALID_REQUEST);
    }

    #[test]
    fn classify_kinds() {
        let cases: &[(&str, Kind)] = &[
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#,
                Kind::Request {
                    is_initialize: true,
                },
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
                Kind::Request {
                    is_initialize: false,
                },
            ),
            (
                r#"{"jsonrpc":"2.0","method":"initialize"}"#,
                Kind::Notification,
            ),
            (r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, Kind::Response),
            (
                r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":""}}"#,
                Kind::Response,
            ),
            (
                r#"[{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":1,"result":1}]"#,
                Kind::Batch { needs_reply: false },
            ),
            (
                r#"[{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":1,"method":"m"}]"#,
                Kind::Batch { needs_reply: true },
            ),
            (
                r#"[{"jsonrpc":"2.0","method":"n"},1]"#,
                Kind::Batch { needs_reply: true },
            ),
            ("[]", Kind::Invalid),
            ("{", Kind::Invalid),
            (r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#, Kind::Invalid),
        ];
        for (input, kind) in cases {
            assert_eq!(classify(input.as_bytes()), *kind, "{input}");
        }
    }

    #[test]
    fn split_frame_yields_each_line() {
        let lines: Vec<_> = split_frame("{\"a\":1}\n{\"b\":2}\r\n\n  \n{\"c\":3}\n").collect();
        assert_eq!(lines, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
        assert_eq!(split_frame("").count(), 0);
        assert_eq!(split_frame("\n\n").count(), 0);
        assert_eq!(split_frame("x").collect::<Vec<_>>(), ["x"]);
    }

    fn text_of(reply: &Value) -> &str {
        reply["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no text: {reply}"))
    }

    #[test]
    fn resources_list_templates_and_read() {
        let h = Harness::builtin();
        h.init(version::LATEST);
        let list = h.rpc(1, "resources/list", json!({}));
        let uris: Vec<_> = list["result"]["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| r["uri"].clone())
            .collect();
        assert_eq!(
            uris,
            [
                json!("test://static-text"),
                json!("test://static-binary"),
                json!("test://watched-resource")
            ]
        );
        assert_eq!(
            h.rpc(2, "resources/templates/list", json!({}))["result"],
            json!({"resourceTemplates":[{"uriTemplate":"test://template/{id}/data","name":"template",
                "description":"A resource template with parameter substitution","mimeType":"application/json"}]})
        );
        let read = h.rpc(
            3,
            "resources/read",
            json!({"uri":"test://template/abc/data"}),
        );
        assert_eq!(
            read["result"]["contents"][0]["uri"],
            json!("test://template/abc/data")
        );
        // Spec (resources): -32002 "Resource not found" with the URI as data.
        for uri in ["test://nope", "test://template/1/2/data", ""] {
            let r = h.rpc(4, "resources/read", json!({ "uri": uri }));
            assert_eq!(
                r["error"],
                json!({"code":-32002,"message":"Resource not found","data":{"uri":uri}})
            );
        }
        for params in [json!({}), json!({"uri": 5}), json!(["test://static-text"])] {
            let r = h.rpc(5, "resources/read", params.clone());
            assert_eq!(error_code(&r), INVALID_PARAMS, "{params}");
        }
        let r = h.reply(json!({"jsonrpc":"2.0","id":6,"method":"resources/read"}));
        assert_eq!(error_code(&r), INVALID_PARAMS);
    }

    #[test]
    fn resource_handlers_can_fail_or_panic() {
        let registry = Registry::builder()
            .resource_template(
                ResourceTemplate::new("db://{table}", "rows"),
                |_, read: crate::mcp::ResourceRead| async move {
                    match read.variables.get("table").map(String::as_str) {
                        Some("users") => Ok(vec![ResourceContents::new(
                            read.uri,
                            ResourceBody::Text("[]".into()),
                        )]),
                        Some("boom") => panic!("handler bug"),
                        Some("down") => Err(ToolError::Internal("db down".into())),
                        _ => Err(ToolError::ResourceNotFound(read.uri)),
                    }
                },
            )
            .build();
        let h = Harness::new(registry);
        h.init(version::LATEST);
        assert_eq!(
            h.rpc(1, "resources/read", json!({"uri":"db://users"}))["result"],
            json!({"contents":[{"uri":"db://users","text":"[]"}]})
        );
        let r = h.rpc(2, "resources/read", json!({"uri":"db://ghosts"}));
        assert_eq!(r["error"]["data"], json!({"uri":"db://ghosts"}));
        assert_eq!(error_code(&r), jsonrpc::RESOURCE_NOT_FOUND);
        for (id, uri) in [(3, "db://boom"), (4, "db://down")] {
            let r = h.rpc(id, "resources/read", json!({ "uri": uri }));
            assert_eq!(error_code(&r), INTERNAL_ERROR, "{uri}");
        }
        assert_eq!(h.session.borrow().in_flight_len(), 0);
    }

    fn three_of_everything() -> Registry {
        (0..3)
            .fold(Registry::builder().page_size(1), |b, i| {
                b.tool(
                    Tool::new(format!("t{i}"), "numbered", json!({"type":"object"})),
                    |_, _| async { Ok(ToolResult::text("")) },
                )
                .static_resource(
                    Resource::new(format!("r://{i}"), format!("r{i}")),
                    ResourceBody::Text(String::new()),
                )
                .resource_template(
                    ResourceTemplate::new(format!("t{i}://{{x}}"), format!("t{i}")),
                    |_, _| async { Ok(Vec::new()) },
                )
                .prompt(Prompt::new(format!("p{i}"), "numbered"), |_, _| async {
                    Ok(PromptResult::new(Vec::new()))
                })
            })
            .build()
    }

    #[test]
    fn every_list_paginates_with_page_size_one() {
        let h = Harness::new(three_of_everything());
        h.init(version::LATEST);
        for (method, key, field, prefix) in [
            ("tools/list", "tools", "name", "t"),
            ("resources/list", "resources", "uri", "r://"),
            (
                "resources/templates/list",
                "resourceTemplates",
                "uriTemplate",
                "t",
            ),
            ("prompts/list", "prompts", "name", "p"),
        ] {
            let mut seen = Vec::new();
            let mut cursor: Option<Value> = None;
            loop {
                let params = cursor.take().map_or(json!({}), |c| json!({ "cursor": c }));
                let r = h.rpc(1, method, params);
                let items = r["result"][key].as_array().expect("items");
                assert_eq!(items.len(), 1, "{method}");
                seen.push(items[0][field].as_str().expect("field").to_owned());
                match r["result"].get("nextCursor") {
                    Some(c) => cursor = Some(c.clone()),
                    None => break,
                }
            }
            assert_eq!(seen.len(), 3, "{method}");
            assert!(
                seen.iter().all(|s| s.starts_with(prefix)),
                "{method}: {seen:?}"
            );
            // Another list's cursor, a stale offset or garbage are rejected.
            for bad in [
                json!("bogus"),
                json!(format!("{key}:3")),
                json!(format!("{key}:0")),
                json!(1),
            ] {
                let r = h.rpc(2, method, json!({ "cursor": bad }));
                assert_eq!(error_code(&r), INVALID_PARAMS, "{method} {bad}");
            }
            let other = if key == "tools" {
                "prompts:1"
            } else {
                "tools:1"
            };
            assert_eq!(
                error_code(&h.rpc(3, method, json!({ "cursor": other }))),
                INVALID_PARAMS
            );
        }
    }

    #[test]
    fn ending_a_session_removes_its_subscriptions_from_the_hub_at_once() {
        let a = Harness::builtin();
        a.init(version::LATEST);
        for i in 0..100 {
            let uri = json!({"uri": format!("test://template/{i}/data")});
            assert_eq!(a.rpc(i, "resources/subscribe", uri)["result"], json!({}));
        }
        assert_eq!(a.dispatcher.services.hub.len(), 100);
        a.dispatcher.end_session(&a.session);
        assert_eq!(a.dispatcher.services.hub.len(), 0);
    }

    #[test]
    fn subscriptions_reach_only_subscribed_sessions_once() {
        let a = Harness::builtin();
        let b = Harness::on(a.dispatcher.clone());
        let other_shard = Harness::builtin();
        for h in [&a, &b, &other_shard] {
            h.init(version::LATEST);
        }
        let watched = json!({"uri":"test://watched-resource"});
        for h in [&a, &b, &other_shard] {
            assert_eq!(
                h.rpc(1, "resources/subscribe", watched.clone())["result"],
                json!({})
            );
        }
        // Subscribing twice still yields one notification.
        assert_eq!(
            a.rpc(2, "resources/subscribe", watched.clone())["result"],
            json!({})
        );
        assert_eq!(
            b.rpc(3, "resources/unsubscribe", watched.clone())["result"],
            json!({})
        );
        assert!(a.session.borrow().is_subscribed("test://watched-resource"));
        assert!(!b.session.borrow().is_subscribed("test://watched-resource"));

        assert_eq!(a.dispatcher.resource_updated("test://watched-resource"), 1);
        let expected = json!({"jsonrpc":"2.0","method":"notifications/resources/updated",
            "params":{"uri":"test://watched-resource"}});
        assert_eq!(a.peer.sent.take(), vec![(expected.clone(), None)]);
        assert!(b.peer.sent.borrow().is_empty());
        assert!(
            other_shard.peer.sent.borrow().is_empty(),
            "other dispatcher, other shard"
        );
        assert_eq!(a.dispatcher.resource_updated("test://static-text"), 0);

        // A tool in session b announces a change; a hears it.
        let r = b.call(4, "touch_resource", watched.clone());
        assert_eq!(
            text_of(&r),
            "notified 1 subscriber(s) on this shard; other shards notify theirs"
        );
        assert_eq!(a.peer.messages(), vec![expected]);
        assert!(b.peer.sent.borrow().is_empty());

        // Template-matched URIs can be subscribed; unknown ones cannot.
        let r = a.rpc(
            5,
            "resources/subscribe",
            json!({"uri":"test://template/7/data"}),
        );
        assert_eq!(r["result"], json!({}));
        for method in ["resources/subscribe", "resources/unsubscribe"] {
            let r = a.rpc(6, method, json!({"uri":"test://nope"}));
            assert_eq!(
                r["error"],
                json!({"code":-32002,"message":"Resource not found","data":{"uri":"test://nope"}})
            );
            assert_eq!(error_code(&a.rpc(7, method, json!({}))), INVALID_PARAMS);
        }
        // A closed session is dropped, not notified.
        let dispatcher = a.dispatcher.clone();
        drop(a);
        assert_eq!(dispatcher.resource_updated("test://watched-resource"), 0);
    }

    #[test]
    fn resource_updates_reach_other_shards_through_the_broadcast_hook() {
        let announced = Rc::new(RefCell::new(Vec::<Announcement>::new()));
        let log = Rc::clone(&announced);
        let here = Harness::on(
            Dispatcher::new(Arc::new(
                crate::fixtures::builtin(std::time::Duration::ZERO).build(),
            ))
            .with_broadcast(move |a| log.borrow_mut().push(a.clone())),
        );
        let there = Harness::builtin();
        for h in [&here, &there] {
            h.init(version::LATEST);
        }
        let watched = json!({"uri":"test://watched-resource"});
        there.rpc(1, "resources/subscribe", watched.clone());
        here.call(2, "touch_resource", watched);
        let update = Announcement::ResourceUpdated("test://watched-resource".into());
        assert_eq!(*announced.borrow(), std::slice::from_ref(&update));
        // What the transport does with an announcement on the receiving shard.
        for announcement in announced.borrow().iter() {
            assert_eq!(there.dispatcher.announce_on_this_shard(announcement), 1);
        }
        assert_eq!(
            there.peer.messages(),
            vec![
                json!({"jsonrpc":"2.0","method":"notifications/resources/updated",
                "params":{"uri":"test://watched-resource"}})
            ]
        );
        // Delivering an announcement does not announce it again.
        here.dispatcher.announce_on_this_shard(&update);
        assert_eq!(announced.borrow().len(), 1);
    }

    #[test]
    fn prompts_get_validates_arguments() {
        let h = Harness::builtin();
        h.init(version::LATEST);
        let r = h.rpc(
            1,
            "prompts/get",
            json!({"name":"test_prompt_with_arguments","arguments":{"arg1":"a","arg2":"b"}}),
        );
        assert_eq!(
            r["result"]["messages"][0]["content"]["text"],
            json!("Prompt with arguments: arg1='a', arg2='b'")
        );
        let r = h.rpc(
            2,
            "prompts/get",
            json!({"name":"test_prompt_with_arguments","arguments":{"arg1":"a"}}),
        );
        assert_eq!(error_code(&r), INVALID_PARAMS);
        assert_eq!(
            r["error"]["message"],
            json!("Missing required argument: arg2")
        );
        let r = h.rpc(
            3,
            "prompts/get",
            json!({"name":"test_prompt_with_arguments"}),
        );
        assert_eq!(error_code(&r), INVALID_PARAMS);
        let r = h.rpc(4, "prompts/get", json!({"name":"nope"}));
        assert_eq!(
            (error_code(&r), &r["error"]["message"]),
            (INVALID_PARAMS, &json!("Unknown prompt: nope"))
        );
        for params in [
            json!({}),
            json!({"name": 1}),
            json!({"name":"test_simple_prompt","arguments":{"x": 1}}),
            json!({"name":"test_simple_prompt","arguments":[]}),
        ] {
            assert_eq!(
                error_code(&h.rpc(5, "prompts/get", params.clone())),
                INVALID_PARAMS,
                "{params}"
            );
        }
        // Unknown extra arguments are ignored.
        let r = h.rpc(
            6,
            "prompts/get",
            json!({"name":"test_simple_prompt","arguments":{"extra":"x"}}),
        );
        assert!(r["result"]["messages"].is_array());
    }

    #[test]
    fn completion_defaults_handlers_and_errors() {
        let registry = Registry::builder()
            .prompt(
                Prompt::new("lang", "Pick a language").argument("name", "Language", true),
                |_, _| async { Ok(PromptResult::new(Vec::new())) },
            )
            .resource_template(
                ResourceTemplate::new("file:///{path}", "files"),
                |_, _| async { Ok(Vec::new()) },
            )
            .completion(
                CompletionRef::Prompt("lang".into()),
                "name",
                |_ctx, req: CompletionRequest| async move {
                    let all = ["python", "pytorch", "rust"];
                    let mut values: Vec<String> = all
                        .iter()
                        .filter(|v| v.starts_with(&req.value))
                        .map(|v| (*v).to_owned())
                        .collect();
                    values.extend(req.context.get("extra").cloned());
                    Ok(values)
                },
            )
            .completion(
                CompletionRef::Resource("file:///{path}".into()),
                "path",
                |_, _| async { Ok((0..150).map(|i| format!("f{i}")).collect()) },
            )
            .build();
        let h = Harness::new(registry);
        let init = h.init(version::LATEST);
        assert_eq!(init["result"]["capabilities"]["completions"], json!({}));
        let complete = |id, reference: Value, name: &str, value: &str, context: Value| {
            h.rpc(
                id,
                "completion/complete",
                json!({"ref": reference,
                "argument": {"name": name, "value": value}, "context": {"arguments": context}}),
            )
        };
        let r = complete(
            1,
            json!({"type":"ref/prompt","name":"lang"}),
            "name",
            "py",
            json!({"extra":"pyx"}),
        );
        assert_eq!(
            r["result"],
            json!({"completion":{"values":["python","pytorch","pyx"],"total":3,"hasMore":false}})
        );
        let r = complete(
            2,
            json!({"type":"ref/resource","uri":"file:///{path}"}),
            "path",
            "",
            json!({}),
        );
        let c = &r["result"]["completion"];
        assert_eq!(c["values"].as_array().map(Vec::len), Some(100));
        assert_eq!((&c["total"], &c["hasMore"]), (&json!(150), &json!(true)));
        // No handler for this argument: the empty default.
        let r = complete(
            3,
            json!({"type":"ref/prompt","name":"lang"}),
            "other",
            "",
            json!({}),
        );
        assert_eq!(
            r["result"],
            json!({"completion":{"values":[],"total":0,"hasMore":false}})
        );
        for reference in [
            json!({"type":"ref/prompt","name":"nope"}),
            json!({"type":"ref/resource","uri":"file:///x"}),
            json!({"type":"ref/tool","name":"lang"}),
            json!({"name":"lang"}),
        ] {
            let r = complete(4, reference.clone(), "name", "", json!({}));
            assert_eq!(error_code(&r), INVALID_PARAMS, "{reference}");
        }
        let r = h.rpc(
            5,
            "completion/complete",
            json!({"ref":{"type":"ref/prompt","name":"lang"}}),
        );
        assert_eq!(error_code(&r), INVALID_PARAMS);
    }

    fn sampling_call() -> &'static str {
        r#"{"jsonrpc":"2.0","id":"call-1","method":"tools/call","params":{"name":"test_sampling","arguments":{"prompt":"Test prompt for sampling"}}}"#
    }

    #[test]
    fn server_to_client_request_round_trip() {
        let h = Harness::builtin();
        h.init_with(version::LATEST, json!({"sampling":{}, "elicitation":{}}));
        block_on(async {
            let mut call = Box::pin(h.future(sampling_call()));
            assert!(
                poll_once(&mut call).await.is_none(),
                "waiting for the client"
            );
            assert_eq!(
                h.peer.sent.take(),
                vec![(
                    json!({"jsonrpc":"2.0","id":"s-1","method":"sampling/createMessage","params":{
                        "messages":[{"role":"user","content":{"type":"text","text":"Test prompt for sampling"}}],
                        "maxTokens":100}}),
                    Id::parse(r#""call-1""#)
                )]
            );
            assert_eq!(h.session.borrow().pending_len(), 1);
            // A response for an unknown id is ignored; the call keeps waiting.
            let stray = r#"{"jsonrpc":"2.0","id":"s-99","result":{}}"#;
            assert_eq!(h.future(stray).await, None);
            let stray = r#"{"jsonrpc":"2.0","id":"s-98","error":{"code":-1,"message":"x"}}"#;
            assert_eq!(h.future(stray).await, None);
            assert!(poll_once(&mut call).await.is_none());
            assert_eq!(h.session.borrow().pending_len(), 1);
            let answer = r#"{"jsonrpc":"2.0","id":"s-1","result":{"role":"assistant","content":{"type":"text","text":"This is a test response from the client"},"model":"test-model","stopReason":"endTurn"}}"#;
            assert_eq!(h.future(answer).await, None);
            let reply: Value = serde_json::from_slice(&call.await.expect("reply")).expect("json");
            assert_eq!(
                reply["result"],
                json!({"content":[{"type":"text","text":"LLM response: This is a test response from the client"}],"isError":false})
            );
        });
        assert_eq!(h.session.borrow().pending_len(), 0);
        // A late duplicate answer is ignored too.
        let late = r#"{"jsonrpc":"2.0","id":"s-1","result":{}}"#;
        assert_eq!(h.send(late), None);

        // The next request gets a fresh id; an error answer becomes isError.
        block_on(async {
            let mut call = Box::pin(h.future(sampling_call()));
            assert!(poll_once(&mut call).await.is_none());
            assert_eq!(h.peer.sent.take()[0].0["id"], json!("s-2"));
            let refusal = r#"{"jsonrpc":"2.0","id":"s-2","error":{"code":-1,"message":"User rejected sampling request"}}"#;
            assert_eq!(h.future(refusal).await, None);
            let reply: Value = serde_json::from_slice(&call.await.expect("reply")).expect("json");
            assert_eq!(reply["result"]["isError"], json!(true));
            assert_eq!(
                text_of(&reply),
                "Sampling failed: client returned error -1: User rejected sampling request"
            );
        });
    }

    #[test]
    fn requests_need_the_client_capability() {
        let h = Harness::builtin();
        h.init(version::LATEST); // declares no capabilities
        let r = h.call(1, "test_elicitation", json!({"message":"hi"}));
        assert_eq!(r["result"]["isError"], json!(true));
        assert_eq!(
            text_of(&r),
            "Elicitation failed: client did not declare the elicitation capability"
        );
        let r = h.call(2, "test_sampling", json!({"prompt":"p"}));
        assert_eq!(
            text_of(&r),
            "Sampling failed: client did not declare the sampling capability"
        );
        assert!(h.peer.sent.borrow().is_empty(), "nothing was sent");
        assert_eq!(h.session.borrow().pending_len(), 0);
    }

    #[test]
    fn abandoned_client_requests_are_cancelled() {
        let h = Harness::builtin();
        h.init_with(version::LATEST, json!({"sampling":{}}));
        block_on(async {
            let mut call = Box::pin(h.future(sampling_call()));
            assert!(poll_once(&mut call).await.is_none());
            h.peer.sent.take();
            let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"call-1"}}"#;
            assert_eq!(h.future(cancel).await, None);
            assert_eq!(call.await, None);
        });
        assert_eq!(h.session.borrow().pending_len(), 0);
        assert_eq!(h.session.borrow().in_flight_len(), 0);
        let sent = h.peer.sent.take();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0["method"], json!("notifications/cancelled"));
        assert_eq!(sent[0].0["params"]["requestId"], json!("s-1"));
        assert_eq!(sent[0].1, None);
        // The answer arriving afterwards is ignored.
        assert_eq!(h.send(r#"{"jsonrpc":"2.0","id":"s-1","result":{}}"#), None);
    }

    /// A peer that owns its session, like a transport's per-request peer.
    struct OwningPeer {
        session: SessionRef,
        sent: RefCell<Vec<Value>>,
    }

    impl Peer for OwningPeer {
        fn send(&self, message: Vec<u8>, _: Option<&Id>) -> bool {
            let value = serde_json::from_slice(&message).expect("JSON");
            self.sent.borrow_mut().push(value);
            true
        }
    }

    #[test]
    fn end_session_cancels_work_and_releases_the_peer() {
        let h = Harness::builtin();
        h.init_with(version::LATEST, json!({"sampling":{}}));
        let owning = Rc::new(OwningPeer {
            session: h.session.clone(),
            sent: RefCell::new(Vec::new()),
        });
        let peer: Rc<dyn Peer> = owning.clone();
        let subscribe = br#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"test://watched-resource"}}"#;
        let reply = block_on(
            h.dispatcher
                .handle(h.session.clone(), peer, subscribe.to_vec()),
        );
        assert!(reply.is_some());
        // The kept peer lets updates reach the session after the request ended.
        assert_eq!(h.dispatcher.resource_updated("test://watched-resource"), 1);
        assert_eq!(owning.sent.take().len(), 1);
        block_on(async {
            let mut call = Box::pin(h.future(sampling_call()));
            assert!(poll_once(&mut call).await.is_none());
            assert_eq!(h.session.borrow().pending_len(), 1);
            h.dispatcher.end_session(&h.session);
            assert_eq!(call.await, None, "ended sessions get no reply");
        });
        let session = h.session.borrow();
        assert_eq!((session.pending_len(), session.in_flight_len()), (0, 0));
        assert!(!session.is_subscribed("test://watched-resource"));
        drop(session);
        let withdrawn = h.peer.messages();
        assert_eq!(
            withdrawn.last().map(|m| &m["method"]),
            Some(&json!("notifications/cancelled"))
        );
        assert_eq!(h.dispatcher.resource_updated("test://watched-resource"), 0);
        // Only the peer itself still owns the session: no cycle through the state.
        assert_eq!(Rc::strong_count(&owning.session), 2);
        drop(owning);
        assert_eq!(Rc::strong_count(&h.session), 1);
    }

    #[test]
    fn sleeps_use_the_installed_timer() {
        let slept = Rc::new(RefCell::new(Vec::new()));
        let record = slept.clone();
        let dispatcher = Dispatcher::new(Arc::new(
            crate::fixtures::builtin(std::time::Duration::ZERO).build(),
        ))
        .with_sleep(move |d| {
            record.borrow_mut().push(d);
            Box::pin(std::future::ready(()))
        });
        let h = Harness::on(dispatcher);
        h.init(version::LATEST);
        h.call(1, "test_tool_with_logging", json!({}));
        h.call(2, "test_reconnection", json!({}));
        h.call(3, "stream", json!({"count": 3, "interval_ms": 7}));
        let ms = |n| Duration::from_millis(n);
        let slept = slept.take();
        assert_eq!(slept[..3], [ms(50), ms(50), ms(100)]);
        // `stream` keeps a fixed schedule from its start (7 ms, then 14 ms); this hook does not
        // really wait, so each sleep is what remains until the next slot.
        assert_eq!(slept.len(), 5);
        assert!(slept[3] <= ms(7) && slept[3] > ms(6), "{slept:?}");
        assert!(slept[4] <= ms(14) && slept[4] > ms(13), "{slept:?}");
    }

    #[test]
    fn log_notifications_below_the_level_are_filtered() {
        let h = Harness::builtin();
        h.init(version::LATEST);
        let r = h.rpc(1, "logging/setLevel", json!({"level":"debug"}));
        assert_eq!(r, json!({"jsonrpc":"2.0","id":1,"result":{}}));
        h.call(2, "test_tool_with_logging", json!({}));
        assert_eq!(h.peer.messages().len(), 3);
        assert_eq!(
            h.rpc(3, "logging/setLevel", json!({"level":"warning"}))["result"],
            json!({})
        );
        let r = h.call(4, "test_tool_with_logging", json!({}));
        assert_eq!(text_of(&r), "Tool with logging executed successfully");
        assert!(h.peer.sent.borrow().is_empty());
        assert_eq!(text_of(&h.call(5, "stream", json!({"count": 4}))), "0");
        assert_eq!(
            h.rpc(6, "logging/setLevel", json!({"level":"info"}))["result"],
            json!({})
        );
        assert_eq!(text_of(&h.call(7, "stream", json!({"count": 4}))), "4");
        for params in [json!({}), json!({"level": "verbose"}), json!({"level": 3})] {
            assert_eq!(
                error_code(&h.rpc(8, "logging/setLevel", params)),
                INVALID_PARAMS
            );
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "[a-z/_]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z_]{0,10}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_message() -> impl Strategy<Value = Value> {
        let method = prop_oneof![
            Just(json!("initialize")),
            Just(json!("ping")),
            Just(json!("tools/list")),
            Just(json!("tools/call")),
            Just(json!("logging/setLevel")),
            Just(json!("resources/list")),
            Just(json!("resources/templates/list")),
            Just(json!("resources/read")),
            Just(json!("resources/subscribe")),
            Just(json!("resources/unsubscribe")),
            Just(json!("prompts/list")),
            Just(json!("prompts/get")),
            Just(json!("completion/complete")),
            Just(json!("notifications/initialized")),
            Just(json!("notifications/cancelled")),
            arb_json(),
        ];
        let params = prop_oneof![
            Just(json!({"protocolVersion": "2025-03-26"})),
            Just(
                json!({"name": "echo", "arguments": {"message": "m"}, "_meta": {"progressToken": 1}})
            ),
            Just(json!({"cursor": "tools:1"})),
            Just(json!({"requestId": 1})),
            Just(json!({"uri": "test://template/1/data"})),
            Just(json!({"uri": "test://watched-resource"})),
            Just(json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "a"}})),
            Just(json!({"name": "test_sampling", "arguments": {"prompt": "p"}})),
            Just(json!({"name": "stream", "arguments": {"count": 2, "bytes": 3}})),
            Just(
                json!({"ref": {"type": "ref/prompt", "name": "test_simple_prompt"},
                "argument": {"name": "a", "value": ""}})
            ),
            arb_json(),
        ];
        (
            prop::option::of(prop_oneof![Just(json!("2.0")), arb_json()]),
            prop::option::of(arb_json()),
            prop::option::of(method),
            prop::option::of(params),
            prop::option::of(arb_json()),
            prop::option::of(arb_json()),
        )
            .prop_map(|(jsonrpc, id, method, params, result, error)| {
                let mut m = Map::new();
                for (k, v) in [
                    ("jsonrpc", jsonrpc),
                    ("id", id),
                    ("method", method),
                    ("params", params),
                    ("result", result),
                    ("error", error),
                ] {
                    if let Some(v) = v {
                        m.insert(k.to_owned(), v);
                    }
                }
                Value::Object(m)
            })
    }

    fn check_handle(h: &Harness, input: &[u8]) {
        let peer: Rc<dyn Peer> = h.peer.clone();
        if let Some(reply) = block_on(h.dispatcher.handle(h.session.clone(), peer, input.to_vec()))
        {
            assert_valid_reply(&reply);
        }
    }

    fn harnesses() -> [Harness; 3] {
        let fresh = Harness::builtin();
        let old = Harness::builtin();
        old.init("2025-03-26");
        let new = Harness::builtin();
        new.init(version::LATEST);
        [fresh, old, new]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..256)) {
            for h in harnesses() {
                check_handle(&h, &input);
            }
        }

        #[test]
        fn arbitrary_messages_get_valid_replies(
            messages in prop::collection::vec(arb_message(), 1..4),
            as_batch in any::<bool>(),
        ) {
            for h in harnesses() {
                if as_batch {
                    check_handle(&h, Value::Array(messages.clone()).to_string().as_bytes());
                } else {
                    for m in &messages {
                        check_handle(&h, m.to_string().as_bytes());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "multi_round_tests.rs"]
mod multi_round_tests;
