//! Why a request was not let through, and the one place that turns the reason into an HTTP
//! status and a `WWW-Authenticate` challenge.

use crate::proto::auth::{BearerError, Challenge, ChallengeError};
use std::fmt;

/// One broken rule of OAuth resource access: one variant per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// No credentials: no `Authorization` header, or one with another scheme.
    Missing,
    /// An `Authorization: Bearer` header that breaks RFC 6750 §2.1 (a `NotBearer` here is
    /// answered as [`TokenError::Missing`]).
    BadHeader(BearerError),
    /// An `access_token` query parameter.
    TokenInQuery,
    /// Not a JWT: not three base64url parts, a header or claims that are not JSON objects, a
    /// claim of the wrong type, an algorithm jsonwebtoken does not know (`none` included).
    Malformed,
    /// No key in the key set has the token's `kid`: the key set may be stale.
    UnknownKey,
    /// The key with the token's `kid` is not one for the token's algorithm.
    KeyMismatch,
    /// The signature does not verify.
    BadSignature,
    /// The algorithm is not in the allow-list.
    AlgorithmNotAllowed,
    /// The `typ` header is not `at+jwt` (RFC 9068 §4).
    WrongType,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not name this resource.
    WrongAudience,
    /// A claim the server requires is absent (`exp`, `sub`).
    MissingClaim(&'static str),
    /// `exp` has passed, beyond the leeway.
    Expired,
    /// `nbf` is still ahead, beyond the leeway.
    NotYetValid,
    /// The introspection endpoint says the token is not active.
    Inactive,
    /// The token could not be checked: the introspection endpoint failed or answered
    /// something that is not an introspection response.
    Unavailable,
    /// The token is good but lacks a scope the operation needs.
    InsufficientScope,
}

impl From<BearerError> for TokenError {
    fn from(error: BearerError) -> TokenError {
        match error {
            BearerError::NotBearer => TokenError::Missing,
            other => TokenError::BadHeader(other),
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Missing => f.write_str("no access token"),
            TokenError::BadHeader(error) => error.fmt(f),
            TokenError::TokenInQuery => f.write_str("access token in query string not accepted"),
            TokenError::Malformed => f.write_str("malformed token"),
            TokenError::UnknownKey => f.write_str("unknown signing key"),
            TokenError::KeyMismatch => f.write_str("signing key does not fit the algorithm"),
            TokenError::BadSignature => f.write_str("invalid signature"),
            TokenError::AlgorithmNotAllowed => f.write_str("signature algorithm not allowed"),
            TokenError::WrongType => f.write_str("token type is not at+jwt"),
            TokenError::WrongIssuer => f.write_str("wrong issuer"),
            TokenError::WrongAudience => f.write_str("token not issued for this resource"),
            TokenError::MissingClaim(claim) => write!(f, "token has no {claim} claim"),
            TokenError::Expired => f.write_str("token expired"),
            TokenError::NotYetValid => f.write_str("token not yet valid"),
            TokenError::Inactive => f.write_str("token not active"),
            TokenError::Unavailable => f.write_str("token could not be checked"),
            TokenError::InsufficientScope => f.write_str("insufficient scope"),
        }
    }
}

impl std::error::Error for TokenError {}

/// The HTTP answer to a refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The `WWW-Authenticate` value, if the answer carries one.
    pub www_authenticate: Option<String>,
}

