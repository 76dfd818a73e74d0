//! Routes JSON-RPC messages to MCP methods for one session.

use crate::mcp::peer::Peer;
use crate::mcp::registry::{Empty, Registry};
use crate::mcp::session::{LogLevel, RequestSignal, SessionRef};
use crate::mcp::tool::ToolContext;
use crate::mcp::version;
use crate::proto::jsonrpc::{
    self, Error, ErrorObject, Id, Item, Message, Notification, Parsed, RawId, Request,
};
use futures_lite::future::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::Arc;

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

/// The MCP method router; clone one per shard (it is an `Arc` inside).
#[derive(Clone)]
pub struct Dispatcher {
    registry: Arc<Registry>,
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

/// MCP params are objects; `None` stands for absent params.
fn object_params<'a>(
    params: Option<&'a RawValue>,
    what: &'static str,
) -> Result<Option<&'a RawValue>, Error> {
    match params {
        Some(p) if !p.get().starts_with('{') => Err(invalid_params(what)),
        other => Ok(other),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitializeParams<'a> {
    #[serde(borrow)]
    protocol_version: Cow<'a, str>,
    #[serde(default)]
    capabilities: Option<Value>,
    #[serde(default)]
    client_info: Option<Value>,
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

#[derive(Deserialize, Default)]
struct ListParams {
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListToolsResult<'a> {
    tools: &'a [crate::mcp::tool::Tool],
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestMeta<'a> {
    #[serde(borrow, default)]
    progress_token: Option<&'a RawValue>,
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

impl Dispatcher {
    /// A dispatcher serving `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Dispatcher { registry }
    }

    /// The registry being served.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Handles one message (or batch) of `session`; resolves to the reply,
    /// or `None` for notifications, client responses and cancelled requests.
    ///
    /// The future owns everything it uses, so a transport can spawn it and
    /// keep reading; requests of one session may run concurrently.
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
        // Spec (JSON-RPC 2.0): "The Server MAY process a batch rpc call as a
        // set of concurrent tasks, processing them in any order"; we go in order.
        let mut out = Vec::new();
        for item in items {
            if let Some(reply) = self.item(session, peer, item, true).await {
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
                self.on_client_response(Some(response.id), Ok(response.result));
                None
            }
            Ok(Message::ErrorResponse(response)) => {
                self.on_client_response(response.id, Err(&response.error));
                None
            }
        }
    }

    /// Hook for replies to server-to-client requests; none are sent yet, so
    /// they are dropped.
    fn on_client_response(
        &self,
        id: Option<RawId<'_>>,
        outcome: Result<&RawValue, &ErrorObject<'_>>,
    ) {
        let id = id.map_or("null", RawId::get);
        match outcome {
            Ok(_) => log::debug!("dropping client response to {id}"),
            Err(e) => log::debug!("dropping client error {} for {id}: {}", e.code, e.message),
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
        let reply = match method {
            // Spec (2025-03-26 lifecycle): "The initialize request MUST NOT be
            // part of a JSON-RPC batch".
            "initialize" if in_batch => Err(Error::InvalidRequest(Cow::Borrowed(
                "Invalid Request: initialize must not be part of a batch",
            ))),
            "initialize" => self.initialize(session, id, request.params),
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
        let owned = id.to_id();
        let signal = Rc::new(RequestSignal::default());
        // Spec (basic): "The request ID MUST NOT have been previously used by
        // the requestor within the same session." We can only see reuse
        // among requests still in flight.
        if !session
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
        };
        let work = async {
            let reply = match method {
                "tools/list" => self.tools_list(id, params),
                "tools/call" => self.tools_call(session, peer, &guard, id, params).await,
                "logging/setLevel" => self.set_level(session, id, params),
                _ => Err(Error::MethodNotFound(method.to_owned())),
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

    fn initialize(&self, session: &SessionRef, id: RawId<'_>, params: Option<&RawValue>) -> Reply {
        if session.borrow().protocol_version().is_some() {
            return Err(Error::InvalidRequest(Cow::Borrowed(
                "Invalid Request: initialize was already received on this session",
            )));
        }
        const BAD: &str = "initialize params must be an object with a string \"protocolVersion\"";
        let params = object_params(params, BAD)?.ok_or(invalid_params(BAD))?;
        let params: InitializeParams<'_> =
            serde_json::from_str(params.get()).map_err(|_| invalid_params(BAD))?;
        let negotiated = version::negotiate(&params.protocol_version);
        let registry = &*self.registry;
        let reply = ok(
            id,
            &InitializeResult {
                protocol_version: negotiated,
                capabilities: &registry.capabilities,
                server_info: &registry.server_info,
                instructions: registry.instructions.as_deref(),
            },
        )?;
        session
            .borrow_mut()
            .set_initialized(negotiated, params.client_info, params.capabilities);
        Ok(reply)
    }

    fn tools_list(&self, id: RawId<'_>, params: Option<&RawValue>) -> Reply {
        const BAD: &str = "tools/list params must be an object with an optional string \"cursor\"";
        let params = match object_params(params, BAD)? {
            None => ListParams::default(),
            Some(p) => serde_json::from_str(p.get()).map_err(|_| invalid_params(BAD))?,
        };
        let (tools, next_cursor) = self.registry.tools.page(params.cursor.as_deref())?;
        ok(id, &ListToolsResult { tools, next_cursor })
    }

    async fn tools_call(
        &self,
        session: &SessionRef,
        peer: &Rc<dyn Peer>,
        request: &InFlight,
        id: RawId<'_>,
        params: Option<&RawValue>,
    ) -> Reply {
        const BAD: &str =
            "tools/call params must be an object with a string \"name\" and an object \"arguments\"";
        let params = object_params(params, BAD)?.ok_or(invalid_params(BAD))?;
        let call: CallParams<'_> =
            serde_json::from_str(params.get()).map_err(|_| invalid_params(BAD))?;
        let Some(handler) = self.registry.tools.handler(&call.name) else {
            // Spec (tools): protocol errors cover "Unknown tools"; the example
            // is code -32602 with message "Unknown tool: invalid_tool_name".
            return Err(Error::InvalidParams(Cow::Owned(format!(
                "Unknown tool: {}",
                call.name
            ))));
        };
        // Spec (progress): "Progress tokens MUST be a string or integer value";
        // anything else means the client cannot match progress, so send none.
        let progress_token = call
            .meta
            .and_then(|meta| serde_json::from_str::<RequestMeta<'_>>(meta.get()).ok())
            .and_then(|meta| meta.progress_token)
            .and_then(RawId::new)
            .map(RawId::to_id);
        let ctx = ToolContext::new(
            request.id.clone(),
            progress_token,
            peer.clone(),
            session.clone(),
            request.signal.clone(),
        );
        let args = Value::Object(call.arguments.unwrap_or_default());
        // A panicking tool must not take the shard and its other sessions down.
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(ctx, args))) {
            Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        match outcome {
            Ok(Ok(result)) => ok(id, &result),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => {
                log::error!("tool {:?} panicked", call.name);
                Err(Error::Internal(Cow::Borrowed("Tool failed unexpectedly")))
            }
        }
    }

    fn set_level(&self, session: &SessionRef, id: RawId<'_>, params: Option<&RawValue>) -> Reply {
        const BAD: &str = "logging/setLevel params must be an object with a valid \"level\"";
        let params = object_params(params, BAD)?.ok_or(invalid_params(BAD))?;
        let params: SetLevelParams =
            serde_json::from_str(params.get()).map_err(|_| invalid_params(BAD))?;
        session.borrow_mut().set_log_level(params.level);
        ok(id, &Empty {})
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
            "notifications/cancelled" => self.cancel(session, notification.params),
            // Spec (basic): for notifications "The receiver MUST NOT send a response."
            other => log::debug!("ignoring notification {other:?}"),
        }
    }

    fn cancel(&self, session: &SessionRef, params: Option<&RawValue>) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::session::SessionState;
    use crate::mcp::tool::{Tool, ToolError, ToolResult};
    use crate::proto::jsonrpc::{
        INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR,
    };
    use futures_lite::future::{block_on, poll_once};
    use proptest::prelude::*;
    use serde_json::json;
    use std::cell::RefCell;

    #[derive(Default)]
    struct TestPeer {
        sent: RefCell<Vec<(Value, Option<Id>)>>,
    }

    impl Peer for TestPeer {
        fn send(&self, message: Vec<u8>, related_request: Option<&Id>) {
            let value = serde_json::from_slice(&message).expect("peer messages are JSON");
            self.sent
                .borrow_mut()
                .push((value, related_request.cloned()));
        }
    }

    struct Harness {
        dispatcher: Dispatcher,
        session: SessionRef,
        peer: Rc<TestPeer>,
    }

    impl Harness {
        fn new(registry: Registry) -> Self {
            Harness {
                dispatcher: Dispatcher::new(Arc::new(registry)),
                session: SessionState::new_ref(),
                peer: Rc::new(TestPeer::default()),
            }
        }

        fn builtin() -> Self {
            Harness::new(Registry::with_builtin_tools())
        }

        fn future(&self, message: &str) -> impl Future<Output = Option<Vec<u8>>> + 'static {
            let peer: Rc<dyn Peer> = self.peer.clone();
            self.dispatcher
                .handle(self.session.clone(), peer, message.as_bytes().to_vec())
        }

        fn raw(&self, message: &str) -> Option<Vec<u8>> {
            block_on(self.future(message))
        }

        fn send(&self, message: &str) -> Option<Value> {
            self.raw(message).map(|reply| {
                assert_valid_reply(&reply);
                serde_json::from_slice(&reply).expect("reply is JSON")
            })
        }

        fn reply(&self, message: Value) -> Value {
            self.send(&message.to_string()).expect("a reply")
        }

        fn init(&self, version: &str) -> Value {
            let reply = self.reply(json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion": version, "capabilities": {}, "clientInfo": {"name":"t","version":"1"}}}));
            assert_eq!(
                self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
                None
            );
            reply
        }

        fn call(&self, id: i64, name: &str, arguments: Value) -> Value {
            self.reply(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":arguments}}))
        }
    }

    fn error_code(reply: &Value) -> i64 {
        reply["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("not an error: {reply}"))
    }

    fn check_one(v: &Value) {
        let obj = v.as_object().expect("response is an object");
        assert_eq!(obj.get("jsonrpc"), Some(&json!("2.0")), "{v}");
        let id = obj.get("id").expect("response has id");
        assert!(
            id.is_string() || id.is_i64() || id.is_u64() || id.is_null(),
            "{v}"
        );
        match (obj.get("result"), obj.get("error")) {
            (Some(_), None) => assert!(!id.is_null(), "{v}"),
            (None, Some(e)) => {
                assert!(e["code"].is_i64(), "{v}");
                assert!(e["message"].is_string(), "{v}");
            }
            _ => panic!("exactly one of result/error: {v}"),
        }
        assert_eq!(obj.len(), 3, "{v}");
    }

    fn assert_valid_reply(bytes: &[u8]) {
        let v: Value = serde_json::from_slice(bytes).expect("reply is JSON");
        match &v {
            Value::Array(items) => {
                assert!(!items.is_empty(), "no empty batch replies");
                items.iter().for_each(check_one);
            }
            other => check_one(other),
        }
    }

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
                "capabilities":{"logging":{},"tools":{"listChanged":false}},
                "serverInfo":{"name":"ringmcp","version":env!("CARGO_PKG_VERSION")}}})
        );
        {
            let s = h.session.borrow();
            assert!(s.initialized_notification_received());
            assert_eq!(s.client_info(), Some(&json!({"name":"t","version":"1"})));
            assert_eq!(s.client_capabilities(), Some(&json!({})));
        }
        let list = h.reply(json!({"jsonrpc":"2.0","id":"l","method":"tools/list"}));
        assert_eq!(list["id"], json!("l"));
        let tools = list["result"]["tools"].as_array().expect("tools array");
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0]["name"], json!("echo"));
        assert_eq!(tools[0]["inputSchema"]["required"], json!(["message"]));
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
        let r = h.reply(json!({"jsonrpc":"2.0","id":1,"method":"resources/list"}));
        assert_eq!(error_code(&r), METHOD_NOT_FOUND);
        assert_eq!(
            r["error"]["message"],
            json!("Method not found: resources/list")
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
        assert_eq!(h.session.borrow().in_flight_len(), 0);
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
