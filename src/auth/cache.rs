//! A shard's memory of tokens it has already checked, so a signature is verified (or the
//! introspection endpoint asked) once per token per shard, not once per request.

use super::{Principal, TokenError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::rc::Rc;

/// How long a refusal is remembered, in seconds: long enough to absorb a client retrying a
/// bad token in a loop, short enough that a clock or key-set fix is seen soon.
pub const NEGATIVE_TTL_SECS: u64 = 5;

/// What the cache knows a token by: its SHA-256, so the token itself is not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// The key of `token`.
    pub fn of(token: &str) -> TokenKey {
        TokenKey(Sha256::digest(token.as_bytes()).into())
    }
}

/// What was decided about a token: its principal, or why it was refused.
pub type Outcome = Result<Rc<Principal>, TokenError>;

/// One remembered token.
#[derive(Debug)]
struct Slot {
    /// Which token.
    key: TokenKey,
    /// What was decided.
    outcome: Outcome,
    /// Good while `now` is below this (unix seconds).
    valid_until: u64,
    /// Used since the clock hand last passed (the CLOCK approximation of LRU).
    referenced: bool,
}

/// A bounded per-shard cache from token to outcome, evicting with the CLOCK algorithm: a
/// full cache replaces the first entry, from the hand on, that is expired or has not been
/// used since the hand last passed it.
#[derive(Debug)]
pub struct TokenCache {
    /// The entries, in no particular order.
    slots: Vec<Slot>,
    /// Where each token's slot is.
    index: HashMap<TokenKey, usize>,
    /// The clock hand: the next slot considered for eviction.
    hand: usize,
    /// The most slots there may be.
    capacity: usize,
}

impl TokenCache {
    /// An empty cache holding at most `capacity` tokens (at least one).
    pub fn new(capacity: usize) -> TokenCache {
        let capacity = capacity.max(1);
        TokenCache {
            slots: Vec::new(),
            index: HashMap::new(),
            hand: 0,
            capacity,
        }
    }

    /// What is remembered about the token with `key`, if it is still good at `now`.
    pub fn get(&mut self, key: &TokenKey, now: u64) -> Option<Outcome> {
        let at = *self.index.get(key)?;
        if now >= self.slots[at].valid_until {
            self.remove(at);
            return None;
        }
        let slot = &mut self.slots[at];
        slot.referenced = true;
        Some(slot.outcome.clone())
    }

    /// Remembers `outcome` for the token with `key` until `valid_until` (exclusive, unix
    /// seconds). For a JWT that is its `expires_at` plus the leeway; for an introspected token
    /// the `cache_until` of the answer; for a refusal `now + NEGATIVE_TTL_SECS`.
    pub fn insert(&mut self, key: TokenKey, outcome: Outcome, valid_until: u64, now: u64) {
        let slot = Slot {
            key,
            outcome,
            valid_until,
            referenced: false,
        };
        if let Some(&at) = self.index.get(&key) {
            self.slots[at] = slot;
            return;
        }
        if self.slots.len() < self.capacity {
            self.index.insert(key, self.slots.len());
            self.slots.push(slot);
            return;
        }
        // Each pass clears the bits it sees, so the hand stops within two turns.
        loop {
            let current = &mut self.slots[self.hand];
            if !current.referenced || now >= current.valid_until {
                break;
            }
            current.referenced = false;
            self.hand = (self.hand + 1) % self.slots.len();
        }
        let evicted = std::mem::replace(&mut self.slots[self.hand], slot);
        self.index.remove(&evicted.key);
        self.index.insert(key, self.hand);
        self.hand = (self.hand + 1) % self.slots.len();
    }

