//! MCP 2026-07-28 over Streamable HTTP: a POST that carries its own context in `_meta`, is
//! checked against its headers, and is answered by the shard that read it, with no session.

use super::streamable::{check_post_head, sse_head, Outcome, Sink, SseStream};
use super::{Env, TransportError};
use crate::mcp::session::RequestSignal;
use crate::mcp::stateless::{self, Envelope, EnvelopeError, MetaFields};
use crate::mcp::{version, Peer, Tool};
use crate::metrics::{Limit, Metrics, Path};
use crate::proto::base64;
use crate::proto::http1::{self, Method, RequestHead, ResponseBody};
use crate::proto::jsonrpc::Id;
use serde_json::value::RawValue;
use serde_json::Value;
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// The era a POST to `/mcp` belongs to, if it is a 2026-07-28 request; `None` leaves it to
/// the sessions of the 2025 revisions.
///
/// Spec (2026-07-28, basic/versioning): "A request carrying modern per-request `_meta` is
/// served statelessly according to this revision. An `initialize` request selects legacy
/// semantics". As the reference server decides: a request with `Mcp-Session-Id`, or with
/// neither per-request `_meta` fields nor a version header other than a 2025-or-earlier one,
/// is a 2025 one (every 2025 client's first `initialize` carries no version header; a 2025
/// `_meta` holds a progress token, not these fields).
pub(super) fn stateless_request<'b>(
    head: &RequestHead,
    body: &'b [u8],
) -> Option<Result<Envelope<'b>, TransportError>> {
    if head.method() != Method::Post || head.header_values("mcp-session-id").next().is_some() {
        return None;
    }
    // A version header of this revision, or of one unknown, says so on its own.
    let header_says = head
        .header_str("mcp-protocol-version")
        .is_some_and(|v| !version::is_session_era(v));
    match Envelope::parse(body) {
        Ok(envelope)
            if header_says || envelope.meta.as_ref().is_some_and(MetaFields::is_modern) =>
        {
            Some(Ok(envelope))
        }
        Err(e) if header_says => Some(Err(TransportError::NotARequest(e))),
        _ => None,
    }
}

/// Answers a 2026-07-28 POST: checks it in the revision's order, then runs it.
pub(super) fn post(
    env: &Env,
    head: &RequestHead,
    envelope: Envelope<'_>,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Result<Outcome, TransportError> {
    check_post_head(head)?;
    let Some(method) = envelope.method.as_deref() else {
        return Err(TransportError::NotARequest(EnvelopeError::NotAnObject));
    };
    if !envelope.is_request() {
        // Spec (2026-07-28, streamable-http): a notification the server accepts gets "202
        // Accepted" with no body; this revision defines none a client sends over HTTP
        // (closing the stream is how a request is cancelled), so there is nothing to run.
        http1::write_head(out, 202, &[], ResponseBody::Length(0), keep_alive);
        env.metrics.status(202);
        return Ok(Outcome::Done);
    }
    let id = envelope.id.map(|raw| raw.get().to_owned());
    let mismatch = |detail: String| TransportError::HeaderMismatch {
        id: id.clone(),
        detail,
    };
    // Spec (2026-07-28, streamable-http): the client "MUST include the `MCP-Protocol-Version`
    // header"; it "MUST match" the `_meta` version, else "400 Bad Request and a
    // `HeaderMismatch` JSON-RPC error". The `_meta` fields are checked in between (-32602), as
    // the conformance suite expects.
    let Some(header_version) = head.header_str("mcp-protocol-version") else {
        return Err(mismatch("MCP-Protocol-Version header is required".into()));
    };
    let (meta, requested) = read_meta(&envelope, &id)?;
    if requested != header_version {
        return Err(mismatch(format!(
            "MCP-Protocol-Version {header_version} but _meta names {requested}"
        )));
    }
    check_revision(requested, &id)?;
    check_standard_headers(head, method, &envelope).map_err(mismatch)?;
    check_servable(env, method, &envelope, &meta, &id, Some(head))?;
    Ok(run(env, meta, body, keep_alive, out))
}

/// A 2026-07-28 request's `_meta`, checked, and the version it names.
pub(super) fn read_meta<'e>(
    envelope: &'e Envelope<'_>,
    id: &Option<String>,
) -> Result<(stateless::RequestMeta, &'e str), TransportError> {
    let no_meta = MetaFields::default();
    let fields = envelope.meta.as_ref().unwrap_or(&no_meta);
    let meta = fields
        .validate()
        .map_err(|error| TransportError::InvalidMeta {
            id: id.clone(),
            error,
        })?;
    let requested = envelope
        .meta
        .as_ref()
        .and_then(MetaFields::protocol_version)
        .unwrap_or_default();
    Ok((meta, requested))
}

