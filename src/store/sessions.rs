//! Node and session ids, and the per-shard session table (capped, idle sessions expire).

use crate::proto::hex;
use std::collections::{hash_map, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Longest node id: an IPv4 bind address and port spelled out fit.
pub const MAX_NODE_LEN: usize = 24;
/// Hex digits naming the owning shard after the node.
const SHARD_DIGITS: usize = 4;
/// Random bytes per id: 128 bits from the OS CSPRNG.
const RANDOM_BYTES: usize = 16;
/// Longest id on the wire: node, dot, shard, random part.
pub const MAX_SESSION_ID_LEN: usize = MAX_NODE_LEN + 1 + SHARD_DIGITS + 2 * RANDOM_BYTES;
/// Most shards an id can name.
pub const MAX_SHARDS: usize = 1 << (4 * SHARD_DIGITS);

/// The name of one ringmcp node among several (`--node-id`): 1 to 24 of `A-Z a-z 0-9 _ -`.
///
/// It starts every session id the node issues, so a balancer routes a request to the node
/// that owns its session by what the id says (`deploy/haproxy.cfg` names each server by its
/// node id), and a node that is not the owner knows at once that it is adopting.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId {
    bytes: [u8; MAX_NODE_LEN],
    len: u8,
}

impl NodeId {
    /// Parses `--node-id`, saying what is wrong with a name it refuses.
    pub fn parse(name: &str) -> Result<NodeId, String> {
        if name.is_empty() || name.len() > MAX_NODE_LEN {
            return Err(format!(
                "a node id has 1 to {MAX_NODE_LEN} characters, not {}",
                name.len()
            ));
        }
        if let Some(bad) = name.chars().find(|&c| !is_node_char(c)) {
            return Err(format!(
                "a node id is made of A-Z a-z 0-9 _ - (HAProxy server names without a dot), not {bad:?}"
            ));
        }
        let mut bytes = [0u8; MAX_NODE_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Ok(NodeId {
            bytes,
            len: name.len() as u8,
        })
    }

    /// The default node id: the bind address spelled out (`127-0-0-1-8080`), or, when that is
    /// too long (IPv6), `n` and 16 hex digits of its hash.
    pub fn from_bind(addr: SocketAddr) -> NodeId {
        let mut name = String::new();
        for c in format!("{}-{}", addr.ip(), addr.port()).chars() {
            let c = if is_node_char(c) { c } else { '-' };
            if !(c == '-' && (name.is_empty() || name.ends_with('-'))) {
                name.push(c);
            }
        }
        NodeId::parse(&name).unwrap_or_else(|_| {
            // FNV-1a: stable across builds and processes, unlike the std hasher.
            let hash = addr
                .to_string()
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
            NodeId::parse(&format!("n{hash:016x}")).expect("17 hex characters make a node id")
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Only the ASCII characters `parse` admits are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

fn is_node_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl std::str::FromStr for NodeId {
    type Err = String;
    fn from_str(name: &str) -> Result<NodeId, String> {
        NodeId::parse(name)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.as_str())
    }
}

/// An `Mcp-Session-Id`: `<node>.<shard: 4 hex digits><128 random bits: 32 hex digits>`.
///
/// MCP 2025-11-25, Streamable HTTP: "The session ID SHOULD be globally unique and
/// cryptographically secure (e.g., a securely generated UUID, a JWT, or a cryptographic
/// hash)." and "The session ID MUST only contain visible ASCII characters (ranging from
/// 0x21 to 0x7E)." The node and shard it names own the session, so a balancer routes it to
/// its node and any shard to its shard without a lookup table.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionId {
    bytes: [u8; MAX_SESSION_ID_LEN],
    len: u8,
    node_len: u8,
}

impl SessionId {
    /// A fresh id owned by `shard` of `node`, or None if the OS CSPRNG failed (the caller
    /// answers 503).
    pub fn generate(node: NodeId, shard: usize) -> Option<SessionId> {
        let mut random = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut random).ok()?;
        Some(Self::from_parts(node, shard, random))
    }

    fn from_parts(node: NodeId, shard: usize, random: [u8; RANDOM_BYTES]) -> SessionId {
        let mut text = Vec::with_capacity(MAX_SESSION_ID_LEN);
        text.extend_from_slice(node.as_str().as_bytes());
        text.push(b'.');
        let shard = shard % MAX_SHARDS;
        for digit in (0..SHARD_DIGITS).rev() {
            text.push(hex::DIGITS[(shard >> (4 * digit)) & 0xf]);
        }
        hex::push_lower(&mut text, &random);
        let mut bytes = [0u8; MAX_SESSION_ID_LEN];
        bytes[..text.len()].copy_from_slice(&text);
        SessionId {
            bytes,
            len: text.len() as u8,
            node_len: node.len,
        }
    }

    /// Parses a header value; anything we could not have issued is None.
    pub fn parse(value: &[u8]) -> Option<SessionId> {
        let value = std::str::from_utf8(value.trim_ascii()).ok()?;
        let (node, rest) = value.split_once('.')?;
        let node = NodeId::parse(node).ok()?;
        let lower_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        if rest.len() != SHARD_DIGITS + 2 * RANDOM_BYTES || !rest.as_bytes().iter().all(lower_hex) {
            return None;
        }
        let mut bytes = [0u8; MAX_SESSION_ID_LEN];
        bytes[..value.len()].copy_from_slice(value.as_bytes());
        Some(SessionId {
            bytes,
            len: value.len() as u8,
            node_len: node.len,
        })
    }

    /// The node that issued the session.
    pub fn node(&self) -> NodeId {
        let mut bytes = [0u8; MAX_NODE_LEN];
        let len = usize::from(self.node_len);
        bytes[..len].copy_from_slice(&self.bytes[..len]);
        NodeId {
            bytes,
            len: self.node_len,
        }
    }

    /// The shard that owns the session on its node.
    pub fn shard(&self) -> usize {
        let start = usize::from(self.node_len) + 1;
        let digits = self
            .as_str()
            .get(start..start + SHARD_DIGITS)
            .unwrap_or("0");
        usize::from_str_radix(digits, 16).unwrap_or(0)
    }

    /// The 128 random bits: what the session table keys the session by.
    fn random_part(&self) -> [u8; RANDOM_BYTES] {
        let digits = &self.bytes[usize::from(self.len) - 2 * RANDOM_BYTES..usize::from(self.len)];
        // `parse` and `from_parts` admit only hex digits here, so this never falls back.
        hex::decode_16(digits).unwrap_or_default()
    }

    /// The id as it goes on the wire.
    pub fn as_str(&self) -> &str {
        // Only the ASCII characters `parse` and `from_parts` admit are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.as_str())
    }
}

/// A session's id as the session itself keeps it: the random part and the shard in binary,
/// the node shared with the other sessions of that node. 32 B where the [`SessionId`] is 63:
/// every Streamable HTTP session holds its own id for as long as it lives.
pub struct PackedSessionId {
    random: [u8; RANDOM_BYTES],
    shard: u16,
    node: Rc<NodeId>,
}

impl PackedSessionId {
    /// `id` packed, sharing `own` as its node when it is that node's.
    pub fn new(id: &SessionId, own: &Rc<NodeId>) -> PackedSessionId {
        let node = id.node();
        PackedSessionId {
            random: id.random_part(),
            // Four hex digits: at most `MAX_SHARDS - 1`.
            shard: id.shard() as u16,
            node: if node == **own {
                Rc::clone(own)
            } else {
                Rc::new(node)
            },
        }
    }

    /// The id, as it goes on the wire.
    pub fn unpack(&self) -> SessionId {
        SessionId::from_parts(*self.node, usize::from(self.shard), self.random)
    }

    /// Whether this is `id`.
    pub fn is(&self, id: &SessionId) -> bool {
        self.random == id.random_part()
            && usize::from(self.shard) == id.shard()
            && *self.node == id.node()
    }
}

/// Why a session could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateError {
    /// The shard holds its maximum number of sessions (503 with Retry-After).
    Full,
    /// The OS could not supply randomness (503).
    NoRandomness,
}

struct Entry<T> {
    value: T,
    last_active: Instant,
}

/// What a [`SessionTable`] holds: a session that knows its own id.
pub trait Keyed {
    /// Whether the session's id is `id`.
    fn has_id(&self, id: &SessionId) -> bool;
}

/// One shard's sessions: at most `cap` of them; idle ones are removed by [`SessionTable::expire`].
///
/// A session is keyed by its id's random part, 16 bytes where the whole id is 63, and found
/// only if the rest of the id matches too: the table is most of what an idle session costs
/// besides its own state (at 15,000 sessions it has 32,768 buckets, 89 B each with the
/// whole id as key, 41 B with the random part).
pub struct SessionTable<T> {
    node: NodeId,
    shard: usize,
    cap: usize,
    sessions: HashMap<[u8; RANDOM_BYTES], Entry<T>>,
}

impl<T: Keyed> SessionTable<T> {
    /// An empty table for `shard` of `node` holding at most `cap` sessions.
    pub fn new(node: NodeId, shard: usize, cap: usize) -> Self {
        SessionTable {
            node,
            shard,
            cap,
            sessions: HashMap::new(),
        }
    }

