//! Built-in fixtures: everything the MCP conformance suite's server
//! scenarios call (exact texts and schemas of its reference server), plus
//! tools for smoke tests and benchmarks.
//!
//! Each group is an `add_*` function on a builder; [`builtin`] applies all.
//!
//! Not part of the library: the binary serves these (`mod fixtures;` in src/main.rs), and the
//! tests, benches and fuzz targets include this file by path. So it uses only the public API,
//! as an embedder would.

use futures_lite::future::zip;
use ringmcp::{
    CatalogueChange, ClientError, Content, Icon, LogLevel, Prompt, PromptMessage, PromptResult,
    Registry, RegistryBuilder, Resource, ResourceBody, ResourceContents, ResourceRead,
    ResourceTemplate, Role, Tool, ToolAnnotations, ToolContext, ToolError, ToolResult,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;

/// A 1×1 PNG, base64.
pub const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A tiny WAV clip, base64.
pub const WAV_BASE64: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/// Largest `payload` (and `stream` message) size: 1 MiB.
pub const MAX_PAYLOAD_BYTES: u64 = 1 << 20;

/// Most notifications one `stream` call sends.
pub const MAX_STREAM_COUNT: u64 = 100_000;

/// Most bytes (count × size) one `stream` call sends.
pub const MAX_STREAM_TOTAL_BYTES: u64 = 64 << 20;

/// Longest `stream` interval: one minute.
pub const MAX_STREAM_INTERVAL_MS: u64 = 60_000;

/// Largest first sequence number of a `stream` call (`from`): far below 2^53, so every
/// sequence number is exact as a progress value.
pub const MAX_STREAM_FROM: u64 = 1 << 40;

/// A `stream` without an interval yields to the shard after running this long…
const YIELD_AFTER: Duration = Duration::from_millis(1);
/// …or sending about this many bytes, half the default outbound bound, so a client that reads
/// gets every message.
const YIELD_BYTES: u64 = 32 * 1024;

/// Pause between steps of the logging and progress conformance tools.
const STEP: Duration = Duration::from_millis(50);

/// A builder preloaded with every built-in fixture; `echo` spins for `echo_spin` per call
/// ([`add_echo`]).
pub fn builtin(echo_spin: Duration) -> RegistryBuilder {
    // A tool that takes no arguments lists first: the 2026-07-28 suite calls the first listed
    // tool with `{}` and expects a result.
    let builder = add_conformance_tools(Registry::builder().list_changes(true));
    let builder = add_echo(builder, echo_spin);
    let builder = add_describe_number(builder);
    let builder = add_stateless_conformance_tools(builder);
    let builder = add_conformance_resources(builder);
    let builder = add_conformance_prompts(builder);
    let builder = add_input_required_tools(builder);
    add_benchmark_tools(builder)
}

fn no_args() -> Value {
    json!({"type": "object", "properties": {}})
}

/// An object schema with one required string property.
fn one_string(name: &str, description: &str) -> Value {
    json!({
        "type": "object",
        "properties": {name: {"type": "string", "description": description}},
        "required": [name],
    })
}

/// The string argument `key`.
fn arg_str<'a>(args: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::InvalidParams(format!("a string \"{key}\" argument is required")))
}

/// The integer argument `key` in `0..=max`, or `default` when absent.
fn arg_u64(args: &Value, key: &str, default: Option<u64>, max: u64) -> Result<u64, ToolError> {
    let value = match (args.get(key), default) {
        (None | Some(Value::Null), Some(default)) => default,
        (Some(v), _) => v.as_u64().ok_or_else(|| {
            ToolError::InvalidParams(format!("\"{key}\" must be a non-negative integer"))
        })?,
        (None, None) => {
            return Err(ToolError::InvalidParams(format!(
                "an integer \"{key}\" argument is required"
            )))
        }
    };
    if value > max {
        return Err(ToolError::InvalidParams(format!(
            "\"{key}\" must be at most {max}"
        )));
    }
    Ok(value)
}

