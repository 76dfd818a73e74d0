//! Server-to-client requests (`sampling/createMessage`, `elicitation/create`,
//! ...): issuing them, and matching the client's answers to their waiters.

use crate::mcp::input::{InputRound, Lookup};
use crate::mcp::peer::Peer;
use crate::mcp::session::SessionRef;
use crate::proto::jsonrpc::{self, Id};
use crate::wake::WakeSlot;
use serde::Serialize;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// Why a server-to-client request produced no result.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientError {
    /// The client did not declare this capability in `initialize`; nothing was sent.
    Unsupported(&'static str),
    /// The client answered with a JSON-RPC error.
    Rejected {
        /// The error code.
        code: i64,
        /// The error message.
        message: String,
        /// The optional error data.
        data: Option<Value>,
    },
    /// The server could not issue the request or read the answer.
    Internal(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unsupported(cap) => {
                write!(f, "client did not declare the {cap} capability")
            }
            ClientError::Rejected { code, message, .. } => {
                write!(f, "client returned error {code}: {message}")
            }
            ClientError::Internal(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// Where a request's answer lands; shared by the session's pending map and
/// the waiting [`ClientRequest`].
#[derive(Default)]
pub(crate) struct Pending {
    outcome: RefCell<Option<Result<Value, ClientError>>>,
    answered: Cell<bool>,
    waiter: WakeSlot,
}

impl Pending {
    /// Delivers the client's answer and wakes the waiter.
    pub(crate) fn resolve(&self, outcome: Result<Value, ClientError>) {
        self.answered.set(true);
        *self.outcome.borrow_mut() = Some(outcome);
        self.waiter.wake();
    }
}

/// Checks that the client declared what `method` needs.
///
/// Spec (lifecycle): "Both parties **MUST**: ... Only use capabilities that
/// were successfully negotiated".
fn check_capability(
    client: Option<&Value>,
    method: &str,
    params: &Value,
) -> Result<(), ClientError> {
    let declared = |path: &[&str]| {
        path.iter()
            .try_fold(client?, |v, key| v.get(key))
            .filter(|v| v.is_object())
    };
    let require = |path: &[&str], name: &'static str| {
        declared(path)
            .map(|_| ())
            .ok_or(ClientError::Unsupported(name))
    };
    match method {
        "sampling/createMessage" => {
            require(&["sampling"], "sampling")?;
            // Spec (sampling): "Servers MUST NOT send tool-enabled sampling
            // requests to Clients that have not declared support for tool
            // use via the `sampling.tools` capability."
            if params.get("tools").is_some() {
                require(&["sampling", "tools"], "sampling.tools")?;
            }
            Ok(())
        }
        "elicitation/create" => {
            let elicitation = declared(&["elicitation"])
                .and_then(Value::as_object)
                .ok_or(ClientError::Unsupported("elicitation"))?;
            // Spec (elicitation): "Servers MUST NOT send elicitation requests
            // with modes that are not supported by the client." and "an empty
            // capabilities object is equivalent to declaring support for
            // `form` mode only".
            match params.get("mode").and_then(Value::as_str) {
                None | Some("form") if elicitation.is_empty() => Ok(()),
                None | Some("form") => require(&["elicitation", "form"], "elicitation.form"),
                Some("url") => require(&["elicitation", "url"], "elicitation.url"),
                Some(_) => Err(ClientError::Unsupported("elicitation mode")),
            }
        }
        "roots/list" => require(&["roots"], "roots"),
        _ => Ok(()),
    }
}

/// The answer to a server-to-client request; see
/// [`ToolContext::request`](crate::mcp::ToolContext::request).
///
/// The request is sent when this is created. Dropping it before the answer
/// arrives abandons the request and tells the client so.
pub struct ClientRequest {
    state: State,
}

enum State {
    Done(Option<Result<Value, ClientError>>),
    Waiting(Waiting),
    /// A 2026-07-28 request with no answer yet: it ends the call's round when awaited.
    Asked(Rc<InputRound>),
}

struct Waiting {
    id: Id,
    slot: Rc<Pending>,
    session: SessionRef,
    peer: Rc<dyn Peer>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CancelParams<'a> {
    request_id: &'a Id,
    reason: &'static str,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.slot.answered.get() {
            return;
        }
        match self.session.try_borrow_mut() {
            Ok(mut session) => {
                session.take_pending(&self.id);
            }
            Err(_) => log::warn!("session busy; server request {} left pending", self.id),
        }
        // Spec (lifecycle, timeouts): "the sender SHOULD issue a cancellation
        // notification for that request and stop waiting for a response."
        let params = CancelParams {
            request_id: &self.id,
            reason: "The server is no longer waiting for this request",
        };
        let mut out = Vec::new();
        match jsonrpc::write_notification(&mut out, "notifications/cancelled", Some(&params)) {
            Ok(()) => {
                self.peer.send(out, None);
            }
            Err(e) => log::warn!("cancellation not serializable: {e}"),
        }
    }
}

