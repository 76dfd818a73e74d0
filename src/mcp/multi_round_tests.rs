//! MCP 2026-07-28 multi-round results through the dispatcher: one handler for both
//! revisions, and every way a `requestState` is refused.

use super::*;
use crate::mcp::stateless::RequestMeta;
use crate::mcp::testing::{error_code, Harness, TestPeer};
use futures_lite::future::{block_on, poll_once};
use serde_json::json;
use std::cell::RefCell;

const TOOL: &str = "test_input_required_result_elicitation";
const ROUNDS: &str = "test_input_required_result_multi_round";

fn dispatcher() -> Dispatcher {
    Dispatcher::new(Arc::new(
        crate::fixtures::builtin(std::time::Duration::ZERO).build(),
    ))
}

fn every_capability() -> Value {
    json!({"elicitation": {}, "sampling": {}, "roots": {}})
}

/// A 2026-07-28 `method` request with `params` from a client declaring `capabilities`.
fn stateless(d: &Dispatcher, capabilities: &Value, method: &str, params: Value) -> Value {
    let meta = RequestMeta {
        client_capabilities: RawValue::from_string(capabilities.to_string()).unwrap(),
        client_info: None,
        log_level: None,
        principal: None,
    };
    let message = json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params});
    let reply = block_on(d.handle_stateless(
        meta,
        Rc::new(TestPeer::default()),
        message.to_string().into_bytes(),
    ))
    .expect("a reply");
    serde_json::from_slice(&reply).unwrap()
}

fn call(d: &Dispatcher, name: &str, retry: Value) -> Value {
    let mut params = json!({"name": name, "arguments": {}});
    params
        .as_object_mut()
        .unwrap()
        .extend(retry.as_object().unwrap().clone());
    stateless(d, &every_capability(), "tools/call", params)
}

fn accept(property: &str, value: &str) -> Value {
    json!({"action": "accept", "content": {property: value}})
}

/// The first round of `name`: its input requests and state.
fn first_round(d: &Dispatcher, name: &str) -> (Value, String) {
    let reply = call(d, name, json!({}));
    let result = &reply["result"];
    assert_eq!(result["resultType"], "input_required", "{reply}");
    assert!(result.get("ttlMs").is_none(), "no caching hints: {reply}");
    let state = result["requestState"].as_str().unwrap().to_owned();
    (result["inputRequests"].clone(), state)
}

fn text(reply: &Value) -> &str {
    assert_eq!(reply["result"]["resultType"], "complete", "{reply}");
    reply["result"]["content"][0]["text"].as_str().unwrap()
}

/// The message of a -32602 refusal.
fn refused(reply: &Value) -> &str {
    assert_eq!(error_code(reply), -32602, "{reply}");
    reply["error"]["message"].as_str().unwrap()
}

#[test]
fn a_handler_asks_in_one_round_and_completes_on_the_retry() {
    let d = dispatcher();
    let (asked, state) = first_round(&d, TOOL);
    assert_eq!(asked["user_name"]["method"], "elicitation/create");
    let retry =
        json!({"inputResponses": {"user_name": accept("name", "Alice")}, "requestState": state});
    assert_eq!(text(&call(&d, TOOL, retry)), "Hello, Alice!");
}

#[test]
fn the_same_handler_sends_a_request_inside_a_2025_session() {
    let h = Harness::builtin();
    h.init_with("2025-11-25", json!({"elicitation": {}}));
    let reply = block_on(async {
        let pending = h.future(
            &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": TOOL, "arguments": {}}})
            .to_string(),
        );
        let mut pending = Box::pin(pending);
        assert!(poll_once(&mut pending).await.is_none());
        let sent = h.peer.messages();
        assert_eq!(sent[0]["method"], "elicitation/create", "{sent:?}");
        let answer = json!({"jsonrpc": "2.0", "id": sent[0]["id"], "result": accept("name", "Bo")});
        assert!(h.raw(&answer.to_string()).is_none());
        pending.await.unwrap()
    });
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["result"]["content"][0]["text"], "Hello, Bo!");
}