/// Adds `echo`: returns its `message` argument as text, after busy-waiting `spin` on the
/// shard's thread (zero but in the deliberately slowed server of scripts/regress_check.sh:
/// the CPU time a slower build would spend per call).
pub fn add_echo(builder: RegistryBuilder, spin: Duration) -> RegistryBuilder {
    builder.tool(
        Tool::new(
            "echo",
            "Echoes back the given message",
            one_string("message", "Text to echo"),
        ),
        move |_, args| async move {
            if !spin.is_zero() {
                let until = std::time::Instant::now() + spin;
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            Ok(ToolResult::text(arg_str(&args, "message")?))
        },
    )
}

/// A 16×16 SVG (a square), as a `data:` URI.
const SQUARE_ICON: &str = "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCAxNiAxNiI+PHJlY3Qgd2lkdGg9IjE2IiBoZWlnaHQ9IjE2Ii8+PC9zdmc+";

/// Adds `describe_number`, which shows the whole tool surface: a title, an icon,
/// annotations, an output schema and structured content.
pub fn add_describe_number(builder: RegistryBuilder) -> RegistryBuilder {
    builder.tool(
        Tool::new(
            "describe_number",
            "Squares an integer and says whether it is even",
            json!({
                "type": "object",
                "properties": {"n": {"type": "integer", "description": "The number"}},
                "required": ["n"],
            }),
        )
        .title("Describe a number")
        .icon(
            Icon::new(SQUARE_ICON)
                .mime_type("image/svg+xml")
                .size("any"),
        )
        .annotations(ToolAnnotations {
            read_only_hint: Some(true),
            idempotent_hint: Some(true),
            open_world_hint: Some(false),
            ..ToolAnnotations::default()
        })
        .output_schema(json!({
            "type": "object",
            "properties": {"n": {"type": "integer"}, "square": {"type": "integer"},
                           "even": {"type": "boolean"}},
            "required": ["n", "square", "even"],
        })),
        |_, args| async move {
            let n = args
                .get("n")
                .and_then(Value::as_i64)
                .filter(|n| n.unsigned_abs() <= 3_037_000_499)
                .ok_or_else(|| {
                    ToolError::InvalidParams("n must be an integer of at most 3037000499".into())
                })?;
            let mut described = serde_json::Map::new();
            described.insert("n".into(), n.into());
            described.insert("square".into(), (n * n).into());
            described.insert("even".into(), (n % 2 == 0).into());
            Ok(ToolResult::structured(described))
        },
    )
}

/// Adds the diagnostic tools the 2026-07-28 conformance suite's `server-stateless` scenario
/// calls.
pub fn add_stateless_conformance_tools(builder: RegistryBuilder) -> RegistryBuilder {
    builder
        .tool(
            Tool::new(
                "test_missing_capability",
                "Needs the client's sampling capability: a client without it is refused (-32021)",
                no_args(),
            )
            .requires_client_capability("sampling"),
            |_, _| async { Ok(ToolResult::text("The client declared sampling.")) },
        )
        .tool(
            Tool::new(
                "test_header_param",
                "Echoes its region, which a 2026-07-28 client also sends as Mcp-Param-Region",
                json!({
                    "type": "object",
                    "properties": {
                        "region": {
                            "type": "string",
                            "description": "Region name",
                            "x-mcp-header": "Region",
                        },
                    },
                    "required": ["region"],
                }),
            ),
            |_, args| async move { Ok(ToolResult::text(arg_str(&args, "region")?)) },
        )
        .tool(
            Tool::new(
                "test_trigger_tool_change",
                "Adds (or replaces) the tool test_dynamic_tool on every shard",
                no_args(),
            ),
            |ctx, _| async move {
                ctx.change_catalogue(CatalogueChange::add_tool(
                    Tool::new("test_dynamic_tool", "Added at run time", no_args()),
                    |_, _| async { Ok(ToolResult::text("added at run time")) },
                ));
                Ok(ToolResult::text(
                    "tools/list changed: test_dynamic_tool added",
                ))
            },
        )
        .tool(
            Tool::new(
                "test_trigger_prompt_change",
                "Adds (or replaces) the prompt test_dynamic_prompt on every shard",
                no_args(),
            ),
            |ctx, _| async move {
                ctx.change_catalogue(CatalogueChange::add_prompt(
                    Prompt::new("test_dynamic_prompt", "Added at run time"),
                    |_, _| async {
                        Ok(PromptResult::new(vec![PromptMessage::new(
                            Role::User,
                            Content::text("added at run time"),
                        )]))
                    },
                ));
                Ok(ToolResult::text(
                    "prompts/list changed: test_dynamic_prompt added",
                ))
            },
        )
        .tool(
            Tool::new(
                "test_logging_tool",
                "Logs at info: sent only when the request asks for log messages",
                no_args(),
            ),
            |ctx, _| async move {
                let sent = ctx.log(LogLevel::Info, "test_logging_tool ran");
                Ok(ToolResult::text(format!("log message sent: {sent}")))
            },
        )
        .tool(
            Tool::new(
                "test_streaming_elicitation",
                "Asks the client for input on its stream; 2026-07-28 requests get no \
                 server-to-client request on the stream",
                no_args(),
            ),
            |ctx, _| async move {
                let request = json!({
                    "message": "What is your name?",
                    "requestedSchema": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"],
                    },
                });
                elicit_and_report(ctx, request, "Elicitation").await
            },
        )
}

