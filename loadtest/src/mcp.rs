//! The JSON-RPC messages a client sends, and just enough parsing of what
//! comes back to match replies to requests and check them.

use crate::cli::Protocol;
use ringmcp::proto::jsonrpc;
use serde::Deserialize;
use serde_json::Value;

/// The protocol version the client asks for in `initialize`.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// The revision whose requests carry their own context instead of a session's.
pub const STATELESS_VERSION: &str = "2026-07-28";

/// The `initialize` request (id 0).
pub fn initialize() -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"ringmcp-load","version":"{}"}}}}}}"#,
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

/// The `notifications/initialized` notification.
pub fn initialized() -> &'static [u8] {
    br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
}

/// The `_meta` member of every MCP 2026-07-28 request's `params` (`"_meta":{...}`, no
/// comma): what `initialize` told a session once.
///
/// Spec (2026-07-28, basic/lifecycle): every request carries
/// `io.modelcontextprotocol/protocolVersion`, `io.modelcontextprotocol/clientCapabilities`
/// and `io.modelcontextprotocol/clientInfo` in `_meta`.
pub fn stateless_meta() -> String {
    format!(
        r#""_meta":{{"io.modelcontextprotocol/protocolVersion":"{STATELESS_VERSION}","io.modelcontextprotocol/clientCapabilities":{{}},"io.modelcontextprotocol/clientInfo":{{"name":"ringmcp-load","version":"{}"}}}}"#,
        env!("CARGO_PKG_VERSION")
    )
}

/// A `tools/call echo` request with a message of `payload` bytes, split so the id can be
/// spliced in without re-serialising the payload.
#[derive(Debug, Clone)]
pub struct EchoTemplate {
    prefix: &'static [u8],
    suffix: Vec<u8>,
}

/// The echo message of `payload` bytes: ASCII letters, nothing JSON has to escape.
pub fn echo_message(payload: usize) -> String {
    (0..payload)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect()
}

impl EchoTemplate {
    /// A template whose message is [`echo_message`] of `payload` bytes.
    pub fn new(payload: usize) -> EchoTemplate {
        EchoTemplate::with_meta(payload, "")
    }

    /// The same request in MCP 2026-07-28 shape, with [`stateless_meta`] in `params`.
    pub fn stateless(payload: usize) -> EchoTemplate {
        EchoTemplate::with_meta(payload, &format!(",{}", stateless_meta()))
    }

    /// The request in `protocol`'s shape: [`EchoTemplate::new`] or [`EchoTemplate::stateless`].
    pub fn speaking(protocol: Protocol, payload: usize) -> EchoTemplate {
        match protocol {
            Protocol::Session => EchoTemplate::new(payload),
            Protocol::Stateless => EchoTemplate::stateless(payload),
        }
    }

    /// `meta` is spliced into `params` after `arguments`: empty, or `,"_meta":{...}`.
    fn with_meta(payload: usize, meta: &str) -> EchoTemplate {
        let message = echo_message(payload);
        EchoTemplate {
            prefix: br#"{"jsonrpc":"2.0","id":"#,
            suffix: format!(
                r#","method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{message}"}}{meta}}}}}"#
            )
            .into_bytes(),
        }
    }

    /// Appends the request with `id`.
    pub fn write(&self, out: &mut Vec<u8>, id: u64) {
        out.extend_from_slice(self.prefix);
        // Writing into a Vec cannot fail.
        let _ = std::io::Write::write_fmt(out, format_args!("{id}"));
        out.extend_from_slice(&self.suffix);
    }

    /// Length of a request with `id`.
    pub fn len(&self, id: u64) -> usize {
        self.prefix.len() + self.suffix.len() + decimal_len(id)
    }
}

fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// A `tools/call stream` request: `count` notifications of `bytes` bytes, `interval_ms` apart,
/// numbered from `from` (the argument is left out for 1, its default, so servers without it
/// get the same request as before).
pub fn stream_call(id: u64, from: u64, count: u64, interval_ms: u64, bytes: usize) -> Vec<u8> {
    let from = match from {
        1 => String::new(),
        n => format!(r#","from":{n}"#),
    };
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"stream","arguments":{{"count":{count},"interval_ms":{interval_ms},"bytes":{bytes}{from}}}}}}}"#
    )
    .into_bytes()
}

