//! What an HTTP request gets: the endpoint by path, the WebSocket upgrade,
//! and the plain answers (health, metrics).

use super::auth::{unix_now, Credential};
use super::streamable::{self, Outcome, SseStream};
use super::ws::WsKind;
use super::{Env, TransportError};
use crate::auth::Principal;
use crate::metrics::{self, Heap, Snapshot};
use crate::proto::http1::{self, Method, RequestHead};
use crate::proto::ws::{deflate, handshake, PerMessageDeflate};
use crate::store::sessions::SessionId;
use std::rc::Rc;

/// Subprotocols offered on /mcp, in order of preference.
const MCP_SUBPROTOCOLS: &[&str] = &["mcp"];

/// Methods a page on an allowed origin may use on the MCP endpoints.
const CORS_METHODS: &str = "GET, POST, DELETE";

/// Request headers a page on an allowed origin may send (names lowercase); `mcp-param-*`
/// besides, for the 2026-07-28 `Mcp-Param-{name}` headers.
const CORS_REQUEST_HEADERS: &[&str] = &[
    "accept",
    "authorization",
    "content-type",
    "last-event-id",
    "mcp-method",
    "mcp-name",
    "mcp-protocol-version",
    "mcp-session-id",
];

/// Response headers a page may read besides the safelisted ones.
const CORS_EXPOSED_HEADERS: &str = "mcp-session-id, mcp-protocol-version, www-authenticate";

/// Seconds a browser may reuse a preflight answer (Chromium caps it at 7200).
const CORS_MAX_AGE: &str = "600";

/// What the connection does after a request was answered.
pub enum Next {
    /// Keep serving HTTP on this connection (if keep-alive allows).
    KeepGoing,
    /// Switch to WebSocket (the 101 is queued), acting for the principal (authorization on).
    Upgrade(WsKind, Option<PerMessageDeflate>, Option<Rc<Principal>>),
    /// Serve an SSE response.
    Stream(SseStream),
    /// Move the connection to the shard owning the request's session.
    Handoff(usize),
    /// Gather every shard's metrics and answer with [`write_metrics`].
    Metrics,
    /// Ask the introspection endpoint about this opaque token, hand the answer to
    /// [`Authorizer::introspected`](super::auth::Authorizer::introspected), then route the
    /// request again.
    Introspect(String),
    /// Load this session from the shared event store
    /// ([`HttpSessions::load`](streamable::HttpSessions::load)), hand the answer to
    /// [`HttpSessions::adopt`](streamable::HttpSessions::adopt), then route the request again.
    Adopt(SessionId),
}

/// Decides the response for one request from `peer` and queues it in `out`.
pub fn route(
    env: &Env,
    head: &RequestHead,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Next {
    let start = out.len();
    let next = match route_or_refuse(env, head, body, keep_alive, out) {
        Ok(next) => next,
        Err(refusal) => {
            refusal.respond(out, keep_alive, env.metrics);
            Next::KeepGoing
        }
    };
    // Fetch (CORS protocol): a browser lets a page on `Origin` read a response only if it
    // names that origin in `Access-Control-Allow-Origin`; the answer differs by origin, so
    // caches must key it on `Vary: Origin`. A WebSocket is not subject to CORS, and a
    // connection handed off is answered by the shard that takes it.
    if let Some(origin) = env.policy.allowed_origin(head) {
        if !matches!(
            next,
            Next::Upgrade(..) | Next::Handoff(_) | Next::Introspect(_) | Next::Adopt(_)
        ) {
            let cors = [
                ("access-control-allow-origin", origin),
                ("vary", "origin"),
                ("access-control-expose-headers", CORS_EXPOSED_HEADERS),
            ];
            http1::add_headers(out, start, &cors);
        }
    }
    next
}

/// Answers a CORS preflight (an `OPTIONS` with `Origin` and `Access-Control-Request-Method`)
/// on an MCP endpoint: which methods and which of the requested headers a page on an allowed
/// origin may use (the origin itself is added by [`route`]; other origins were refused).
fn preflight(env: &Env, head: &RequestHead, keep_alive: bool, out: &mut Vec<u8>) -> Next {
    // Fetch: header names in `Access-Control-Request-Headers` are compared
    // case-insensitively; answering with only those allowed makes the browser refuse a
    // request that would send another.
    let requested = head
        .header_str("access-control-request-headers")
        .unwrap_or_default();
    let allowed: Vec<String> = requested
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| {
            CORS_REQUEST_HEADERS.contains(&name.as_str()) || name.starts_with("mcp-param-")
        })
        .collect();
    let allowed = allowed.join(", ");
    let headers = [
        ("access-control-allow-methods", CORS_METHODS),
        ("access-control-allow-headers", allowed.as_str()),
        ("access-control-max-age", CORS_MAX_AGE),
    ];
    // RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field in any response
    // with a status code of 1xx (Informational) or 204 (No Content)."
    http1::write_head(out, 204, &headers, http1::ResponseBody::None, keep_alive);
    env.metrics.status(204);
    Next::KeepGoing
}