/// An `elicitation/create` form asking for one string property.
fn ask_for(message: &str, property: &str) -> Value {
    json!({
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": {property: {"type": "string"}},
            "required": [property],
        },
    })
}

/// The accepted content's `property`, or why there is none.
fn accepted(answer: &Value, property: &str) -> Result<String, String> {
    match answer.get("action").and_then(Value::as_str) {
        Some("accept") => answer
            .pointer(&format!("/content/{property}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("the answer has no {property}")),
        other => Err(format!("the user chose {}", other.unwrap_or("nothing"))),
    }
}

/// The sampled text of a `sampling/createMessage` answer.
fn sampled_text(answer: &Value) -> String {
    answer
        .pointer("/content/text")
        .and_then(Value::as_str)
        .map_or_else(|| answer["content"].to_string(), str::to_owned)
}

/// Adds the tools (and the prompt) of the 2026-07-28 multi-round scenarios
/// (`input-required-result-*`). Each asks through the context, so in a 2025 session the
/// same handler sends server-to-client requests instead.
pub fn add_input_required_tools(builder: RegistryBuilder) -> RegistryBuilder {
    builder
        .tool(
            Tool::new(
                "test_input_required_result_elicitation",
                "Asks the user's name (inputRequests key user_name), then greets them",
                no_args(),
            ),
            |ctx, _| async move {
                let ask = ask_for("What is your name?", "name");
                let answer = ctx.request_as("user_name", "elicitation/create", ask).await?;
                Ok(match accepted(&answer, "name") {
                    Ok(name) => ToolResult::text(format!("Hello, {name}!")),
                    Err(why) => ToolResult::error(why),
                })
            },
        )
        .tool(
            Tool::new(
                "test_input_required_result_sampling",
                "Asks the client's model a question and reports the answer",
                no_args(),
            ),
            |ctx, _| async move {
                let answer = ctx
                    .create_message(json!({
                        "messages": [{"role": "user", "content": {"type": "text",
                            "text": "What is the capital of France?"}}],
                        "maxTokens": 100,
                    }))
                    .await?;
                Ok(ToolResult::text(format!(
                    "Sampling result: {}",
                    sampled_text(&answer)
                )))
            },
        )
        .tool(
            Tool::new(
                "test_input_required_result_list_roots",
                "Asks for the client's roots and counts them",
                no_args(),
            ),
            |ctx, _| async move {
                let answer = ctx.list_roots().await?;
                let count = answer["roots"].as_array().map_or(0, Vec::len);
                Ok(ToolResult::text(format!("Found {count} root(s)")))
            },
        )
        .tool(
            Tool::new(
                "test_input_required_result_request_state",
                "Asks for a confirmation; the retry must carry the verified requestState",
                no_args(),
            ),
            |ctx, _| async move {
                let ask = json!({
                    "message": "Confirm?",
                    "requestedSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                });
                ctx.elicit(ask).await?;
                Ok(if ctx.input_rounds() > 0 {
                    ToolResult::text("state-ok: the requestState was verified")
                } else {
                    ToolResult::error("answered without the requestState")
                })
            },
        )
        .tool(
            Tool::new(
                "test_input_required_result_multiple_inputs",
                "Asks for a name, a sampled answer and the roots in one round",
                no_args(),
            ),
            |ctx, _| async move {
                let name = ctx.request_as(
                    "user_name",
                    "elicitation/create",
                    ask_for("What is your name?", "name"),
                );
                let sampled = ctx.create_message(json!({
                    "messages": [{"role": "user", "content": {"type": "text", "text": "Say hello"}}],
                    "maxTokens": 50,
                }));
                let roots = ctx.list_roots();
                let ((name, sampled), roots) = zip(zip(name, sampled), roots).await;
                let (name, sampled, roots) = (name?, sampled?, roots?);
                Ok(ToolResult::text(format!(
                    "name: {}, sampled: {}, roots: {}",
                    accepted(&name, "name").unwrap_or_default(),
                    sampled_text(&sampled),
                    roots["roots"].as_array().map_or(0, Vec::len)
                )))
            },
        )
        .tool(
            Tool::new(
                "test_input_required_result_multi_round",
                "Asks for a name, then (in a second round) a favourite colour",
                no_args(),
            ),
            |ctx, _| async move {
                let name = ctx.elicit(ask_for("What is your name?", "name")).await?;
                let color = ctx
                    .elicit(ask_for("What is your favourite colour?", "color"))
                    .await?;
                Ok(ToolResult::text(format!(
                    "Multi-round complete for {} who likes {}",
                    accepted(&name, "name").unwrap_or_default(),
                    accepted(&color, "color").unwrap_or_default()
                )))
            },
        )
        .tool(
            Tool::new(
                "test_input_required_result_tampered_state",
                "Asks for a name under a sealed requestState; a changed state is refused",
                no_args(),
            ),
            |ctx, _| async move {
                ctx.elicit(ask_for("What is your name?", "name")).await?;
                Ok(ToolResult::text(format!(
                    "integrity-ok: state verified after {} round(s)",
                    ctx.input_rounds()
                )))
            },
        )
        .tool(
            Tool::new(
                "test_input_required_result_capabilities",
                "Asks the user if the client can elicit, else the client's model",
                no_args(),
            ),
            |ctx, _| async move {
                let answer = match ctx.elicit(ask_for("What is your name?", "name")).await {
                    Err(ClientError::Unsupported(_)) => {
                        let sampled = ctx
                            .create_message(json!({
                                "messages": [{"role": "user", "content": {"type": "text",
                                    "text": "Make up a name"}}],
                                "maxTokens": 20,
                            }))
                            .await?;
                        sampled_text(&sampled)
                    }
                    answer => accepted(&answer?, "name").unwrap_or_default(),
                };
                Ok(ToolResult::text(format!("Name: {answer}")))
            },
        )
        .prompt(
            Prompt::new(
                "test_input_required_result_prompt",
                "Asks for context (inputRequests key user_context), then builds the prompt",
            ),
            |ctx, _| async move {
                let ask = ask_for("What should the prompt be about?", "context");
                let answer = ctx.request_as("user_context", "elicitation/create", ask).await?;
                let context = accepted(&answer, "context").map_err(ToolError::InvalidParams)?;
                Ok(PromptResult::new(vec![PromptMessage::new(
                    Role::User,
                    Content::text(format!("Please help with: {context}")),
                )]))
            },
        )
}

/// Adds the conformance suite's 14 tools.
pub fn add_conformance_tools(builder: RegistryBuilder) -> RegistryBuilder {
    type Fixed = (&'static str, &'static str, fn() -> ToolResult);
    let fixed: [Fixed; 6] = [
        (
            "test_simple_text",
            "Tests simple text content response",
            || ToolResult::text("This is a simple text response for testing."),
        ),
        ("test_image_content", "Tests image content response", || {
            ToolResult::new(vec![Content::image(PNG_BASE64, "image/png")])
        }),
        ("test_audio_content", "Tests audio content response", || {
            ToolResult::new(vec![Content::audio(WAV_BASE64, "audio/wav")])
        }),
        (
            "test_embedded_resource",
            "Tests embedded resource content response",
            || {
                ToolResult::new(vec![Content::resource(
                    ResourceContents::new(
                        "test://embedded-resource",
                        ResourceBody::Text("This is an embedded resource content.".into()),
                    )
                    .mime_type("text/plain"),
                )])
            },
        ),
        (
            "test_multiple_content_types",
            "Tests response with multiple content types (text, image, resource)",
            || {
                ToolResult::new(vec![
                    Content::text("Multiple content types test:"),
                    Content::image(PNG_BASE64, "image/png"),
                    Content::resource(
                        ResourceContents::new(
                            "test://mixed-content-resource",
                            ResourceBody::Text(r#"{"test":"data","value":123}"#.into()),
                        )
                        .mime_type("application/json"),
                    ),
                ])
            },
        ),
        // Spec (tools): tool execution errors are "Reported in tool results
        // with `isError: true`", not as JSON-RPC errors.
        (
            "test_error_handling",
            "Tests error response handling",
            || ToolResult::error("This tool intentionally returns an error for testing"),
        ),
    ];
    let builder = fixed
        .into_iter()
        .fold(builder, |b, (name, description, make)| {
            b.tool(Tool::new(name, description, no_args()), move |_, _| {
                std::future::ready(Ok(make()))
            })
        });

    type Elicit = (&'static str, &'static str, fn() -> Value);
    let elicitations: [Elicit; 2] = [
        (
            "test_elicitation_sep1034_defaults",
            "Tests elicitation with default values for every primitive type (SEP-1034)",
            sep1034_request,
        ),
        (
            "test_elicitation_sep1330_enums",
            "Tests elicitation with every enum schema variant (SEP-1330)",
            sep1330_request,
        ),
    ];
    let builder = elicitations
        .into_iter()
        .fold(builder, |b, (name, description, request)| {
            b.tool(Tool::new(name, description, no_args()), move |ctx, _| {
                elicit_and_report(ctx, request(), "Elicitation completed")
            })
        });

    builder
        .tool(
            Tool::new(
                "test_tool_with_logging",
                "Tests tool that emits log messages during execution",
                no_args(),
            ),
            |ctx, _| async move {
                ctx.log(LogLevel::Info, "Tool execution started");
                ctx.sleep(STEP).await;
                ctx.log(LogLevel::Info, "Tool processing data");
                ctx.sleep(STEP).await;
                ctx.log(LogLevel::Info, "Tool execution completed");
                Ok(ToolResult::text("Tool with logging executed successfully"))
            },
        )
        .tool(
            Tool::new(
                "test_tool_with_progress",
                "Tests tool that reports progress notifications",
                no_args(),
            ),
            |ctx, _| async move {
                ctx.progress(0.0, Some(100.0), None);
                ctx.sleep(STEP).await;
                ctx.progress(50.0, Some(100.0), None);
                ctx.sleep(STEP).await;
                ctx.progress(100.0, Some(100.0), None);
                Ok(ToolResult::text("Tool with progress executed successfully"))
            },
        )
        .tool(
            Tool::new(
                "test_reconnection",
                "Tests SSE stream disconnection and client reconnection (SEP-1699)",
                no_args(),
            ),
            |ctx, _| async move {
                ctx.close_stream();
                ctx.sleep(Duration::from_millis(100)).await;
                Ok(ToolResult::text(
                    "Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.",
                ))
            },
        )
        .tool(
            Tool::new(
                "test_sampling",
                "Tests server-initiated sampling (LLM completion request)",
                one_string("prompt", "The prompt to send to the LLM"),
            ),
            |ctx, args| async move {
                let prompt = arg_str(&args, "prompt")?;
                let request = json!({
                    "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                    "maxTokens": 100,
                });
                Ok(match ctx.create_message(request).await {
                    Ok(answer) => {
                        let text = answer
                            .pointer("/content/text")
                            .and_then(Value::as_str)
                            .map_or_else(|| answer["content"].to_string(), str::to_owned);
                        ToolResult::text(format!("LLM response: {text}"))
                    }
                    Err(e) => ToolResult::error(format!("Sampling failed: {e}")),
                })
            },
        )
        .tool(
            Tool::new(
                "test_elicitation",
                "Tests server-initiated elicitation (user input request)",
                one_string("message", "The message to show the user"),
            ),
            |ctx, args| async move {
                let message = arg_str(&args, "message")?;
                let request = json!({
                    "message": message,
                    "requestedSchema": {
                        "type": "object",
                        "properties": {
                            "username": {"type": "string", "description": "User's response"},
                            "email": {"type": "string", "description": "User's email address"},
                        },
                        "required": ["username", "email"],
                    },
                });
                elicit_and_report(ctx, request, "User response").await
            },
        )
        .tool(
            Tool::new(
                "json_schema_2020_12_tool",
                "Tool with JSON Schema 2020-12 features",
                json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "$defs": {
                        "address": {
                            "$anchor": "address",
                            "type": "object",
                            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                        },
                    },
                    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
                    // SEP-2106 (2026-07-28): composition, conditional and anchor keywords pass
                    // through unchanged.
                    "allOf": [{"anyOf": [{"required": ["name"]}, {"required": ["address"]}]}],
                    "if": {"required": ["address"]},
                    "then": {"properties": {"address": {"required": ["city"]}}},
                    "else": {"required": ["name"]},
                    "additionalProperties": false,
                }),
            ),
            |_, args| async move {
                Ok(ToolResult::text(format!(
                    "JSON Schema 2020-12 tool called with: {args}"
                )))
            },
        )
}

/// Sends `elicitation/create` and reports the answer as text.
async fn elicit_and_report(
    ctx: ToolContext,
    request: Value,
    prefix: &str,
) -> Result<ToolResult, ToolError> {
    Ok(match ctx.elicit(request).await {
        Ok(answer) => {
            let action = answer
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let content = answer.get("content").unwrap_or(&Value::Null);
            ToolResult::text(format!("{prefix}: action={action}, content={content}"))
        }
        Err(e) => ToolResult::error(format!("Elicitation failed: {e}")),
    })
}

fn sep1034_request() -> Value {
    json!({
        "message": "Please review and update the form fields with defaults",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active",
                },
                "verified": {"type": "boolean", "description": "Verification status", "default": true},
            },
            "required": [],
        },
    })
}

