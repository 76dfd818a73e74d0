//! MCP 2026-07-28 `subscriptions/listen`: long-lived streams that hear of list changes and
//! resource updates, and what the server announces to them.
//!
//! Spec (2026-07-28, basic/patterns/subscriptions): the client opens a stream with the
//! notifications it wants; "The server MUST send `notifications/subscriptions/acknowledged`
//! as the first message"; "All notifications delivered on the stream carry
//! `io.modelcontextprotocol/subscriptionId` in `_meta` ... The value is the JSON-RPC ID of the
//! `subscriptions/listen` request"; "The server MUST NOT send notification types the client
//! has not explicitly requested."

use crate::mcp::peer::Peer;
use crate::mcp::session::{RequestSignal, SessionRef, SessionState};
use serde::{Deserialize, Serialize};
use slab::Slab;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

/// A catalogue whose changes listen streams (and 2025 sessions) are told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListKind {
    /// `tools/list`.
    Tools,
    /// `prompts/list`.
    Prompts,
    /// `resources/list`.
    Resources,
}

impl ListKind {
    fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "notifications/tools/list_changed",
            ListKind::Prompts => "notifications/prompts/list_changed",
            ListKind::Resources => "notifications/resources/list_changed",
        }
    }
}

/// Something every shard's listeners hear about; carried between shards by the transport's
/// broadcast hook, and between nodes as JSON through the shared event store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Announcement {
    /// The resource at this URI changed.
    ResourceUpdated(String),
    /// A catalogue changed.
    ListChanged(ListKind),
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The notifications a listen stream asks for, and (in the acknowledgment) those the server
/// agreed to send.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionFilter {
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) tools_list_changed: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) prompts_list_changed: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) resources_list_changed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) resource_subscriptions: Vec<String>,
}

impl SubscriptionFilter {
    fn wants(&self, announcement: &Announcement) -> bool {
        match announcement {
            Announcement::ListChanged(ListKind::Tools) => self.tools_list_changed,
            Announcement::ListChanged(ListKind::Prompts) => self.prompts_list_changed,
            Announcement::ListChanged(ListKind::Resources) => self.resources_list_changed,
            Announcement::ResourceUpdated(uri) => self.resource_subscriptions.contains(uri),
        }
    }
}

struct Listener {
    /// The listen request's id, as JSON text (a number stays a number).
    id: String,
    filter: SubscriptionFilter,
    peer: Rc<dyn Peer>,
    /// Cancelled when the server ends the stream (shutdown).
    ended: Rc<RequestSignal>,
}

/// One shard's listen streams.
#[derive(Default)]
pub(crate) struct ListenHub {
    listeners: RefCell<Slab<Listener>>,
}

/// A registered listener; dropping it (the stream closed, or the listen ended) removes it.
pub(crate) struct Registration {
    hub: Rc<ListenHub>,
    key: usize,
    pub(crate) ended: Rc<RequestSignal>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut listeners) = self.hub.listeners.try_borrow_mut() {
            listeners.try_remove(self.key);
        } else {
            log::warn!("listen hub busy; listener {} left registered", self.key);
        }
    }
}

/// The message for `method` on the stream of listen request `id`: `params._meta` carries the
/// subscription id, then `rest` (members, already JSON, each preceded by a comma).
fn tagged(method: &str, id: &str, rest: &str) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","method":"{method}","params":{{"_meta":{{"io.modelcontextprotocol/subscriptionId":{id}}}{rest}}}}}"#
    )
    .into_bytes()
}

impl ListenHub {
    /// Listen streams open on this shard.
    pub(crate) fn len(&self) -> usize {
        self.listeners.borrow().len()
    }

