//! The registry a shard serves now, and how a change to it reaches every shard.
//!
//! Each shard reads its own snapshot (no lock, no shared counter on the request path). One
//! shard, the writer, makes every change, so all shards see the same sequence of versions:
//! another shard's change is sent to the writer, and each new version is sent to every other
//! shard, which installs it unless it already has a newer one.

use crate::mcp::listen::ListKind;
use crate::mcp::registry::{CatalogueChange, Registry};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

/// What one shard sends another about the catalogue (the transport carries it).
pub enum CatalogueUpdate {
    /// A change made on a shard that is not the writer: for the writer to make.
    Change(Box<CatalogueChange>),
    /// A new version, from the writer: for every other shard to install.
    Install {
        /// Versions only grow; an older one than the shard has is ignored.
        version: u64,
        /// The catalogue from now on.
        registry: Arc<Registry>,
        /// The list that changed, for the listen streams.
        list: ListKind,
    },
}

/// The hook a transport installs with
/// [`Dispatcher::with_catalogue_sync`](crate::mcp::Dispatcher::with_catalogue_sync).
pub(crate) type SyncFn = dyn Fn(CatalogueUpdate);

/// One shard's view of the catalogue.
///
/// The snapshot is an `Rc` around the shared `Arc`: taking one per request counts on this
/// core only, where cloning the `Arc` would bounce its counter between cores.
#[allow(clippy::redundant_allocation)]
pub(crate) struct Catalogue {
    current: RefCell<Rc<Arc<Registry>>>,
    version: Cell<u64>,
    writer: bool,
    sync: Rc<SyncFn>,
}

impl Catalogue {
    /// A catalogue serving `registry`; the writer when `writer`, reaching the other shards
    /// through `sync`.
    pub(crate) fn new(registry: Arc<Registry>, writer: bool, sync: Rc<SyncFn>) -> Catalogue {
        Catalogue {
            current: RefCell::new(Rc::new(registry)),
            version: Cell::new(0),
            writer,
            sync,
        }
    }

    /// The registry now; a request keeps the one it started with.
    #[allow(clippy::redundant_allocation)]
    pub(crate) fn current(&self) -> Rc<Arc<Registry>> {
        Rc::clone(&self.current.borrow())
    }

    /// Makes `change` (on the writer) or hands it to the writer; `tell` announces a list
    /// change on this shard.
    pub(crate) fn change(&self, change: CatalogueChange, tell: &dyn Fn(ListKind)) {
        if !self.writer {
            (self.sync)(CatalogueUpdate::Change(Box::new(change)));
            return;
        }
        let list = change.list();
        let Some(next) = self.current().changed(change) else {
            return;
        };
        let (version, registry) = (self.version.get() + 1, Arc::new(next));
        (self.sync)(CatalogueUpdate::Install {
            version,
            registry: Arc::clone(&registry),
            list,
        });
        self.install(version, registry, list, tell);
    }

    /// Serves `registry` from now on unless a newer version is already served, and has
    /// `tell` announce the change on this shard.
    pub(crate) fn install(
        &self,
        version: u64,
        registry: Arc<Registry>,
        list: ListKind,
        tell: &dyn Fn(ListKind),
    ) {
        if version <= self.version.get() {
            return;
        }
        self.version.set(version);
        *self.current.borrow_mut() = Rc::new(registry);
        tell(list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::testing::Harness;
    use crate::mcp::{Dispatcher, Tool, ToolResult};
    use serde_json::{json, Value};

    /// Updates in flight between shards, with the shard each is for (the mesh).
    type Mesh = Rc<RefCell<Vec<(usize, CatalogueUpdate)>>>;

    /// Two shards whose updates go through a queue the test delivers.
    fn two_shards() -> ([Dispatcher; 2], Mesh) {
        let sent: Mesh = Rc::default();
        let shard = |index: usize| {
            let sent = Rc::clone(&sent);
            let registry = Arc::new(Registry::builder().list_changes(true).build());
            Dispatcher::new(registry).with_catalogue_sync(index == 0, move |update| {
                let to = match update {
                    CatalogueUpdate::Change(_) => 0,
                    CatalogueUpdate::Install { .. } => 1 - index,
                };
                sent.borrow_mut().push((to, update));
            })
        };
        ([shard(0), shard(1)], sent)
    }

    fn deliver(shards: &[Dispatcher; 2], sent: &Mesh) {
        loop {
            let next = sent.borrow_mut().pop();
            let Some((to, update)) = next else { break };
            shards[to].apply_catalogue_update(update);
        }
    }

    fn tool_names(dispatcher: &Dispatcher) -> Vec<String> {
        let h = Harness::on(dispatcher.clone());
        h.init("2025-11-25");
        let list = h.rpc(1, "tools/list", json!({}));
        list["result"]["tools"]
            .as_array()
            .map_or(Vec::new(), |tools| {
                tools
                    .iter()
                    .map(|t| t["name"].as_str().unwrap().to_owned())
                    .collect()
            })
    }

    fn add(name: &str) -> CatalogueChange {
        let tool = Tool::new(name, "added", json!({"type": "object"}));
        CatalogueChange::add_tool(tool, |_, _: Value| async { Ok(ToolResult::text("ok")) })
    }

    #[test]
    fn a_change_on_any_shard_is_made_by_the_writer_and_reaches_all() {
        let (shards, sent) = two_shards();
        shards[1].change_catalogue(add("a"));
        // Not made where it was asked: the writer makes it.
        assert!(tool_names(&shards[1]).is_empty());
        deliver(&shards, &sent);
        assert_eq!(tool_names(&shards[0]), ["a"]);
        assert_eq!(tool_names(&shards[1]), ["a"]);
        shards[0].change_catalogue(add("b"));
        shards[0].change_catalogue(CatalogueChange::remove_tool("a"));
        // Delivered newest first: the older version arrives late and is ignored.
        deliver(&shards, &sent);
        assert_eq!(tool_names(&shards[1]), ["b"]);
    }

    #[test]
    fn a_request_keeps_the_catalogue_it_started_with() {
        let (shards, _) = two_shards();
        let before = shards[0].registry();
        shards[0].change_catalogue(add("a"));
        assert!(before.tools().is_empty());
        assert_eq!(shards[0].registry().tools().len(), 1);
    }

    #[test]
    fn initialized_2025_sessions_hear_of_a_change_until_they_end() {
        let (shards, sent) = two_shards();
        let here = Harness::on(shards[1].clone());
        let init = here.init("2025-11-25");
        assert_eq!(
            init["result"]["capabilities"]["tools"],
            json!({"listChanged": true})
        );
        here.peer.messages();
        shards[0].change_catalogue(add("a"));
        deliver(&shards, &sent);
        assert_eq!(
            here.peer.messages(),
            [json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})]
        );
        shards[1].end_session(&here.session);
        shards[0].change_catalogue(add("b"));
        deliver(&shards, &sent);
        assert!(here.peer.messages().is_empty());
    }
}
