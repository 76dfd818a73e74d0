//! Ordered catalogues with lookup and cursor pagination: the one mechanism
//! behind `tools/list`, `resources/list`, `resources/templates/list` and
//! `prompts/list`.

use crate::proto::jsonrpc::Error;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::borrow::Cow;
use std::collections::HashMap;

/// An item of a catalogue: serializable for its list, found by its key.
pub(crate) trait Listed: Serialize {
    /// The unique name (tools, prompts) or URI (resources, templates).
    fn key(&self) -> &str;
}

/// Items in registration order, each with its handler.
pub(crate) struct Table<T, H> {
    /// The member name of the list result (`"tools"`, ...), also the cursor prefix.
    list_key: &'static str,
    items: Vec<T>,
    handlers: Vec<H>,
    by_key: HashMap<String, usize>,
    page_size: usize,
}

/// Adds `item` to a builder's entries; an item with the same key is replaced.
///
/// Spec (tools): "Tool names SHOULD be unique within a server."; (resources)
/// "Each resource is uniquely identified by a URI"; (prompts) "`name`:
/// Unique identifier for the prompt".
pub(crate) fn upsert<T: Listed, H>(entries: &mut Vec<(T, H)>, item: T, handler: H) {
    if let Some(slot) = entries.iter_mut().find(|(t, _)| t.key() == item.key()) {
        log::warn!("{:?} registered twice; keeping the last", item.key());
        *slot = (item, handler);
    } else {
        entries.push((item, handler));
    }
}

impl<T: Listed, H> Table<T, H> {
    /// Freezes builder entries (keys already unique, see [`upsert`]).
    pub(crate) fn new(list_key: &'static str, entries: Vec<(T, H)>, page_size: usize) -> Self {
        let (items, handlers): (Vec<T>, Vec<H>) = entries.into_iter().unzip();
        let by_key = items
            .iter()
            .enumerate()
            .map(|(i, t)| (t.key().to_owned(), i))
            .collect();
        Table {
            list_key,
            items,
            handlers,
            by_key,
            page_size: page_size.max(1),
        }
    }

    /// Items with their handlers, for a builder (a changed catalogue starts from these).
    pub(crate) fn entries(&self) -> Vec<(T, H)>
    where
        T: Clone,
        H: Clone,
    {
        self.items
            .iter()
            .cloned()
            .zip(self.handlers.iter().cloned())
            .collect()
    }

    /// All items, in listing order.
    pub(crate) fn items(&self) -> &[T] {
        &self.items
    }

    /// Whether nothing is registered.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item with this key, and its handler.
    pub(crate) fn get(&self, key: &str) -> Option<(&T, &H)> {
        let &i = self.by_key.get(key)?;
        Some((self.items.get(i)?, self.handlers.get(i)?))
    }

    /// Items with their handlers, in listing order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&T, &H)> {
        self.items.iter().zip(&self.handlers)
    }

    /// One page of items and the cursor of the next page, if any.
    ///
    /// Spec (pagination): "Invalid cursors SHOULD result in an error with
    /// code -32602 (Invalid params)."
    pub(crate) fn page(&self, cursor: Option<&str>) -> Result<Page<'_, T>, Error> {
        let start = match cursor {
            None => 0,
            Some(cursor) => cursor
                .strip_prefix(self.list_key)
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(|n| n.parse::<usize>().ok())
                // We never hand out 0 or an offset past the end.
                .filter(|&n| n > 0 && n < self.items.len())
                .ok_or(Error::InvalidParams(Cow::Borrowed("Invalid cursor")))?,
        };
        let end = start.saturating_add(self.page_size).min(self.items.len());
        Ok(Page {
            list_key: self.list_key,
            items: self.items.get(start..end).unwrap_or_default(),
            // Spec (pagination): "An optional `nextCursor` field if more results exist".
            next_cursor: (end < self.items.len()).then(|| format!("{}:{end}", self.list_key)),
        })
    }
}

/// A list result: `{"<list_key>": [...], "nextCursor"?: "..."}`.
pub(crate) struct Page<'a, T> {
    list_key: &'static str,
    items: &'a [T],
    next_cursor: Option<String>,
}

impl<T: Serialize> Serialize for Page<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(self.list_key, self.items)?;
        if let Some(cursor) = &self.next_cursor {
            map.serialize_entry("nextCursor", cursor)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(serde::Serialize)]
    struct Item(&'static str);

    impl Listed for Item {
        fn key(&self) -> &str {
            self.0
        }
    }

    fn table(page_size: usize) -> Table<Item, u8> {
        let mut entries = Vec::new();
        for (key, handler) in [("a", 1), ("b", 2), ("a", 3), ("c", 4)] {
            upsert(&mut entries, Item(key), handler);
        }
        Table::new("things", entries, page_size)
    }

    #[test]
    fn upsert_replaces_in_place_and_lookup_finds_it() {
        let t = table(10);
        let keys: Vec<_> = t.items().iter().map(|i| i.0).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(t.get("a").map(|(_, h)| *h), Some(3));
        assert!(t.get("z").is_none());
        assert_eq!(t.iter().count(), 3);
    }

    #[test]
    fn pages_chain_and_bad_cursors_fail() {
        let t = table(2);
        let first = serde_json::to_value(t.page(None).expect("page")).expect("json");
        assert_eq!(first, json!({"things":["a","b"],"nextCursor":"things:2"}));
        let second = serde_json::to_value(t.page(Some("things:2")).expect("page")).expect("json");
        assert_eq!(second, json!({"things":["c"]}));
        for bad in [
            "things:0",
            "things:3",
            "things2",
            "tools:2",
            "",
            "things:-1",
        ] {
            assert!(t.page(Some(bad)).is_err(), "{bad}");
        }
        let empty: Table<Item, u8> = Table::new("things", Vec::new(), 1);
        assert!(empty.is_empty());
        let page = serde_json::to_value(empty.page(None).expect("page")).expect("json");
        assert_eq!(page, json!({"things": []}));
    }
}
