//! OAuth 2.0 bearer tokens on the wire (RFC 6750): the `Authorization: Bearer` credentials,
//! the `access_token` query parameter a request must not carry, and the `WWW-Authenticate`
//! challenge a refusal answers with. Codecs only; what a token means is `crate::auth`'s job.

use super::hex;
use std::fmt;

/// The longest token accepted. Real access tokens are a few hundred bytes to a few KiB (an
/// RS256 JWT with a dozen claims is about 1 KiB); the bound keeps a hostile header from
/// costing a signature check over megabytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// One broken rule of the `Authorization` header's bearer syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// Another authentication scheme (or none that parses): the request carries no bearer
    /// token, which RFC 6750 §3.1 treats as lacking authentication information.
    NotBearer,
    /// The `Bearer` scheme with no token after it.
    MissingToken,
    /// A token outside the `b64token` grammar, or something after it.
    MalformedToken,
    /// A token longer than [`MAX_TOKEN_BYTES`].
    TooLong,
}

impl fmt::Display for BearerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BearerError::NotBearer => "not a Bearer authorization",
            BearerError::MissingToken => "Bearer without a token",
            BearerError::MalformedToken => "malformed bearer token",
            BearerError::TooLong => "bearer token too long",
        })
    }
}

impl std::error::Error for BearerError {}

/// The token of an `Authorization` header value (RFC 6750 §2.1).
///
/// `credentials = "Bearer" 1*SP b64token`; the scheme is matched case-insensitively, and the
/// optional whitespace around a field value (RFC 9110 §5.5) is not part of it.
pub fn bearer_token(authorization_header_value: &[u8]) -> Result<&str, BearerError> {
    let value = trim_ows(authorization_header_value);
    let scheme_len = value.iter().take_while(|&&b| is_tchar(b)).count();
    let (scheme, rest) = value.split_at(scheme_len);
    // RFC 9110 §11.1: "It uses a case-insensitive token as a means to identify the
    // authentication scheme".
    if !scheme.eq_ignore_ascii_case(b"Bearer") {
        return Err(BearerError::NotBearer);
    }
    if rest.is_empty() {
        return Err(BearerError::MissingToken);
    }
    let token_start = rest.iter().take_while(|&&b| b == b' ').count();
    if token_start == 0 {
        // `Bearer\tabc`, `Bearer,abc`: the scheme must be followed by SP.
        return Err(BearerError::MalformedToken);
    }
    let token = &rest[token_start..];
    // The trailing OWS is gone, so only a token can be left here.
    if token.len() > MAX_TOKEN_BYTES {
        return Err(BearerError::TooLong);
    }
    // RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
    let body = token.iter().take_while(|&&b| is_b64token_char(b)).count();
    if body == 0 || !token[body..].iter().all(|&b| b == b'=') {
        return Err(BearerError::MalformedToken);
    }
    std::str::from_utf8(token).map_err(|_| BearerError::MalformedToken)
}

/// Whether the request-target's query has an `access_token` parameter (RFC 6750 §2.3), with or
/// without a value, percent-encoded or not.
///
/// MCP 2025-11-25, Access Token Usage: "Access tokens MUST NOT be included in the URI query
/// string". The transport refuses such a request whatever else it carries.
pub fn query_carries_token(request_target: &str) -> bool {
    let Some((_, query)) = request_target.split_once('?') else {
        return false;
    };
    query.split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        percent_decoded_eq(name.as_bytes(), b"access_token")
    })
}

/// Whether `encoded`, percent-decoded (RFC 3986 §2.1, hex digits in either case), is `expected`.
/// A broken escape never matches.
fn percent_decoded_eq(encoded: &[u8], expected: &[u8]) -> bool {
    let mut at = 0;
    let mut matched = 0;
    while at < encoded.len() {
        let byte = match encoded[at] {
            b'%' => {
                let Some(value) = encoded.get(at + 1..at + 3).and_then(hex::pair) else {
                    return false;
                };
                at += 3;
                value
            }
            b => {
                at += 1;
                b
            }
        };
        if expected.get(matched) != Some(&byte) {
            return false;
        }
        matched += 1;
    }
    matched == expected.len()
}

