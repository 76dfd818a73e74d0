//! The comparison server (docs/comparison.md) written with rmcp 3.11: `add`, the subscribable
//! resource `counter://value` with `increment`, and `clean_up` (progress, then elicitation).
//!
//! `cargo run --release -- --bind 127.0.0.1:PORT` (endpoint /mcp).

use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::*;
use rmcp::service::{ElicitationError, RequestContext};
use rmcp::transport::streamable_http_server::{
    session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
};
use rmcp::{
    elicit_safe, tool, tool_handler, tool_router, ErrorData, Json, Peer, RoleServer, ServerHandler,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const COUNTER: &str = "counter://value";

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

// The elicitation form: one required boolean (a `///` comment would become its description).
#[derive(Deserialize, JsonSchema)]
struct Confirm {
    confirm: bool,
}
elicit_safe!(Confirm);

/// What every session shares: the count, and the sessions subscribed to counter://value.
#[derive(Default)]
struct Shared {
    count: AtomicU64,
    subscribers: Mutex<Vec<(u64, Peer<RoleServer>)>>,
}

/// One per session (the HTTP service calls the factory for each).
#[derive(Clone)]
struct Comparison {
    id: u64,
    shared: Arc<Shared>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

#[tool_router]
impl Comparison {
    fn new(shared: Arc<Shared>) -> Self {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        Self { id, shared }
    }

    #[tool(description = "Adds b to a")]
    async fn add(&self, Parameters(args): Parameters<Operands>) -> Json<Value> {
        Json(Value {
            value: args.a + args.b,
        })
    }

    #[tool(description = "Adds `by` to counter://value")]
    async fn increment(
        &self,
        Parameters(args): Parameters<Increment>,
    ) -> Result<Json<Count>, String> {
        if args.by == 0 {
            return Err("by must be at least 1".into());
        }
        let value = self.shared.count.fetch_add(args.by, Ordering::Relaxed) + args.by;
        let peers: Vec<Peer<RoleServer>> = {
            let mut subscribers = self.shared.subscribers.lock().unwrap();
            subscribers.retain(|(_, peer)| !peer.is_transport_closed());
            subscribers.iter().map(|(_, peer)| peer.clone()).collect()
        };
        for peer in peers {
            let updated = ResourceUpdatedNotificationParam::new(COUNTER);
            let _ = peer.notify_resource_updated(updated).await;
        }
        Ok(Json(Count { value }))
    }

    #[tool(description = "Deletes old items after the user confirms")]
    async fn clean_up(
        &self,
        peer: Peer<RoleServer>,
        meta: RequestMetaObject,
        Parameters(args): Parameters<CleanUp>,
    ) -> Result<Json<Outcome>, String> {
        if !(1..=100).contains(&args.items) {
            return Err("items must be from 1 to 100".into());
        }
        for done in 1..=args.items {
            if let Some(token) = meta.get_progress_token() {
                let progress = ProgressNotificationParam::new(token, f64::from(done))
                    .with_total(f64::from(args.items))
                    .with_message("counting");
                let _ = peer.notify_progress(progress).await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let question = format!("Delete {} old items?", args.items);
        let (deleted, action) = match peer.elicit::<Confirm>(question).await {
            Ok(Some(Confirm { confirm })) => (if confirm { args.items } else { 0 }, "accept"),
            Ok(None) => (0, "accept"),
            Err(ElicitationError::UserDeclined) => (0, "decline"),
            Err(ElicitationError::UserCancelled) => (0, "cancel"),
            Err(e) => return Err(e.to_string()),
        };
        Ok(Json(Outcome {
            deleted,
            action: action.into(),
        }))
    }
}

#[tool_handler]
impl ServerHandler for Comparison {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        ServerConfig::new(capabilities).with_server_info(Implementation::new("comparison", "1.0.0"))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let counter = Resource::new(COUNTER, "counter").with_mime_type("text/plain");
        Ok(ListResourcesResult::with_all_items(vec![counter]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != COUNTER {
            return Err(ErrorData::resource_not_found("no such resource", None));
        }
        let count = self.shared.count.load(Ordering::Relaxed).to_string();
        Ok(ReadResourceResult::new(vec![ResourceContents::text(count, request.uri)]).into())
    }

    #[allow(deprecated)] // resources/subscribe is the 2025 verb; 2026-07-28 has subscriptions/listen
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if request.uri != COUNTER {
            return Err(ErrorData::resource_not_found("no such resource", None));
        }
        let mut subscribers = self.shared.subscribers.lock().unwrap();
        if !subscribers.iter().any(|(id, _)| *id == self.id) {
            subscribers.push((self.id, context.peer));
        }
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        _request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.shared
            .subscribers
            .lock()
            .unwrap()
            .retain(|(id, _)| *id != self.id);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bind = match args.as_slice() {
        [flag, addr] if flag == "--bind" => addr.clone(),
        _ => "127.0.0.1:8080".to_owned(),
    };
    let shared = Arc::new(Shared::default());
    let service: StreamableHttpService<Comparison, LocalSessionManager> =
        StreamableHttpService::new(
            move || Ok(Comparison::new(shared.clone())),
            Default::default(),
            StreamableHttpServerConfig::default(),
        );
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("MCP on http://{}/mcp", listener.local_addr()?);
    axum::serve(listener, router).await
}
