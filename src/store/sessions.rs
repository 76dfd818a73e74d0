//! Session ids and the per-shard session table (capped, idle sessions expire).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

/// Hex digits naming the owning shard at the start of every id.
const SHARD_DIGITS: usize = 2;
/// Random bytes per id: 128 bits from the OS CSPRNG.
const RANDOM_BYTES: usize = 16;
/// Length of an id on the wire.
pub const SESSION_ID_LEN: usize = SHARD_DIGITS + 2 * RANDOM_BYTES;
/// Most shards an id can name.
pub const MAX_SHARDS: usize = 256;

/// An `Mcp-Session-Id`: visible ASCII (lowercase hex), unguessable, naming its shard.
///
/// MCP 2025-11-25, Streamable HTTP: "The session ID SHOULD be globally unique and
/// cryptographically secure (e.g., a securely generated UUID, a JWT, or a cryptographic
/// hash)." and "The session ID MUST only contain visible ASCII characters (ranging from
/// 0x21 to 0x7E)." The first two hex digits name the owning shard, so any shard can route
/// a request without a lookup table.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; SESSION_ID_LEN]);

impl SessionId {
    /// A fresh id owned by `shard`, or None if the OS CSPRNG failed (the caller answers 503).
    pub fn generate(shard: usize) -> Option<SessionId> {
        let mut random = [0u8; RANDOM_BYTES];
        getrandom::fill(&mut random).ok()?;
        Some(Self::from_parts(shard, random))
    }

    fn from_parts(shard: usize, random: [u8; RANDOM_BYTES]) -> SessionId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = [0u8; SESSION_ID_LEN];
        let shard = (shard % MAX_SHARDS) as u8;
        id[0] = HEX[usize::from(shard >> 4)];
        id[1] = HEX[usize::from(shard & 0xf)];
        for (i, byte) in random.iter().enumerate() {
            id[SHARD_DIGITS + 2 * i] = HEX[usize::from(byte >> 4)];
            id[SHARD_DIGITS + 2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        SessionId(id)
    }

    /// Parses a header value; anything we could not have issued is None.
    pub fn parse(value: &[u8]) -> Option<SessionId> {
        let value = value.trim_ascii();
        let id: [u8; SESSION_ID_LEN] = value.try_into().ok()?;
        id.iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .then_some(SessionId(id))
    }

    /// The shard that owns the session.
    pub fn shard(&self) -> usize {
        let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as usize;
        digit(self.0[0]) * 16 + digit(self.0[1])
    }

    /// The id as it goes on the wire.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
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

/// One shard's sessions: at most `cap` of them; idle ones are removed by [`SessionTable::expire`].
pub struct SessionTable<T> {
    shard: usize,
    cap: usize,
    sessions: HashMap<SessionId, Entry<T>>,
}

impl<T> SessionTable<T> {
    /// An empty table for `shard` holding at most `cap` sessions.
    pub fn new(shard: usize, cap: usize) -> Self {
        SessionTable {
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
            let id = SessionId::generate(self.shard).ok_or(CreateError::NoRandomness)?;
            if let std::collections::hash_map::Entry::Vacant(slot) = self.sessions.entry(id) {
                slot.insert(Entry {
                    value: make(id),
                    last_active: now,
                });
                return Ok(id);
            }
        }
    }

    /// The session, marked active at `now`.
    pub fn touch(&mut self, id: &SessionId, now: Instant) -> Option<&T> {
        let entry = self.sessions.get_mut(id)?;
        entry.last_active = now;
        Some(&entry.value)
    }

    /// The session, without marking it active.
    pub fn get(&self, id: &SessionId) -> Option<&T> {
        self.sessions.get(id).map(|e| &e.value)
    }

    /// Ends a session.
    pub fn remove(&mut self, id: &SessionId) -> Option<T> {
        self.sessions.remove(id).map(|e| e.value)
    }

    /// Removes and returns sessions idle for longer than `idle` for which `busy` is false.
    pub fn expire(&mut self, now: Instant, idle: Duration, busy: impl Fn(&T) -> bool) -> Vec<T> {
        let stale: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_active) > idle && !busy(&e.value))
            .map(|(id, _)| *id)
            .collect();
        let gone = stale.iter().filter_map(|id| self.remove(id)).collect();
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

    /// Every live session.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.sessions.values().map(|e| &e.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_visible_ascii_name_their_shard_and_round_trip() {
        for shard in [0, 1, 15, 16, 255] {
            let id = SessionId::generate(shard).unwrap();
            assert_eq!(id.as_str().len(), SESSION_ID_LEN);
            assert!(id.as_str().bytes().all(|b| (0x21..=0x7e).contains(&b)));
            assert_eq!(id.shard(), shard);
            assert_eq!(SessionId::parse(id.as_str().as_bytes()), Some(id));
        }
        assert_ne!(SessionId::generate(0), SessionId::generate(0));
    }

    #[test]
    fn foreign_ids_are_rejected() {
        let ok = SessionId::from_parts(3, [0xab; RANDOM_BYTES]);
        assert_eq!(SessionId::parse(ok.as_str().as_bytes()), Some(ok));
        for bad in [
            "",
            "03",
            &ok.as_str().to_uppercase(),
            &format!("{}0", ok.as_str()),
            &ok.as_str().replace('a', "g"),
        ] {
            assert_eq!(SessionId::parse(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn cap_touch_and_expiry() {
        let t0 = Instant::now();
        let mut table = SessionTable::new(1, 2);
        let a = table.create(|_| "a", t0).unwrap();
        let b = table.create(|_| "b", t0).unwrap();
        assert_eq!(table.create(|_| "c", t0), Err(CreateError::Full));
        assert_eq!(table.touch(&a, t0 + Duration::from_secs(5)), Some(&"a"));
        let gone = table.expire(t0 + Duration::from_secs(6), Duration::from_secs(3), |_| {
            false
        });
        assert_eq!(gone, vec!["b"]);
        assert_eq!(table.get(&b), None);
        let kept = table.expire(t0 + Duration::from_secs(60), Duration::from_secs(3), |v| {
            *v == "a"
        });
        assert!(kept.is_empty(), "busy sessions are kept");
        assert_eq!(table.remove(&a), Some("a"));
        assert!(table.is_empty());
    }
}