/// Only this revision is served per request; the 2025 ones go through `initialize`.
pub(super) fn check_revision(requested: &str, id: &Option<String>) -> Result<(), TransportError> {
    if requested == version::STATELESS {
        Ok(())
    } else {
        Err(TransportError::UnsupportedRevision {
            id: id.clone(),
            requested: requested.to_owned(),
        })
    }
}

/// The method must be one this server serves in the revision (-32601), and a tool the client
/// calls must have the client capabilities it needs (-32021) and, on HTTP (`head`), its
/// `Mcp-Param-*` headers (-32020); decided before the handler runs so that the refusal can
/// still be a 400. An unknown tool is the dispatcher's to answer.
pub(super) fn check_servable(
    env: &Env<'_>,
    method: &str,
    envelope: &Envelope<'_>,
    meta: &stateless::RequestMeta,
    id: &Option<String>,
    head: Option<&RequestHead>,
) -> Result<(), TransportError> {
    if !stateless::serves(method) {
        return Err(TransportError::NoSuchMethod {
            id: id.clone(),
            method: method.to_owned(),
        });
    }
    let registry = env.dispatcher.registry();
    let tool = match (method, envelope.name.as_deref()) {
        ("tools/call", Some(name)) => registry.tool(name),
        _ => None,
    };
    let Some(tool) = tool else {
        return Ok(());
    };
    let missing = tool.missing_client_capabilities(meta.client_capabilities.get());
    if !missing.is_empty() {
        return Err(TransportError::MissingClientCapability {
            id: id.clone(),
            missing,
        });
    }
    match head {
        Some(head) => check_param_headers(head, tool, envelope.arguments).map_err(|detail| {
            TransportError::HeaderMismatch {
                id: id.clone(),
                detail,
            }
        }),
        None => Ok(()),
    }
}

/// The standard request headers against the body.
///
/// Spec (2026-07-28, streamable-http): `Mcp-Method` carries the method of every request and
/// `Mcp-Name` the `params.name` of `tools/call` and `prompts/get` or the `params.uri` of
/// `resources/read`: "These headers are REQUIRED for compliance"; a missing or mismatched
/// one is "400 Bad Request" with `HeaderMismatch`. "Header _values_ (such as method names)
/// are case-sensitive."
fn check_standard_headers(
    head: &RequestHead,
    method: &str,
    envelope: &Envelope<'_>,
) -> Result<(), String> {
    expect_header(head, "Mcp-Method", method)?;
    let name = match method {
        "tools/call" | "prompts/get" => envelope.name.as_deref(),
        "resources/read" => envelope.uri.as_deref(),
        _ => return Ok(()),
    };
    match name {
        Some(name) => expect_header(head, "Mcp-Name", name),
        // The body lacks it: the dispatcher refuses the params (-32602).
        None => Ok(()),
    }
}

/// The `Mcp-Param-*` headers of a tool's `x-mcp-header` arguments against the body.
///
/// Spec (2026-07-28, streamable-http): "Any server that processes the message body MUST
/// validate that encoded header values, after decoding if Base64-encoded, match" the body; a
/// value present in the body with its header omitted: "Server MUST reject the request"; a
/// value null or absent: "Server MUST NOT expect the header". Integers compare as numbers.
fn check_param_headers(
    head: &RequestHead,
    tool: &Tool,
    arguments: Option<&RawValue>,
) -> Result<(), String> {
    if tool.header_params().is_empty() {
        return Ok(());
    }
    let arguments: Value = arguments
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or(Value::Null);
    for param in tool.header_params() {
        let value = param
            .path
            .iter()
            .try_fold(&arguments, |v, key| v.get(key))
            .filter(|v| !v.is_null());
        let Some(value) = value else { continue };
        let name = format!("Mcp-Param-{}", param.name);
        let raw = match head.single_header(&name) {
            Ok(Some(raw)) => raw,
            Ok(None) => return Err(format!("{name} header is required")),
            Err(_) => return Err(format!("more than one {name} header")),
        };
        let Some(decoded) = header_value(raw) else {
            return Err(format!("{name} is not a valid header value"));
        };
        let same = match value {
            Value::String(s) => decoded == s.as_bytes(),
            Value::Bool(b) => decoded == if *b { &b"true"[..] } else { &b"false"[..] },
            Value::Number(n) => std::str::from_utf8(&decoded)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .is_some_and(|header| n.as_f64() == Some(header)),
            _ => false,
        };
        if !same {
            return Err(format!("{name} does not match the request body"));
        }
    }
    Ok(())
}