impl ClientRequest {
    fn done(outcome: Result<Value, ClientError>) -> Self {
        ClientRequest {
            state: State::Done(Some(outcome)),
        }
    }

    /// Checks the capability and takes the answer under `key` from a 2026-07-28 call's
    /// round, or records the request for the round's `inputRequests`.
    ///
    /// Spec (2026-07-28, mrtr): servers "MUST NOT send an `inputRequests` that the client
    /// has not declared support for in its capabilities".
    pub(crate) fn ask(
        round: &Rc<InputRound>,
        declared: Option<&Value>,
        key: String,
        method: &str,
        params: Value,
    ) -> Self {
        if let Err(e) = check_capability(declared, method, &params) {
            return Self::done(Err(e));
        }
        match round.lookup(&key, method, params) {
            Lookup::Answered(answer) => Self::done(Ok(answer)),
            Lookup::Waiting => ClientRequest {
                state: State::Asked(Rc::clone(round)),
            },
        }
    }

    /// Checks the capability, registers a waiter under a fresh id, and sends
    /// the request through `peer`, tagged with `related_request`.
    pub(crate) fn send(
        session: &SessionRef,
        peer: &Rc<dyn Peer>,
        related_request: Option<&Id>,
        method: &str,
        params: Value,
    ) -> Self {
        let slot = Rc::new(Pending::default());
        let id = {
            let Ok(mut state) = session.try_borrow_mut() else {
                return Self::done(Err(ClientError::Internal("session busy".to_owned())));
            };
            // Spec (2026-07-28, streamable-http): the server "MUST NOT send independent
            // JSON-RPC requests on this stream"; handlers of the revision ask through their
            // round (`ask`), and those without one cannot ask.
            if state.is_stateless() {
                return Self::done(Err(ClientError::Internal(
                    "server-to-client requests are not sent to 2026-07-28 clients".to_owned(),
                )));
            }
            // Parsed per request (rare) rather than kept parsed per session.
            let declared: Option<Value> = state
                .client_capabilities()
                .and_then(|raw| serde_json::from_str(raw.get()).ok());
            if let Err(e) = check_capability(declared.as_ref(), method, &params) {
                return Self::done(Err(e));
            }
            match state.add_pending(slot.clone()) {
                Some(id) => id,
                None => {
                    return Self::done(Err(ClientError::Internal(
                        "no request id available".to_owned(),
                    )))
                }
            }
        };
        // From here on, dropping `waiting` unregisters the id.
        let waiting = Waiting {
            id,
            slot,
            session: session.clone(),
            peer: peer.clone(),
        };
        let mut out = Vec::new();
        if let Err(e) = jsonrpc::write_request(&mut out, waiting.id.as_raw(), method, Some(&params))
        {
            waiting.slot.answered.set(true);
            if let Ok(mut state) = session.try_borrow_mut() {
                state.take_pending(&waiting.id);
            }
            return Self::done(Err(ClientError::Internal(format!(
                "request not serializable: {e}"
            ))));
        }
        if !peer.send(out, related_request) {
            // Not queued (the client is not reading): no answer will come.
            waiting.slot.answered.set(true);
            if let Ok(mut state) = session.try_borrow_mut() {
                state.take_pending(&waiting.id);
            }
            return Self::done(Err(ClientError::Internal(
                "request not sent: the client's stream is full".to_owned(),
            )));
        }
        ClientRequest {
            state: State::Waiting(waiting),
        }
    }
}

