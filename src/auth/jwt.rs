//! JWT access tokens (RFC 9068): signature, header and claims checked against the
//! configuration, at a given time.

use super::claims::{Claims, Source};
use super::{AuthConfig, KeySet, Principal, TokenError};
use crate::proto::auth::MAX_TOKEN_BYTES;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Validation;

/// The principal of a JWT access token, if it is valid for this resource at `now` (unix
/// seconds).
///
/// jsonwebtoken checks the structure and the signature with the key `keys` has for the
/// token's `kid`; everything that depends on the time or on this server's identity is checked
/// here, against `now` instead of the system clock, so the outcome is a function of the
/// arguments.
pub fn validate_jwt(
    token: &str,
    keys: &KeySet,
    config: &AuthConfig,
    now: u64,
) -> Result<Principal, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
    // RFC 8725 §3.1: "Libraries MUST enable the caller to specify a supported set of
    // algorithms and MUST NOT use any other algorithms when performing cryptographic
    // operations."
    if !config.algorithms.contains(&header.alg) {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    // RFC 9068 §4: "The resource server MUST verify that the "typ" header value is "at+jwt" or
    // "application/at+jwt" and reject tokens carrying any other value." Media types compare
    // case-insensitively (RFC 2045 §5.1).
    let typ_ok = header.typ.as_deref().is_some_and(|typ| {
        typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok && !config.accept_any_typ {
        return Err(TokenError::WrongType);
    }
    let key = keys.find(header.kid.as_deref(), header.alg)?;
    // Only the signature is left to jsonwebtoken: its time checks read the system clock, and
    // its audience check compares strings exactly where RFC 3986 normalisation is wanted.
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map_err(|error| match error.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
                TokenError::AlgorithmNotAllowed
            }
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => TokenError::KeyMismatch,
            _ => TokenError::Malformed,
        })?
        .claims;
    claims.principal(Source::Jwt, config, now)
}
