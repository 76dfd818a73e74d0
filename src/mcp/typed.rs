//! Tools whose arguments, and optionally results, are Rust types: the JSON Schemas are
//! generated from the types (`schemars`, JSON Schema 2020-12), so a schema and the code
//! that reads the arguments cannot disagree.
//!
//! Spec (2025-11-25, basic): "JSON Schema 2020-12 is the default dialect for MCP schemas";
//! (tools) "inputSchema ... MUST be a valid JSON Schema object", and "If an output schema is
//! provided: Servers MUST provide structured results that conform to this schema."

use crate::mcp::tool::{call_outcome, Tool, ToolContext, ToolError, ToolHandler, ToolResult};
use crate::mcp::version;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;

/// What a typed tool's handler may return: a [`ToolResult`] as it is, or a
/// [`Structured`] value whose type is the tool's `outputSchema`.
pub trait IntoToolResult {
    /// The `outputSchema` every successful result conforms to, if the result is structured.
    fn output_schema() -> Option<Value>;

    /// The `tools/call` result.
    fn into_tool_result(self) -> Result<ToolResult, ToolError>;
}

impl IntoToolResult for ToolResult {
    fn output_schema() -> Option<Value> {
        None
    }

    fn into_tool_result(self) -> Result<ToolResult, ToolError> {
        Ok(self)
    }
}

/// A typed tool's structured result: sent as `structuredContent` (and, for clients that
/// read only `content`, as its JSON text), its type's schema listed as the tool's
/// `outputSchema`. `T` must serialize to a JSON object (a struct or a map).
///
/// ```
/// use ringmcp::{Registry, Structured, Tool, ToolContext};
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Add { a: f64, b: f64 }
///
/// #[derive(serde::Serialize, schemars::JsonSchema)]
/// struct Sum { sum: f64 }
///
/// let registry = Registry::builder()
///     .typed_tool(Tool::named("add", "Adds two numbers"), |_ctx: ToolContext, args: Add| async move {
///         Ok(Structured(Sum { sum: args.a + args.b }))
///     })
///     .build();
/// # drop(registry);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Structured<T>(pub T);

impl<T: Serialize + JsonSchema> IntoToolResult for Structured<T> {
    fn output_schema() -> Option<Value> {
        Some(schemars::schema_for!(T).to_value())
    }

    fn into_tool_result(self) -> Result<ToolResult, ToolError> {
        match serde_json::to_value(&self.0) {
            Ok(Value::Object(object)) => Ok(ToolResult::structured(object)),
            Ok(other) => Err(ToolError::Internal(format!(
                "a structured result must be a JSON object, not {}",
                json_type(&other)
            ))),
            Err(e) => Err(ToolError::Internal(format!(
                "the structured result does not serialize: {e}"
            ))),
        }
    }
}

