//! Resources, resource templates, their contents, and the per-shard hub that
//! delivers `notifications/resources/updated` to subscribed sessions.

use crate::mcp::registry::CacheHints;
use crate::mcp::session::{SessionRef, SessionState};
use crate::mcp::table::Listed;
use crate::mcp::tool::{ToolContext, ToolError};
use crate::proto::jsonrpc;
use futures_lite::future::BoxedLocal;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;

/// A resource as listed by `resources/list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    uri: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mime_type: Option<String>,
    #[serde(skip)]
    pub(crate) cache: Option<CacheHints>,
}

impl Resource {
    /// Describes the resource at `uri`.
    pub fn new(uri: impl Into<String>, name: impl Into<String>) -> Self {
        Resource {
            uri: uri.into(),
            name: name.into(),
            description: None,
            mime_type: None,
            cache: None,
        }
    }

    /// Caching hints for reads of this resource (MCP 2026-07-28), instead of the server's
    /// [`RegistryBuilder::read_cache`](crate::mcp::RegistryBuilder::read_cache).
    pub fn cache(mut self, hints: CacheHints) -> Self {
        self.cache = Some(hints);
        self
    }

    /// Sets the optional `description`.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the optional `mimeType`.
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }

    /// The resource's URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Contents of this resource with the given body and the resource's MIME type.
    pub(crate) fn contents(&self, body: ResourceBody) -> ResourceContents {
        ResourceContents {
            uri: self.uri.clone(),
            mime_type: self.mime_type.clone(),
            body,
        }
    }
}

impl Listed for Resource {
    fn key(&self) -> &str {
        &self.uri
    }
}

/// A parameterized resource as listed by `resources/templates/list`.
///
/// Only simple `{name}` expressions (RFC 6570 level 1) are understood; each
/// matches one or more characters other than `/`, taken as they appear in
/// the URI (not percent-decoded). A template using anything else, or two
/// expressions with nothing between them, is listed but never matches.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceTemplate {
    uri_template: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mime_type: Option<String>,
    #[serde(skip)]
    pattern: Option<Vec<Segment>>,
    #[serde(skip)]
    pub(crate) cache: Option<CacheHints>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Variable(String),
}

/// URIs longer than this never match a template (bounds matching memory).
const MAX_TEMPLATE_URI: usize = 4096;

/// Splits `template` into literals and variables; `None` if unsupported.
fn parse_template(template: &str) -> Option<Vec<Segment>> {
    let mut segments = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                segments.push(Segment::Literal(rest.to_owned()));
                rest = "";
            }
            Some(i) if rest[i..].starts_with('}') => return None,
            Some(i) => {
                if i > 0 {
                    segments.push(Segment::Literal(rest[..i].to_owned()));
                } else if matches!(segments.last(), Some(Segment::Variable(_))) {
                    return None; // `{a}{b}` is ambiguous
                }
                let close = rest[i..].find('}')? + i;
                let name = &rest[i + 1..close];
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
                if !valid {
                    return None;
                }
                segments.push(Segment::Variable(name.to_owned()));
                rest = &rest[close + 1..];
            }
        }
    }
    Some(segments)
}

/// Matches `uri` against `segments`; each variable binds the shortest value
/// that lets the rest match. Dynamic programming over (segment, position),
/// so the work is O(segments × length) whatever the input.
fn match_segments(segments: &[Segment], uri: &str) -> Option<Vec<(String, String)>> {
    let bytes = uri.as_bytes();
    let n = bytes.len();
    // `ok[i][p]`: `segments[i..]` match `uri[p..]`.
    let mut ok = vec![vec![false; n + 1]; segments.len() + 1];
    if let Some(end) = ok.last_mut().and_then(|row| row.last_mut()) {
        *end = true;
    }
    for (i, segment) in segments.iter().enumerate().rev() {
        let (head, tail) = ok.split_at_mut(i + 1);
        let (Some(row), Some(next)) = (head.last_mut(), tail.first()) else {
            return None;
        };
        match segment {
            Segment::Literal(lit) => {
                for (p, cell) in row.iter_mut().enumerate() {
                    // A valid UTF-8 literal never starts with a continuation
                    // byte, so byte matches only start on char boundaries.
                    *cell = bytes
                        .get(p..)
                        .is_some_and(|b| b.starts_with(lit.as_bytes()))
                        && next.get(p + lit.len()).copied().unwrap_or(false);
                }
            }
            Segment::Variable(_) => {
                // Right to left: the nearest end `e > p` where the rest
                // matches, and the nearest `/` at or after `p`.
                let mut nearest_end = None;
                let mut slash = n;
                for p in (0..=n).rev() {
                    if bytes.get(p) == Some(&b'/') {
                        slash = p;
                    }
                    if let Some(cell) = row.get_mut(p) {
                        *cell = nearest_end.is_some_and(|e| e <= slash);
                    }
                    if next.get(p).copied().unwrap_or(false) {
                        nearest_end = Some(p);
                    }
                }
            }
        }
    }
    if !*ok.first()?.first()? {
        return None;
    }
    let mut vars = Vec::new();
    let mut p = 0;
    for (segment, next) in segments.iter().zip(ok.iter().skip(1)) {
        match segment {
            Segment::Literal(lit) => p += lit.len(),
            Segment::Variable(name) => {
                let end = (p + 1..=n).find(|&e| next.get(e).copied().unwrap_or(false))?;
                vars.push((name.clone(), uri.get(p..end)?.to_owned()));
                p = end;
            }
        }
    }
    Some(vars)
}