/// The JSON-RPC error code ringmcp ends a request with, on the stream a client resumed on
/// another node, when the node that ran the request's handler stopped before answering.
pub const REQUEST_LOST: i64 = jsonrpc::REQUEST_LOST;

/// The members of that error the load generator checks.
#[derive(Deserialize)]
struct RequestLostError {
    error: RequestLostBody,
}

#[derive(Deserialize)]
struct RequestLostBody {
    code: i64,
    #[serde(default)]
    data: Option<RequestLostData>,
}

#[derive(Deserialize)]
struct RequestLostData {
    #[serde(default)]
    retry: bool,
}

/// Whether `bytes` is the [`REQUEST_LOST`] error that asks the client to retry:
/// `{"jsonrpc":"2.0","id":…,"error":{"code":-31000,…,"data":{"retry":true}}}`. The same code
/// without `data.retry` is an error like any other.
pub fn asks_retry_after_request_lost(bytes: &[u8]) -> bool {
    serde_json::from_slice::<RequestLostError>(bytes)
        .is_ok_and(|e| e.error.code == REQUEST_LOST && e.error.data.is_some_and(|d| d.retry))
}

/// A `subscriptions/listen` request (MCP 2026-07-28) for tool-list changes.
pub fn listen_request(id: u64) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"subscriptions/listen","params":{{"notifications":{{"toolsListChanged":true}},{}}}}}"#,
        stateless_meta()
    )
    .into_bytes()
}

/// A `tools/call` of the tool `name` (written as is: a plain tool name) with no arguments, in
/// MCP 2026-07-28 shape.
pub fn stateless_tool_call(id: u64, name: &str) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{{}},{}}}}}"#,
        stateless_meta()
    )
    .into_bytes()
}

/// A message on a listen stream, as far as the listen scenario reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenMessage {
    /// `notifications/subscriptions/acknowledged`: its subscription id, and whether the server
    /// agreed to send tool-list changes.
    Acknowledged {
        /// `params._meta["io.modelcontextprotocol/subscriptionId"]`, if a number.
        subscription_id: Option<u64>,
        /// `params.notifications.toolsListChanged`.
        tools_list_changed: bool,
    },
    /// `notifications/tools/list_changed`.
    ToolsListChanged {
        /// `params._meta["io.modelcontextprotocol/subscriptionId"]`, if a number.
        subscription_id: Option<u64>,
    },
    /// Anything else: a reply, another notification, not JSON.
    Other,
}

/// The members of a listen stream's notification the listen scenario reads.
#[derive(Deserialize)]
struct StreamNotification {
    method: String,
    #[serde(default)]
    params: StreamParams,
}

#[derive(Deserialize, Default)]
struct StreamParams {
    #[serde(rename = "_meta", default)]
    meta: SubscriptionMeta,
    #[serde(default)]
    notifications: AgreedNotifications,
}

#[derive(Deserialize, Default)]
struct SubscriptionMeta {
    #[serde(rename = "io.modelcontextprotocol/subscriptionId", default)]
    subscription_id: Option<Value>,
}

#[derive(Deserialize, Default)]
struct AgreedNotifications {
    #[serde(rename = "toolsListChanged", default)]
    tools_list_changed: bool,
}

/// Reads one message of a listen stream.
pub fn listen_message(bytes: &[u8]) -> ListenMessage {
    let Ok(StreamNotification { method, params }) = serde_json::from_slice(bytes) else {
        return ListenMessage::Other;
    };
    let subscription_id = params.meta.subscription_id.as_ref().and_then(Value::as_u64);
    match method.as_str() {
        "notifications/subscriptions/acknowledged" => ListenMessage::Acknowledged {
            subscription_id,
            tools_list_changed: params.notifications.tools_list_changed,
        },
        "notifications/tools/list_changed" => ListenMessage::ToolsListChanged { subscription_id },
        _ => ListenMessage::Other,
    }
}

/// What a server message was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A successful response to request `id`.
    Result {
        /// The request id.
        id: u64,
        /// A tool result with `isError: true`.
        tool_error: bool,
        /// What the result's `resultType` says.
        result_type: ResultType,
    },
    /// An error response (`id` absent when the server could not tell).
    Error {
        /// The request id, if numeric.
        id: Option<u64>,
        /// The JSON-RPC error code.
        code: i64,
    },
    /// A notification or server-to-client request.
    Notification,
    /// Not a JSON-RPC message we understand.
    Invalid,
}