/// `tool` with its schemas generated from `A` (and `R`, when structured), and `handler`
/// behind a shared handler that deserializes the arguments first. Arguments that do not fit
/// `A` never reach the handler: the answer names the field, as a tool execution error
/// (`isError: true`) from 2025-11-25 on and as -32602 before (see
/// [`version::reports_invalid_arguments_in_result`]).
pub(crate) fn typed_tool<A, R, F, Fut>(tool: Tool, handler: F) -> (Tool, ToolHandler)
where
    A: DeserializeOwned + JsonSchema + 'static,
    R: IntoToolResult + 'static,
    F: Fn(ToolContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, ToolError>> + 'static,
{
    let mut tool = tool.input_schema(schemars::schema_for!(A).to_value());
    if let Some(schema) = R::output_schema() {
        tool = tool.output_schema(schema);
    }
    let handler: ToolHandler = Arc::new(move |ctx: ToolContext, args| match arguments::<A>(args) {
        Ok(args) => {
            let running = handler(ctx, args);
            Box::pin(async move {
                call_outcome(running.await.and_then(IntoToolResult::into_tool_result))
            })
        }
        Err(why) => {
            let answer = if ctx
                .protocol_version()
                .is_some_and(version::reports_invalid_arguments_in_result)
            {
                Ok(ToolResult::error(why))
            } else {
                Err(ToolError::InvalidParams(why))
            };
            Box::pin(std::future::ready(answer))
        }
    });
    (tool, handler)
}

/// The call's `arguments` as `A`, or what is wrong with them and where (`Invalid arguments:
/// limits.max: invalid type: string "x", expected u32`).
fn arguments<A: DeserializeOwned>(args: Value) -> Result<A, String> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            format!("Invalid arguments: {inner}")
        } else {
            format!("Invalid arguments: {path}: {inner}")
        }
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::testing::{error_code, Harness};
    use crate::mcp::version;
    use crate::mcp::Registry;
    use crate::proto::jsonrpc::INVALID_PARAMS;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)] // read by deserialization only
    struct Limits {
        max: u32,
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)] // read by deserialization only
    struct Args {
        name: String,
        limits: Option<Limits>,
    }

    #[test]
    fn arguments_that_do_not_fit_name_the_field() {
        let Err(message) = arguments::<Args>(json!({"name": "n", "limits": {"max": "x"}})) else {
            panic!("accepted");
        };
        assert!(message.starts_with("Invalid arguments: limits.max: invalid type: string"));
        let Err(message) = arguments::<Args>(json!({})) else {
            panic!("accepted");
        };
        assert_eq!(message, "Invalid arguments: missing field `name`");
        assert!(arguments::<Args>(json!({"name": "n"})).is_ok());
    }

    #[test]
    fn the_input_schema_is_generated_from_the_argument_type() {
        let (tool, _) = typed_tool(Tool::named("t", "typed"), |_ctx, _args: Args| async move {
            Ok(ToolResult::text("ok"))
        });
        let listed = serde_json::to_value(&tool).unwrap();
        let schema = &listed["inputSchema"];
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["required"], json!(["name"]));
        assert_eq!(schema["properties"]["name"]["type"], "string");
        assert!(listed.get("outputSchema").is_none());
    }

    #[derive(Serialize, JsonSchema)]
    struct Count(u32);

    #[test]
    fn a_structured_result_that_is_no_object_is_an_internal_error() {
        assert_eq!(
            Structured(Count(3)).into_tool_result(),
            Err(ToolError::Internal(
                "a structured result must be a JSON object, not a number".into()
            ))
        );
    }

    /// The calculator of the README, with a structured result.
    #[derive(Deserialize, JsonSchema)]
    struct Add {
        /// The first term.
        a: f64,
        /// The second term.
        b: f64,
    }

    #[derive(Serialize, JsonSchema)]
    struct Sum {
        /// a + b
        sum: f64,
        /// Whether the sum is exact in f64.
        exact: bool,
    }

    thread_local! {
        /// Calls that reached the calculator's handler (on this test's thread).
        static ADDED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    fn calculator(revision: &str) -> Harness {
        let harness = Harness::new(
            Registry::builder()
                .typed_tool(
                    Tool::named("add", "Adds two numbers"),
                    |_ctx, args: Add| async move {
                        ADDED.set(ADDED.get() + 1);
                        let sum = args.a + args.b;
                        Ok(Structured(Sum {
                            sum,
                            exact: sum - args.a == args.b,
                        }))
                    },
                )
                .build(),
        );
        harness.init(revision);
        harness
    }

    #[test]
    fn a_wrong_argument_type_names_the_field_and_the_handler_does_not_run() {
        // Spec (2025-11-25, tools): "Input validation errors" are Tool Execution Errors,
        // "Reported in tool results with `isError: true`".
        let h = calculator(version::LATEST);
        let r = h.call(1, "add", json!({"a": 1, "b": "x"}));
        assert_eq!(r["result"]["isError"], true);
        assert_eq!(
            r["result"]["content"][0]["text"],
            "Invalid arguments: b: invalid type: string \"x\", expected f64"
        );
        let r = h.call(2, "add", json!({"a": 1}));
        assert_eq!(
            r["result"]["content"][0]["text"],
            "Invalid arguments: missing field `b`"
        );
        // Spec (2025-06-18, tools): protocol errors include "Invalid arguments".
        let before = calculator("2025-06-18");
        let r = before.call(1, "add", json!({"a": 1, "b": "x"}));
        assert_eq!(error_code(&r), INVALID_PARAMS);
        assert_eq!(
            r["error"]["message"],
            "Invalid arguments: b: invalid type: string \"x\", expected f64"
        );
        assert_eq!(ADDED.get(), 0);
        let r = h.call(3, "add", json!({"a": 1, "b": 2}));
        assert_eq!(r["result"]["structuredContent"]["sum"], 3.0);
        assert_eq!(ADDED.get(), 1);
    }

    #[test]
    fn a_structured_result_validates_against_the_listed_output_schema() {
        let h = calculator(version::LATEST);
        let listed = h.rpc(1, "tools/list", json!({}));
        let tool = &listed["result"]["tools"][0];
        assert_eq!(tool["inputSchema"]["required"], json!(["a", "b"]));
        assert_eq!(
            tool["inputSchema"]["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        let output_schema = &tool["outputSchema"];
        assert_eq!(output_schema["type"], "object");

        let r = h.call(2, "add", json!({"a": 0.5, "b": 2}));
        let structured = &r["result"]["structuredContent"];
        assert_eq!(structured, &json!({"sum": 2.5, "exact": true}));
        // Spec (tools): "a tool that returns structured content SHOULD also return the
        // serialized JSON in a TextContent block".
        let text = r["result"]["content"][0]["text"].as_str().unwrap();
        assert_eq!(&serde_json::from_str::<Value>(text).unwrap(), structured);

        let validator = jsonschema::draft202012::new(output_schema).expect("a valid schema");
        assert!(validator.is_valid(structured));
        // The validator is not a rubber stamp: the schema's own field types are enforced.
        assert!(!validator.is_valid(&json!({"sum": "2.5", "exact": true})));
        assert!(!validator.is_valid(&json!({"exact": true})));
    }
}
