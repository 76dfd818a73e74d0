//! A resource that changes, and clients that subscribe to it: `counter://value` holds a
//! number, the `increment` tool adds to it and tells every subscribed session, on whichever
//! shard it lives, with `notifications/resources/updated`.
//!
//! ```sh
//! cargo run --example counter [-- --bind 127.0.0.1:8080]
//! ```

mod common;

use ringmcp::{
    Registry, Resource, ResourceBody, ResourceContents, ResourceRead, ServerError, Structured,
    Tool, ToolContext, ToolError,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};

const COUNTER: &str = "counter://value";

/// The count, shared by every shard (handlers are `Send + Sync`; what they share across
/// shards must be too).
static COUNT: AtomicU64 = AtomicU64::new(0);

/// How much to add.
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

/// The count after the call.
#[derive(Serialize, JsonSchema)]
struct Count {
    value: u64,
}

fn main() -> Result<(), ServerError> {
    let registry = Registry::builder()
        .server_info("counter", env!("CARGO_PKG_VERSION"))
        .resource(
            Resource::new(COUNTER, "counter")
                .description("A number the increment tool changes; subscribe to hear of it")
                .mime_type("text/plain"),
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
            Tool::named(
                "increment",
                "Adds `by` to counter://value and tells its subscribers",
            ),
            |ctx: ToolContext, args: Increment| async move {
                if args.by == 0 {
                    return Err(ToolError::Failed("by must be at least 1".into()));
                }
                let value = COUNT.fetch_add(args.by, Ordering::Relaxed) + args.by;
                ctx.resource_updated(COUNTER);
                Ok(Structured(Count { value }))
            },
        )
        .build();
    common::serve(registry)
}