impl ResourceTemplate {
    /// Describes the resources matching `uri_template`, e.g. `file:///{name}`.
    pub fn new(uri_template: impl Into<String>, name: impl Into<String>) -> Self {
        let uri_template = uri_template.into();
        let pattern = parse_template(&uri_template);
        if pattern.is_none() {
            log::warn!("URI template {uri_template:?} is not supported; it will never match");
        }
        ResourceTemplate {
            uri_template,
            name: name.into(),
            description: None,
            mime_type: None,
            pattern,
            cache: None,
        }
    }

    /// Caching hints for reads of the resources this template matches (MCP 2026-07-28),
    /// instead of the server's
    /// [`RegistryBuilder::read_cache`](crate::mcp::RegistryBuilder::read_cache).
    pub fn cache(mut self, hints: CacheHints) -> Self {
        self.cache = Some(hints);
        self
    }

    /// Sets the optional `description`.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the optional `mimeType`.
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }

    /// The template text.
    pub fn uri_template(&self) -> &str {
        &self.uri_template
    }

    /// The variables `uri` binds, if it matches this template.
    pub fn matches(&self, uri: &str) -> Option<HashMap<String, String>> {
        let segments = self.pattern.as_deref()?;
        if uri.len() > MAX_TEMPLATE_URI {
            return None;
        }
        match_segments(segments, uri).map(|vars| vars.into_iter().collect())
    }
}

impl Listed for ResourceTemplate {
    fn key(&self) -> &str {
        &self.uri_template
    }
}

/// The text or binary payload of [`ResourceContents`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceBody {
    /// Text content.
    Text(String),
    /// Binary content, already base64-encoded.
    ///
    /// Spec (resources): "Binary data **MUST** be properly encoded".
    Blob(String),
}

/// One item of `resources/read`'s `contents`, also embedded in tool results
/// and prompt messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceContents {
    uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    mime_type: Option<String>,
    #[serde(flatten)]
    body: ResourceBody,
}

impl ResourceContents {
    /// Contents of `uri`, without a MIME type.
    pub fn new(uri: impl Into<String>, body: ResourceBody) -> Self {
        ResourceContents {
            uri: uri.into(),
            mime_type: None,
            body,
        }
    }

    /// Sets the optional `mimeType`.
    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Self {
        self.mime_type = Some(mime_type.into());
        self
    }
}

/// What a resource read handler is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRead {
    /// The URI from `resources/read`.
    pub uri: String,
    /// Template variables bound by the URI (empty for plain resources).
    pub variables: HashMap<String, String>,
}

/// What a resource read handler returns: a future that may be `!Send`.
pub type ResourceFuture = BoxedLocal<Result<Vec<ResourceContents>, ToolError>>;

/// A type-erased read handler; `Send + Sync` so one registry serves every shard, shared so
/// that a changed catalogue keeps the handlers it did not change.
pub(crate) type ResourceHandler =
    Arc<dyn Fn(ToolContext, ResourceRead) -> ResourceFuture + Send + Sync>;