/// The error codes of RFC 6750 §3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeError {
    /// `invalid_request`: "missing a required parameter, includes an unsupported parameter or
    /// parameter value, repeats the same parameter, uses more than one method for including an
    /// access token, or is otherwise malformed" (HTTP 400).
    InvalidRequest,
    /// `invalid_token`: "expired, revoked, malformed, or invalid for other reasons" (HTTP 401).
    InvalidToken,
    /// `insufficient_scope`: "The request requires higher privileges than provided by the
    /// access token" (HTTP 403).
    InsufficientScope,
}

impl ChallengeError {
    /// The code as it appears in the `error` parameter.
    pub fn code(self) -> &'static str {
        match self {
            ChallengeError::InvalidRequest => "invalid_request",
            ChallengeError::InvalidToken => "invalid_token",
            ChallengeError::InsufficientScope => "insufficient_scope",
        }
    }
}

/// A `Bearer` challenge: the value of a `WWW-Authenticate` header (RFC 6750 §3, with the
/// `resource_metadata` parameter of RFC 9728 §5.1). `Display` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// The error code; `None` when the request carried no credentials at all.
    pub error: Option<ChallengeError>,
    /// A short human-readable `error_description`.
    pub description: Option<&'a str>,
    /// The space-separated scopes the request needs.
    pub scope: Option<&'a str>,
    /// The URL of the protected resource metadata document.
    pub resource_metadata: &'a str,
}

impl fmt::Display for Challenge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Order as in the examples of MCP 2025-11-25 and RFC 6750 §3; each parameter once
        // (RFC 6750 §3: "MUST NOT appear more than once").
        f.write_str("Bearer ")?;
        let mut params = Vec::with_capacity(4);
        if let Some(error) = self.error {
            params.push(("error", error.code()));
        }
        if let Some(description) = self.description {
            params.push(("error_description", description));
        }
        params.push(("resource_metadata", self.resource_metadata));
        if let Some(scope) = self.scope {
            params.push(("scope", scope));
        }
        for (at, (name, value)) in params.into_iter().enumerate() {
            if at > 0 {
                f.write_str(", ")?;
            }
            write_quoted(f, name, value)?;
        }
        Ok(())
    }
}

/// Writes `name="value"`, leaving out every character a value may not hold.
///
/// RFC 6750 §3: the values of "error" and "error_description" "MUST NOT include characters
/// outside the set %x20-21 / %x23-5B / %x5D-7E", and "scope" tokens are drawn from
/// %x21 / %x23-5B / %x5D-7E, separated by spaces. A URL has no use for `"`, `\` or controls
/// either, so one rule serves every parameter: no quoted-pair escapes are ever written, and a
/// value can neither end its quoted-string early nor break the header line.
fn write_quoted(f: &mut fmt::Formatter<'_>, name: &str, value: &str) -> fmt::Result {
    f.write_str(name)?;
    f.write_str("=\"")?;
    let mut rest = value;
    while !rest.is_empty() {
        let keep = rest.bytes().take_while(|&b| is_quotable(b)).count();
        f.write_str(&rest[..keep])?;
        // Skip one character (a UTF-8 sequence is never quotable), so slicing stays on a
        // character boundary.
        let skip = rest[keep..].chars().next().map_or(0, char::len_utf8);
        rest = &rest[keep + skip..];
    }
    f.write_str("\"")
}

/// `%x20-21 / %x23-5B / %x5D-7E`: printable ASCII without `"` and `\`.
fn is_quotable(b: u8) -> bool {
    matches!(b, 0x20..=0x7E) && b != b'"' && b != b'\\'
}