fn sep1330_request() -> Value {
    let titled = |prefix: &str, noun: &str| {
        json!([
            {"const": format!("{prefix}1"), "title": format!("First {noun}")},
            {"const": format!("{prefix}2"), "title": format!("Second {noun}")},
            {"const": format!("{prefix}3"), "title": format!("Third {noun}")},
        ])
    };
    json!({
        "message": "Please select options from the enum fields",
        "requestedSchema": {
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "description": "Select one option",
                    "enum": ["option1", "option2", "option3"],
                },
                "titledSingle": {
                    "type": "string",
                    "description": "Select one option with titles",
                    "oneOf": titled("value", "Option"),
                },
                "legacyEnum": {
                    "type": "string",
                    "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Select multiple options",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]},
                },
                "titledMulti": {
                    "type": "array",
                    "description": "Select multiple options with titles",
                    "minItems": 1,
                    "maxItems": 3,
                    "items": {"anyOf": titled("value", "Choice")},
                },
            },
            "required": [],
        },
    })
}

/// Adds the conformance suite's three resources and one template.
pub fn add_conformance_resources(builder: RegistryBuilder) -> RegistryBuilder {
    builder
        .static_resource(
            Resource::new("test://static-text", "static-text")
                .description("A static text resource for testing")
                .mime_type("text/plain"),
            ResourceBody::Text("This is the content of the static text resource.".into()),
        )
        .static_resource(
            Resource::new("test://static-binary", "static-binary")
                .description("A static binary resource (image) for testing")
                .mime_type("image/png"),
            ResourceBody::Blob(PNG_BASE64.into()),
        )
        .static_resource(
            Resource::new("test://watched-resource", "watched-resource")
                .description("A resource to subscribe to for update notifications")
                .mime_type("text/plain"),
            ResourceBody::Text("Watched resource content".into()),
        )
        .resource_template(
            ResourceTemplate::new("test://template/{id}/data", "template")
                .description("A resource template with parameter substitution")
                .mime_type("application/json"),
            |_, read: ResourceRead| async move {
                let id = read.variables.get("id").cloned().unwrap_or_default();
                let data = Value::from(format!("Data for ID: {id}"));
                let text = format!(
                    r#"{{"id":{},"templateTest":true,"data":{data}}}"#,
                    Value::from(id)
                );
                Ok(vec![ResourceContents::new(
                    read.uri,
                    ResourceBody::Text(text),
                )
                .mime_type("application/json")])
            },
        )
}

