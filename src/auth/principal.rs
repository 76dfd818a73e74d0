//! Who a request acts for, once its token has been checked.

use super::TokenError;
use crate::proto::hex;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// What sessions are bound to: the first 16 bytes of SHA-256(`iss` NUL `sub` NUL
/// `client_id`). Scopes are left out on purpose, so a step-up token with more scopes keeps
/// its sessions; 16 bytes keep the per-session cost small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrincipalTag(pub [u8; 16]);

impl PrincipalTag {
    /// The tag as 32 lowercase hex digits (how the shared event store keeps it).
    pub fn to_hex(&self) -> String {
        let mut text = Vec::with_capacity(32);
        hex::push_lower(&mut text, &self.0);
        // Hex digits are ASCII.
        String::from_utf8(text).unwrap_or_default()
    }

    /// A tag from [`PrincipalTag::to_hex`]'s form.
    pub fn from_hex(text: &str) -> Option<PrincipalTag> {
        hex::decode_16(text.as_bytes()).map(PrincipalTag)
    }
}

/// The authenticated party behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The issuer that vouched for it.
    pub issuer: String,
    /// The subject (`sub`): the user, or the client itself for a client-credentials token.
    pub subject: String,
    /// The OAuth client acting for the subject, if the token names it.
    pub client_id: Option<String>,
    /// The scopes granted.
    pub scopes: BTreeSet<String>,
    /// When the token expires, in unix seconds (`u64::MAX` if it never says).
    pub expires_at: u64,
    /// The session binding.
    pub tag: PrincipalTag,
}

impl Principal {
    /// A principal with its tag. A NUL inside `issuer`, `subject` or `client_id` would let two
    /// principals share a tag, so such a token is refused as malformed.
    pub fn new(
        issuer: String,
        subject: String,
        client_id: Option<String>,
        scopes: BTreeSet<String>,
        expires_at: u64,
    ) -> Result<Principal, TokenError> {
        let client = client_id.as_deref().unwrap_or("");
        if [issuer.as_str(), subject.as_str(), client]
            .iter()
            .any(|part| part.contains('\0'))
        {
            return Err(TokenError::Malformed);
        }
        let digest = Sha256::new()
            .chain_update(issuer.as_bytes())
            .chain_update([0])
            .chain_update(subject.as_bytes())
            .chain_update([0])
            .chain_update(client.as_bytes())
            .finalize();
        let mut tag = [0; 16];
        tag.copy_from_slice(&digest[..16]);
        Ok(Principal {
            issuer,
            subject,
            client_id,
            scopes,
            expires_at,
            tag: PrincipalTag(tag),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(sub: &str, client: Option<&str>, scopes: &[&str]) -> Principal {
        Principal::new(
            "https://as".into(),
            sub.into(),
            client.map(str::to_owned),
            scopes.iter().map(|s| s.to_string()).collect(),
            100,
        )
        .expect("no NUL")
    }

    #[test]
    fn the_tag_binds_issuer_subject_and_client_but_not_scopes() {
        let a = principal("alice", Some("app"), &["read"]);
        let stepped_up = principal("alice", Some("app"), &["read", "write"]);
        assert_eq!(a.tag, stepped_up.tag);
        assert_ne!(a.tag, principal("bob", Some("app"), &["read"]).tag);
        assert_ne!(a.tag, principal("alice", Some("other"), &["read"]).tag);
        assert_ne!(a.tag, principal("alice", None, &["read"]).tag);
        let digest = Sha256::digest(b"https://as\0alice\0app");
        assert_eq!(a.tag.0[..], digest[..16]);
    }

    #[test]
    fn a_nul_inside_a_part_is_refused() {
        let nul = Principal::new(
            "https://as".into(),
            "al\0ice".into(),
            None,
            BTreeSet::new(),
            1,
        );
        assert_eq!(nul, Err(TokenError::Malformed));
    }
}