/// Whether `path` is one of the MCP endpoints (the ones a page may call).
fn is_mcp_endpoint(path: &str) -> bool {
    matches!(path, "/mcp" | "/sse" | "/messages")
}

fn route_or_refuse(
    env: &Env,
    head: &RequestHead,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Result<Next, TransportError> {
    env.policy.check(head).map_err(TransportError::Forbidden)?;
    let metadata = env.auth.and_then(|auth| auth.metadata_at(head.path()));
    // Preflights carry no credentials (Fetch: "CORS-preflight request ... excludes user
    // credentials"), so they are answered before authorization.
    if head.method() == Method::Options
        && (is_mcp_endpoint(head.path()) || metadata.is_some())
        && head.header("origin").is_some()
        && head.header("access-control-request-method").is_some()
    {
        return Ok(preflight(env, head, keep_alive, out));
    }
    // A HEAD request is answered as GET: the connection drops the content.
    let reads = matches!(head.method(), Method::Get | Method::Head);
    if let Some(document) = metadata {
        // RFC 9728 §3.2: "A successful response MUST use the 200 OK HTTP status code and
        // return a JSON object using the application/json content type".
        if !reads {
            return Err(TransportError::MethodNotAllowed { allow: "GET, HEAD" });
        }
        let json = [("content-type", "application/json")];
        http1::write_response(out, 200, &json, document, keep_alive);
        env.metrics.status(200);
        return Ok(Next::KeepGoing);
    }
    let principal = match env.auth {
        Some(auth) if auth.protects(head.path()) => match auth.authenticate(head, unix_now())? {
            Credential::Principal(principal) => {
                if head.method() == Method::Post {
                    auth.authorize_body(&principal, body)?;
                }
                Some(principal)
            }
            Credential::Introspect(token) => return Ok(Next::Introspect(token)),
        },
        _ => None,
    };
    let env = &Env {
        principal: principal.as_ref(),
        ..*env
    };
    let config = env.config;
    Ok(match head.path() {
        "/healthz" if reads => {
            let text = [("content-type", "text/plain; charset=utf-8")];
            http1::write_response(out, 200, &text, b"ok\n", keep_alive);
            env.metrics.status(200);
            Next::KeepGoing
        }
        "/metrics" if reads => Next::Metrics,
        "/healthz" | "/metrics" => {
            return Err(TransportError::MethodNotAllowed { allow: "GET, HEAD" })
        }
        "/echo" if config.echo => upgrade(env, head, WsKind::Echo, out, principal.clone())?,
        "/mcp" if handshake::is_upgrade_request(head) => {
            upgrade(env, head, WsKind::Mcp, out, principal.clone())?
        }
        "/mcp" => mcp(streamable::mcp_endpoint(env, head, body, keep_alive, out)),
        "/sse" if !config.no_legacy_sse => mcp(streamable::legacy_sse(env, head, keep_alive, out)),
        "/messages" if !config.no_legacy_sse => {
            mcp(streamable::legacy_message(env, head, body, keep_alive, out))
        }
        _ => return Err(TransportError::NotFound),
    })
}

fn mcp(outcome: Outcome) -> Next {
    match outcome {
        Outcome::Done => Next::KeepGoing,
        Outcome::Stream(serve) => Next::Stream(serve),
        Outcome::Handoff(owner) => Next::Handoff(owner),
        Outcome::Adopt(id) => Next::Adopt(id),
    }
}

/// A WebSocket endpoint: upgrade when asked properly, say what is wrong otherwise.
fn upgrade(
    env: &Env,
    head: &RequestHead,
    kind: WsKind,
    out: &mut Vec<u8>,
    principal: Option<Rc<Principal>>,
) -> Result<Next, TransportError> {
    if !handshake::is_upgrade_request(head) {
        return Err(if matches!(head.method(), Method::Get | Method::Head) {
            TransportError::UpgradeRequired
        } else {
            TransportError::MethodNotAllowed { allow: "GET" }
        });
    }
    let protocols = match kind {
        WsKind::Mcp => MCP_SUBPROTOCOLS,
        WsKind::Echo => &[],
    };
    let mut accepted = handshake::accept(head, protocols).map_err(TransportError::Handshake)?;
    if env.config.ws_deflate {
        accepted.deflate = deflate::accept_offer(head.header_values("sec-websocket-extensions"));
    }
    handshake::write_switching_protocols(out, &accepted);
    env.metrics.status(101);
    Ok(Next::Upgrade(kind, accepted.deflate, principal))
}

/// Queues the answer to a `/metrics` scrape: every shard's `snapshots`, and the process's
/// `heap` when known.
pub fn write_metrics(
    env: &Env,
    snapshots: &[Snapshot],
    heap: Option<Heap>,
    keep_alive: bool,
    out: &mut Vec<u8>,
) {
    let text = metrics::render(snapshots, heap);
    let content_type = [("content-type", "text/plain; version=0.0.4; charset=utf-8")];
    http1::write_response(out, 200, &content_type, text.as_bytes(), keep_alive);
    env.metrics.status(200);
}
