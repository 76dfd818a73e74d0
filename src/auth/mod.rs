//! The OAuth 2.1 resource server, sans-IO: MCP authorization (2025-11-25 and 2026-07-28)
//! from the protected resource's side.
//!
//! Every function here is a pure function of its arguments, the current time included (unix
//! seconds, passed in): it never reads a clock, opens a socket or names glommio. The shard
//! fetches JWKS documents and introspection answers; this module decides what they mean.
//!
//! - [`AuthConfig`]: the issuer trusted, the resource this server is, the algorithms and
//!   scopes; [`AuthConfig::required_scopes`] for an operation.
//! - [`KeySet::from_jwks`] and [`validate_jwt`]: JWT access tokens (RFC 9068), whose
//!   signatures ring checks ([`install_crypto_provider`]).
//! - [`Introspection`]: opaque tokens (RFC 7662), the request bytes and the answer's meaning.
//! - [`Principal`] and its [`PrincipalTag`], which sessions are bound to.
//! - [`TokenCache`]: a shard's bounded memory of checked tokens.
//! - [`TokenError::answer`]: the one mapping from a refusal to a status and a challenge.
//! - [`metadata_document`], [`metadata_paths`], [`metadata_url`]: RFC 9728 metadata.
//!
//! The wire codecs (`Authorization: Bearer`, the query-string check, the challenge writer)
//! are in `crate::proto::auth`.

mod cache;
mod claims;
mod config;
mod error;
mod introspect;
mod jwt;
mod keys;
mod principal;
mod prm;
mod ring_verify;
mod uri;

pub use cache::{Outcome, TokenCache, TokenKey, NEGATIVE_TTL_SECS};
pub use config::{AuthConfig, ConfigError, DEFAULT_ALGORITHMS, DEFAULT_LEEWAY_SECS};
pub use error::{Answer, TokenError};
pub use introspect::{HttpUrl, Introspection, DEFAULT_CACHE_SECS};
pub use jsonwebtoken::Algorithm;
pub use jwt::validate_jwt;
pub use keys::{KeySet, KeysError, MAX_JWKS_BYTES, MAX_KEYS};
pub use principal::{Principal, PrincipalTag};
pub use prm::{metadata_document, metadata_paths, metadata_url};
pub use ring_verify::install_crypto_provider;

#[cfg(test)]
pub(crate) mod tests;