impl TokenError {
    /// The answer to a request refused for this reason. `resource_metadata` is the metadata
    /// URL (`metadata_url`); `scopes` are the scopes the request needs
    /// (`AuthConfig::required_scopes`), sent as the challenge's `scope` unless empty.
    pub fn answer(&self, resource_metadata: &str, scopes: &[&str]) -> Answer {
        let (status, error) = match self {
            // RFC 6750 §3.1: "If the request lacks any authentication information (e.g., the
            // client was unaware that authentication is necessary or attempted using an
            // unsupported authentication method), the resource server SHOULD NOT include an
            // error code or other error information."
            TokenError::Missing | TokenError::BadHeader(BearerError::NotBearer) => (401, None),
            // RFC 6750 §3.1, invalid_request: "The resource server SHOULD respond with the
            // HTTP 400 (Bad Request) status code."
            TokenError::BadHeader(_) | TokenError::TokenInQuery => {
                (400, Some(ChallengeError::InvalidRequest))
            }
            // RFC 6750 §3.1, insufficient_scope: "The resource server SHOULD respond with the
            // HTTP 403 (Forbidden) status code and MAY include the "scope" attribute with the
            // scope necessary to access the protected resource."
            TokenError::InsufficientScope => (403, Some(ChallengeError::InsufficientScope)),
            // The token may be fine; the server could not tell. Not the client's fault, and a
            // challenge would send it to fetch a new token for nothing.
            TokenError::Unavailable => {
                return Answer {
                    status: 503,
                    www_authenticate: None,
                }
            }
            // MCP 2025-11-25: "Invalid or expired tokens MUST receive a HTTP 401 response."
            TokenError::Malformed
            | TokenError::UnknownKey
            | TokenError::KeyMismatch
            | TokenError::BadSignature
            | TokenError::AlgorithmNotAllowed
            | TokenError::WrongType
            | TokenError::WrongIssuer
            | TokenError::WrongAudience
            | TokenError::MissingClaim(_)
            | TokenError::Expired
            | TokenError::NotYetValid
            | TokenError::Inactive => (401, Some(ChallengeError::InvalidToken)),
        };
        let description = error.map(|_| self.to_string());
        let scope = scopes.join(" ");
        let challenge = Challenge {
            error,
            description: description.as_deref(),
            // MCP 2025-11-25: "MCP servers SHOULD include a scope parameter in the
            // WWW-Authenticate header".
            scope: (!scope.is_empty()).then_some(scope.as_str()),
            resource_metadata,
        };
        Answer {
            status,
            www_authenticate: Some(challenge.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRM: &str = "https://h/.well-known/oauth-protected-resource/mcp";

    fn answer(error: TokenError, scopes: &[&str]) -> (u16, Option<String>) {
        let answer = error.answer(PRM, scopes);
        (answer.status, answer.www_authenticate)
    }

    #[test]
    fn a_missing_token_is_challenged_without_an_error_code() {
        let expected = Some(format!(
            "Bearer resource_metadata=\"{PRM}\", scope=\"mcp:tools\""
        ));
        assert_eq!(
            answer(TokenError::Missing, &["mcp:tools"]),
            (401, expected.clone())
        );
        assert_eq!(
            answer(BearerError::NotBearer.into(), &["mcp:tools"]),
            (401, expected.clone())
        );
        assert_eq!(
            answer(
                TokenError::BadHeader(BearerError::NotBearer),
                &["mcp:tools"]
            ),
            (401, expected)
        );
        assert_eq!(
            answer(TokenError::Missing, &[]),
            (401, Some(format!("Bearer resource_metadata=\"{PRM}\"")))
        );
    }

    #[test]
    fn malformed_requests_are_400() {
        assert_eq!(
            answer(TokenError::TokenInQuery, &[]),
            (
                400,
                Some(format!(
                    "Bearer error=\"invalid_request\", error_description=\"access token in query \
                     string not accepted\", resource_metadata=\"{PRM}\""
                ))
            )
        );
        for error in [
            BearerError::MissingToken,
            BearerError::MalformedToken,
            BearerError::TooLong,
        ] {
            let (status, challenge) = answer(error.into(), &[]);
            assert_eq!(status, 400);
            assert!(challenge
                .unwrap_or_default()
                .starts_with("Bearer error=\"invalid_request\""));
        }
    }

    #[test]
    fn invalid_tokens_are_401_with_a_reason() {
        assert_eq!(
            answer(TokenError::Expired, &[]),
            (
                401,
                Some(format!(
                    "Bearer error=\"invalid_token\", error_description=\"token expired\", \
                     resource_metadata=\"{PRM}\""
                ))
            )
        );
        for error in [
            TokenError::Malformed,
            TokenError::UnknownKey,
            TokenError::KeyMismatch,
            TokenError::BadSignature,
            TokenError::AlgorithmNotAllowed,
            TokenError::WrongType,
            TokenError::WrongIssuer,
            TokenError::WrongAudience,
            TokenError::MissingClaim("exp"),
            TokenError::NotYetValid,
            TokenError::Inactive,
        ] {
            let (status, challenge) = answer(error, &["a"]);
            let challenge = challenge.unwrap_or_default();
            assert_eq!(status, 401, "{error:?}");
            assert_eq!(
                challenge,
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{error}\", \
                     resource_metadata=\"{PRM}\", scope=\"a\""
                )
            );
        }
    }

    #[test]
    fn insufficient_scope_is_403_with_the_scopes_needed() {
        assert_eq!(
            answer(TokenError::InsufficientScope, &["mcp", "mcp:write"]),
            (
                403,
                Some(format!(
                    "Bearer error=\"insufficient_scope\", error_description=\"insufficient scope\", \
                     resource_metadata=\"{PRM}\", scope=\"mcp mcp:write\""
                ))
            )
        );
    }

    #[test]
    fn an_unavailable_check_is_503_without_a_challenge() {
        assert_eq!(answer(TokenError::Unavailable, &["a"]), (503, None));
    }
}
