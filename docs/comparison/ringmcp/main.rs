//! The comparison server (docs/comparison.md) written with ringmcp: `add`, the subscribable
//! resource `counter://value` with `increment`, and `clean_up` (progress, then elicitation).
//!
//! Built as the example `comparison` of this repository (Cargo.toml), serving as the other
//! examples do: `cargo run --release --example comparison -- --bind 127.0.0.1:PORT`.

#[path = "../../../examples/common/mod.rs"]
mod common;

use ringmcp::{
    Registry, Resource, ResourceBody, ResourceContents, ResourceRead, ServerError, Structured,
    Tool, ToolContext, ToolError,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const COUNTER: &str = "counter://value";

/// Shared by every shard: handlers are `Send + Sync`, and so must be what they share.
static COUNT: AtomicU64 = AtomicU64::new(0);

#[derive(Deserialize, JsonSchema)]
struct Operands {
    a: f64,
    b: f64,
}

#[derive(Serialize, JsonSchema)]
struct Value {
    value: f64,
}

#[derive(Deserialize, JsonSchema)]
struct Increment {
    /// At least 1 (default 1).
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    by: u64,
}

fn one() -> u64 {
    1
}

#[derive(Serialize, JsonSchema)]
struct Count {
    value: u64,
}

#[derive(Deserialize, JsonSchema)]
struct CleanUp {
    /// How many old items to look at (1 to 100).
    #[schemars(range(min = 1, max = 100))]
    items: u32,
}

#[derive(Serialize, JsonSchema)]
struct Outcome {
    deleted: u32,
    action: String,
}

fn main() -> Result<(), ServerError> {
    let registry = Registry::builder()
        .server_info("comparison", "1.0.0")
        .typed_tool(
            Tool::named("add", "Adds b to a"),
            |_ctx: ToolContext, args: Operands| async move {
                Ok(Structured(Value {
                    value: args.a + args.b,
                }))
            },
        )
        .resource(
            Resource::new(COUNTER, "counter").mime_type("text/plain"),
            |_ctx: ToolContext, read: ResourceRead| async move {
                let count = COUNT.load(Ordering::Relaxed).to_string();
                Ok(vec![ResourceContents::new(
                    read.uri,
                    ResourceBody::Text(count),
                )
                .mime_type("text/plain")])
            },
        )
        .typed_tool(
            Tool::named("increment", "Adds `by` to counter://value"),
            |ctx: ToolContext, args: Increment| async move {
                if args.by == 0 {
                    return Err(ToolError::Failed("by must be at least 1".into()));
                }
                let value = COUNT.fetch_add(args.by, Ordering::Relaxed) + args.by;
                // Every session subscribed to the URI, on any shard, gets resources/updated.
                ctx.resource_updated(COUNTER);
                Ok(Structured(Count { value }))
            },
        )
        .typed_tool(
            Tool::named("clean_up", "Deletes old items after the user confirms"),
            |ctx: ToolContext, args: CleanUp| async move {
                if !(1..=100).contains(&args.items) {
                    return Err(ToolError::Failed("items must be from 1 to 100".into()));
                }
                for done in 1..=args.items {
                    // Sent only when the call carried a progressToken.
                    let total = Some(f64::from(args.items));
                    ctx.progress(f64::from(done), total, Some("counting"));
                    ctx.sleep(Duration::from_millis(5)).await;
                }
                let answer = ctx
                    .elicit(json!({
                        "message": format!("Delete {} old items?", args.items),
                        "requestedSchema": {
                            "type": "object",
                            "properties": {"confirm": {"type": "boolean"}},
                            "required": ["confirm"],
                        },
                    }))
                    .await?;
                let action = answer["action"].as_str().unwrap_or("cancel").to_owned();
                let confirmed = action == "accept" && answer["content"]["confirm"] == true;
                let deleted = if confirmed { args.items } else { 0 };
                Ok(Structured(Outcome { deleted, action }))
            },
        )
        .build();
    common::serve(registry)
}