/// The string argument `key` of a prompt (checked present when required).
fn prompt_arg<'a>(args: &'a HashMap<String, String>, key: &str) -> &'a str {
    args.get(key).map_or("", String::as_str)
}

/// Adds the conformance suite's four prompts.
pub fn add_conformance_prompts(builder: RegistryBuilder) -> RegistryBuilder {
    let user = |content| PromptMessage::new(Role::User, content);
    builder
        .prompt(
            Prompt::new("test_simple_prompt", "A simple prompt without arguments"),
            move |_, _| {
                std::future::ready(Ok(PromptResult::new(vec![user(Content::text(
                    "This is a simple prompt for testing.",
                ))])))
            },
        )
        .prompt(
            Prompt::new(
                "test_prompt_with_arguments",
                "A prompt with required arguments",
            )
            .argument("arg1", "First test argument", true)
            .argument("arg2", "Second test argument", true),
            move |_, args| {
                let text = format!(
                    "Prompt with arguments: arg1='{}', arg2='{}'",
                    prompt_arg(&args, "arg1"),
                    prompt_arg(&args, "arg2")
                );
                std::future::ready(Ok(PromptResult::new(vec![user(Content::text(text))])))
            },
        )
        .prompt(
            Prompt::new(
                "test_prompt_with_embedded_resource",
                "A prompt that includes an embedded resource",
            )
            .argument("resourceUri", "URI of the resource to embed", true),
            move |_, args| {
                let resource = ResourceContents::new(
                    prompt_arg(&args, "resourceUri"),
                    ResourceBody::Text("Embedded resource content for testing.".into()),
                )
                .mime_type("text/plain");
                std::future::ready(Ok(PromptResult::new(vec![
                    user(Content::resource(resource)),
                    user(Content::text("Please process the embedded resource above.")),
                ])))
            },
        )
        .prompt(
            Prompt::new(
                "test_prompt_with_image",
                "A prompt that includes image content",
            ),
            move |_, _| {
                std::future::ready(Ok(PromptResult::new(vec![
                    user(Content::image(PNG_BASE64, "image/png")),
                    user(Content::text("Please analyze the image above.")),
                ])))
            },
        )
}