    /// Creates a session with a fresh id, built by `make` from that id.
    pub fn create(
        &mut self,
        make: impl FnOnce(SessionId) -> T,
        now: Instant,
    ) -> Result<SessionId, CreateError> {
        if self.sessions.len() >= self.cap {
            return Err(CreateError::Full);
        }
        loop {
            let id = SessionId::generate(self.node, self.shard).ok_or(CreateError::NoRandomness)?;
            let key = id.random_part();
            if let hash_map::Entry::Vacant(slot) = self.sessions.entry(key) {
                let value = make(id);
                debug_assert!(value.has_id(&id), "`make` keeps the id it is given");
                slot.insert(Entry {
                    value,
                    last_active: now,
                });
                return Ok(id);
            }
        }
    }

    /// Puts a session taken over from another node under its own id, replacing one of that
    /// id. A different session under the same random part (only a broken random source
    /// makes one) is kept, and this one refused as if the shard were full.
    pub fn insert(&mut self, id: &SessionId, value: T, now: Instant) -> Result<(), CreateError> {
        debug_assert!(value.has_id(id), "a session is put under its own id");
        let full = self.sessions.len() >= self.cap;
        let entry = Entry {
            value,
            last_active: now,
        };
        match self.sessions.entry(id.random_part()) {
            hash_map::Entry::Occupied(mut held) if held.get().value.has_id(id) => {
                held.insert(entry);
            }
            hash_map::Entry::Occupied(_) => return Err(CreateError::Full),
            hash_map::Entry::Vacant(_) if full => return Err(CreateError::Full),
            hash_map::Entry::Vacant(slot) => {
                slot.insert(entry);
            }
        }
        Ok(())
    }

