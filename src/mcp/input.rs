//! One MCP 2026-07-28 call's multi-round input: what the handler asked the client for, and
//! the answers it has.
//!
//! Spec (2026-07-28, basic/patterns/mrtr): instead of sending requests to the client, a
//! server answers `tools/call`, `prompts/get` or `resources/read` with `resultType:
//! "input_required"`, `inputRequests` and an opaque `requestState`; the client retries the
//! same request with `inputResponses` and the state. The handler runs again from the start
//! on each retry: the requests it makes are answered from the round's answers, and the first
//! one without an answer ends the round.

use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};

/// The answers a round starts with and the requests it collects.
#[derive(Debug)]
pub(crate) struct InputRound {
    /// Answers by key: this retry's `inputResponses` over those carried in the state.
    answers: Map<String, Value>,
    /// Rounds completed before this one.
    rounds: u32,
    /// The answers the handler used, carried into the next round's state.
    used: RefCell<Map<String, Value>>,
    /// Requests without an answer, by key.
    asked: RefCell<Map<String, Value>>,
    /// Set when the handler waits on a request without an answer.
    blocked: Cell<bool>,
    /// The first answer of the wrong shape, if any.
    invalid: RefCell<Option<String>>,
    /// Requests made without a key of the caller's, for the next automatic key.
    unnamed: Cell<u32>,
}

/// What a request the handler makes gets from the round.
#[derive(Debug, PartialEq)]
pub(crate) enum Lookup {
    /// The client answered it.
    Answered(Value),
    /// Not answered yet (or answered wrongly): the handler waits and the round ends.
    Waiting,
}

impl InputRound {
    /// A round with `answers` after `rounds` earlier ones.
    pub(crate) fn new(answers: Map<String, Value>, rounds: u32) -> Self {
        InputRound {
            answers,
            rounds,
            used: RefCell::default(),
            asked: RefCell::default(),
            blocked: Cell::new(false),
            invalid: RefCell::new(None),
            unnamed: Cell::new(0),
        }
    }

    /// Rounds completed before this one (0 on the first call).
    pub(crate) fn rounds(&self) -> u32 {
        self.rounds
    }

    /// The key for a request made without one: `input-1`, `input-2`, ... in the order the
    /// handler asks, which is the same on every run of a handler given the same answers.
    pub(crate) fn next_key(&self) -> String {
        let n = self.unnamed.get() + 1;
        self.unnamed.set(n);
        format!("input-{n}")
    }

    /// The answer to the request `method` with `params` under `key`, or `Waiting` (the request
    /// is then recorded for `inputRequests`).
    ///
    /// Spec (2026-07-28, mrtr): a server missing responses it needs "SHOULD respond with a new
    /// `InputRequiredResult` requesting the missing information again, rather than returning
    /// an error"; a malformed one SHOULD get a JSON-RPC error.
    pub(crate) fn lookup(&self, key: &str, method: &str, params: Value) -> Lookup {
        if let Some(answer) = self.answers.get(key) {
            match check_answer(method, answer) {
                Ok(()) => {
                    self.used
                        .borrow_mut()
                        .insert(key.to_owned(), answer.clone());
                    return Lookup::Answered(answer.clone());
                }
                Err(why) => {
                    self.invalid
                        .borrow_mut()
                        .get_or_insert_with(|| format!("inputResponses[\"{key}\"] {why}"));
                    return Lookup::Waiting;
                }
            }
        }
        let mut request = Map::new();
        request.insert("method".into(), Value::String(method.to_owned()));
        request.insert("params".into(), params);
        self.asked
            .borrow_mut()
            .insert(key.to_owned(), Value::Object(request));
        Lookup::Waiting
    }

    /// Marks the handler as waiting on an unanswered request.
    pub(crate) fn block(&self) {
        self.blocked.set(true);
    }

    /// Why the round cannot go on, once the handler is waiting: a malformed answer.
    pub(crate) fn invalid(&self) -> Option<String> {
        self.invalid.borrow().clone()
    }

    /// Whether the handler waits on a request the client has not answered (or answered
    /// wrongly: see [`InputRound::invalid`]).
    pub(crate) fn is_blocked(&self) -> bool {
        self.blocked.get()
    }

    /// The requests to send as `inputRequests`, and the answers to carry in the state.
    pub(crate) fn finish(&self) -> (Map<String, Value>, Map<String, Value>) {
        (self.asked.take(), self.used.take())
    }
}

/// Checks that `answer` has the shape of the result of `method`.
///
/// Spec (2026-07-28, schema): `InputResponses` maps keys to `CreateMessageResult |
/// ListRootsResult | ElicitResult`.
fn check_answer(method: &str, answer: &Value) -> Result<(), &'static str> {
    let Some(answer) = answer.as_object() else {
        return Err("must be an object");
    };
    let ok = match method {
        "elicitation/create" => matches!(
            answer.get("action").and_then(Value::as_str),
            Some("accept" | "decline" | "cancel")
        ),
        "sampling/createMessage" => {
            answer.get("role").is_some_and(Value::is_string)
                && answer.get("model").is_some_and(Value::is_string)
                && answer
                    .get("content")
                    .is_some_and(|c| c.is_object() || c.is_array())
        }
        "roots/list" => answer.get("roots").is_some_and(Value::is_array),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(match method {
            "elicitation/create" => "is not an ElicitResult (action: accept, decline or cancel)",
            "sampling/createMessage" => "is not a CreateMessageResult (role, content, model)",
            _ => "is not a ListRootsResult (roots)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round(answers: Value) -> InputRound {
        InputRound::new(answers.as_object().unwrap().clone(), 0)
    }

    #[test]
    fn answered_requests_resolve_and_are_carried() {
        let answer = json!({"action": "accept", "content": {"name": "Alice"}});
        let r = round(json!({"user_name": answer, "extra": 1}));
        assert_eq!(
            r.lookup("user_name", "elicitation/create", json!({})),
            Lookup::Answered(answer.clone())
        );
        assert!(!r.is_blocked());
        let (asked, used) = r.finish();
        assert!(asked.is_empty());
        // The extra key is ignored: only what the handler used goes into the state.
        assert_eq!(Value::Object(used), json!({"user_name": answer}));
    }

    #[test]
    fn unanswered_requests_are_collected_under_their_keys() {
        let r = round(json!({"wrong_key": {"action": "accept"}}));
        let first = r.next_key();
        assert_eq!(r.lookup(&first, "roots/list", json!({})), Lookup::Waiting);
        r.block();
        assert!(r.is_blocked());
        let (asked, _) = r.finish();
        assert_eq!(
            Value::Object(asked),
            json!({"input-1": {"method": "roots/list", "params": {}}})
        );
    }

    #[test]
    fn answers_of_the_wrong_shape_are_reported() {
        for (method, answer) in [
            ("elicitation/create", json!(12345)),
            ("elicitation/create", json!({"action": "maybe"})),
            ("sampling/createMessage", json!({"role": "assistant"})),
            ("roots/list", json!({"roots": {}})),
        ] {
            let r = round(json!({ "k": answer }));
            assert_eq!(r.lookup("k", method, json!({})), Lookup::Waiting);
            assert!(
                r.invalid().unwrap().starts_with("inputResponses[\"k\"]"),
                "{method}"
            );
        }
    }
}
