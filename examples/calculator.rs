//! A calculator with typed tools: the argument and result types are the tools' JSON Schemas.
//!
//! ```sh
//! cargo run --example calculator              # serves http://127.0.0.1:8080/mcp (and ws://)
//! cargo run --example calculator -- --bind 127.0.0.1:0   # any free port; the first line says which
//! ```
//!
//! `{"a": 1, "b": "x"}` never reaches a handler: the result is a tool error (`isError`)
//! saying `Invalid arguments: b: invalid type: string "x", expected f64` (-32602 with that
//! message for clients of MCP 2025-06-18 and before).

mod common;

use ringmcp::{Registry, ServerError, Structured, Tool, ToolContext, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Two operands.
#[derive(Deserialize, JsonSchema)]
struct Operands {
    /// The left operand.
    a: f64,
    /// The right operand.
    b: f64,
}

/// What a calculation gave.
#[derive(Serialize, JsonSchema)]
struct Answer {
    /// The result.
    value: f64,
}

fn main() -> Result<(), ServerError> {
    let registry = Registry::builder()
        .server_info("calculator", env!("CARGO_PKG_VERSION"))
        .instructions("Arithmetic on two numbers: add, divide.")
        .typed_tool(
            Tool::named("add", "Adds b to a"),
            |_ctx: ToolContext, args: Operands| async move {
                Ok(Structured(Answer {
                    value: args.a + args.b,
                }))
            },
        )
        .typed_tool(
            Tool::named("divide", "Divides a by b (b must not be 0)"),
            |_ctx: ToolContext, args: Operands| async move {
                if args.b == 0.0 {
                    // A tool execution error: the model reads it and can try again.
                    return Err(ToolError::Failed(
                        "division by zero: b must not be 0".into(),
                    ));
                }
                Ok(Structured(Answer {
                    value: args.a / args.b,
                }))
            },
        )
        .build();
    common::serve(registry)
}
