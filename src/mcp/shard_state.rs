//! State each shard has its own instance of: made once per shard, on the shard's thread, by
//! a factory the registry holds, and borrowed by handlers through their context
//! ([`ToolContext::shard_state`](crate::ToolContext::shard_state)). A handler's future need
//! not be `Send`, so the state needs no lock: a `Cell`, a `RefCell` or a connection pool of
//! the shard's own, with no `thread_local!`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

/// Makes one shard's instance of a state type.
pub(crate) type ShardStateFactory = Arc<dyn Fn() -> Rc<dyn Any> + Send + Sync>;

/// A factory for `T`, keyed by `T`'s type.
pub(crate) fn factory<T: 'static>(
    make: impl Fn() -> T + Send + Sync + 'static,
) -> (TypeId, ShardStateFactory) {
    (
        TypeId::of::<T>(),
        Arc::new(move || Rc::new(make()) as Rc<dyn Any>),
    )
}

/// One shard's states, one per type.
#[derive(Default)]
pub(crate) struct ShardStates(HashMap<TypeId, Rc<dyn Any>>);

impl ShardStates {
    /// Calls every factory once.
    pub(crate) fn make(factories: &[(TypeId, ShardStateFactory)]) -> ShardStates {
        ShardStates(
            factories
                .iter()
                .map(|(type_id, make)| (*type_id, make()))
                .collect(),
        )
    }

    /// This shard's `T`, if the registry has a factory for it.
    pub(crate) fn get<T: 'static>(&self) -> Option<Rc<T>> {
        let state = Rc::clone(self.0.get(&TypeId::of::<T>())?);
        state.downcast::<T>().ok()
    }
}

#[cfg(test)]
mod tests {
    use crate::mcp::testing::Harness;
    use crate::mcp::{version, Dispatcher, Registry, Tool, ToolContext, ToolError, ToolResult};
    use serde_json::json;
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Calls one shard served.
    struct Served(Cell<u64>);

    static MADE: AtomicUsize = AtomicUsize::new(0);

    fn registry() -> Arc<Registry> {
        Arc::new(
            Registry::builder()
                .shard_state(|| {
                    MADE.fetch_add(1, Ordering::Relaxed);
                    Served(Cell::new(0))
                })
                .tool(
                    Tool::named("served", ""),
                    |ctx: ToolContext, _| async move {
                        let served = ctx
                            .shard_state::<Served>()
                            .ok_or_else(|| ToolError::Internal("no state".into()))?;
                        served.0.set(served.0.get() + 1);
                        // Asked for a type no factory makes: none.
                        assert!(ctx.shard_state::<String>().is_none());
                        Ok(ToolResult::text(served.0.get().to_string()))
                    },
                )
                .build(),
        )
    }

    fn served(h: &Harness, id: i64) -> String {
        let r = h.call(id, "served", json!({}));
        r["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn each_shard_has_its_own_state_shared_by_its_sessions() {
        let registry = registry();
        let made = MADE.load(Ordering::Relaxed);
        let first = Dispatcher::new(Arc::clone(&registry));
        let second = Dispatcher::new(registry);
        assert_eq!(MADE.load(Ordering::Relaxed) - made, 2, "once per shard");
        let a = Harness::on(first.clone());
        let b = Harness::on(first);
        let other = Harness::on(second);
        for h in [&a, &b, &other] {
            h.init(version::LATEST);
        }
        assert_eq!(served(&a, 1), "1");
        assert_eq!(served(&b, 1), "2", "two sessions of one shard share it");
        assert_eq!(served(&other, 1), "1", "another shard has its own");
    }
}
