//! MCP over WebSocket at /mcp, driven by a tungstenite client the way the SDK
//! clients do it: subprotocol `mcp`, one JSON-RPC message per text frame.

mod common;

use common::*;
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

type Ws = tungstenite::WebSocket<Sock>;

fn mcp_client(addr: std::net::SocketAddr, subprotocol: Option<&str>) -> Ws {
    let mut request = format!("ws://{addr}/mcp").into_client_request().unwrap();
    if let Some(p) = subprotocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    let (ws, response) =
        tungstenite::client::client(request, Sock(connect(addr))).expect("handshake");
    let selected = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(selected.as_deref(), subprotocol);
    ws
}

fn call(ws: &mut Ws, message: Value) -> Value {
    ws.send(Message::text(message.to_string())).unwrap();
    next_json(ws)
}

fn next_json(ws: &mut Ws) -> Value {
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn initialize(ws: &mut Ws) -> Value {
    let reply = call(
        ws,
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}),
    );
    ws.send(Message::text(
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string(),
    ))
    .unwrap();
    reply
}

#[test]
fn initialize_list_and_call_echo() {
    let srv = server(|_| {});
    let mut ws = mcp_client(srv.addr, Some("mcp"));
    let init = initialize(&mut ws);
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    assert!(init["result"]["capabilities"]["tools"].is_object());
    assert_eq!(init["result"]["serverInfo"]["name"], "ringmcp");
    let list = call(
        &mut ws,
        json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
    );
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"echo"), "{names:?}");
    let echoed = call(
        &mut ws,
        json!({"jsonrpc":"2.0","id":"three","method":"tools/call","params":{"name":"echo","arguments":{"message":"hi there"}}}),
    );
    assert_eq!(echoed["id"], "three");
    assert_eq!(echoed["result"]["content"][0]["type"], "text");
    assert_eq!(echoed["result"]["content"][0]["text"], "hi there");
    assert_ne!(echoed["result"]["isError"], true);
    let pong = call(&mut ws, json!({"jsonrpc":"2.0","id":4,"method":"ping"}));
    assert_eq!(pong["result"], json!({}));
}

#[test]
fn older_version_is_negotiated_and_no_subprotocol_is_accepted() {
    let srv = server(|_| {});
    let mut ws = mcp_client(srv.addr, None);
    let init = call(
        &mut ws,
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
    );
    assert_eq!(init["result"]["protocolVersion"], "2025-03-26");
}

#[test]
fn json_rpc_errors_keep_the_connection_open() {
    let srv = server(|_| {});
    let mut ws = mcp_client(srv.addr, Some("mcp"));
    ws.send(Message::text("{not json")).unwrap();
    let err = next_json(&mut ws);
    assert_eq!(err["error"]["code"], -32700);
    assert_eq!(err["id"], Value::Null);
    initialize(&mut ws);
    let bad = call(&mut ws, json!({"jsonrpc":"1.0","id":5,"method":"ping"}));
    assert_eq!(bad["error"]["code"], -32600);
    let unknown = call(&mut ws, json!({"jsonrpc":"2.0","id":6,"method":"no/such"}));
    assert_eq!(unknown["error"]["code"], -32601);
    let bad_tool = call(
        &mut ws,
        json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"nope","arguments":{}}}),
    );
    assert_eq!(bad_tool["error"]["code"], -32602);
    let bad_args = call(
        &mut ws,
        json!({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"echo","arguments":{"message":5}}}),
    );
    assert_eq!(bad_args["error"]["code"], -32602);
    // Still usable afterwards.
    let pong = call(&mut ws, json!({"jsonrpc":"2.0","id":9,"method":"ping"}));
    assert_eq!(pong["id"], 9);
}

#[test]
fn several_newline_separated_messages_in_one_frame() {
    let srv = server(|_| {});
    let mut ws = mcp_client(srv.addr, Some("mcp"));
    initialize(&mut ws);
    let frame = format!(
        "{}\n{}\n",
        json!({"jsonrpc":"2.0","id":10,"method":"ping"}),
        json!({"jsonrpc":"2.0","id":11,"method":"ping"})
    );
    ws.send(Message::text(frame)).unwrap();
    let mut ids = vec![
        next_json(&mut ws)["id"].as_i64().unwrap(),
        next_json(&mut ws)["id"].as_i64().unwrap(),
    ];
    ids.sort();
    assert_eq!(ids, [10, 11]);
}

#[test]
fn binary_frame_closes_with_1003() {
    let srv = server(|_| {});
    let mut ws = mcp_client(srv.addr, Some("mcp"));
    ws.send(Message::binary(b"{}".to_vec())).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1003);
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("expected a close frame, got {e}"),
        }
    }
}

#[test]
fn resources_subscribe_over_websocket() {
    let srv = server(|_| {});
    let mut ws = mcp_client(srv.addr, Some("mcp"));
    initialize(&mut ws);
    let sub = call(
        &mut ws,
        json!({"jsonrpc":"2.0","id":2,"method":"resources/subscribe","params":{"uri":"test://watched-resource"}}),
    );
    assert_eq!(sub["result"], json!({}));
    ws.send(Message::text(
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"touch_resource","arguments":{"uri":"test://watched-resource"}}}).to_string(),
    ))
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(next_json(&mut ws));
    }
    let note = seen
        .iter()
        .find(|m| m["method"] == "notifications/resources/updated")
        .expect("update notification");
    assert_eq!(note["params"]["uri"], "test://watched-resource");
    assert!(seen
        .iter()
        .any(|m| m["id"] == 3 && m.get("result").is_some()));
    let unsub = call(
        &mut ws,
        json!({"jsonrpc":"2.0","id":4,"method":"resources/unsubscribe","params":{"uri":"test://watched-resource"}}),
    );
    assert_eq!(unsub["result"], json!({}));
    let read = call(
        &mut ws,
        json!({"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"test://nope"}}),
    );
    assert_eq!(read["error"]["code"], -32002);
}
