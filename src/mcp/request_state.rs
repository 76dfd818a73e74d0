//! The `requestState` of MCP 2026-07-28 multi-round results: sealed by this server when a
//! handler needs input, opened and checked when the client retries.
//!
//! Spec (2026-07-28, basic/patterns/mrtr): "servers MUST treat `requestState` as an
//! attacker-controlled input. If `requestState` influences authorization, resource access, or
//! business logic, servers MUST protect its integrity (e.g. HMAC or AEAD) and MUST reject
//! state that fails verification." Ours carries the answers of earlier rounds, which the
//! handler acts on, so it is always sealed: HMAC-SHA256 under a server key, bound to the
//! request (method, name, arguments), with an expiry and a nonce that is accepted once.
//!
//! The wire form is `base64(payload JSON) "." base64(tag)`; the payload is readable by the
//! client (it holds only what the client itself sent) but not forgeable.

use crate::auth::PrincipalTag;
use futures_lite::future::BoxedLocal;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::proto::base64;

/// Fewest key bytes accepted: HMAC-SHA256 wants at least the hash's length.
pub const MIN_KEY_BYTES: usize = 32;

/// Largest sealed state, in bytes; a retry carrying more is refused before any work.
pub const MAX_STATE_BYTES: usize = 64 * 1024;

/// The payload format; bumped when its fields change, so old states fail cleanly.
const FORMAT: u8 = 1;

/// The request a state belongs to: a digest of the method, the tool or prompt name (or
/// resource URI) and the arguments.
///
/// Spec (2026-07-28, mrtr): servers SHOULD bind the state to "an identifier for the
/// originating request, e.g. the method name and a digest of its salient parameters".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding(String);

impl Binding {
    /// The binding of `method` on `target` (`params.name` or `params.uri`) with `arguments`,
    /// made by `principal` (with authorization on).
    pub fn of(
        method: &str,
        target: &str,
        arguments: &Value,
        principal: Option<PrincipalTag>,
    ) -> Binding {
        let mut hash = Sha256::new();
        for part in [method.as_bytes(), b"\0", target.as_bytes(), b"\0"] {
            hash.update(part);
        }
        if let Some(PrincipalTag(tag)) = principal {
            hash.update(tag);
        }
        // serde_json's maps are sorted (no `preserve_order`), so equal arguments serialise
        // equally however the client ordered them.
        hash.update(arguments.to_string().as_bytes());
        Binding(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Format version.
    v: u8,
    /// Digest of the [`Binding`].
    b: String,
    /// Expiry, milliseconds since the Unix epoch.
    e: u64,
    /// The shard whose ledger records the state's use.
    s: usize,
    /// The nonce, accepted once.
    k: u64,
    /// Rounds completed before this state was sealed.
    r: u32,
    /// The answers of earlier rounds, by input key.
    i: Map<String, Value>,
}

/// Why a retry's `requestState` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// Not a state this server could have written (wrong shape or encoding, or too large).
    Malformed,
    /// The tag does not match: changed, or sealed under another key.
    Tampered,
    /// Sealed for a different method, name or arguments.
    OtherRequest,
    /// Past its expiry.
    Expired,
    /// Already used once.
    Replayed,
    /// The shard's ledger of used states is full; the client should start over later.
    LedgerFull,
    /// The shard holding the state's ledger did not answer.
    LedgerUnreachable,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateError::Malformed => "requestState is malformed",
            StateError::Tampered => "requestState failed verification",
            StateError::OtherRequest => "requestState belongs to a different request",
            StateError::Expired => "requestState has expired; call again without it",
            StateError::Replayed => "requestState was already used; call again without it",
            StateError::LedgerFull => "too many requestStates in use; call again later",
            StateError::LedgerUnreachable => "requestState could not be checked; call again",
        })
    }
}

/// A verified state: what the retry may use.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The shard whose ledger must accept `nonce` before the state is used.
    pub ledger_shard: usize,
    /// The state's nonce.
    pub nonce: u64,
    /// When the state expires (ms since the Unix epoch); the ledger forgets it then.
    pub expires_ms: u64,
    /// Rounds completed before this one.
    pub rounds: u32,
    /// The answers of earlier rounds.
    pub answers: Map<String, Value>,
}

