//! How the MCP layer reaches the client outside of a direct reply.

use crate::proto::jsonrpc::Id;

/// The transport side of one session, used for server-initiated messages
/// (progress, log messages, resource updates, server-to-client requests).
///
/// Implementations only queue: the dispatcher calls these methods from inside
/// a handler's poll, so they must not block or re-enter the dispatcher.
///
/// The peer that comes with a `resources/subscribe` request is kept in the
/// session's state to deliver `notifications/resources/updated` (with no
/// related request) until the last unsubscribe,
/// [`Dispatcher::end_session`](crate::mcp::Dispatcher::end_session), or the
/// session's drop. A peer holding its session strongly therefore keeps it
/// alive until `end_session`; hold it weakly to let it drop on its own.
pub trait Peer {
    /// Queues one serialized JSON-RPC message for the client; returns
    /// whether it was queued.
    ///
    /// `related_request` names the client request the message belongs to, so
    /// a transport with several streams (Streamable HTTP) can put it on that
    /// request's stream; `None` means it belongs to no request. A transport
    /// returns false instead of queueing past its outbound bound (a client
    /// that does not read), so a handler that sends without pausing learns
    /// that its notifications are not getting through.
    fn send(&self, message: Vec<u8>, related_request: Option<&Id>) -> bool;

    /// Ends the stream carrying `related_request`'s messages before its
    /// result, leaving the client to resume it (SEP-1699); a transport
    /// without per-request streams (WebSocket) has nothing to close.
    ///
    /// Spec (transports): "After the server has sent an SSE event with an
    /// event ID to the client, the server MAY close the connection (without
    /// terminating the SSE stream) at any time".
    fn close_stream(&self, related_request: &Id) {
        let _ = related_request;
    }
}
