//! Per-session MCP state, owned by one shard and never shared across threads.

use crate::auth::Principal;
use crate::mcp::client::Pending;
use crate::mcp::peer::Peer;
use crate::mcp::stateless::RequestMeta;
use crate::mcp::version::{self, Revision};
use crate::proto::jsonrpc::Id;
use crate::wake::WakeSlot;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::rc::Rc;
use std::task::Poll;

/// Shared handle to one session's state; borrows never span an `.await`.
pub type SessionRef = Rc<RefCell<SessionState>>;

/// Log message severity, in increasing order (RFC 5424 levels, as MCP uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Detailed debugging information.
    Debug,
    /// General informational messages.
    Info,
    /// Normal but significant events.
    Notice,
    /// Warning conditions.
    Warning,
    /// Error conditions.
    Error,
    /// Critical conditions.
    Critical,
    /// Action must be taken immediately.
    Alert,
    /// System is unusable.
    Emergency,
}

/// Lifecycle and bookkeeping for one MCP session (one WebSocket connection,
/// or one `Mcp-Session-Id` on Streamable HTTP).
#[derive(Default)]
pub struct SessionState {
    protocol_version: Option<Revision>,
    initialized_notification: bool,
    client: ClientSelf,
    log_level: Option<LogLevel>,
    /// `None` while the session has no request in flight either way and no subscription.
    traffic: Option<Box<Traffic>>,
    requests_sent: u64,
    notifier: Option<Rc<dyn Peer>>,
    /// Who the session's requests act for, when authorization is on: set when the session
    /// is made and by each request after (a step-up token may carry more scopes).
    principal: Option<Rc<Principal>>,
    /// Bumped by every change a [`SessionState::record`] shows (wrapping: it is only
    /// compared for equality, and a `u32` keeps the state at 64 B).
    revision: u32,
}

/// What a session tracks only while it has traffic. Boxed and dropped once empty, so an idle
/// session pays one pointer for it: inline, the three tables took 144 of its 240 bytes, and
/// a table keeps its allocation after its last entry leaves.
#[derive(Default)]
struct Traffic {
    in_flight: HashMap<Id, Rc<RequestSignal>>,
    pending: HashMap<Id, Rc<Pending>>,
    subscriptions: HashSet<String>,
}

impl Traffic {
    fn is_empty(&self) -> bool {
        self.in_flight.is_empty() && self.pending.is_empty() && self.subscriptions.is_empty()
    }
}

/// What the client said of itself in `initialize` (`clientInfo`, `capabilities`), kept for
/// the session's life as JSON text (a parsed object costs a map node, ~700 bytes): both in one
/// allocation, as the array `[clientInfo,capabilities]` (`null` for an absent one), so the
/// session holds one pointer: two boxes cost it two heap chunks, and a box with the place
/// where the second value starts 8 bytes more inline.
#[derive(Default)]
struct ClientSelf(Option<Box<str>>);

impl ClientSelf {
    fn new(info: Option<&RawValue>, capabilities: Option<&RawValue>) -> ClientSelf {
        if info.is_none() && capabilities.is_none() {
            return ClientSelf::default();
        }
        let (info, capabilities) = (
            info.map_or("null", RawValue::get),
            capabilities.map_or("null", RawValue::get),
        );
        let both = ["[", info, ",", capabilities, "]"].concat();
        ClientSelf(Some(both.into_boxed_str()))
    }

    /// `clientInfo` and `capabilities`, each `None` when absent (or sent as `null`).
    fn parts(&self) -> (Option<&RawValue>, Option<&RawValue>) {
        let Some(text) = self.0.as_deref() else {
            return (None, None);
        };
        // One array `new` wrote from two values that were JSON already: it always parses.
        serde_json::from_str(text).unwrap_or_default()
    }
}

/// What of a session outlives its node in the shared event store: the negotiated version,
/// what the client said of itself, its log level and its subscriptions.
#[derive(Serialize, Deserialize)]
struct Record<'a> {
    version: &'a str,
    initialized: bool,
    #[serde(borrow)]
    client_info: Option<&'a RawValue>,
    #[serde(borrow)]
    client_capabilities: Option<&'a RawValue>,
    log_level: Option<LogLevel>,
    #[serde(borrow)]
    subscriptions: Vec<std::borrow::Cow<'a, str>>,
}