    /// Forgets everything, as when the key set changes (a token refused for an unknown key
    /// may be good now, and one accepted may have lost its key).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.hand = 0;
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Drops the slot at `at`, moving the last slot into its place.
    fn remove(&mut self, at: usize) {
        let removed = self.slots.swap_remove(at);
        self.index.remove(&removed.key);
        if let Some(moved) = self.slots.get(at) {
            self.index.insert(moved.key, at);
        }
        if self.hand >= self.slots.len() {
            self.hand = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn principal(sub: &str) -> Rc<Principal> {
        Rc::new(
            Principal::new("iss".into(), sub.into(), None, BTreeSet::new(), 1_000).expect("no NUL"),
        )
    }

    fn key(n: usize) -> TokenKey {
        TokenKey::of(&format!("token-{n}"))
    }

    #[test]
    fn a_hit_is_good_until_valid_until() {
        let mut cache = TokenCache::new(4);
        let alice = principal("alice");
        cache.insert(key(1), Ok(alice.clone()), 100, 0);
        assert_eq!(cache.get(&key(1), 99), Some(Ok(alice)));
        assert_eq!(cache.get(&key(1), 100), None);
        assert!(cache.is_empty(), "an expired entry is dropped when seen");
        assert_eq!(cache.get(&key(2), 0), None);
    }

    #[test]
    fn refusals_are_remembered_too() {
        let mut cache = TokenCache::new(4);
        cache.insert(key(1), Err(TokenError::Expired), 10 + NEGATIVE_TTL_SECS, 10);
        assert_eq!(cache.get(&key(1), 14), Some(Err(TokenError::Expired)));
        assert_eq!(cache.get(&key(1), 15), None);
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let mut cache = TokenCache::new(8);
        for n in 0..100 {
            cache.insert(key(n), Err(TokenError::Inactive), u64::MAX, 0);
            assert!(cache.len() <= 8);
            assert_eq!(cache.get(&key(n), 0), Some(Err(TokenError::Inactive)));
        }
        assert_eq!(cache.len(), 8);
        assert_eq!(cache.index.len(), 8);
        let remembered = (0..100)
            .filter(|&n| cache.get(&key(n), 0).is_some())
            .count();
        assert_eq!(remembered, 8);
    }

    #[test]
    fn a_used_entry_survives_an_unused_one() {
        let mut cache = TokenCache::new(2);
        cache.insert(key(1), Ok(principal("a")), u64::MAX, 0);
        cache.insert(key(2), Ok(principal("b")), u64::MAX, 0);
        assert!(cache.get(&key(1), 0).is_some());
        cache.insert(key(3), Ok(principal("c")), u64::MAX, 0);
        assert!(
            cache.get(&key(1), 0).is_some(),
            "used since the hand passed"
        );
        assert_eq!(cache.get(&key(2), 0), None, "never used: evicted");
        assert!(cache.get(&key(3), 0).is_some());
    }

    #[test]
    fn an_expired_entry_goes_first_even_if_used() {
        let mut cache = TokenCache::new(2);
        cache.insert(key(1), Ok(principal("a")), u64::MAX, 0);
        cache.insert(key(2), Ok(principal("b")), 50, 0);
        assert!(cache.get(&key(1), 0).is_some());
        assert!(cache.get(&key(2), 0).is_some());
        cache.insert(key(3), Ok(principal("c")), u64::MAX, 60);
        assert!(cache.get(&key(1), 60).is_some());
        assert!(cache.get(&key(3), 60).is_some());
    }

    #[test]
    fn insert_replaces_and_clear_forgets() {
        let mut cache = TokenCache::new(2);
        cache.insert(key(1), Err(TokenError::UnknownKey), 100, 0);
        cache.insert(key(1), Ok(principal("a")), 100, 0);
        assert_eq!(cache.len(), 1);
        assert!(matches!(cache.get(&key(1), 0), Some(Ok(_))));
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.get(&key(1), 0), None);
        cache.insert(key(2), Ok(principal("b")), 100, 0);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn removal_keeps_the_index_consistent() {
        let mut cache = TokenCache::new(4);
        for n in 0..4 {
            cache.insert(key(n), Err(TokenError::Inactive), 10 * (n as u64 + 1), 0);
        }
        // Expire the first: the last slot moves into its place.
        assert_eq!(cache.get(&key(0), 10), None);
        for n in 1..4 {
            assert!(cache.get(&key(n), 10).is_some(), "{n}");
        }
        for (at, slot) in cache.slots.iter().enumerate() {
            assert_eq!(cache.index[&slot.key], at);
        }
    }
}