/// The server's key and expiry for request states; one per process, shared by its shards.
pub struct StateSeal {
    mac: Hmac<Sha256>,
    ttl: Duration,
}

impl fmt::Debug for StateSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateSeal").field("ttl", &self.ttl).finish()
    }
}

impl StateSeal {
    /// A seal under `key` (at least [`MIN_KEY_BYTES`]) whose states live `ttl`.
    pub fn new(key: &[u8], ttl: Duration) -> Result<StateSeal, String> {
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the request-state key has {} bytes; at least {MIN_KEY_BYTES} are needed",
                key.len()
            ));
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .map_err(|e| format!("request-state key refused: {e}"))?;
        Ok(StateSeal { mac, ttl })
    }

    /// A seal under a fresh random key: states open only in this process.
    pub fn random(ttl: Duration) -> Result<StateSeal, String> {
        let mut key = [0u8; MIN_KEY_BYTES];
        getrandom::fill(&mut key).map_err(|e| format!("no randomness for the state key: {e}"))?;
        StateSeal::new(&key, ttl)
    }

    fn tag(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }

    /// Seals the answers so far for `binding`, recorded in `ledger_shard`'s ledger when used.
    pub fn seal(
        &self,
        binding: &Binding,
        answers: Map<String, Value>,
        rounds: u32,
        ledger_shard: usize,
        now_ms: u64,
    ) -> Result<String, String> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| format!("no randomness for a nonce: {e}"))?;
        let payload = Payload {
            v: FORMAT,
            b: binding.0.clone(),
            e: now_ms.saturating_add(self.ttl.as_millis().try_into().unwrap_or(u64::MAX)),
            s: ledger_shard,
            k: u64::from_le_bytes(nonce),
            r: rounds,
            i: answers,
        };
        let json = serde_json::to_vec(&payload).map_err(|e| e.to_string())?;
        let sealed = format!(
            "{}.{}",
            base64::encode(&json),
            base64::encode(&self.tag(&json))
        );
        if sealed.len() > MAX_STATE_BYTES {
            return Err(format!(
                "the answers so far need {} bytes of requestState; at most {MAX_STATE_BYTES} are sealed",
                sealed.len()
            ));
        }
        Ok(sealed)
    }

    /// Verifies `sealed` for `binding` at `now_ms`. The caller must still have the ledger
    /// accept the nonce (see [`Ledger::accept`]).
    pub fn open(&self, sealed: &str, binding: &Binding, now_ms: u64) -> Result<Opened, StateError> {
        if sealed.len() > MAX_STATE_BYTES {
            return Err(StateError::Malformed);
        }
        let (payload, tag) = sealed.split_once('.').ok_or(StateError::Malformed)?;
        let payload = base64::decode(payload.as_bytes()).ok_or(StateError::Malformed)?;
        let tag = base64::decode(tag.as_bytes()).ok_or(StateError::Tampered)?;
        let mut mac = self.mac.clone();
        mac.update(&payload);
        // Constant-time comparison, so the tag cannot be guessed byte by byte.
        mac.verify_slice(&tag).map_err(|_| StateError::Tampered)?;
        let payload: Payload =
            serde_json::from_slice(&payload).map_err(|_| StateError::Malformed)?;
        if payload.v != FORMAT {
            return Err(StateError::Malformed);
        }
        if payload.b != binding.0 {
            return Err(StateError::OtherRequest);
        }
        if payload.e <= now_ms {
            return Err(StateError::Expired);
        }
        Ok(Opened {
            ledger_shard: payload.s,
            nonce: payload.k,
            expires_ms: payload.e,
            rounds: payload.r,
            answers: payload.i,
        })
    }
}

/// One shard's record of the states already used, each kept until it expires.
///
/// Spec (2026-07-28, mrtr): binding and expiry "do not by themselves guarantee single-use.
/// Servers for which a given `requestState` must be consumed at most once ... MUST enforce
/// that invariant server-side." A state is recorded by the shard that sealed it, so a retry
/// landing on any shard of the process is checked against one ledger.
#[derive(Debug)]
pub struct Ledger {
    used: HashMap<u64, u64>,
    capacity: usize,
}

/// States one shard's ledger holds before it refuses new ones (about 2 MB at most).
pub const LEDGER_CAPACITY: usize = 65_536;