impl SessionState {
    /// A fresh, uninitialized session behind a shareable handle.
    pub fn new_ref() -> SessionRef {
        Rc::new(RefCell::new(SessionState::default()))
    }

    /// The context of one MCP 2026-07-28 request: initialized from its `_meta`, alive while
    /// it runs.
    pub(crate) fn stateless(meta: RequestMeta) -> SessionRef {
        Rc::new(RefCell::new(SessionState {
            protocol_version: Revision::of(version::STATELESS),
            client: ClientSelf::new(meta.client_info.as_deref(), Some(&meta.client_capabilities)),
            log_level: meta.log_level,
            principal: meta.principal,
            ..SessionState::default()
        }))
    }

    /// Whether this is one 2026-07-28 request's context rather than a session.
    pub(crate) fn is_stateless(&self) -> bool {
        self.protocol_version() == Some(version::STATELESS)
    }

    /// The negotiated version; `Some` once `initialize` has been answered.
    pub fn protocol_version(&self) -> Option<&'static str> {
        self.protocol_version.map(Revision::as_str)
    }

    /// Whether the client has sent `notifications/initialized`.
    pub fn initialized_notification_received(&self) -> bool {
        self.initialized_notification
    }

    /// The `clientInfo` the client sent in `initialize`, if any, as its JSON
    /// text (`serde_json::from_str(info.get())` parses it).
    pub fn client_info(&self) -> Option<&RawValue> {
        self.client.parts().0
    }

    /// The `capabilities` the client sent in `initialize`, if any, as its
    /// JSON text.
    pub fn client_capabilities(&self) -> Option<&RawValue> {
        self.client.parts().1
    }

    /// Who the session's requests act for (with authorization on).
    pub fn principal(&self) -> Option<&Rc<Principal>> {
        self.principal.as_ref()
    }

    /// Sets who the session's requests act for.
    pub fn set_principal(&mut self, principal: Option<Rc<Principal>>) {
        self.principal = principal;
    }

    /// The minimum level set by `logging/setLevel`, if the client set one.
    pub fn log_level(&self) -> Option<LogLevel> {
        self.log_level
    }

    /// Number of client requests currently being handled.
    pub fn in_flight_len(&self) -> usize {
        self.traffic.as_ref().map_or(0, |t| t.in_flight.len())
    }

    /// Number of server-to-client requests awaiting the client's answer.
    pub fn pending_len(&self) -> usize {
        self.traffic.as_ref().map_or(0, |t| t.pending.len())
    }

    /// Whether the client subscribed to updates of `uri`.
    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.traffic
            .as_ref()
            .is_some_and(|t| t.subscriptions.contains(uri))
    }

    /// Counts the changes [`SessionState::record`] would show, so a transport stores the
    /// record again only when it changed.
    pub fn revision(&self) -> u32 {
        self.revision
    }

    /// Bumps the revision if what the record shows `changed`.
    fn changed(&mut self, changed: bool) {
        self.revision = self.revision.wrapping_add(u32::from(changed));
    }

    /// The session as the shared event store keeps it (JSON), once `initialize` is answered.
    pub fn record(&self) -> Option<Vec<u8>> {
        let (client_info, client_capabilities) = self.client.parts();
        let record = Record {
            version: self.protocol_version()?,
            initialized: self.initialized_notification,
            client_info,
            client_capabilities,
            log_level: self.log_level,
            subscriptions: self
                .traffic
                .iter()
                .flat_map(|t| &t.subscriptions)
                .map(|s| s.as_str().into())
                .collect(),
        };
        serde_json::to_vec(&record).ok()
    }

    /// A session from its stored record, without its subscriptions (which the dispatcher
    /// registers, see `Dispatcher::restore_session`); `None` if the record is not one this
    /// build wrote or names a version it does not speak.
    pub(crate) fn from_record(record: &[u8]) -> Option<(SessionState, Vec<String>)> {
        let record: Record<'_> = serde_json::from_slice(record).ok()?;
        if !version::is_session_era(record.version) {
            return None;
        }
        let state = SessionState {
            protocol_version: Revision::of(record.version),
            initialized_notification: record.initialized,
            client: ClientSelf::new(record.client_info, record.client_capabilities),
            log_level: record.log_level,
            ..SessionState::default()
        };
        let uris = record
            .subscriptions
            .into_iter()
            .map(|u| u.into_owned())
            .collect();
        Some((state, uris))
    }

    pub(crate) fn set_initialized(
        &mut self,
        version: &'static str,
        client_info: Option<&RawValue>,
        client_capabilities: Option<&RawValue>,
    ) {
        self.changed(true);
        self.protocol_version = Revision::of(version);
        debug_assert!(self.protocol_version.is_some(), "{version} is negotiated");
        self.client = ClientSelf::new(client_info, client_capabilities);
    }

    pub(crate) fn mark_initialized_notification(&mut self) {
        self.changed(!self.initialized_notification);
        self.initialized_notification = true;
    }

    pub(crate) fn set_log_level(&mut self, level: LogLevel) {
        self.changed(self.log_level != Some(level));
        self.log_level = Some(level);
    }

    /// Registers an in-flight request; false if the id is already in flight.
    pub(crate) fn begin_request(&mut self, id: Id, signal: Rc<RequestSignal>) -> bool {
        match self.traffic().in_flight.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(signal);
                true
            }
        }
    }

    pub(crate) fn end_request(&mut self, id: &Id) {
        self.untrack(|t| t.in_flight.remove(id));
    }

    pub(crate) fn request_signal(&self, id: &Id) -> Option<Rc<RequestSignal>> {
        self.traffic.as_ref()?.in_flight.get(id).cloned()
    }

    /// Registers a server-to-client request under a fresh id (`"s-1"`,
    /// `"s-2"`, ...).
    ///
    /// Spec (basic): "The request ID MUST NOT have been previously used by
    /// the requestor within the same session."
    pub(crate) fn add_pending(&mut self, slot: Rc<Pending>) -> Option<Id> {
        self.requests_sent = self.requests_sent.checked_add(1)?;
        let id = Id::parse(&format!("\"s-{}\"", self.requests_sent))?;
        self.traffic().pending.insert(id.clone(), slot);
        Some(id)
    }

    /// Unregisters a server-to-client request, returning its waiter.
    pub(crate) fn take_pending(&mut self, id: &Id) -> Option<Rc<Pending>> {
        self.untrack(|t| t.pending.remove(id))
    }

    /// Adds `uri` to the subscriptions; updates will go through `peer`
    /// (the latest subscriber's peer serves every URI).
    pub(crate) fn subscribe(&mut self, uri: &str, peer: &Rc<dyn Peer>) {
        let added = self.traffic().subscriptions.insert(uri.to_owned());
        self.changed(added);
        self.notifier = Some(peer.clone());
    }

    /// Where notifications that belong to no request go (list changes), until the session
    /// ends.
    pub(crate) fn set_notifier(&mut self, peer: &Rc<dyn Peer>) {
        self.notifier = Some(peer.clone());
    }

    /// Where notifications that belong to no request go, if anywhere.
    pub(crate) fn notifier(&self) -> Option<Rc<dyn Peer>> {
        self.notifier.clone()
    }

    /// The peer for `notifications/resources/updated` of `uri`, if subscribed.
    pub(crate) fn notifier_for(&self, uri: &str) -> Option<Rc<dyn Peer>> {
        self.notifier.clone().filter(|_| self.is_subscribed(uri))
    }

    /// Drops subscriptions and the kept peer; returns the in-flight
    /// requests' signals for the caller to cancel, and the URIs that were
    /// subscribed.
    pub(crate) fn end(&mut self) -> (Vec<Rc<RequestSignal>>, HashSet<String>) {
        self.notifier = None;
        self.untrack(|t| {
            let signals = t.in_flight.values().cloned().collect();
            (signals, std::mem::take(&mut t.subscriptions))
        })
    }

    /// How many resources the session is subscribed to.
    pub(crate) fn subscription_count(&self) -> usize {
        self.traffic.as_ref().map_or(0, |t| t.subscriptions.len())
    }

    /// Removes `uri` from the subscriptions.
    pub(crate) fn unsubscribe(&mut self, uri: &str) {
        let removed = self.untrack(|t| t.subscriptions.remove(uri));
        self.changed(removed);
    }

    /// The traffic tables, made on first use.
    fn traffic(&mut self) -> &mut Traffic {
        self.traffic.get_or_insert_with(Default::default)
    }

    /// Applies a removal to the traffic tables and drops them once they are empty.
    fn untrack<R: Default>(&mut self, remove: impl FnOnce(&mut Traffic) -> R) -> R {
        let Some(traffic) = &mut self.traffic else {
            return R::default();
        };
        let removed = remove(traffic);
        if traffic.is_empty() {
            self.traffic = None;
        }
        removed
    }
}

