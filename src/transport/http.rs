//! What an HTTP request gets: the endpoint by path, the WebSocket upgrade,
//! and the plain answers (health, metrics).

use super::streamable::{self, Outcome, SseStream};
use super::ws::WsKind;
use super::{Env, TransportError};
use crate::metrics::{self, Snapshot};
use crate::proto::http1::{self, Method, RequestHead};
use crate::proto::ws::handshake;

/// Subprotocols offered on /mcp, in order of preference.
const MCP_SUBPROTOCOLS: &[&str] = &["mcp"];

/// What the connection does after a request was answered.
pub enum Next {
    /// Keep serving HTTP on this connection (if keep-alive allows).
    KeepGoing,
    /// Switch to WebSocket (the 101 is queued).
    Upgrade(WsKind),
    /// Serve an SSE response.
    Stream(SseStream),
    /// Move the connection to the shard owning the request's session.
    Handoff(usize),
    /// Gather every shard's metrics and answer with [`write_metrics`].
    Metrics,
}

/// Decides the response for one request and queues it in `out`.
pub fn route(
    env: &Env,
    head: &RequestHead,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Next {
    match route_or_refuse(env, head, body, keep_alive, out) {
        Ok(next) => next,
        Err(refusal) => {
            refusal.respond(out, keep_alive, env.metrics);
            Next::KeepGoing
        }
    }
}

fn route_or_refuse(
    env: &Env,
    head: &RequestHead,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Result<Next, TransportError> {
    env.policy.check(head).map_err(TransportError::Forbidden)?;
    let config = env.config;
    // A HEAD request is answered as GET: the connection drops the content.
    let reads = matches!(head.method(), Method::Get | Method::Head);
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
        "/echo" if config.echo => upgrade(env, head, WsKind::Echo, out)?,
        "/mcp" if handshake::is_upgrade_request(head) => upgrade(env, head, WsKind::Mcp, out)?,
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
    }
}

/// A WebSocket endpoint: upgrade when asked properly, say what is wrong otherwise.
fn upgrade(
    env: &Env,
    head: &RequestHead,
    kind: WsKind,
    out: &mut Vec<u8>,
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
    let accepted = handshake::accept(head, protocols).map_err(TransportError::Handshake)?;
    handshake::write_switching_protocols(out, &accepted);
    env.metrics.status(101);
    Ok(Next::Upgrade(kind))
}

/// Queues the answer to a `/metrics` scrape.
pub fn write_metrics(env: &Env, snapshots: &[Snapshot], keep_alive: bool, out: &mut Vec<u8>) {
    let text = metrics::render(snapshots);
    let content_type = [("content-type", "text/plain; version=0.0.4; charset=utf-8")];
    http1::write_response(out, 200, &content_type, text.as_bytes(), keep_alive);
    env.metrics.status(200);
}