/// `n` bytes of printable ASCII.
fn filler(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    ALPHABET
        .iter()
        .copied()
        .cycle()
        .take(n)
        .map(char::from)
        .collect()
}

/// Adds the benchmark tools `payload`, `stream` and `touch_resource`.
pub fn add_benchmark_tools(builder: RegistryBuilder) -> RegistryBuilder {
    builder
        .tool(
            Tool::new(
                "payload",
                "Returns a text content of exactly `bytes` bytes (at most 1 MiB)",
                json!({
                    "type": "object",
                    "properties": {"bytes": {"type": "integer", "minimum": 0, "maximum": MAX_PAYLOAD_BYTES,
                        "description": "Size of the returned text in bytes"}},
                    "required": ["bytes"],
                }),
            ),
            |_, args| async move {
                let bytes = arg_u64(&args, "bytes", None, MAX_PAYLOAD_BYTES)?;
                Ok(ToolResult::text(filler(usize::try_from(bytes).unwrap_or(0))))
            },
        )
        .tool(
            Tool::new(
                "stream",
                "Sends `count` notifications `interval_ms` apart, each carrying `bytes` bytes and a \
                 sequence number counting from `from` (default 1): notifications/progress when the \
                 call has a progressToken, else notifications/message (level info). A client whose \
                 call was cut off continues the sequence by calling again with `from`. The result \
                 text is the number sent.",
                json!({
                    "type": "object",
                    "properties": {
                        "count": {"type": "integer", "minimum": 0, "maximum": MAX_STREAM_COUNT,
                            "description": "Number of notifications (default 10)"},
                        "interval_ms": {"type": "integer", "minimum": 0, "maximum": MAX_STREAM_INTERVAL_MS,
                            "description": "Pause between notifications in milliseconds (default 0)"},
                        "bytes": {"type": "integer", "minimum": 0, "maximum": MAX_PAYLOAD_BYTES,
                            "description": "Size of each notification's text (default 0; at least the sequence number)"},
                        "from": {"type": "integer", "minimum": 1, "maximum": MAX_STREAM_FROM,
                            "description": "Sequence number of the first notification (default 1); the \
                                            others follow it, on the same schedule"},
                    },
                }),
            ),
            stream,
        )
        .tool(
            Tool::new(
                "touch_resource",
                "Announces that a resource changed: subscribed sessions on every shard get notifications/resources/updated",
                one_string("uri", "URI of the changed resource"),
            ),
            |ctx: ToolContext, args| async move {
                let reached = ctx.resource_updated(arg_str(&args, "uri")?);
                Ok(ToolResult::text(format!(
                    "notified {reached} subscriber(s) on this shard; other shards notify theirs"
                )))
            },
        )
}

