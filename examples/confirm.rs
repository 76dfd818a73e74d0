//! A tool that reports progress and asks the user before it acts: `clean_up` counts what it
//! would delete (with `notifications/progress` as it goes), asks for confirmation with
//! `elicitation/create`, and deletes only on an accept with `confirm: true`. A 2025 session
//! gets the elicitation as a request on the call's stream; a 2026-07-28 call ends with
//! `input_required` and is sent again with the answer, and the handler runs again with it.
//!
//! ```sh
//! cargo run --example confirm [-- --bind 127.0.0.1:8080]
//! ```

mod common;

use ringmcp::{Registry, ServerError, Structured, Tool, ToolContext, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;

/// What to clean up.
#[derive(Deserialize, JsonSchema)]
struct CleanUp {
    /// How many old items to look at (1 to 100).
    #[schemars(range(min = 1, max = 100))]
    items: u32,
}

/// What happened.
#[derive(Serialize, JsonSchema)]
struct Outcome {
    /// Items deleted (0 when the user declined).
    deleted: u32,
    /// The user's answer: accept, decline or cancel.
    action: String,
}

fn main() -> Result<(), ServerError> {
    let registry = Registry::builder()
        .server_info("confirm", env!("CARGO_PKG_VERSION"))
        .typed_tool(
            Tool::named("clean_up", "Deletes old items after the user confirms"),
            |ctx: ToolContext, args: CleanUp| async move {
                if !(1..=100).contains(&args.items) {
                    return Err(ToolError::Failed("items must be from 1 to 100".into()));
                }
                for done in 1..=args.items {
                    // Sent only when the client asked for progress (a progressToken).
                    ctx.progress(
                        f64::from(done),
                        Some(f64::from(args.items)),
                        Some("counting"),
                    );
                    ctx.sleep(Duration::from_millis(5)).await;
                }
                let answer = ctx.elicit(ask_to_delete(args.items)).await?;
                let action = answer["action"].as_str().unwrap_or("cancel").to_owned();
                let confirmed = action == "accept" && answer["content"]["confirm"] == true;
                Ok(Structured(Outcome {
                    deleted: if confirmed { args.items } else { 0 },
                    action,
                }))
            },
        )
        .build();
    common::serve(registry)
}

/// An `elicitation/create` form with one boolean.
fn ask_to_delete(items: u32) -> Value {
    json!({
        "message": format!("Delete {items} old items?"),
        "requestedSchema": {
            "type": "object",
            "properties": {"confirm": {"type": "boolean", "title": "Delete them"}},
            "required": ["confirm"],
        },
    })
}