    /// The session, marked active at `now`.
    pub fn touch(&mut self, id: &SessionId, now: Instant) -> Option<&T> {
        let entry = self
            .sessions
            .get_mut(&id.random_part())
            .filter(|e| e.value.has_id(id))?;
        entry.last_active = now;
        Some(&entry.value)
    }

    /// The session, without marking it active.
    pub fn get(&self, id: &SessionId) -> Option<&T> {
        self.sessions
            .get(&id.random_part())
            .map(|e| &e.value)
            .filter(|value| value.has_id(id))
    }

    /// Ends a session.
    pub fn remove(&mut self, id: &SessionId) -> Option<T> {
        match self.sessions.entry(id.random_part()) {
            hash_map::Entry::Occupied(held) if held.get().value.has_id(id) => {
                Some(held.remove().value)
            }
            _ => None,
        }
    }

    /// Removes and returns sessions idle for longer than `idle` for which `busy` is false.
    pub fn expire(&mut self, now: Instant, idle: Duration, busy: impl Fn(&T) -> bool) -> Vec<T> {
        let stale: Vec<[u8; RANDOM_BYTES]> = self
            .sessions
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_active) > idle && !busy(&e.value))
            .map(|(key, _)| *key)
            .collect();
        let gone = stale
            .iter()
            .filter_map(|key| self.sessions.remove(key).map(|e| e.value))
            .collect();
        // After a flood, give the table's memory back instead of keeping its peak size.
        if self.sessions.capacity() > 64 && self.sessions.len() < self.sessions.capacity() / 4 {
            self.sessions.shrink_to(self.sessions.len() * 2);
        }
        gone
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when no session is live.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeId {
        NodeId::parse(name).unwrap()
    }