    /// Opens a listen stream: sends the acknowledgment of `agreed` on `peer`, then registers
    /// it for what it agreed to.
    pub(crate) fn listen(
        hub: &Rc<ListenHub>,
        id: String,
        agreed: SubscriptionFilter,
        peer: Rc<dyn Peer>,
    ) -> Registration {
        let filter = serde_json::to_string(&agreed).unwrap_or_else(|_| "{}".to_owned());
        let ack = tagged(
            "notifications/subscriptions/acknowledged",
            &id,
            &format!(r#","notifications":{filter}"#),
        );
        peer.send(ack, None);
        let ended = Rc::new(RequestSignal::default());
        let key = hub.listeners.borrow_mut().insert(Listener {
            id,
            filter: agreed,
            peer,
            ended: Rc::clone(&ended),
        });
        Registration {
            hub: Rc::clone(hub),
            key,
            ended,
        }
    }

    /// Tells every listener that asked for it; returns how many were reached.
    pub(crate) fn announce(&self, announcement: &Announcement) -> usize {
        let (method, rest) = match announcement {
            Announcement::ResourceUpdated(uri) => {
                // A URI is a JSON string like any other.
                let uri = serde_json::to_string(uri).unwrap_or_else(|_| "\"\"".to_owned());
                (
                    "notifications/resources/updated",
                    format!(r#","uri":{uri}"#),
                )
            }
            Announcement::ListChanged(kind) => (kind.method(), String::new()),
        };
        let targets: Vec<(String, Rc<dyn Peer>)> = self
            .listeners
            .borrow()
            .iter()
            .filter(|(_, l)| l.filter.wants(announcement))
            .map(|(_, l)| (l.id.clone(), Rc::clone(&l.peer)))
            .collect();
        // Sent outside the borrow: a peer may end its stream (and so its registration).
        targets
            .into_iter()
            .filter(|(id, peer)| peer.send(tagged(method, id, &rest), None))
            .count()
    }

    /// Ends every listen stream (shutdown): each answers its request with a completion result.
    pub(crate) fn end_all(&self) {
        let ended: Vec<Rc<RequestSignal>> = self
            .listeners
            .borrow()
            .iter()
            .map(|(_, l)| Rc::clone(&l.ended))
            .collect();
        for signal in ended {
            signal.cancel();
        }
    }
}

/// This shard's 2025 sessions, held weakly, for list changes; each session's notifier says
/// where its notifications go (a WebSocket, or the standalone GET stream of Streamable HTTP).
///
/// Spec (2025-11-25, tools): "When the list of available tools changes, servers that
/// declared the `listChanged` capability SHOULD send a notification".
#[derive(Default)]
pub(crate) struct SessionIndex {
    sessions: RefCell<Vec<Weak<RefCell<SessionState>>>>,
    sweep_at: Cell<usize>,
}

/// The smallest index that is swept for ended sessions.
const MIN_SWEEP: usize = 64;

impl SessionIndex {
    /// Indexes an initialized session.
    pub(crate) fn add(&self, session: &SessionRef) {
        let mut sessions = self.sessions.borrow_mut();
        // Ended sessions go when the index has doubled since the last sweep, so the index
        // stays within twice the live sessions at amortised constant cost.
        if sessions.len() >= self.sweep_at.get().max(MIN_SWEEP) {
            sessions.retain(|s| s.strong_count() > 0);
            self.sweep_at.set(sessions.len() * 2);
        }
        sessions.push(Rc::downgrade(session));
    }

    /// Sends `list`'s `list_changed` to every live session; returns how many got it.
    pub(crate) fn list_changed(&self, list: ListKind) -> usize {
        let peers: Vec<Rc<dyn Peer>> = self
            .sessions
            .borrow()
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|s| s.try_borrow().ok().and_then(|s| s.notifier()))
            .collect();
        let message = format!(r#"{{"jsonrpc":"2.0","method":"{}"}}"#, list.method());
        peers
            .into_iter()
            .filter(|peer| peer.send(message.clone().into_bytes(), None))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::testing::TestPeer;
    use serde_json::{json, Value};

    fn filter(value: Value) -> SubscriptionFilter {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn listeners_hear_only_what_they_asked_for_tagged_with_their_id() {
        let hub = Rc::new(ListenHub::default());
        let tools = Rc::new(TestPeer::default());
        let files = Rc::new(TestPeer::default());
        let a = ListenHub::listen(
            &hub,
            "7".into(),
            filter(json!({"toolsListChanged": true})),
            tools.clone(),
        );
        let b = ListenHub::listen(
            &hub,
            "\"s\"".into(),
            filter(json!({"resourceSubscriptions": ["file:///a"]})),
            files.clone(),
        );
        assert_eq!(
            tools.messages(),
            [
                json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
                "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": 7},
                    "notifications": {"toolsListChanged": true}}})
            ]
        );
        files.messages();
        assert_eq!(hub.announce(&Announcement::ListChanged(ListKind::Tools)), 1);
        assert_eq!(
            hub.announce(&Announcement::ListChanged(ListKind::Prompts)),
            0
        );
        assert_eq!(
            hub.announce(&Announcement::ResourceUpdated("file:///a".into())),
            1
        );
        assert_eq!(
            tools.messages()[0]["method"],
            "notifications/tools/list_changed"
        );
        assert_eq!(
            files.messages(),
            [
                json!({"jsonrpc": "2.0", "method": "notifications/resources/updated",
                "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": "s"},
                    "uri": "file:///a"}})
            ]
        );
        drop(a);
        assert_eq!(hub.len(), 1);
        hub.end_all();
        assert!(b.ended.is_cancelled());
        drop(b);
        assert_eq!(hub.len(), 0);
    }
}