fn expect_header(head: &RequestHead, name: &str, body_value: &str) -> Result<(), String> {
    let raw = match head.single_header(name) {
        Ok(Some(raw)) => raw,
        Ok(None) => return Err(format!("{name} header is required")),
        Err(_) => return Err(format!("more than one {name} header")),
    };
    match header_value(raw) {
        Some(value) if value == body_value.as_bytes() => Ok(()),
        Some(_) => Err(format!("{name} does not match the request body")),
        None => Err(format!("{name} is not a valid header value")),
    }
}

/// A standard header's value: trimmed of optional whitespace, and decoded when written as
/// `=?base64?…?=`.
///
/// Spec (2026-07-28, streamable-http): values that are not plain ASCII are sent as
/// `=?base64?{Base64(UTF-8)}?=` ("markers are case-sensitive"), and "servers MUST decode an
/// encoded `Mcp-Name` or `Mcp-Param-{Name}` value before comparing it"; a value that does
/// not decode is refused.
fn header_value(raw: &[u8]) -> Option<Vec<u8>> {
    let value = raw.trim_ascii();
    match value
        .strip_prefix(b"=?base64?")
        .and_then(|v| v.strip_suffix(b"?="))
    {
        Some(encoded) => base64::decode(encoded),
        None => Some(value.to_vec()),
    }
}

/// Runs the request: plain JSON when it finishes without sending anything first, else an
/// SSE response carrying its notifications and ending with its result.
fn run(
    env: &Env,
    mut meta: stateless::RequestMeta,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Outcome {
    meta.principal = env.principal.cloned();
    let arrived = Instant::now();
    let sink = Sink::new(env.config.max_outbound_bytes);
    let peer = Rc::new(RequestPeer {
        sink: Rc::clone(&sink),
        metrics: Rc::clone(env.metrics),
    });
    let mut reply = Box::pin(env.dispatcher.handle_stateless(meta, peer, body.to_vec()));
    let finish = {
        let (sink, metrics) = (Rc::clone(&sink), Rc::clone(env.metrics));
        move |reply: Option<Vec<u8>>| {
            if let Some(reply) = reply {
                sink.push_event(None, None, &reply);
                metrics.message_out();
                metrics.latency(Path::Http, arrived.elapsed());
            }
            // Spec (2026-07-28, streamable-http): "The final JSON-RPC response SHOULD
            // terminate the stream".
            sink.end();
        }
    };
    let cancel = Rc::new(RequestSignal::default());
    match reply.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(reply) if sink.queue().is_empty() => {
            let reply = reply.unwrap_or_default();
            http1::write_response(
                out,
                200,
                &[("content-type", "application/json")],
                &reply,
                keep_alive,
            );
            env.metrics.status(200);
            env.metrics.message_out();
            env.metrics.latency(Path::Http, arrived.elapsed());
            return Outcome::Done;
        }
        Poll::Ready(reply) => finish(reply),
        Poll::Pending => {
            let cancelled = Rc::clone(&cancel);
            (env.spawn)(Box::pin(async move {
                let reply = futures_lite::future::or(async { Some(reply.await) }, async {
                    cancelled.cancelled().await;
                    None
                })
                .await;
                if let Some(reply) = reply {
                    finish(reply);
                }
            }));
        }
    }
    sse_head(out, &[], keep_alive);
    env.metrics.status(200);
    Outcome::Stream(SseStream::for_request(env, sink, cancel))
}

/// How a 2026-07-28 request's handler reaches the client: SSE events on its own response.
struct RequestPeer {
    sink: Rc<Sink>,
    metrics: Rc<Metrics>,
}

impl Peer for RequestPeer {
    fn send(&self, message: Vec<u8>, _related_request: Option<&Id>) -> bool {
        // Spec (2026-07-28, streamable-http): the server "MAY send JSON-RPC notifications ...
        // These notifications MUST relate to the originating client request"; every message
        // of this peer belongs to its one request.
        if self.sink.queue().is_ended() {
            return false;
        }
        if self.sink.queue().is_full() {
            self.metrics.limit(Limit::NotificationQueue);
            return false;
        }
        self.sink.push_event(None, None, &message);
        true
    }
}