async fn stream(ctx: ToolContext, args: Value) -> Result<ToolResult, ToolError> {
    let count = arg_u64(&args, "count", Some(10), MAX_STREAM_COUNT)?;
    let interval = arg_u64(&args, "interval_ms", Some(0), MAX_STREAM_INTERVAL_MS)?;
    let bytes = arg_u64(&args, "bytes", Some(0), MAX_PAYLOAD_BYTES)?;
    let from = arg_u64(&args, "from", Some(1), MAX_STREAM_FROM)?;
    if from == 0 {
        return Err(ToolError::InvalidParams(
            "\"from\" must be at least 1".into(),
        ));
    }
    if count.saturating_mul(bytes) > MAX_STREAM_TOTAL_BYTES {
        return Err(ToolError::InvalidParams(format!(
            "count × bytes must be at most {MAX_STREAM_TOTAL_BYTES}"
        )));
    }
    let size = usize::try_from(bytes).unwrap_or(0);
    let start = std::time::Instant::now();
    let mut slice_start = start;
    let mut sent = 0u64;
    // The last sequence number (both terms are capped, so the sum cannot overflow).
    let last = from + count.saturating_sub(1);
    for (n, seq) in (0u64..).zip(from..from + count) {
        // On a fixed schedule from the start, so a late wake-up does not push back the rest.
        let due = start + Duration::from_millis(interval.saturating_mul(n));
        let wait = due.saturating_duration_since(std::time::Instant::now());
        if !wait.is_zero() {
            ctx.sleep(wait).await;
        } else if slice_start.elapsed() >= YIELD_AFTER
            || n * bytes % YIELD_BYTES + bytes >= YIELD_BYTES
        {
            // Without a pause the whole run would hold the shard and outgrow the queue of the
            // client it writes to: let the connections (this one's writer among them) have a turn.
            futures_lite::future::yield_now().await;
            slice_start = std::time::Instant::now();
        }
        // Send time in µs since the UNIX epoch, for delivery latency measured by the receiver.
        let ts_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        // Precision loss above 2^53 cannot happen: count and from are capped. The total is
        // the last sequence number, which is `count` for a call from 1.
        let reported = if ctx.progress_token().is_some() {
            let mut text = format!("{seq} {ts_us} ");
            text.push_str(&filler(size.saturating_sub(text.len())));
            ctx.progress(seq as f64, Some(last as f64), Some(&text))
        } else {
            let text = filler(size);
            ctx.log(
                LogLevel::Info,
                &json!({"seq": seq, "ts_us": ts_us, "text": text}),
            )
        };
        sent += u64::from(reported);
    }
    Ok(ToolResult::text(sent.to_string()))
}