/// This shard's resource subscriptions: which sessions to look at for a
/// URI. The hub holds sessions weakly; each session keeps the peer to notify
/// and its own subscription set, which has the last word. Dead or
/// unsubscribed entries are dropped lazily: when their URI is touched, and in
/// an occasional full sweep.
#[derive(Default)]
pub(crate) struct ResourceHub {
    by_uri: RefCell<HashMap<String, Vec<Weak<RefCell<SessionState>>>>>,
    entries: Cell<usize>,
    sweep_at: Cell<usize>,
}

/// The smallest entry count that triggers a full sweep.
const MIN_SWEEP: usize = 64;

fn is(entry: &Weak<RefCell<SessionState>>, session: &SessionRef) -> bool {
    std::ptr::eq(entry.as_ptr(), Rc::as_ptr(session))
}

fn alive(entry: &Weak<RefCell<SessionState>>) -> bool {
    entry.strong_count() > 0
}

impl ResourceHub {
    /// Indexes `session` under `uri` (once, however often it subscribes).
    pub(crate) fn subscribe(&self, uri: &str, session: &SessionRef) {
        let mut by_uri = self.by_uri.borrow_mut();
        let list = by_uri.entry(uri.to_owned()).or_default();
        let before = list.len();
        list.retain(|s| alive(s) && !is(s, session));
        let removed = before - list.len();
        list.push(Rc::downgrade(session));
        let entries = self.entries.get() - removed + 1;
        if entries <= self.sweep_at.get().max(MIN_SWEEP) {
            self.entries.set(entries);
            return;
        }
        by_uri.retain(|_, list| {
            list.retain(alive);
            !list.is_empty()
        });
        let live = by_uri.values().map(Vec::len).sum();
        self.entries.set(live);
        self.sweep_at.set(live.saturating_mul(2));
    }

    /// Removes `session` from `uri`'s index.
    pub(crate) fn unsubscribe(&self, uri: &str, session: &SessionRef) {
        self.prune(uri, |s| alive(s) && !is(s, session));
    }