/// A result's `resultType` (MCP 2026-07-28; results of the earlier revisions have none).
///
/// Spec (2026-07-28, basic/index): "The `result` MUST include a `resultType` field";
/// `"complete"` is a final result, anything else (`"input_required"`) asks the client for
/// another round, so a request is not answered until a complete one comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultType {
    /// No `resultType` (or `null`): a 2025 result, or a 2026 result that breaks the rule
    /// above.
    Absent,
    /// `"resultType":"complete"`.
    Complete,
    /// Any other value, or one that is not a string.
    Other,
}

/// The one member of a result the load generator reads for [`ResultType`].
#[derive(Deserialize)]
struct ResultTypeMember {
    #[serde(rename = "resultType", default)]
    result_type: Option<Value>,
}

/// A result's [`ResultType`], read without a parse in the common shapes, exactly as
/// [`is_tool_error`] reads `isError`: ringmcp puts `resultType` first, so a result that
/// starts `{"resultType":"complete"` followed by `,` or `}` has it (a valid object has
/// each key once); a result with neither `resultType` nor a `\u` escape has none.
fn result_type(result: &str) -> ResultType {
    if let Some(rest) = result.strip_prefix(r#"{"resultType":"complete""#) {
        if rest.starts_with([',', '}']) {
            return ResultType::Complete;
        }
    }
    if !result.contains("resultType") && !result.contains("\\u") {
        return ResultType::Absent;
    }
    match serde_json::from_str::<ResultTypeMember>(result) {
        Ok(ResultTypeMember { result_type: None }) => ResultType::Absent,
        Ok(ResultTypeMember {
            result_type: Some(Value::String(t)),
        }) if t == "complete" => ResultType::Complete,
        _ => ResultType::Other,
    }
}

/// Why a result to a `tools/call` in `protocol` does not finish it (an error-count key), if
/// it does not: a 2025 result has no `resultType`; a 2026 one must say it is complete.
pub fn unfinished(protocol: Protocol, result_type: ResultType) -> Option<&'static str> {
    match (protocol, result_type) {
        (Protocol::Session, _) | (_, ResultType::Complete) => None,
        (_, ResultType::Absent) => Some("result_type_missing"),
        (_, ResultType::Other) => Some("result_not_complete"),
    }
}

/// The one member of a tool result the load generator reads.
#[derive(Deserialize)]
struct ToolResult {
    #[serde(rename = "isError", default)]
    is_error: bool,
}

/// Whether a `tools/call` result says `isError: true`. This runs for every reply, and a second
/// parse of the result costs about as much as the first of the message, so the two common
/// shapes are read without one, exactly: a JSON key is spelt literally or with `\u` escapes,
/// so a result with neither has no `isError`; and a valid object that ends with
/// `,"isError":false}` (what ringmcp sends) has that as its last top-level member (a quote
/// after `,` or `{` opens a string, and one followed by `:` is a key).
fn is_tool_error(result: &str) -> bool {
    if !result.contains("isError") && !result.contains("\\u") {
        return false;
    }
    if let Some(rest) = result.strip_suffix(r#""isError":false}"#) {
        if rest.ends_with([',', '{']) {
            return false;
        }
    }
    serde_json::from_str::<ToolResult>(result).is_ok_and(|r| r.is_error)
}

/// Classifies one JSON-RPC message from the server (ringmcp's client-role
/// [`jsonrpc::classify`]), reading `isError` from results. Our requests carry integer ids.
pub fn classify(bytes: &[u8]) -> Incoming {
    match jsonrpc::classify(bytes) {
        jsonrpc::Incoming::Reply { id, outcome } => match (id.as_u64(), outcome) {
            (Some(id), Ok(result)) => Incoming::Result {
                id,
                tool_error: is_tool_error(result.get()),
                result_type: result_type(result.get()),
            },
            (id, Err(error)) => Incoming::Error {
                id,
                code: error.code,
            },
            (None, Ok(_)) => Incoming::Invalid,
        },
        jsonrpc::Incoming::UntiedError(error) => Incoming::Error {
            id: None,
            code: error.code,
        },
        jsonrpc::Incoming::FromServer { .. } => Incoming::Notification,
        jsonrpc::Incoming::Invalid => Incoming::Invalid,
    }
}

