//! Test doubles shared by the MCP layer's unit tests.

use crate::mcp::dispatch::Dispatcher;
use crate::mcp::peer::Peer;
use crate::mcp::registry::Registry;
use crate::mcp::session::{SessionRef, SessionState};
use crate::proto::jsonrpc::Id;
use futures_lite::future::block_on;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

/// Records what the dispatcher sends and which streams it closes.
#[derive(Default)]
pub(crate) struct TestPeer {
    pub(crate) sent: RefCell<Vec<(Value, Option<Id>)>>,
    pub(crate) closed: RefCell<Vec<Id>>,
}

impl Peer for TestPeer {
    fn send(&self, message: Vec<u8>, related_request: Option<&Id>) -> bool {
        let value = serde_json::from_slice(&message).expect("peer messages are JSON");
        self.sent
            .borrow_mut()
            .push((value, related_request.cloned()));
        true
    }

    fn close_stream(&self, related_request: &Id) {
        self.closed.borrow_mut().push(related_request.clone());
    }
}

impl TestPeer {
    /// Takes the messages sent so far, without their related ids.
    pub(crate) fn messages(&self) -> Vec<Value> {
        self.sent.take().into_iter().map(|(m, _)| m).collect()
    }
}

/// One session on a dispatcher, with a recording peer.
pub(crate) struct Harness {
    pub(crate) dispatcher: Dispatcher,
    pub(crate) session: SessionRef,
    pub(crate) peer: Rc<TestPeer>,
}

impl Harness {
    pub(crate) fn new(registry: Registry) -> Self {
        Harness::on(Dispatcher::new(Arc::new(registry)))
    }

    /// A new session on `dispatcher` (sharing its shard state).
    pub(crate) fn on(dispatcher: Dispatcher) -> Self {
        Harness {
            dispatcher,
            session: SessionState::new_ref(),
            peer: Rc::new(TestPeer::default()),
        }
    }

    pub(crate) fn builtin() -> Self {
        Harness::new(crate::fixtures::builtin(std::time::Duration::ZERO).build())
    }

    pub(crate) fn future(&self, message: &str) -> impl Future<Output = Option<Vec<u8>>> + 'static {
        let peer: Rc<dyn Peer> = self.peer.clone();
        self.dispatcher
            .handle(self.session.clone(), peer, message.as_bytes().to_vec())
    }

    pub(crate) fn raw(&self, message: &str) -> Option<Vec<u8>> {
        block_on(self.future(message))
    }

    pub(crate) fn send(&self, message: &str) -> Option<Value> {
        self.raw(message).map(|reply| {
            assert_valid_reply(&reply);
            serde_json::from_slice(&reply).expect("reply is JSON")
        })
    }

    pub(crate) fn reply(&self, message: Value) -> Value {
        self.send(&message.to_string()).expect("a reply")
    }

    pub(crate) fn init(&self, version: &str) -> Value {
        self.init_with(version, json!({}))
    }

    /// Initializes declaring these client capabilities.
    pub(crate) fn init_with(&self, version: &str, capabilities: Value) -> Value {
        let reply = self.reply(
            json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion": version, "capabilities": capabilities,
            "clientInfo": {"name":"t","version":"1"}}}),
        );
        assert_eq!(
            self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            None
        );
        reply
    }

    pub(crate) fn call(&self, id: i64, name: &str, arguments: Value) -> Value {
        self.reply(json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":arguments}}))
    }

    /// Sends a request and returns its reply.
    pub(crate) fn rpc(&self, id: i64, method: &str, params: Value) -> Value {
        self.reply(json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}))
    }
}

pub(crate) fn error_code(reply: &Value) -> i64 {
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

pub(crate) fn assert_valid_reply(bytes: &[u8]) {
    let v: Value = serde_json::from_slice(bytes).expect("reply is JSON");
    match &v {
        Value::Array(items) => {
            assert!(!items.is_empty(), "no empty batch replies");
            items.iter().for_each(check_one);
        }
        other => check_one(other),
    }
}