/// Cancellation and completion flags of one in-flight request.
#[derive(Default)]
pub(crate) struct RequestSignal {
    cancelled: Cell<bool>,
    finished: Cell<bool>,
    // One waiter: the dispatcher racing the handler against cancellation.
    waiter: WakeSlot,
}

impl RequestSignal {
    pub(crate) fn cancel(&self) {
        self.cancelled.set(true);
        self.waiter.wake();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }

    pub(crate) fn finish(&self) {
        self.finished.set(true);
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.get()
    }

    /// Completes once `cancel` has been called.
    pub(crate) fn cancelled(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.cancelled.get() {
                Poll::Ready(())
            } else {
                self.waiter.register(cx.waker());
                Poll::Pending
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every MCP session holds one (docs/benchmarks.md, "Smaller I/O sources"): grow this
    /// bound only with a measurement.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn session_state_stays_small() {
        let size = std::mem::size_of::<SessionState>();
        assert!(size <= 64, "SessionState is {size} B");
    }

    #[test]
    fn what_the_client_said_of_itself_comes_back_whole_and_survives_a_record() {
        let raw = |text: &str| RawValue::from_string(text.to_string()).unwrap();
        let (info, caps) = (
            raw(r#"{"name":"c","version":"1"}"#),
            raw(r#"{"sampling":{}}"#),
        );
        let text = |value: Option<&RawValue>| value.map(|v| v.get().to_string());
        for (given_info, given_caps) in [
            (Some(&*info), Some(&*caps)),
            (None, Some(&*caps)),
            (Some(&*info), None),
            (None, None),
        ] {
            let mut state = SessionState::default();
            state.set_initialized(version::LATEST, given_info, given_caps);
            assert_eq!(text(state.client_info()), text(given_info));
            assert_eq!(text(state.client_capabilities()), text(given_caps));
            let (restored, _) = SessionState::from_record(&state.record().unwrap()).unwrap();
            assert_eq!(text(restored.client_info()), text(given_info));
            assert_eq!(text(restored.client_capabilities()), text(given_caps));
        }
    }

    struct Nowhere;

    impl Peer for Nowhere {
        fn send(&self, _message: Vec<u8>, _related_request: Option<&Id>) -> bool {
            true
        }
    }

    #[test]
    fn a_session_drops_its_traffic_tables_once_they_empty() {
        let mut session = SessionState::default();
        let id = Id::parse("7").unwrap();
        assert!(session.begin_request(id.clone(), Rc::default()));
        assert!(
            !session.begin_request(id.clone(), Rc::default()),
            "id in flight"
        );
        let pending = session.add_pending(Rc::default()).unwrap();
        let peer: Rc<dyn Peer> = Rc::new(Nowhere);
        session.subscribe("file:///a", &peer);
        assert_eq!((session.in_flight_len(), session.pending_len()), (1, 1));

        session.end_request(&id);
        assert!(session.take_pending(&pending).is_some());
        assert!(session.traffic.is_some(), "a subscription is left");
        assert!(session.is_subscribed("file:///a"));
        session.unsubscribe("file:///a");
        assert!(session.traffic.is_none());
        assert_eq!(session.subscription_count(), 0);

        // Ending a session hands over what was in flight and subscribed.
        assert!(session.begin_request(id.clone(), Rc::default()));
        session.subscribe("file:///b", &peer);
        let (signals, uris) = session.end();
        assert_eq!((signals.len(), uris.len()), (1, 1));
        session.end_request(&id);
        assert!(session.traffic.is_none());
    }
}