impl Default for Ledger {
    fn default() -> Self {
        Ledger::with_capacity(LEDGER_CAPACITY)
    }
}

impl Ledger {
    /// A ledger holding at most `capacity` unexpired states.
    pub fn with_capacity(capacity: usize) -> Ledger {
        Ledger {
            used: HashMap::new(),
            capacity,
        }
    }

    /// Records the use of `nonce` (valid until `expires_ms`); refuses a second use.
    pub fn accept(&mut self, nonce: u64, expires_ms: u64, now_ms: u64) -> Result<(), StateError> {
        if self.used.contains_key(&nonce) {
            return Err(StateError::Replayed);
        }
        if self.used.len() >= self.capacity {
            self.used.retain(|_, &mut expires| expires > now_ms);
            if self.used.len() >= self.capacity {
                return Err(StateError::LedgerFull);
            }
        }
        self.used.insert(nonce, expires_ms);
        Ok(())
    }
}

/// A state's use, for the ledger of the shard that sealed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateUse {
    /// The state's nonce.
    pub nonce: u64,
    /// When the state expires (ms since the Unix epoch).
    pub expires_ms: u64,
}

/// The hook a transport installs to have another shard's ledger accept a use (message
/// passing); see [`Dispatcher::with_request_states`](crate::mcp::Dispatcher::with_request_states).
pub(crate) type RemoteLedgerFn = dyn Fn(usize, StateUse) -> BoxedLocal<Result<(), StateError>>;

/// The hook of a ledger several nodes share (the shared event store), which accepts every
/// use in place of the shards' own ledgers; see
/// [`Dispatcher::with_shared_state_ledger`](crate::mcp::Dispatcher::with_shared_state_ledger).
pub(crate) type SharedLedgerFn = dyn Fn(StateUse) -> BoxedLocal<Result<(), StateError>>;

/// One shard's side of request states: the process's seal, this shard's ledger, and the way
/// to the other shards' ledgers.
pub(crate) struct States {
    seal: Option<Arc<StateSeal>>,
    ledger: RefCell<Ledger>,
    shard: usize,
    shards: usize,
    remote: Rc<RemoteLedgerFn>,
    shared: RefCell<Option<Rc<SharedLedgerFn>>>,
}

/// The wall clock in milliseconds since the Unix epoch (states outlive processes).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}

impl States {
    /// One shard of `shards` sealing with `seal`, reaching the others through `remote`.
    pub(crate) fn new(
        seal: Option<Arc<StateSeal>>,
        shard: usize,
        shards: usize,
        remote: Rc<RemoteLedgerFn>,
    ) -> States {
        States {
            seal,
            ledger: RefCell::default(),
            shard,
            shards: shards.max(1),
            remote,
            shared: RefCell::new(None),
        }
    }

    /// Has `ledger`, shared by several nodes, accept every use.
    pub(crate) fn share_ledger(&self, ledger: Rc<SharedLedgerFn>) {
        *self.shared.borrow_mut() = Some(ledger);
    }

    /// Seals the answers after `rounds` rounds, for this shard's ledger.
    pub(crate) fn seal(
        &self,
        binding: &Binding,
        answers: Map<String, Value>,
        rounds: u32,
    ) -> Result<String, String> {
        let seal = self.seal.as_ref().ok_or("no request-state key")?;
        seal.seal(binding, answers, rounds, self.shard, now_ms())
    }

    /// Verifies `sealed` for `binding` and has the sealing shard's ledger accept its use.
    pub(crate) async fn open(&self, sealed: &str, binding: &Binding) -> Result<Opened, StateError> {
        let seal = self.seal.as_ref().ok_or(StateError::Tampered)?;
        let opened = seal.open(sealed, binding, now_ms())?;
        let state_use = StateUse {
            nonce: opened.nonce,
            expires_ms: opened.expires_ms,
        };
        let shared = self.shared.borrow().clone();
        if let Some(shared) = shared {
            // Issue 20: "a multi-round requestState is single-use across nodes".
            shared(state_use).await?;
            return Ok(opened);
        }
        // Processes sharing a key may run more shards than this one.
        let owner = opened.ledger_shard % self.shards;
        if owner == self.shard {
            self.accept_here(state_use)?;
        } else {
            (self.remote)(owner, state_use).await?;
        }
        Ok(opened)
    }

