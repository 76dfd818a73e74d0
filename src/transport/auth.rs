//! Authorization of requests, per shard: which paths need a token, what a token proves (a
//! [`Principal`], from a JWT checked against the key set or from an introspection answer),
//! and whether that principal may make the call. The shard fetches key sets and
//! introspection answers and hands them in; everything here is a function of what it is given
//! and of `now`.

use super::TransportError;
use crate::auth::{
    metadata_document, metadata_paths, metadata_url, validate_jwt, AuthConfig, Introspection,
    KeySet, Principal, TokenCache, TokenError, TokenKey, NEGATIVE_TTL_SECS,
};
use crate::proto::auth::{bearer_token, query_carries_token};
use crate::proto::http1::RequestHead;
use serde::Deserialize;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// The JSON-RPC error code of a message refused for a missing scope on a WebSocket (the
/// implementation-defined server error range of JSON-RPC 2.0; -32000 is the load limits').
pub const INSUFFICIENT_SCOPE: i64 = -32003;

/// Checked tokens a shard remembers (signatures are verified once per token per shard).
const CACHED_TOKENS: usize = 4096;

/// What a request's credentials come to.
#[derive(Debug)]
pub enum Credential {
    /// The token is good: who the request acts for.
    Principal(Rc<Principal>),
    /// An opaque token not seen lately: ask the introspection endpoint about it, hand the
    /// answer to [`Authorizer::introspected`] and authenticate again.
    Introspect(String),
}

/// A shard's authorization state.
pub struct Authorizer {
    config: AuthConfig,
    metadata_url: String,
    metadata: Vec<u8>,
    metadata_paths: (&'static str, String),
    /// `/healthz` and `/metrics` without a token.
    open_health: bool,
    keys: RefCell<Option<Rc<KeySet>>>,
    /// A token named a key the set does not have: the set may be stale.
    unknown_key_seen: Cell<bool>,
    cache: RefCell<TokenCache>,
    introspection: Option<Introspection>,
}

impl Authorizer {
    /// Authorization by `config`, with JWTs checked against `keys` (until a fetched set
    /// replaces them) and opaque tokens asked of `introspection`.
    pub fn new(
        config: AuthConfig,
        keys: Option<KeySet>,
        introspection: Option<Introspection>,
        open_health: bool,
    ) -> Authorizer {
        Authorizer {
            metadata_url: metadata_url(&config),
            metadata: metadata_document(&config),
            metadata_paths: metadata_paths(&config),
            config,
            open_health,
            keys: RefCell::new(keys.map(Rc::new)),
            unknown_key_seen: Cell::new(false),
            cache: RefCell::new(TokenCache::new(CACHED_TOKENS)),
            introspection,
        }
    }

    /// The authorizer `settings` describe (its key set from the file, if that is the source).
    pub(crate) fn from_settings(settings: &crate::config::AuthSettings) -> Authorizer {
        let keys = (settings.jwks_file.as_deref()).and_then(|jwks| KeySet::from_jwks(jwks).ok());
        Authorizer::new(
            settings.config.clone(),
            keys,
            settings.introspection.clone(),
            settings.open_health,
        )
    }

    /// The Protected Resource Metadata document, if `path` is one of its two well-known
    /// paths (RFC 9728 §3: the path form for this resource and the root form).
    pub fn metadata_at(&self, path: &str) -> Option<&[u8]> {
        let (root, suffixed) = &self.metadata_paths;
        (path == *root || path == suffixed).then_some(self.metadata.as_slice())
    }

    /// Whether `path` needs a token. MCP (2025-11-25, authorization): "authorization MUST be
    /// included in every HTTP request from client to server"; the health and metrics
    /// endpoints are open only when the operator said so.
    pub fn protects(&self, path: &str) -> bool {
        match path {
            "/mcp" | "/sse" | "/messages" | "/echo" => true,
            "/healthz" | "/metrics" => !self.open_health,
            _ => false,
        }
    }

    /// What the request's credentials prove.
    pub fn authenticate(&self, head: &RequestHead, now: u64) -> Result<Credential, TransportError> {
        // MCP 2025-11-25: "Access tokens MUST NOT be included in the URI query string".
        if query_carries_token(head.target()) {
            return Err(self.refusal(TokenError::TokenInQuery, "", None));
        }
        let header = head
            .header("authorization")
            .ok_or_else(|| self.refusal(TokenError::Missing, "", None))?;
        let token =
            bearer_token(header).map_err(|e| self.refusal(TokenError::from(e), "", None))?;
        let key = TokenKey::of(token);
        let cached = self.cache.borrow_mut().get(&key, now);
        let outcome = match cached {
            Some(outcome) => outcome,
            None if looks_like_jwt(token) || self.introspection.is_none() => {
                let outcome = self.check_jwt(token, now);
                let valid_until = match &outcome {
                    Ok(principal) => principal.expires_at.saturating_add(self.config.leeway_secs),
                    Err(_) => now + NEGATIVE_TTL_SECS,
                };
                // A key the set does not have yet may arrive with the next fetch: not cached.
                if outcome != Err(TokenError::UnknownKey) {
                    self.cache
                        .borrow_mut()
                        .insert(key, outcome.clone(), valid_until, now);
                }
                outcome
            }
            None => return Ok(Credential::Introspect(token.to_owned())),
        };
        let principal = outcome.map_err(|e| self.refusal(e, "", None))?;
        self.require(&principal, "", None)?;
        Ok(Credential::Principal(principal))
    }