#[test]
fn answers_of_earlier_rounds_travel_in_the_state() {
    let d = dispatcher();
    let (asked, state) = first_round(&d, ROUNDS);
    let first = asked.as_object().unwrap().keys().next().unwrap().clone();
    let retry = json!({"inputResponses": {first: accept("name", "Alice")}, "requestState": state});
    let reply = call(&d, ROUNDS, retry);
    let second = &reply["result"];
    assert_eq!(second["resultType"], "input_required", "{reply}");
    let next_state = second["requestState"].as_str().unwrap();
    assert_ne!(next_state, state);
    let key = second["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap();
    let retry =
        json!({"inputResponses": {key: accept("color", "blue")}, "requestState": next_state});
    assert_eq!(
        text(&call(&d, ROUNDS, retry)),
        "Multi-round complete for Alice who likes blue"
    );
}

#[test]
fn a_missing_answer_is_asked_again_and_extra_ones_are_ignored() {
    let d = dispatcher();
    let reply = call(
        &d,
        TOOL,
        json!({"inputResponses": {"wrong_key": accept("name", "A")}}),
    );
    assert_eq!(reply["result"]["resultType"], "input_required", "{reply}");
    let retry = json!({"inputResponses": {"user_name": accept("name", "A"), "extra": 1}});
    assert_eq!(text(&call(&d, TOOL, retry)), "Hello, A!");
}

#[test]
fn malformed_answers_are_invalid_params() {
    let d = dispatcher();
    for responses in [json!(null), json!([1]), json!({"user_name": 12345})] {
        let reply = call(&d, TOOL, json!({ "inputResponses": responses }));
        refused(&reply);
    }
}

#[test]
fn only_what_the_client_declared_is_asked() {
    let d = dispatcher();
    let params = json!({"name": "test_input_required_result_capabilities", "arguments": {}});
    let reply = stateless(&d, &json!({"sampling": {}}), "tools/call", params);
    let asked = &reply["result"]["inputRequests"];
    let methods: Vec<&Value> = asked
        .as_object()
        .unwrap()
        .values()
        .map(|r| &r["method"])
        .collect();
    assert_eq!(methods, [&json!("sampling/createMessage")], "{reply}");
}

#[test]
fn prompts_ask_through_the_same_context() {
    let d = dispatcher();
    let params = json!({"name": "test_input_required_result_prompt"});
    let first = stateless(&d, &every_capability(), "prompts/get", params.clone());
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let mut retry = params;
    retry["inputResponses"] = json!({"user_context": accept("context", "tests")});
    retry["requestState"] = first["result"]["requestState"].clone();
    let done = stateless(&d, &every_capability(), "prompts/get", retry);
    assert_eq!(
        done["result"]["messages"][0]["content"]["text"],
        "Please help with: tests"
    );
}

#[test]
fn a_tampered_state_is_refused_and_counted() {
    let hits = Rc::new(RefCell::new(Vec::new()));
    let seen = Rc::clone(&hits);
    let d = dispatcher().with_limits(DispatchLimits::default(), move |hit| {
        seen.borrow_mut().push(hit)
    });
    let (_, state) = first_round(&d, TOOL);
    let retry = json!({"inputResponses": {"user_name": accept("name", "A")},
        "requestState": format!("{state}-TAMPERED")});
    assert!(refused(&call(&d, TOOL, retry)).contains("failed verification"));
    assert_eq!(*hits.borrow(), [Limit::RequestState]);
}

#[test]
fn an_expired_state_is_refused() {
    let seal = StateSeal::new(&[3u8; 32], Duration::ZERO).unwrap();
    let d = dispatcher().with_request_states(Arc::new(seal), 0, 1, |_, _| {
        Box::pin(std::future::ready(Err(StateError::LedgerUnreachable)))
    });
    let (_, state) = first_round(&d, TOOL);
    let retry =
        json!({"inputResponses": {"user_name": accept("name", "A")}, "requestState": state});
    assert!(refused(&call(&d, TOOL, retry)).contains("expired"));
}

#[test]
fn a_state_for_another_tool_or_other_arguments_is_refused() {
    let d = dispatcher();
    let (_, state) = first_round(&d, TOOL);
    let other = "test_input_required_result_tampered_state";
    let retry = json!({"inputResponses": {"input-1": accept("name", "A")}, "requestState": state});
    assert!(refused(&call(&d, other, retry)).contains("different request"));
    let params = json!({"name": TOOL, "arguments": {"x": 1}, "requestState": state,
        "inputResponses": {"user_name": accept("name", "A")}});
    let reply = stateless(&d, &every_capability(), "tools/call", params);
    assert!(refused(&reply).contains("different request"));
}

/// Two shards of one process: each records the states it sealed, and asks the other about
/// the other's.
fn two_shards() -> [Dispatcher; 2] {
    let seal = Arc::new(StateSeal::random(DEFAULT_STATE_TTL).unwrap());
    let cells: Rc<RefCell<Vec<Dispatcher>>> = Rc::default();
    let shard = |index: usize| {
        let cells = Rc::clone(&cells);
        dispatcher().with_request_states(Arc::clone(&seal), index, 2, move |owner, state_use| {
            let verdict = cells.borrow()[owner].accept_request_state_here(state_use);
            Box::pin(std::future::ready(verdict))
        })
    };
    let shards = [shard(0), shard(1)];
    cells.borrow_mut().extend(shards.iter().cloned());
    shards
}

#[test]
fn a_replayed_state_is_refused_on_any_shard() {
    let [a, b] = two_shards();
    let (_, state) = first_round(&a, TOOL);
    let retry =
        json!({"inputResponses": {"user_name": accept("name", "A")}, "requestState": state});
    assert_eq!(text(&call(&b, TOOL, retry.clone())), "Hello, A!");
    assert!(refused(&call(&a, TOOL, retry.clone())).contains("already used"));
    assert!(refused(&call(&b, TOOL, retry)).contains("already used"));
}

#[test]
fn resource_reads_ask_too_and_a_retried_read_is_not_cacheable() {
    use crate::mcp::registry::{CacheHints, CacheScope};
    use crate::mcp::resource::{Resource, ResourceBody, ResourceContents, ResourceRead};
    let day = CacheHints {
        ttl_ms: 86_400_000,
        scope: CacheScope::Public,
    };
    let registry = Registry::builder()
        .resource(
            Resource::new("test://greeting", "greeting").cache(day),
            |ctx: ToolContext, read: ResourceRead| async move {
                let answer = ctx.request_as("who", "elicitation/create", json!({
                    "message": "Who is reading?",
                    "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}))
                    .await?;
                let name = answer.pointer("/content/name").and_then(Value::as_str).unwrap_or("?");
                Ok(vec![ResourceContents::new(read.uri, ResourceBody::Text(format!("hi {name}")))])
            },
        )
        .static_resource(
            Resource::new("test://fixed", "fixed").cache(day),
            ResourceBody::Text("fixed".into()),
        )
        .build();
    let d = Dispatcher::new(Arc::new(registry));
    let read = |params: Value| stateless(&d, &every_capability(), "resources/read", params);
    let fixed = read(json!({"uri": "test://fixed"}));
    assert_eq!(fixed["result"]["ttlMs"], 86_400_000, "{fixed}");
    assert_eq!(fixed["result"]["cacheScope"], "public");
    let first = read(json!({"uri": "test://greeting"}));
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    assert!(first["result"].get("ttlMs").is_none());
    let done = read(
        json!({"uri": "test://greeting", "inputResponses": {"who": accept("name", "Ann")},
        "requestState": first["result"]["requestState"]}),
    );
    assert_eq!(done["result"]["contents"][0]["text"], "hi Ann", "{done}");
    assert_eq!(
        (&done["result"]["ttlMs"], &done["result"]["cacheScope"]),
        (&json!(0), &json!("private"))
    );
}