    #[test]
    fn ids_are_visible_ascii_name_their_node_and_shard_and_round_trip() {
        for name in ["n1", "eu-west_3", &"x".repeat(MAX_NODE_LEN)] {
            for shard in [0, 1, 15, 16, 255, 256, MAX_SHARDS - 1] {
                let id = SessionId::generate(node(name), shard).unwrap();
                assert_eq!(id.as_str().len(), name.len() + 1 + 36);
                assert!(id.as_str().starts_with(&format!("{name}.")));
                assert!(id.as_str().bytes().all(|b| (0x21..=0x7e).contains(&b)));
                assert_eq!((id.node(), id.shard()), (node(name), shard));
                assert_eq!(SessionId::parse(id.as_str().as_bytes()), Some(id));
            }
        }
        assert_ne!(
            SessionId::generate(node("a"), 0),
            SessionId::generate(node("a"), 0)
        );
    }

    #[test]
    fn node_ids_are_checked_and_derived_from_the_bind_address() {
        for bad in [
            "",
            "a.b",
            "a:b",
            "sp ace",
            "é",
            &"x".repeat(MAX_NODE_LEN + 1),
        ] {
            assert!(NodeId::parse(bad).is_err(), "{bad:?}");
        }
        let v4 = NodeId::from_bind("127.0.0.1:8080".parse().unwrap());
        assert_eq!(v4.as_str(), "127-0-0-1-8080");
        let longest = NodeId::from_bind("255.255.255.255:65535".parse().unwrap());
        assert_eq!(longest.as_str(), "255-255-255-255-65535");
        let v6 = NodeId::from_bind("[2001:db8:85a3::8a2e:370:7334]:8443".parse().unwrap());
        assert!(
            v6.as_str().starts_with('n') && v6.as_str().len() == 17,
            "{v6}"
        );
        assert_eq!(
            v6,
            NodeId::from_bind("[2001:db8:85a3::8a2e:370:7334]:8443".parse().unwrap())
        );
        assert_eq!(
            NodeId::from_bind("[::1]:80".parse().unwrap()).as_str(),
            "1-80"
        );
    }