/// The negotiated protocol version in an `initialize` result.
pub fn negotiated_version(bytes: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    v.get("result")?
        .get("protocolVersion")?
        .as_str()
        .map(str::to_owned)
}

/// What a streamed notification says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventFacts {
    /// Its sequence number within the stream, if it carries one.
    pub seq: Option<u64>,
    /// When the server sent it, µs since the UNIX epoch, if it says.
    pub sent_us: Option<u64>,
}

/// Reads the sequence number and send timestamp of a `notifications/message` or
/// `notifications/progress` (several plausible field names, so other servers work too).
pub fn event_facts(bytes: &[u8]) -> EventFacts {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return EventFacts::default();
    };
    let Some(params) = v.get("params") else {
        return EventFacts::default();
    };
    let data = params.get("data");
    let pick = |names: &[&str]| -> Option<u64> {
        for name in names {
            for holder in [data, Some(params), params.get("_meta")]
                .into_iter()
                .flatten()
            {
                if let Some(n) = holder.get(*name).and_then(Value::as_u64) {
                    return Some(n);
                }
            }
        }
        None
    };
    // ringmcp's `stream` tool logs text that starts with the sequence number: "17 xxxx".
    let leading_number = || {
        let text = data
            .and_then(Value::as_str)
            .or_else(|| params.get("message")?.as_str())?;
        let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        text[..digits].parse().ok()
    };
    EventFacts {
        seq: pick(&["seq", "sequence", "index", "i"])
            .or_else(|| params.get("progress").and_then(Value::as_u64))
            .or_else(leading_number),
        sent_us: pick(&["ts_us", "sent_at_us", "timestamp_us", "time_us"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_template_is_valid_json_with_the_id() {
        let t = EchoTemplate::new(40);
        let mut out = Vec::new();
        t.write(&mut out, 12345);
        assert_eq!(out.len(), t.len(12345));
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["id"], 12345);
        assert_eq!(v["params"]["name"], "echo");
        assert_eq!(
            v["params"]["arguments"]["message"].as_str().map(str::len),
            Some(40)
        );
        for msg in [
            initialize(),
            initialized().to_vec(),
            stream_call(3, 1, 10, 5, 256),
            stream_call(3, 7, 10, 5, 256),
        ] {
            serde_json::from_slice::<Value>(&msg).expect("json");
        }
    }

    #[test]
    fn a_stream_call_names_its_first_number_unless_it_is_1() {
        let v: Value = serde_json::from_slice(&stream_call(4, 1, 10, 5, 64)).expect("json");
        assert_eq!(
            v["params"]["arguments"],
            serde_json::json!({"count": 10, "interval_ms": 5, "bytes": 64})
        );
        let v: Value = serde_json::from_slice(&stream_call(5, 7, 4, 5, 64)).expect("json");
        assert_eq!(v["id"], 5);
        assert_eq!(
            v["params"]["arguments"],
            serde_json::json!({"count": 4, "interval_ms": 5, "bytes": 64, "from": 7})
        );
    }

    #[test]
    fn recognises_the_request_lost_error() {
        let stopped = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-31000,"message":"the node handling this request stopped before answering; retry the request","data":{"retry":true}}}"#;
        assert!(asks_retry_after_request_lost(stopped));
        assert_eq!(
            classify(stopped),
            Incoming::Error {
                id: Some(1),
                code: REQUEST_LOST
            }
        );
        for other in [
            // The code alone, or a retry the server does not advise.
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-31000,"message":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-31000,"message":"x","data":{"retry":false}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"x","data":{"retry":true}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            "not json",
        ] {
            assert!(!asks_retry_after_request_lost(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn classifies_server_messages() {
        assert_eq!(
            classify(br#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#),
            Incoming::Result {
                id: 7,
                tool_error: false,
                result_type: ResultType::Absent,
            }
        );
        assert_eq!(
            classify(br#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":true}}"#),
            Incoming::Result {
                id: 7,
                tool_error: true,
                result_type: ResultType::Absent,
            }
        );
        assert_eq!(
            classify(br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#),
            Incoming::Error {
                id: None,
                code: -32700
            }
        );
        assert_eq!(
            classify(br#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#),
            Incoming::Notification
        );
        assert_eq!(classify(b"not json"), Incoming::Invalid);
        for (result, tool_error) in [
            (r#"{"content":[],"isError":false}"#, false),
            (r#"{"isError":false}"#, false),
            (r#"{"content":[],"isError":true}"#, true),
            (r#"{"isError" : true, "content":[]}"#, true),
            (r#"{"\u0069sError":true}"#, true),
            (r#"{"x\"isError":false}"#, false),
            (r#"{"content":[{"type":"text","text":"isError"}]}"#, false),
        ] {
            let reply = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{result}}}"#);
            assert_eq!(
                classify(reply.as_bytes()),
                Incoming::Result {
                    id: 1,
                    tool_error,
                    result_type: ResultType::Absent
                },
                "{result}"
            );
        }
        assert_eq!(
            classify(br#"{"jsonrpc":"2.0","id":"s","result":{}}"#),
            Incoming::Invalid
        );
        assert_eq!(
            negotiated_version(
                br#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18"}}"#
            ),
            Some("2025-06-18".into())
        );
    }

    #[test]
    fn reads_the_2026_result_type() {
        for (result, result_type, tool_error) in [
            // What ringmcp answers a 2026-07-28 tools/call with.
            (
                r#"{"resultType":"complete","content":[{"type":"text","text":"hi"}],"isError":false}"#,
                ResultType::Complete,
                false,
            ),
            (r#"{"resultType":"complete"}"#, ResultType::Complete, false),
            (
                r#"{"resultType":"complete","isError":true}"#,
                ResultType::Complete,
                true,
            ),
            (
                r#"{"content":[],"resultType" : "complete"}"#,
                ResultType::Complete,
                false,
            ),
            (
                r#"{"result\u0054ype":"complete"}"#,
                ResultType::Complete,
                false,
            ),
            (
                r#"{"resultType":"compl\u0065te"}"#,
                ResultType::Complete,
                false,
            ),
            (r#"{"resultType":"completed"}"#, ResultType::Other, false),
            (r#"{"resultType":"complete_"}"#, ResultType::Other, false),
            (
                r#"{"resultType":"input_required","inputRequests":{}}"#,
                ResultType::Other,
                false,
            ),
            // null counts as absent; either way not a complete result.
            (r#"{"resultType":null}"#, ResultType::Absent, false),
            (r#"{"resultType":1}"#, ResultType::Other, false),
            (
                r#"{"content":[],"isError":false}"#,
                ResultType::Absent,
                false,
            ),
            (
                r#"{"content":[{"type":"text","text":"resultType"}]}"#,
                ResultType::Absent,
                false,
            ),
            (r#"{"x\"resultType":"complete"}"#, ResultType::Absent, false),
        ] {
            let reply = format!(r#"{{"jsonrpc":"2.0","id":3,"result":{result}}}"#);
            assert_eq!(
                classify(reply.as_bytes()),
                Incoming::Result {
                    id: 3,
                    tool_error,
                    result_type
                },
                "{result}"
            );
        }
    }

    #[test]
    fn a_2026_result_must_say_it_is_complete() {
        for (protocol, result_type, want) in [
            (Protocol::Session, ResultType::Absent, None),
            (Protocol::Session, ResultType::Other, None),
            (Protocol::Stateless, ResultType::Complete, None),
            (
                Protocol::Stateless,
                ResultType::Absent,
                Some("result_type_missing"),
            ),
            (
                Protocol::Stateless,
                ResultType::Other,
                Some("result_not_complete"),
            ),
        ] {
            assert_eq!(unfinished(protocol, result_type), want, "{result_type:?}");
        }
    }

    #[test]
    fn each_protocol_gets_its_own_echo_shape() {
        let written = |t: EchoTemplate| {
            let mut out = Vec::new();
            t.write(&mut out, 3);
            out
        };
        assert_eq!(
            written(EchoTemplate::speaking(Protocol::Session, 8)),
            written(EchoTemplate::new(8))
        );
        assert_eq!(
            written(EchoTemplate::speaking(Protocol::Stateless, 8)),
            written(EchoTemplate::stateless(8))
        );
    }

    #[test]
    fn stateless_echo_template_carries_meta() {
        let t = EchoTemplate::stateless(10);
        let mut out = Vec::new();
        t.write(&mut out, 7);
        assert_eq!(out.len(), t.len(7));
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["id"], 7);
        assert_eq!(v["method"], "tools/call");
        assert_eq!(v["params"]["name"], "echo");
        assert_eq!(v["params"]["arguments"]["message"], "abcdefghij");
        let meta = &v["params"]["_meta"];
        assert_eq!(
            meta["io.modelcontextprotocol/protocolVersion"],
            STATELESS_VERSION
        );
        assert_eq!(
            meta["io.modelcontextprotocol/clientCapabilities"],
            serde_json::json!({})
        );
        assert_eq!(
            meta["io.modelcontextprotocol/clientInfo"]["name"],
            "ringmcp-load"
        );
        // The 2025 shape has no _meta.
        let mut out = Vec::new();
        EchoTemplate::new(10).write(&mut out, 7);
        let v: Value = serde_json::from_slice(&out).expect("json");
        assert!(v["params"].get("_meta").is_none());
    }

    #[test]
    fn listen_requests_carry_the_2026_meta() {
        for (message, method) in [
            (listen_request(5), "subscriptions/listen"),
            (
                stateless_tool_call(5, "test_trigger_tool_change"),
                "tools/call",
            ),
        ] {
            let v: Value = serde_json::from_slice(&message).expect("json");
            assert_eq!(v["id"], 5);
            assert_eq!(v["method"], method);
            assert_eq!(
                v["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
                STATELESS_VERSION
            );
        }
        let v: Value = serde_json::from_slice(&listen_request(1)).expect("json");
        assert_eq!(
            v["params"]["notifications"],
            serde_json::json!({"toolsListChanged": true})
        );
        let v: Value = serde_json::from_slice(&stateless_tool_call(1, "test_trigger_tool_change"))
            .expect("json");
        assert_eq!(v["params"]["name"], "test_trigger_tool_change");
        assert_eq!(v["params"]["arguments"], serde_json::json!({}));
    }

    #[test]
    fn reads_listen_stream_messages() {
        for (message, want) in [
            (
                r#"{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":7},"notifications":{"toolsListChanged":true}}}"#,
                ListenMessage::Acknowledged {
                    subscription_id: Some(7),
                    tools_list_changed: true,
                },
            ),
            // The server agreed to nothing.
            (
                r#"{"jsonrpc":"2.0","method":"notifications/subscriptions/acknowledged","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":7},"notifications":{}}}"#,
                ListenMessage::Acknowledged {
                    subscription_id: Some(7),
                    tools_list_changed: false,
                },
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":12}}}"#,
                ListenMessage::ToolsListChanged {
                    subscription_id: Some(12),
                },
            ),
            // Untagged, or tagged with what cannot be our numeric id.
            (
                r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
                ListenMessage::ToolsListChanged {
                    subscription_id: None,
                },
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed","params":{"_meta":{"io.modelcontextprotocol/subscriptionId":"12"}}}"#,
                ListenMessage::ToolsListChanged {
                    subscription_id: None,
                },
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/prompts/list_changed","params":{}}"#,
                ListenMessage::Other,
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"result":{"resultType":"complete"}}"#,
                ListenMessage::Other,
            ),
            ("not json", ListenMessage::Other),
        ] {
            assert_eq!(listen_message(message.as_bytes()), want, "{message}");
        }
    }

    #[test]
    fn event_facts_from_message_and_progress() {
        let f = event_facts(
            br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":{"seq":4,"ts_us":1700000000000000,"pad":"xx"}}}"#,
        );
        assert_eq!(f.seq, Some(4));
        assert_eq!(f.sent_us, Some(1_700_000_000_000_000));
        let f = event_facts(
            br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":9,"total":10}}"#,
        );
        assert_eq!(f.seq, Some(9));
        assert_eq!(f.sent_us, None);
        let f = event_facts(
            br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"17 xxxx"}}"#,
        );
        assert_eq!(f.seq, Some(17));
        assert_eq!(event_facts(b"{}"), EventFacts::default());
    }
}
