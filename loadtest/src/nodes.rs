//! Which node served what, for runs through a balancer in front of several ringmcp nodes.
//!
//! A ringmcp session id names its node: `<node-id>.<shard><random>`. A balancer that routes
//! by it (deploy/haproxy.cfg) adds `X-Ringmcp-Node`, the node that actually answered; the
//! two differ when a session was adopted by another node after its own died. Without the
//! header the answer is taken to come from the node the id names.

use ringmcp::proto::http1::ResponseHead;
use serde::Serialize;
use std::collections::BTreeMap;

/// The response header the balancer names the answering node in.
pub const NODE_HEADER: &str = "x-ringmcp-node";

/// What sessions without a node part in their id (and runs without sessions) count under.
pub const NO_NODE: &str = "-";

/// The node part of a session id: the text before its first `.`, or [`NO_NODE`] for an id
/// without one (a single ringmcp before node ids, or another server).
pub fn node_of(session_id: &str) -> &str {
    match session_id.split_once('.') {
        Some((node, _)) if !node.is_empty() => node,
        _ => NO_NODE,
    }
}

/// The node that answered `head`: its [`NODE_HEADER`], else the node `session_id` names.
pub fn served_by<'a>(head: &'a ResponseHead, session_id: Option<&'a str>) -> &'a str {
    match head.headers().get_str(NODE_HEADER) {
        Some(node) if !node.trim().is_empty() => node.trim(),
        _ => session_id.map_or(NO_NODE, node_of),
    }
}

/// One node's share of a run.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct NodeTally {
    /// Sessions whose id names this node.
    pub sessions: u64,
    /// What it delivered: SSE events (sse scenarios), answered requests (http-mcp).
    pub events: u64,
    /// `Last-Event-ID` resumes it answered.
    pub resumes: u64,
    /// Sessions of other nodes it answered for (adopted).
    pub moved_in: u64,
    /// Its sessions that another node answered for.
    pub moved_out: u64,
}

/// A session answered by a node other than the one its id names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Move {
    /// The session id.
    pub session: String,
    /// The node its id names.
    pub from: String,
    /// The node that answered for it.
    pub to: String,
}

/// Per-node counts of one shard, and the sessions that moved.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct NodeTallies {
    /// By node name.
    pub by_node: BTreeMap<String, NodeTally>,
    /// Each (session, answering node) pair once, in the order seen.
    pub moved_sessions: Vec<Move>,
}

impl NodeTallies {
    // Called per response, not per event: the key's allocation does not matter.
    fn node(&mut self, node: &str) -> &mut NodeTally {
        self.by_node.entry(node.to_owned()).or_default()
    }

    /// A session was opened (its id, if the server gave one).
    pub fn session(&mut self, session_id: Option<&str>) {
        self.node(session_id.map_or(NO_NODE, node_of)).sessions += 1;
    }

    /// `events` were delivered for `session_id` by `node`.
    pub fn events(&mut self, node: &str, events: u64) {
        if events > 0 {
            self.node(node).events += events;
        }
    }

    /// `node` answered a resume.
    pub fn resume(&mut self, node: &str) {
        self.node(node).resumes += 1;
    }

    /// `node` answered for `session_id`: a move if its id names another node (counted once
    /// per session and answering node). An id that names no node cannot move.
    pub fn answered(&mut self, session_id: &str, node: &str) {
        let home = node_of(session_id);
        if home == node || home == NO_NODE || node == NO_NODE {
            return;
        }
        let seen = (self.moved_sessions.iter()).any(|m| m.session == session_id && m.to == node);
        if seen {
            return;
        }
        self.node(home).moved_out += 1;
        self.node(node).moved_in += 1;
        self.moved_sessions.push(Move {
            session: session_id.to_owned(),
            from: home.to_owned(),
            to: node.to_owned(),
        });
    }

    /// Folds another shard's counts into these.
    pub fn merge(&mut self, other: &NodeTallies) {
        for (name, t) in &other.by_node {
            let mine = self.node(name);
            mine.sessions += t.sessions;
            mine.events += t.events;
            mine.resumes += t.resumes;
            mine.moved_in += t.moved_in;
            mine.moved_out += t.moved_out;
        }
        self.moved_sessions
            .extend(other.moved_sessions.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmcp::proto::http1::{Limits, Method};
    use ringmcp::proto::Status;

    #[test]
    fn the_node_is_the_text_before_the_first_dot() {
        for (id, node) in [
            ("n2.0001a3f0", "n2"),
            ("127-0-0-1-8080.0000ff", "127-0-0-1-8080"),
            ("n1.a.b", "n1"),
            ("0001a3f0", NO_NODE),
            (".0001", NO_NODE),
            ("", NO_NODE),
        ] {
            assert_eq!(node_of(id), node, "{id}");
        }
    }

    fn head(extra: &str) -> ResponseHead {
        let raw = format!("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n{extra}\r\n");
        let limits = Limits {
            max_head_bytes: 4096,
            max_headers: 16,
            max_uri_bytes: 0,
            max_body_bytes: 0,
        };
        match ResponseHead::parse(raw.as_bytes(), &limits, Method::Get) {
            Ok(Status::Complete(head, _)) => head,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_balancer_header_names_the_node_that_answered() {
        let adopted = head("X-Ringmcp-Node: n3\r\n");
        assert_eq!(served_by(&adopted, Some("n2.0001ab")), "n3");
        assert_eq!(served_by(&adopted, None), "n3");
        let direct = head("");
        assert_eq!(served_by(&direct, Some("n2.0001ab")), "n2");
        assert_eq!(served_by(&direct, Some("0001ab")), NO_NODE);
        assert_eq!(served_by(&direct, None), NO_NODE);
        // An empty header (a balancer that answered itself) says nothing.
        assert_eq!(served_by(&head("x-ringmcp-node: \r\n"), Some("n1.x")), "n1");
    }

    #[test]
    fn moves_are_counted_once_per_session_and_node_and_merge() {
        let mut a = NodeTallies::default();
        a.session(Some("n1.aa"));
        a.session(Some("n2.bb"));
        a.session(None);
        a.events("n1", 5);
        a.events("n2", 0);
        a.answered("n1.aa", "n1");
        a.answered("n2.bb", "n3");
        a.answered("n2.bb", "n3");
        a.resume("n3");
        assert_eq!(a.by_node["n1"].sessions, 1);
        assert_eq!(a.by_node["n1"].events, 5);
        assert_eq!(a.by_node[NO_NODE].sessions, 1);
        assert_eq!(a.by_node["n2"].moved_out, 1);
        assert_eq!(a.by_node["n3"].moved_in, 1);
        assert_eq!(a.by_node["n3"].resumes, 1);
        assert_eq!(
            a.moved_sessions,
            [Move {
                session: "n2.bb".into(),
                from: "n2".into(),
                to: "n3".into()
            }]
        );
        // An id without a node, or an answer without one, is no move.
        a.answered("bb", "n3");
        a.answered("n2.bb", NO_NODE);
        assert_eq!(a.moved_sessions.len(), 1);
        // Moving on to a third node is a second move.
        a.answered("n2.bb", "n1");
        assert_eq!(a.by_node["n2"].moved_out, 2);

        let mut b = NodeTallies::default();
        b.session(Some("n1.cc"));
        b.answered("n1.cc", "n2");
        a.merge(&b);
        assert_eq!(a.by_node["n1"].sessions, 2);
        assert_eq!(a.by_node["n1"].moved_out, 1);
        assert_eq!(a.by_node["n2"].moved_in, 1);
        assert_eq!(a.moved_sessions.len(), 3);
    }
}
