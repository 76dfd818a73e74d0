//! The built-in fixtures (src/fixtures.rs, the binary's registry) driven through the
//! dispatcher: kept in the library's unit tests because they need its test harness.

use crate::fixtures::*;
use crate::mcp::testing::{error_code, Harness};
use crate::mcp::version;
use crate::proto::jsonrpc::{Id, INVALID_PARAMS};
use futures_lite::future::{block_on, poll_once};
use serde_json::{json, Value};

fn harness() -> Harness {
    let h = Harness::builtin();
    h.init_with(version::LATEST, json!({"sampling": {}, "elicitation": {}}));
    h
}

fn result_of(h: &Harness, name: &str, arguments: Value) -> Value {
    h.call(1, name, arguments)["result"].clone()
}

#[test]
fn tools_list_satisfies_the_sdk() {
    let h = harness();
    let tools = h.rpc(1, "tools/list", json!({}))["result"]["tools"].clone();
    let tools = tools.as_array().expect("tools");
    let names: Vec<_> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for name in [
        "test_simple_text",
        "test_image_content",
        "test_audio_content",
        "test_embedded_resource",
        "test_multiple_content_types",
        "test_tool_with_logging",
        "test_tool_with_progress",
        "test_error_handling",
        "test_reconnection",
        "test_sampling",
        "test_elicitation",
        "test_elicitation_sep1034_defaults",
        "test_elicitation_sep1330_enums",
        "json_schema_2020_12_tool",
        "echo",
        "payload",
        "stream",
        "touch_resource",
        "test_missing_capability",
        "test_logging_tool",
        "test_streaming_elicitation",
        "test_header_param",
        "test_trigger_tool_change",
        "describe_number",
        "test_trigger_prompt_change",
        "test_input_required_result_elicitation",
        "test_input_required_result_sampling",
        "test_input_required_result_list_roots",
        "test_input_required_result_request_state",
        "test_input_required_result_multiple_inputs",
        "test_input_required_result_multi_round",
        "test_input_required_result_tampered_state",
        "test_input_required_result_capabilities",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(tools.len(), 33);
    // The first listed tool runs with no arguments (the 2026-07-28 suite calls it with {}).
    assert_eq!(tools[0]["inputSchema"]["properties"], json!({}));
    for tool in tools {
        assert!(
            tool["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{tool}"
        );
        assert_eq!(tool["inputSchema"]["type"], json!("object"), "{tool}");
        // Spec (2025-11-25, schema): `outputSchema` has `type: "object"` like `inputSchema`.
        if let Some(output) = tool.get("outputSchema") {
            assert_eq!(output["type"], json!("object"), "{tool}");
        }
    }
    let schema = tools
        .iter()
        .find(|t| t["name"] == json!("json_schema_2020_12_tool"))
        .expect("tool");
    assert_eq!(
        schema,
        &json!({"name":"json_schema_2020_12_tool","description":"Tool with JSON Schema 2020-12 features",
            "inputSchema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
            "$defs":{"address":{"$anchor":"address","type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},
            "properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"}},
            "allOf":[{"anyOf":[{"required":["name"]},{"required":["address"]}]}],
            "if":{"required":["address"]},"then":{"properties":{"address":{"required":["city"]}}},
            "else":{"required":["name"]},
            "additionalProperties":false}})
    );
    let sampling = tools
        .iter()
        .find(|t| t["name"] == json!("test_sampling"))
        .expect("tool");
    assert_eq!(
        sampling["inputSchema"],
        json!({"type":"object","properties":{"prompt":{"type":"string","description":"The prompt to send to the LLM"}},"required":["prompt"]})
    );
    let simple = tools
        .iter()
        .find(|t| t["name"] == json!("test_simple_text"))
        .expect("tool");
    assert_eq!(
        simple["inputSchema"],
        json!({"type":"object","properties":{}})
    );
}

#[test]
fn content_tools_return_the_reference_results() {
    let h = harness();
    // Called without an `arguments` key at all.
    let r = h.reply(
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_simple_text"}}),
    );
    assert_eq!(
        r["result"],
        json!({"content":[{"type":"text","text":"This is a simple text response for testing."}],"isError":false})
    );
    let cases = [
        (
            "test_image_content",
            json!([{"type":"image","data":PNG_BASE64,"mimeType":"image/png"}]),
        ),
        (
            "test_audio_content",
            json!([{"type":"audio","data":WAV_BASE64,"mimeType":"audio/wav"}]),
        ),
        (
            "test_embedded_resource",
            json!([{"type":"resource","resource":{"uri":"test://embedded-resource",
            "mimeType":"text/plain","text":"This is an embedded resource content."}}]),
        ),
        (
            "test_multiple_content_types",
            json!([
            {"type":"text","text":"Multiple content types test:"},
            {"type":"image","data":PNG_BASE64,"mimeType":"image/png"},
            {"type":"resource","resource":{"uri":"test://mixed-content-resource","mimeType":"application/json",
                "text":"{\"test\":\"data\",\"value\":123}"}}]),
        ),
    ];
    for (name, content) in cases {
        assert_eq!(
            result_of(&h, name, json!({})),
            json!({"content": content, "isError": false}),
            "{name}"
        );
    }
    assert_eq!(
        result_of(&h, "test_error_handling", json!({})),
        json!({"isError":true,"content":[{"type":"text","text":"This tool intentionally returns an error for testing"}]})
    );
    assert_eq!(
        result_of(&h, "json_schema_2020_12_tool", json!({"name":"n"}))["content"][0]["text"],
        json!(r#"JSON Schema 2020-12 tool called with: {"name":"n"}"#)
    );
}

#[test]
fn base64_payloads_decode() {
    fn decodes(b64: &str) -> bool {
        let clean = b64.trim_end_matches('=');
        b64.len().is_multiple_of(4)
            && b64.len() - clean.len() <= 2
            && clean
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    }
    assert!(decodes(PNG_BASE64) && decodes(WAV_BASE64));
    assert!(PNG_BASE64.starts_with("iVBORw0KGgo"), "PNG signature");
    assert!(WAV_BASE64.starts_with("UklGR"), "RIFF signature");
}

#[test]
fn logging_tool_sends_three_info_messages_first() {
    let h = harness();
    assert_eq!(
        h.rpc(1, "logging/setLevel", json!({"level":"debug"}))["result"],
        json!({})
    );
    let r = h.call(2, "test_tool_with_logging", json!({}));
    assert_eq!(
        r["result"]["content"][0]["text"],
        json!("Tool with logging executed successfully")
    );
    let sent = h.peer.sent.take();
    let expected: Vec<_> = ["Tool execution started", "Tool processing data", "Tool execution completed"]
        .into_iter()
        .map(|data| {
            (
                json!({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":data}}),
                Id::parse("2"),
            )
        })
        .collect();
    assert_eq!(sent, expected);
}

#[test]
fn progress_tool_echoes_numeric_tokens() {
    let h = harness();
    let r = h.reply(json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
        "params":{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":1}}}));
    assert!(r["result"]["content"][0]["text"].is_string());
    let expected: Vec<_> = [0.0, 50.0, 100.0]
        .into_iter()
        .map(|progress| {
            json!({"jsonrpc":"2.0","method":"notifications/progress",
                "params":{"progressToken":1,"progress":progress,"total":100.0}})
        })
        .collect();
    let sent = h.peer.messages();
    assert_eq!(sent, expected);
    // The token stays the integer 1 (not "1", not 1.0).
    assert!(sent.iter().all(|m| m["params"]["progressToken"].is_u64()));
    // Without a token: no notifications, same result.
    let r = h.call(2, "test_tool_with_progress", json!({}));
    assert_eq!(
        r["result"]["content"][0]["text"],
        json!("Tool with progress executed successfully")
    );
    assert!(h.peer.sent.borrow().is_empty());
}

#[test]
fn reconnection_tool_closes_its_stream() {
    let h = harness();
    let r = h.call(7, "test_reconnection", json!({}));
    assert_eq!(
        r["result"],
        json!({"content":[{"type":"text","text":"Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure."}],"isError":false})
    );
    assert_eq!(h.peer.closed.take(), vec![Id::parse("7").expect("id")]);
}

/// Calls `tool`, checks the elicitation request it sends, answers it,
/// and returns the tool's result text.
fn elicit(tool: &str, arguments: Value, expected: &Value, answer: &Value) -> String {
    let h = harness();
    let call = json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":tool,"arguments":arguments}});
    block_on(async {
        let mut call = Box::pin(h.future(&call.to_string()));
        assert!(poll_once(&mut call).await.is_none());
        let sent = h.peer.sent.take();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1, Id::parse("3"));
        assert_eq!(
            sent[0].0,
            json!({"jsonrpc":"2.0","id":"s-1","method":"elicitation/create","params":expected})
        );
        let response = json!({"jsonrpc":"2.0","id":"s-1","result":answer});
        assert_eq!(h.future(&response.to_string()).await, None);
        let reply: Value = serde_json::from_slice(&call.await.expect("reply")).expect("json");
        assert_eq!(reply["result"]["isError"], json!(false));
        reply["result"]["content"][0]["text"]
            .as_str()
            .expect("text")
            .to_owned()
    })
}

#[test]
fn elicitation_tools_send_the_reference_schemas() {
    let text = elicit(
        "test_elicitation",
        json!({"message":"Please provide your information"}),
        &json!({"message":"Please provide your information",
            "requestedSchema":{"type":"object","properties":{
                "username":{"type":"string","description":"User's response"},
                "email":{"type":"string","description":"User's email address"}},
            "required":["username","email"]}}),
        &json!({"action":"accept","content":{"username":"testuser","email":"test@example.com"}}),
    );
    assert_eq!(
        text,
        r#"User response: action=accept, content={"email":"test@example.com","username":"testuser"}"#
    );
    let text = elicit(
        "test_elicitation_sep1034_defaults",
        json!({}),
        &json!({"message":"Please review and update the form fields with defaults",
            "requestedSchema":{"type":"object","properties":{
                "name":{"type":"string","description":"User name","default":"John Doe"},
                "age":{"type":"integer","description":"User age","default":30},
                "score":{"type":"number","description":"User score","default":95.5},
                "status":{"type":"string","description":"User status","enum":["active","inactive","pending"],"default":"active"},
                "verified":{"type":"boolean","description":"Verification status","default":true}},
            "required":[]}}),
        &json!({"action":"accept","content":{"name":"Jane Smith","age":25,"score":88,"status":"inactive","verified":false}}),
    );
    assert!(
        text.starts_with("Elicitation completed: action=accept, content={"),
        "{text}"
    );
    let text = elicit(
        "test_elicitation_sep1330_enums",
        json!({}),
        &json!({"message":"Please select options from the enum fields",
            "requestedSchema":{"type":"object","properties":{
                "untitledSingle":{"type":"string","description":"Select one option","enum":["option1","option2","option3"]},
                "titledSingle":{"type":"string","description":"Select one option with titles","oneOf":[
                    {"const":"value1","title":"First Option"},{"const":"value2","title":"Second Option"},{"const":"value3","title":"Third Option"}]},
                "legacyEnum":{"type":"string","description":"Select one option (legacy)","enum":["opt1","opt2","opt3"],
                    "enumNames":["Option One","Option Two","Option Three"]},
                "untitledMulti":{"type":"array","description":"Select multiple options","minItems":1,"maxItems":3,
                    "items":{"type":"string","enum":["option1","option2","option3"]}},
                "titledMulti":{"type":"array","description":"Select multiple options with titles","minItems":1,"maxItems":3,
                    "items":{"anyOf":[{"const":"value1","title":"First Choice"},{"const":"value2","title":"Second Choice"},{"const":"value3","title":"Third Choice"}]}}},
            "required":[]}}),
        &json!({"action":"decline"}),
    );
    assert_eq!(text, "Elicitation completed: action=decline, content=null");
}

#[test]
fn resources_read_the_reference_contents() {
    let h = harness();
    let cases = [
        (
            "test://static-text",
            json!({"uri":"test://static-text","mimeType":"text/plain",
            "text":"This is the content of the static text resource."}),
        ),
        (
            "test://static-binary",
            json!({"uri":"test://static-binary","mimeType":"image/png","blob":PNG_BASE64}),
        ),
        (
            "test://watched-resource",
            json!({"uri":"test://watched-resource","mimeType":"text/plain",
            "text":"Watched resource content"}),
        ),
        (
            "test://template/123/data",
            json!({"uri":"test://template/123/data","mimeType":"application/json",
            "text":"{\"id\":\"123\",\"templateTest\":true,\"data\":\"Data for ID: 123\"}"}),
        ),
    ];
    for (uri, contents) in cases {
        let r = h.rpc(1, "resources/read", json!({ "uri": uri }));
        assert_eq!(r["result"], json!({ "contents": [contents] }), "{uri}");
    }
    let list = h.rpc(2, "resources/list", json!({}));
    assert_eq!(
        list["result"]["resources"][1],
        json!({"uri":"test://static-binary","name":"static-binary",
            "description":"A static binary resource (image) for testing","mimeType":"image/png"})
    );
    for method in ["resources/subscribe", "resources/unsubscribe"] {
        let r = h.rpc(3, method, json!({"uri":"test://watched-resource"}));
        assert_eq!(r, json!({"jsonrpc":"2.0","id":3,"result":{}}));
    }
}

#[test]
fn prompts_return_the_reference_messages() {
    let h = harness();
    let list = h.rpc(1, "prompts/list", json!({}));
    assert_eq!(
        list["result"]["prompts"],
        json!([
            {"name":"test_simple_prompt","description":"A simple prompt without arguments"},
            {"name":"test_prompt_with_arguments","description":"A prompt with required arguments","arguments":[
                {"name":"arg1","description":"First test argument","required":true},
                {"name":"arg2","description":"Second test argument","required":true}]},
            {"name":"test_prompt_with_embedded_resource","description":"A prompt that includes an embedded resource",
                "arguments":[{"name":"resourceUri","description":"URI of the resource to embed","required":true}]},
            {"name":"test_prompt_with_image","description":"A prompt that includes image content"},
            {"name":"test_input_required_result_prompt",
                "description":"Asks for context (inputRequests key user_context), then builds the prompt"},
        ])
    );
    let get = |name: &str, arguments: Option<Value>| {
        let mut params = json!({ "name": name });
        if let Some(arguments) = arguments {
            params["arguments"] = arguments;
        }
        h.rpc(2, "prompts/get", params)["result"].clone()
    };
    assert_eq!(
        get("test_simple_prompt", None),
        json!({"messages":[{"role":"user","content":{"type":"text","text":"This is a simple prompt for testing."}}]})
    );
    assert_eq!(
        get(
            "test_prompt_with_arguments",
            Some(json!({"arg1":"testValue1","arg2":"testValue2"}))
        ),
        json!({"messages":[{"role":"user","content":{"type":"text",
            "text":"Prompt with arguments: arg1='testValue1', arg2='testValue2'"}}]})
    );
    assert_eq!(
        get(
            "test_prompt_with_embedded_resource",
            Some(json!({"resourceUri":"test://example-resource"}))
        ),
        json!({"messages":[
            {"role":"user","content":{"type":"resource","resource":{"uri":"test://example-resource",
                "mimeType":"text/plain","text":"Embedded resource content for testing."}}},
            {"role":"user","content":{"type":"text","text":"Please process the embedded resource above."}}]})
    );
    assert_eq!(
        get("test_prompt_with_image", None),
        json!({"messages":[
            {"role":"user","content":{"type":"image","data":PNG_BASE64,"mimeType":"image/png"}},
            {"role":"user","content":{"type":"text","text":"Please analyze the image above."}}]})
    );
}

#[test]
fn completion_and_lifecycle_utilities() {
    let h = Harness::builtin();
    let init = h.init_with(version::LATEST, json!({"sampling": {}, "elicitation": {}}));
    assert_eq!(init["result"]["protocolVersion"], json!("2025-11-25"));
    assert_eq!(
        init["result"]["capabilities"],
        json!({"tools":{"listChanged":true},"resources":{"subscribe":true,"listChanged":true},
            "prompts":{"listChanged":true},"logging":{},"completions":{}})
    );
    let r = h.rpc(
        1,
        "completion/complete",
        json!({"ref":{"type":"ref/prompt","name":"test_prompt_with_arguments"},
        "argument":{"name":"arg1","value":"test"}}),
    );
    assert_eq!(
        r["result"],
        json!({"completion":{"values":[],"total":0,"hasMore":false}})
    );
    let r = h.rpc(
        2,
        "completion/complete",
        json!({"ref":{"type":"ref/resource","uri":"test://template/{id}/data"},
        "argument":{"name":"id","value":"1"}}),
    );
    assert_eq!(r["result"]["completion"]["values"], json!([]));
    assert_eq!(
        h.rpc(3, "ping", json!({})),
        json!({"jsonrpc":"2.0","id":3,"result":{}})
    );
    assert_eq!(
        h.rpc(4, "logging/setLevel", json!({"level":"info"})),
        json!({"jsonrpc":"2.0","id":4,"result":{}})
    );
}

#[test]
fn payload_sizes_and_limits() {
    let h = harness();
    for n in [0, 1, 10, MAX_PAYLOAD_BYTES] {
        let r = h.call(1, "payload", json!({ "bytes": n }));
        let text = r["result"]["content"][0]["text"].as_str().expect("text");
        assert_eq!(text.len() as u64, n);
    }
    for bad in [
        json!({}),
        json!({"bytes": MAX_PAYLOAD_BYTES + 1}),
        json!({"bytes": -1}),
        json!({"bytes": 1.5}),
        json!({"bytes": "3"}),
    ] {
        assert_eq!(
            error_code(&h.call(2, "payload", bad.clone())),
            INVALID_PARAMS,
            "{bad}"
        );
    }
}

#[test]
fn stream_sends_logs_or_progress() {
    let h = harness();
    let r = h.call(1, "stream", json!({"count": 3, "bytes": 8}));
    assert_eq!(r["result"]["content"][0]["text"], json!("3"));
    let sent = h.peer.sent.take();
    assert_eq!(sent.len(), 3);
    for (i, (message, related)) in sent.iter().enumerate() {
        assert_eq!(message["method"], json!("notifications/message"));
        assert_eq!(message["params"]["level"], json!("info"));
        let data = &message["params"]["data"];
        assert_eq!(data["seq"], json!(i + 1));
        assert!(data["ts_us"].as_u64().is_some_and(|t| t > 0), "{data}");
        assert_eq!(data["text"].as_str().map(str::len), Some(8));
        assert_eq!(related, &Id::parse("1"));
    }
    let r = h.reply(json!({"jsonrpc":"2.0","id":2,"method":"tools/call",
        "params":{"name":"stream","arguments":{"count":2,"bytes":1},"_meta":{"progressToken":"p"}}}));
    assert_eq!(r["result"]["content"][0]["text"], json!("2"));
    let progress = h.peer.messages();
    assert_eq!(progress.len(), 2);
    for (i, message) in progress.iter().enumerate() {
        assert_eq!(message["method"], json!("notifications/progress"));
        let params = &message["params"];
        assert_eq!(
            (params["progressToken"].clone(), params["progress"].clone()),
            (json!("p"), json!((i + 1) as f64))
        );
        let text = params["message"].as_str().expect("message");
        let mut parts = text.split(' ');
        assert_eq!(parts.next(), Some((i + 1).to_string().as_str()), "{text}");
        assert!(
            parts.next().and_then(|t| t.parse::<u64>().ok()).is_some(),
            "a send timestamp: {text}"
        );
    }
    assert_eq!(
        h.call(3, "stream", json!({}))["result"]["content"][0]["text"],
        json!("10")
    );
    h.peer.sent.take();
    for bad in [
        json!({"count": MAX_STREAM_COUNT + 1}),
        json!({"count": 100, "bytes": MAX_PAYLOAD_BYTES}),
        json!({"interval_ms": MAX_STREAM_INTERVAL_MS + 1}),
        json!({"bytes": "big"}),
    ] {
        assert_eq!(
            error_code(&h.call(4, "stream", bad.clone())),
            INVALID_PARAMS,
            "{bad}"
        );
    }
    assert!(h.peer.sent.borrow().is_empty());
}

#[test]
fn stream_continues_a_sequence_from_a_given_number() {
    let h = harness();
    let tools = h.rpc(1, "tools/list", json!({}))["result"]["tools"].clone();
    let schema = tools
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == json!("stream")))
        .map(|t| t["inputSchema"]["properties"].clone())
        .expect("stream listed");
    let names: Vec<&String> = schema.as_object().expect("properties").keys().collect();
    assert_eq!(names, ["bytes", "count", "from", "interval_ms"]);
    assert_eq!(
        (
            schema["from"]["minimum"].clone(),
            schema["from"]["maximum"].clone()
        ),
        (json!(1), json!(MAX_STREAM_FROM))
    );

    let r = h.call(2, "stream", json!({"count": 3, "from": 41}));
    assert_eq!(r["result"]["content"][0]["text"], json!("3"));
    let seqs: Vec<Value> = (h.peer.sent.take().iter())
        .map(|(message, _)| message["params"]["data"]["seq"].clone())
        .collect();
    assert_eq!(seqs, [json!(41), json!(42), json!(43)]);

    // Progress runs on from `from` too, and its total is the last number.
    let r = h.reply(json!({"jsonrpc":"2.0","id":3,"method":"tools/call",
        "params":{"name":"stream","arguments":{"count":2,"from":7},"_meta":{"progressToken":"p"}}}));
    assert_eq!(r["result"]["content"][0]["text"], json!("2"));
    let progress: Vec<(Value, Value)> = (h.peer.messages().iter())
        .map(|m| {
            (
                m["params"]["progress"].clone(),
                m["params"]["total"].clone(),
            )
        })
        .collect();
    assert_eq!(
        progress,
        [(json!(7.0), json!(8.0)), (json!(8.0), json!(8.0))]
    );

    // No notifications at all is still none.
    let r = h.call(4, "stream", json!({"count": 0, "from": 5}));
    assert_eq!(r["result"]["content"][0]["text"], json!("0"));
    assert!(h.peer.sent.take().is_empty());
    for bad in [
        json!({"from": 0}),
        json!({"from": MAX_STREAM_FROM + 1}),
        json!({"from": -1}),
        json!({"from": "1"}),
    ] {
        assert_eq!(
            error_code(&h.call(5, "stream", bad.clone())),
            INVALID_PARAMS,
            "{bad}"
        );
    }
    assert!(h.peer.sent.borrow().is_empty());
}

#[test]
fn echo_and_touch_resource_validate_arguments() {
    let h = harness();
    assert_eq!(
        h.call(1, "echo", json!({"message":"hi"}))["result"]["content"][0]["text"],
        json!("hi")
    );
    assert_eq!(
        h.call(2, "touch_resource", json!({"uri":"test://static-text"}))["result"]["content"][0]
            ["text"],
        json!("notified 0 subscriber(s) on this shard; other shards notify theirs")
    );
    for (tool, args) in [
        ("echo", json!({"message": 1})),
        ("touch_resource", json!({})),
    ] {
        assert_eq!(error_code(&h.call(3, tool, args)), INVALID_PARAMS, "{tool}");
    }
}

#[test]
fn describe_number_shows_the_whole_tool_surface() {
    let h = harness();
    let list = h.rpc(1, "tools/list", json!({}));
    let tools = list["result"]["tools"].as_array().unwrap();
    let tool = tools
        .iter()
        .find(|t| t["name"] == "describe_number")
        .unwrap();
    assert_eq!(tool["title"], "Describe a number");
    assert_eq!(tool["icons"][0]["mimeType"], "image/svg+xml");
    assert_eq!(tool["icons"][0]["sizes"], json!(["any"]));
    assert_eq!(
        tool["annotations"],
        json!({"readOnlyHint": true, "idempotentHint": true, "openWorldHint": false})
    );
    assert_eq!(
        tool["outputSchema"]["required"],
        json!(["n", "square", "even"])
    );
    let result = result_of(&h, "describe_number", json!({"n": -3}));
    let structured = json!({"n": -3, "square": 9, "even": false});
    assert_eq!(result["structuredContent"], structured);
    // Spec (2025-11-25, tools): the serialized JSON also goes in a text block.
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, structured);
    let too_big = h.call(3, "describe_number", json!({"n": 4_000_000_000i64}));
    assert_eq!(too_big["error"]["code"], -32602);
}