    #[test]
    fn foreign_ids_are_rejected() {
        let ok = SessionId::from_parts(node("n1"), 3, [0xab; RANDOM_BYTES]);
        assert_eq!(SessionId::parse(ok.as_str().as_bytes()), Some(ok));
        for bad in [
            "",
            "03",
            "n1",
            "n1.",
            &ok.as_str().replacen("n1.", "n1", 1),
            &ok.as_str().replacen("n1.", "n.1.", 1),
            &ok.as_str().replacen("n1.", ".", 1),
            &ok.as_str()[..ok.as_str().len() - 1],
            &ok.as_str().to_uppercase(),
            &format!("{}0", ok.as_str()),
            &ok.as_str().replace('a', "g"),
        ] {
            assert_eq!(SessionId::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    /// A session as the table sees it: its id and a name to tell it apart.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Named(SessionId, &'static str);

    impl Keyed for Named {
        fn has_id(&self, id: &SessionId) -> bool {
            self.0 == *id
        }
    }

    #[test]
    fn cap_touch_and_expiry() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(node("n1"), 1, 2);
        let a = table.create(|id| Named(id, "a"), t0).unwrap();
        let b = table.create(|id| Named(id, "b"), t0).unwrap();
        assert_eq!(
            table.create(|id| Named(id, "c"), t0),
            Err(CreateError::Full)
        );
        assert_eq!(
            table.touch(&a, t0 + Duration::from_secs(5)),
            Some(&Named(a, "a"))
        );
        let gone = table.expire(t0 + Duration::from_secs(6), Duration::from_secs(3), |_| {
            false
        });
        assert_eq!(gone, vec![Named(b, "b")]);
        assert_eq!(table.get(&b), None);
        let kept = table.expire(t0 + Duration::from_secs(60), Duration::from_secs(3), |v| {
            v.1 == "a"
        });
        assert!(kept.is_empty(), "busy sessions are kept");
        assert_eq!(table.remove(&a), Some(Named(a, "a")));
        assert!(table.is_empty());
    }

    #[test]
    fn a_session_is_found_by_its_whole_id_only() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(node("n1"), 3, 4);
        let random = [0x5c; RANDOM_BYTES];
        let id = SessionId::from_parts(node("n1"), 3, random);
        assert_eq!(id.random_part(), random);
        table.insert(&id, Named(id, "mine"), t0).unwrap();
        let other_node = SessionId::from_parts(node("n2"), 3, random);
        let other_shard = SessionId::from_parts(node("n1"), 4, random);
        for other in [other_node, other_shard] {
            assert_eq!(table.get(&other), None, "{other}");
            assert_eq!(table.touch(&other, t0), None, "{other}");
            assert_eq!(table.remove(&other), None, "{other}");
            assert_eq!(
                table.insert(&other, Named(other, "theirs"), t0),
                Err(CreateError::Full),
                "a different session under the same random part is refused"
            );
        }
        assert_eq!(table.get(&id), Some(&Named(id, "mine")));
        table.insert(&id, Named(id, "adopted again"), t0).unwrap();
        assert_eq!(table.len(), 1);
        assert_eq!(table.remove(&id), Some(Named(id, "adopted again")));
    }

    #[test]
    fn a_packed_id_is_its_id_and_shares_its_node_when_it_is_the_own_one() {
        let own = Rc::new(node("n1"));
        let random = [0x5c; RANDOM_BYTES];
        let id = SessionId::from_parts(node("n1"), 0xfffe, random);
        let packed = PackedSessionId::new(&id, &own);
        assert_eq!(packed.unpack(), id);
        assert!(packed.is(&id));
        assert!(Rc::ptr_eq(&packed.node, &own));
        let mut other_random = random;
        other_random[15] ^= 1;
        for other in [
            SessionId::from_parts(node("n2"), 0xfffe, random),
            SessionId::from_parts(node("n1"), 0xfffd, random),
            SessionId::from_parts(node("n1"), 0xfffe, other_random),
        ] {
            assert!(!packed.is(&other), "{other}");
        }
        // Another node's session (adopted) keeps that node's name.
        let theirs = SessionId::from_parts(node("n2"), 7, random);
        let packed = PackedSessionId::new(&theirs, &own);
        assert_eq!(packed.unpack(), theirs);
        assert!(!Rc::ptr_eq(&packed.node, &own));
    }

    /// Every Streamable HTTP session holds its packed id: grow this bound only with a
    /// measurement.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_packed_id_stays_small() {
        assert_eq!(std::mem::size_of::<PackedSessionId>(), 32);
    }
}