    /// Sends `notifications/resources/updated` for `uri` to every session
    /// still subscribed to it; returns how many were reached.
    pub(crate) fn notify(&self, uri: &str) -> usize {
        let mut peers = Vec::new();
        self.prune(uri, |entry| {
            let Some(session) = entry.upgrade() else {
                return false;
            };
            let Ok(state) = session.try_borrow() else {
                log::warn!("session busy; resource update for {uri:?} skipped");
                return true;
            };
            match state.notifier_for(uri) {
                Some(peer) => {
                    peers.push(peer);
                    true
                }
                None => false,
            }
        });
        if peers.is_empty() {
            return 0;
        }
        #[derive(Serialize)]
        struct Updated<'a> {
            uri: &'a str,
        }
        let mut message = Vec::new();
        if let Err(e) = jsonrpc::write_notification(
            &mut message,
            "notifications/resources/updated",
            Some(&Updated { uri }),
        ) {
            log::warn!("resource update not serializable: {e}");
            return 0;
        }
        // Spec (schema, ResourceUpdatedNotification): "This should only be
        // sent if the client previously sent a resources/subscribe request."
        for peer in &peers {
            peer.send(message.clone(), None);
        }
        peers.len()
    }

    /// Keeps `uri`'s entries for which `keep` holds.
    fn prune(&self, uri: &str, mut keep: impl FnMut(&Weak<RefCell<SessionState>>) -> bool) {
        let mut by_uri = self.by_uri.borrow_mut();
        let Some(list) = by_uri.get_mut(uri) else {
            return;
        };
        let before = list.len();
        list.retain(|entry| keep(entry));
        self.entries
            .set(self.entries.get().saturating_sub(before - list.len()));
        if list.is_empty() {
            by_uri.remove(uri);
        }
    }

    /// Number of index entries, dead ones included until pruned.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::peer::Peer;
    use crate::proto::jsonrpc::Id;

    fn vars(template: &str, uri: &str) -> Option<Vec<(String, String)>> {
        ResourceTemplate::new(template, "t").matches(uri).map(|m| {
            let mut v: Vec<_> = m.into_iter().collect();
            v.sort();
            v
        })
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn templates_bind_variables() {
        assert_eq!(
            vars("test://template/{id}/data", "test://template/123/data"),
            pairs(&[("id", "123")])
        );
        assert_eq!(
            vars("a://{x}-{y}/z", "a://p-q-r/z"),
            pairs(&[("x", "p"), ("y", "q-r")])
        );
        // Backtracks past an early occurrence of the following literal.
        assert_eq!(vars("a://{x}-end", "a://p-q-end"), pairs(&[("x", "p-q")]));
        assert_eq!(vars("{scheme}://x", "é://x"), pairs(&[("scheme", "é")]));
        assert_eq!(vars("fixed://uri", "fixed://uri"), pairs(&[]));
        for (template, uri) in [
            ("test://template/{id}/data", "test://template//data"),
            ("test://template/{id}/data", "test://template/1/2/data"),
            ("test://template/{id}/data", "test://template/1/data/"),
            ("test://template/{id}", "test://template/"),
            ("test://template/{id}", "test://other/1"),
            ("fixed://uri", "fixed://uri2"),
        ] {
            assert_eq!(vars(template, uri), None, "{template} {uri}");
        }
    }

    #[test]
    fn unsupported_templates_never_match() {
        for template in ["a/{+x}", "a/{x}{y}", "a/{x", "a/x}", "a/{}", "a/{x,y}"] {
            assert_eq!(parse_template(template), None, "{template}");
            assert_eq!(vars(template, "a/b"), None);
        }
        assert_eq!(
            parse_template("{a}/b"),
            Some(vec![
                Segment::Variable("a".into()),
                Segment::Literal("/b".into())
            ])
        );
    }

    #[test]
    fn pathological_uris_stay_cheap() {
        let t = ResourceTemplate::new("{a}-{b}-{c}-{d}-{e}!", "t");
        let uri = "-".repeat(MAX_TEMPLATE_URI);
        assert_eq!(t.matches(&uri), None);
        assert_eq!(t.matches(&"-".repeat(MAX_TEMPLATE_URI + 1)), None);
    }

    #[test]
    fn contents_serialize_text_or_blob() {
        let text = ResourceContents::new("a://1", ResourceBody::Text("hi".into())).mime_type("t/p");
        assert_eq!(
            serde_json::to_value(text).expect("json"),
            serde_json::json!({"uri":"a://1","mimeType":"t/p","text":"hi"})
        );
        let blob = ResourceContents::new("a://2", ResourceBody::Blob("AA==".into()));
        assert_eq!(
            serde_json::to_value(blob).expect("json"),
            serde_json::json!({"uri":"a://2","blob":"AA=="})
        );
    }

    #[derive(Default)]
    struct CountingPeer(Cell<usize>);

    impl Peer for CountingPeer {
        fn send(&self, _: Vec<u8>, related: Option<&Id>) -> bool {
            assert!(related.is_none());
            self.0.set(self.0.get() + 1);
            true
        }
    }

    /// A session subscribed to `uri` through a counting peer.
    fn subscriber(hub: &ResourceHub, uri: &str) -> (SessionRef, Rc<CountingPeer>) {
        let session = SessionState::new_ref();
        let peer = Rc::new(CountingPeer::default());
        let dyn_peer: Rc<dyn Peer> = peer.clone();
        session.borrow_mut().subscribe(uri, &dyn_peer);
        hub.subscribe(uri, &session);
        (session, peer)
    }

    #[test]
    fn hub_dedupes_and_drops_dead_sessions() {
        let hub = ResourceHub::default();
        let (s1, p1) = subscriber(&hub, "u");
        hub.subscribe("u", &s1);
        let (s2, p2) = subscriber(&hub, "u");
        assert_eq!(hub.notify("u"), 2);
        assert_eq!((p1.0.get(), p2.0.get()), (1, 1));
        hub.unsubscribe("u", &s2);
        assert_eq!(hub.notify("u"), 1);
        assert_eq!(hub.notify("other"), 0);
        // The session's own set has the last word.
        s1.borrow_mut().unsubscribe("u");
        assert_eq!(hub.notify("u"), 0);
        assert_eq!(hub.len(), 0);
        let (s3, p3) = subscriber(&hub, "u");
        drop(s3);
        assert_eq!(hub.notify("u"), 0);
        assert_eq!((p1.0.get(), p2.0.get(), p3.0.get()), (2, 1, 0));
        assert_eq!(hub.len(), 0);
    }

    #[test]
    fn hub_sweeps_dead_entries_of_untouched_uris() {
        let hub = ResourceHub::default();
        for i in 0..(3 * MIN_SWEEP) {
            subscriber(&hub, &format!("u{i}"));
        }
        // Every session above is gone; sweeps keep the count bounded.
        assert!(hub.len() <= MIN_SWEEP + 1, "{}", hub.len());
    }
}