    /// Records a use in this shard's ledger.
    pub(crate) fn accept_here(&self, state_use: StateUse) -> Result<(), StateError> {
        self.ledger
            .borrow_mut()
            .accept(state_use.nonce, state_use.expires_ms, now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000_000;

    fn seal() -> StateSeal {
        StateSeal::new(&[7u8; 32], Duration::from_secs(60)).unwrap()
    }

    fn args() -> Value {
        json!({"b": 1, "a": "x"})
    }

    fn binding(arguments: &Value) -> Binding {
        Binding::of("tools/call", "t", arguments, None)
    }

    fn answers() -> Map<String, Value> {
        let mut answers = Map::new();
        answers.insert(
            "name".into(),
            json!({"action": "accept", "content": {"name": "A"}}),
        );
        answers
    }

    #[test]
    fn a_sealed_state_opens_for_its_request_and_keeps_the_answers() {
        let args = args();
        let sealed = seal().seal(&binding(&args), answers(), 1, 3, NOW).unwrap();
        let reordered = json!({"a": "x", "b": 1});
        let opened = seal().open(&sealed, &binding(&reordered), NOW + 1).unwrap();
        assert_eq!(opened.answers, answers());
        assert_eq!((opened.rounds, opened.ledger_shard), (1, 3));
        assert_eq!(opened.expires_ms, NOW + 60_000);
    }

    #[test]
    fn tampered_foreign_expired_and_other_request_states_are_refused() {
        let args = args();
        let sealed = seal().seal(&binding(&args), answers(), 1, 0, NOW).unwrap();
        let open =
            |text: &str, arguments: &Value, at: u64| seal().open(text, &binding(arguments), at);
        assert_eq!(
            open(&format!("{sealed}-TAMPERED"), &args, NOW),
            Err(StateError::Tampered)
        );
        // A changed payload under the old tag.
        let (payload, tag) = sealed.split_once('.').unwrap();
        let mut json = base64::decode(payload.as_bytes()).unwrap();
        let at = json.iter().position(|&c| c == b'A').unwrap();
        json[at] = b'B';
        let forged = format!("{}.{tag}", base64::encode(&json));
        assert_eq!(open(&forged, &args, NOW), Err(StateError::Tampered));
        let other_key = StateSeal::new(&[8u8; 32], Duration::from_secs(60)).unwrap();
        assert_eq!(
            other_key.open(&sealed, &binding(&args), NOW),
            Err(StateError::Tampered)
        );
        assert_eq!(open(&sealed, &args, NOW + 60_000), Err(StateError::Expired));
        assert_eq!(
            open(&sealed, &json!({"a": "y", "b": 1}), NOW),
            Err(StateError::OtherRequest)
        );
        let other_tool = Binding::of("tools/call", "u", &args, None);
        let other_principal = Binding::of("tools/call", "t", &args, Some(PrincipalTag([7; 16])));
        assert_eq!(
            seal().open(&sealed, &other_tool, NOW),
            Err(StateError::OtherRequest)
        );
        assert_eq!(
            seal().open(&sealed, &other_principal, NOW),
            Err(StateError::OtherRequest)
        );
        for junk in ["", ".", "abc", "e30=.e30=", "!!!.!!!"] {
            assert!(open(junk, &args, NOW).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn keys_must_be_long_enough() {
        assert!(StateSeal::new(&[1u8; 31], Duration::from_secs(1)).is_err());
        assert!(StateSeal::random(Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn the_ledger_accepts_a_nonce_once_and_forgets_it_after_expiry() {
        let mut ledger = Ledger::with_capacity(2);
        assert_eq!(ledger.accept(1, NOW + 10, NOW), Ok(()));
        assert_eq!(ledger.accept(1, NOW + 10, NOW), Err(StateError::Replayed));
        assert_eq!(ledger.accept(2, NOW + 20, NOW), Ok(()));
        assert_eq!(ledger.accept(3, NOW + 30, NOW), Err(StateError::LedgerFull));
        // Once the first has expired its slot is free again.
        assert_eq!(ledger.accept(3, NOW + 30, NOW + 15), Ok(()));
        assert_eq!(
            ledger.accept(2, NOW + 20, NOW + 15),
            Err(StateError::Replayed)
        );
    }
}
