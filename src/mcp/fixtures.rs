//! Built-in tools for smoke tests and the conformance suite.
//!
//! Each fixture is an `add_*` function on a builder, so later fixtures
//! (conformance tools, resources, prompts) slot in beside `echo`.

use crate::mcp::registry::{Registry, RegistryBuilder};
use crate::mcp::tool::{Tool, ToolContext, ToolError, ToolResult};
use serde_json::{json, Value};

/// A builder preloaded with every built-in fixture.
pub fn builtin() -> RegistryBuilder {
    add_echo(Registry::builder())
}

/// Adds `echo`: returns its `message` argument as text.
pub fn add_echo(builder: RegistryBuilder) -> RegistryBuilder {
    builder.tool(
        Tool::new(
            "echo",
            "Echoes back the given message",
            json!({
                "type": "object",
                "properties": {"message": {"type": "string", "description": "Text to echo"}},
                "required": ["message"],
            }),
        ),
        echo,
    )
}

async fn echo(_ctx: ToolContext, args: Value) -> Result<ToolResult, ToolError> {
    match args {
        Value::Object(mut args) => match args.remove("message") {
            Some(Value::String(message)) => Ok(ToolResult::text(message)),
            _ => Err(ToolError::InvalidParams(
                "echo requires a string \"message\" argument".to_owned(),
            )),
        },
        _ => Err(ToolError::InvalidParams(
            "echo arguments must be an object".to_owned(),
        )),
    }
}