/// RFC 6750 §2.1: the characters of `b64token` before its padding.
fn is_b64token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// RFC 9110 §5.6.2: `tchar`, the characters of a token such as an auth-scheme.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// The value without leading and trailing `OWS` (SP / HTAB).
fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |at| at + 1);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `(header value, expected)` rows through [`bearer_token`].
    macro_rules! bearer_cases {
        ($($value:expr => $expected:expr),* $(,)?) => {
            $(assert_eq!(bearer_token($value), $expected, "{:?}", String::from_utf8_lossy($value));)*
        };
    }

    #[test]
    fn bearer_tokens_that_parse() {
        bearer_cases! {
            b"Bearer abc" => Ok("abc"),
            b"bearer abc" => Ok("abc"),
            b"BEARER abc" => Ok("abc"),
            b"Bearer  abc" => Ok("abc"),
            b"  Bearer abc \t" => Ok("abc"),
            b"Bearer mF_9.B5f-4.1JqM" => Ok("mF_9.B5f-4.1JqM"),
            b"Bearer a+b/c~d==" => Ok("a+b/c~d=="),
            b"Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln" => Ok("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
        }
    }

    #[test]
    fn bearer_tokens_that_do_not() {
        bearer_cases! {
            b"" => Err(BearerError::NotBearer),
            b"Basic dXNlcjpwYXNz" => Err(BearerError::NotBearer),
            b"Bearerabc" => Err(BearerError::NotBearer),
            b"DPoP abc" => Err(BearerError::NotBearer),
            b"Bearer" => Err(BearerError::MissingToken),
            b"Bearer   " => Err(BearerError::MissingToken),
            b"Bearer\tabc" => Err(BearerError::MalformedToken),
            b"Bearer,abc" => Err(BearerError::MalformedToken),
            b"Bearer abc def" => Err(BearerError::MalformedToken),
            b"Bearer abc\"" => Err(BearerError::MalformedToken),
            b"Bearer a=b" => Err(BearerError::MalformedToken),
            b"Bearer ==" => Err(BearerError::MalformedToken),
            b"Bearer abc, Basic x" => Err(BearerError::MalformedToken),
            b"Bearer \xc3\xa4bc" => Err(BearerError::MalformedToken),
            b"Bearer abc\r\nX: y" => Err(BearerError::MalformedToken),
        }
    }

    #[test]
    fn token_length_is_bounded() {
        let at_limit = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES));
        assert_eq!(
            bearer_token(at_limit.as_bytes()).map(str::len),
            Ok(MAX_TOKEN_BYTES)
        );
        let over = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(bearer_token(over.as_bytes()), Err(BearerError::TooLong));
    }

    #[test]
    fn query_tokens_are_seen_in_any_spelling() {
        for target in [
            "/mcp?access_token=abc",
            "/mcp?a=1&access_token=abc&b=2",
            "/mcp?access_token",
            "/mcp?access_token=",
            "/mcp?access%5Ftoken=abc",
            "/mcp?%61ccess_token=abc",
            "/mcp?access%5ftoken=abc",
            "http://h/mcp?x&access_token=1",
        ] {
            assert!(query_carries_token(target), "{target}");
        }
        for target in [
            "/mcp",
            "/mcp?",
            "/access_token",
            "/messages?sessionId=access_token",
            "/mcp?access_tokens=abc",
            "/mcp?xaccess_token=abc",
            "/mcp?access_token%=abc",
            "/mcp?access_toke%6=abc",
            "/mcp?ACCESS_TOKEN=abc",
        ] {
            assert!(!query_carries_token(target), "{target}");
        }
    }

    const PRM: &str = "https://h/.well-known/oauth-protected-resource/mcp";

    #[test]
    fn challenges_as_the_spec_examples_write_them() {
        let missing = Challenge {
            error: None,
            description: None,
            scope: Some("mcp:tools"),
            resource_metadata: PRM,
        };
        assert_eq!(
            missing.to_string(),
            "Bearer resource_metadata=\"https://h/.well-known/oauth-protected-resource/mcp\", \
             scope=\"mcp:tools\""
        );
        let expired = Challenge {
            error: Some(ChallengeError::InvalidToken),
            description: Some("token expired"),
            scope: None,
            resource_metadata: PRM,
        };
        assert_eq!(
            expired.to_string(),
            "Bearer error=\"invalid_token\", error_description=\"token expired\", \
             resource_metadata=\"https://h/.well-known/oauth-protected-resource/mcp\""
        );
        let step_up = Challenge {
            error: Some(ChallengeError::InsufficientScope),
            description: Some("insufficient scope"),
            scope: Some("files:read files:write"),
            resource_metadata: PRM,
        };
        assert_eq!(
            step_up.to_string(),
            "Bearer error=\"insufficient_scope\", error_description=\"insufficient scope\", \
             resource_metadata=\"https://h/.well-known/oauth-protected-resource/mcp\", \
             scope=\"files:read files:write\""
        );
        let bad_request = Challenge {
            error: Some(ChallengeError::InvalidRequest),
            description: None,
            scope: None,
            resource_metadata: PRM,
        };
        assert_eq!(
            bad_request.to_string(),
            "Bearer error=\"invalid_request\", \
             resource_metadata=\"https://h/.well-known/oauth-protected-resource/mcp\""
        );
    }

    #[test]
    fn values_lose_the_characters_they_may_not_hold() {
        let challenge = Challenge {
            error: Some(ChallengeError::InvalidToken),
            description: Some("a \"quoted\" \\ word\r\nX-Injected: 1\u{7f}é"),
            scope: Some("a\"b c\\d"),
            resource_metadata: "https://h/\"x\"",
        };
        assert_eq!(
            challenge.to_string(),
            "Bearer error=\"invalid_token\", error_description=\"a quoted  wordX-Injected: 1\", \
             resource_metadata=\"https://h/x\", scope=\"ab cd\""
        );
    }

    /// The parameters of a challenge this module wrote, with the invariants checked: one
    /// `Bearer` scheme, printable ASCII only, every value quoted and free of `"` and `\`.
    fn parameters(value: &str) -> Vec<(String, String)> {
        assert!(
            value.bytes().all(|b| (0x20..=0x7E).contains(&b)),
            "{value:?}"
        );
        let mut rest = value.strip_prefix("Bearer ").expect("Bearer scheme");
        let mut out = Vec::new();
        loop {
            let (name, after) = rest.split_once("=\"").expect("name=\"");
            let (inner, after) = after.split_once('"').expect("closing quote");
            assert!(!inner.contains('\\'), "{value:?}");
            out.push((name.to_owned(), inner.to_owned()));
            if after.is_empty() {
                return out;
            }
            rest = after.strip_prefix(", ").expect("separator");
        }
    }

    proptest! {
        #[test]
        fn bearer_parsing_never_panics_and_returns_a_clean_token(
            prefix in prop_oneof![Just(&b""[..]), Just(&b"Bearer "[..]), Just(&b"bEaReR  "[..])],
            rest in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let value = [prefix, &rest].concat();
            if let Ok(token) = bearer_token(&value) {
                prop_assert!(!token.is_empty() && token.len() <= MAX_TOKEN_BYTES);
                prop_assert!(token.bytes().all(|b| is_b64token_char(b) || b == b'='));
            }
        }

        #[test]
        fn a_bearer_header_round_trips(
            token in "[A-Za-z0-9._~+/-]{1,40}={0,2}",
            scheme in "(?i)bearer",
            spaces in 1usize..4,
        ) {
            let header = format!("{scheme}{}{token}", " ".repeat(spaces));
            prop_assert_eq!(bearer_token(header.as_bytes()), Ok(token.as_str()));
        }

        #[test]
        fn challenge_values_never_hold_a_raw_quote(
            description in proptest::option::of(any::<String>()),
            scope in proptest::option::of(any::<String>()),
            resource_metadata in any::<String>(),
            error in proptest::option::of(prop_oneof![
                Just(ChallengeError::InvalidRequest),
                Just(ChallengeError::InvalidToken),
                Just(ChallengeError::InsufficientScope),
            ]),
        ) {
            let challenge = Challenge {
                error,
                description: description.as_deref(),
                scope: scope.as_deref(),
                resource_metadata: &resource_metadata,
            };
            let params = parameters(&challenge.to_string());
            let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
            let expected: Vec<&str> = [
                error.map(|_| "error"),
                description.as_ref().map(|_| "error_description"),
                Some("resource_metadata"),
                scope.as_ref().map(|_| "scope"),
            ]
            .into_iter()
            .flatten()
            .collect();
            prop_assert_eq!(names, expected);
        }

        #[test]
        fn query_detection_never_panics(target in any::<String>()) {
            let _ = query_carries_token(&target);
        }
    }
}