    fn check_jwt(&self, token: &str, now: u64) -> Result<Rc<Principal>, TokenError> {
        let keys = self.keys.borrow();
        // No key set yet (the first fetch has not come back): the token cannot be checked.
        let keys = keys.as_ref().ok_or(TokenError::Unavailable)?;
        let checked = validate_jwt(token, keys, &self.config, now);
        if checked == Err(TokenError::UnknownKey) {
            self.unknown_key_seen.set(true);
        }
        checked.map(Rc::new)
    }

    /// Takes the introspection endpoint's answer about `token` (`None`: no answer) into the
    /// cache, where the request's next [`Self::authenticate`] finds it. An endpoint that
    /// failed is remembered too, briefly: the request gets its 503 instead of asking again.
    pub fn introspected(&self, token: &str, answer: Option<(u16, Vec<u8>)>, now: u64) {
        let outcome = match (&self.introspection, answer) {
            (Some(introspection), Some((200, body))) => {
                introspection.principal(&body, &self.config, now)
            }
            _ => Err(TokenError::Unavailable),
        };
        let (outcome, valid_until) = match outcome {
            Ok((principal, until)) => (Ok(Rc::new(principal)), until),
            Err(e) => (Err(e), now + NEGATIVE_TTL_SECS),
        };
        self.cache
            .borrow_mut()
            .insert(TokenKey::of(token), outcome, valid_until, now);
    }

    /// The request in `body` (a JSON-RPC message or batch) may be made by `principal`, or the
    /// 403 that asks for the scopes it needs.
    pub fn authorize_body(&self, principal: &Principal, body: &[u8]) -> Result<(), TransportError> {
        if self.config.tool_scopes.is_empty() {
            return Ok(());
        }
        for call in ToolCall::all_in(body) {
            self.require(principal, "tools/call", Some(call))?;
        }
        Ok(())
    }

    /// The JSON-RPC error for a message (on a WebSocket, which has no status to answer with)
    /// calling a tool whose scopes `principal` lacks, or `None` when it may go on: -32003
    /// with `data: {error: "insufficient_scope", scope}`, the scopes as a 403 would name them.
    pub fn refuse_message(&self, principal: &Principal, message: &[u8]) -> Option<Vec<u8>> {
        if self.config.tool_scopes.is_empty() {
            return None;
        }
        let call: ToolCall = serde_json::from_slice(message).ok()?;
        let tool = call.tool()?;
        let required = self.config.required_scopes("tools/call", Some(tool));
        if self.config.missing_scopes(principal, &required).is_empty() {
            return None;
        }
        let scope = required.join(" ");
        let error = serde_json::json!({
            "jsonrpc": "2.0",
            "id": call.id,
            "error": {
                "code": INSUFFICIENT_SCOPE,
                "message": format!("insufficient scope: {tool} needs {scope}"),
                "data": {"error": "insufficient_scope", "scope": scope},
            },
        });
        serde_json::to_vec(&error).ok()
    }

    fn require(
        &self,
        principal: &Principal,
        method: &str,
        tool: Option<&str>,
    ) -> Result<(), TransportError> {
        let required = self.config.required_scopes(method, tool);
        if self.config.missing_scopes(principal, &required).is_empty() {
            Ok(())
        } else {
            Err(self.refusal(TokenError::InsufficientScope, method, tool))
        }
    }

    /// The refusal for `error`; its challenge names the scopes the operation needs (base
    /// and, for a tool call, the tool's).
    fn refusal(&self, error: TokenError, method: &str, tool: Option<&str>) -> TransportError {
        let scopes = self.config.required_scopes(method, tool);
        let answer = error.answer(&self.metadata_url, &scopes);
        TransportError::Unauthorized { error, answer }
    }

    /// A new key set (fetched): tokens checked against the old one are checked again.
    pub fn set_keys(&self, keys: KeySet) {
        *self.keys.borrow_mut() = Some(Rc::new(keys));
        self.unknown_key_seen.set(false);
        self.cache.borrow_mut().clear();
    }

    /// Whether a token named a key the current set lacks since the last [`Self::set_keys`].
    pub fn wants_fresh_keys(&self) -> bool {
        self.unknown_key_seen.get()
    }
}

/// The wall clock in unix seconds, what token lifetimes are written in.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// JWS compact serialisation (RFC 7515 §7.1): three base64url parts; opaque tokens of an
/// authorization server rarely look like that, and the introspection endpoint would not know
/// a JWT anyway.
fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("eyJ")
}

/// The tool named by a `tools/call` (what a per-tool scope is about); the rest of the
/// message is the dispatcher's to read.
#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(default)]
    id: serde_json::Value,
    #[serde(borrow, default)]
    method: Option<&'a str>,
    #[serde(borrow, default)]
    params: Option<CallParams<'a>>,
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow, default)]
    name: Option<&'a str>,
}

impl<'a> ToolCall<'a> {
    /// The tool this message calls, if it is a `tools/call`.
    fn tool(&self) -> Option<&'a str> {
        if self.method != Some("tools/call") {
            return None;
        }
        self.params.as_ref().and_then(|p| p.name)
    }

    /// The tools called in a message or batch (what does not parse calls none: the
    /// dispatcher refuses it).
    fn all_in(body: &'a [u8]) -> Vec<&'a str> {
        let calls: Vec<ToolCall<'a>> = match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => serde_json::from_slice(body).unwrap_or_default(),
            _ => serde_json::from_slice(body)
                .map(|c| vec![c])
                .unwrap_or_default(),
        };
        calls.iter().filter_map(ToolCall::tool).collect()
    }
}
