//! How the MCP layer reaches the client outside of a direct reply.

use crate::proto::jsonrpc::Id;

/// The transport side of one session, used for server-initiated messages
/// (progress, log messages, and later server-to-client requests).
///
/// Implementations only queue: the dispatcher calls `send` from inside a
/// handler's poll, so it must not block or re-enter the dispatcher.
pub trait Peer {
    /// Queues one serialized JSON-RPC message for the client.
    ///
    /// `related_request` names the client request the message belongs to, so
    /// a transport with several streams (Streamable HTTP) can put it on that
    /// request's stream; `None` means it belongs to no request.
    fn send(&self, message: Vec<u8>, related_request: Option<&Id>);

    /// Ends the SSE stream of `related_request` before its response (SEP-1699); the client
    /// resumes with `Last-Event-ID`. Transports with nothing to end ignore it.
    fn close_stream(&self, _related_request: &Id) {}
}