impl Future for ClientRequest {
    type Output = Result<Value, ClientError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let outcome = match &mut this.state {
            State::Done(outcome) => outcome.take(),
            State::Asked(round) => {
                // The dispatcher ends the round once the handler is pending on this.
                round.block();
                return Poll::Pending;
            }
            State::Waiting(waiting) => {
                let outcome = waiting.slot.outcome.borrow_mut().take();
                if outcome.is_none() {
                    waiting.slot.waiter.register(cx.waker());
                    return Poll::Pending;
                }
                outcome
            }
        };
        this.state = State::Done(None);
        Poll::Ready(
            outcome.unwrap_or_else(|| Err(ClientError::Internal("polled after completion".into()))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capabilities_gate_requests() {
        let none = None;
        let caps = json!({"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}});
        let form_only = json!({"elicitation": {"form": {}}});
        let url_only = json!({"elicitation": {"url": {}}, "sampling": {"tools": {}}});
        type Case<'a> = (Option<&'a Value>, &'a str, Value, Result<(), ClientError>);
        let cases: &[Case<'_>] = &[
            (
                none,
                "sampling/createMessage",
                json!({}),
                Err(ClientError::Unsupported("sampling")),
            ),
            (
                none,
                "elicitation/create",
                json!({}),
                Err(ClientError::Unsupported("elicitation")),
            ),
            (
                none,
                "roots/list",
                json!({}),
                Err(ClientError::Unsupported("roots")),
            ),
            (none, "ping", json!({}), Ok(())),
            (Some(&caps), "sampling/createMessage", json!({}), Ok(())),
            (
                Some(&caps),
                "sampling/createMessage",
                json!({"tools": []}),
                Err(ClientError::Unsupported("sampling.tools")),
            ),
            (
                Some(&url_only),
                "sampling/createMessage",
                json!({"tools": []}),
                Ok(()),
            ),
            (
                Some(&caps),
                "elicitation/create",
                json!({"mode": "form"}),
                Ok(()),
            ),
            (
                Some(&caps),
                "elicitation/create",
                json!({"mode": "url"}),
                Err(ClientError::Unsupported("elicitation.url")),
            ),
            (Some(&form_only), "elicitation/create", json!({}), Ok(())),
            (
                Some(&url_only),
                "elicitation/create",
                json!({}),
                Err(ClientError::Unsupported("elicitation.form")),
            ),
            (
                Some(&url_only),
                "elicitation/create",
                json!({"mode": "url"}),
                Ok(()),
            ),
            (
                Some(&caps),
                "elicitation/create",
                json!({"mode": "telepathy"}),
                Err(ClientError::Unsupported("elicitation mode")),
            ),
            (Some(&caps), "roots/list", json!({}), Ok(())),
            (
                Some(&json!({"sampling": true})),
                "sampling/createMessage",
                json!({}),
                Err(ClientError::Unsupported("sampling")),
            ),
        ];
        for (client, method, params, expected) in cases {
            assert_eq!(
                &check_capability(*client, method, params),
                expected,
                "{method} {params}"
            );
        }
    }

    #[test]
    fn a_client_error_met_with_question_mark_is_a_tool_failure() {
        let e = ClientError::Rejected {
            code: -1,
            message: "no".into(),
            data: None,
        };
        let e: crate::mcp::tool::ToolError = e.into();
        assert_eq!(e.to_string(), "failed: client returned error -1: no");
    }
}
