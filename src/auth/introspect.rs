//! Token introspection (RFC 7662), the client side: the request bytes to send to the
//! authorization server, and what its answer means for a request.

use super::claims::{Claims, Source};
use super::config::absolute_http_uri;
use super::{AuthConfig, ConfigError, Principal, TokenError};
use crate::proto::base64;
use crate::proto::http1::write_request_head;
use std::fmt;

/// How long an answer is trusted when the token's `exp` does not end it sooner, in seconds.
pub const DEFAULT_CACHE_SECS: u64 = 60;

/// The largest introspection response read; bigger means the endpoint is not one.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Where an `http`/`https` URL points: what the resource server needs to send a request
/// there (the introspection endpoint, the issuer's key set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Whether the scheme is `https`.
    pub tls: bool,
    /// `host [":" port]`, for connecting and for the `Host` header.
    pub authority: String,
    /// The request-target: path (at least `/`) and query.
    pub target: String,
}

impl HttpUrl {
    /// The parts of `url`, an absolute `http`/`https` URL without a fragment.
    pub fn parse(url: &str) -> Result<HttpUrl, ConfigError> {
        let parts = absolute_http_uri(url)?;
        if parts.fragment.is_some() {
            return Err(ConfigError::NotAbsoluteUri(url.to_owned()));
        }
        let path = if parts.path.is_empty() {
            "/"
        } else {
            parts.path
        };
        let target = match parts.query {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        Ok(HttpUrl {
            tls: parts.scheme.eq_ignore_ascii_case("https"),
            authority: parts.authority.to_owned(),
            target,
        })
    }
}

/// An introspection endpoint and the credentials the resource server presents to it.
#[derive(Clone, PartialEq, Eq)]
pub struct Introspection {
    /// Where the endpoint is (`https`: the caller wraps the connection in TLS).
    pub url: HttpUrl,
    /// The resource server's client identifier at the authorization server.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// The longest an answer is trusted, in seconds.
    pub cache_secs: u64,
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("Introspection")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("cache_secs", &self.cache_secs)
            .finish_non_exhaustive()
    }
}

impl Introspection {
    /// The endpoint at `url` (an absolute `http`/`https` URL without a fragment), with
    /// [`DEFAULT_CACHE_SECS`].
    pub fn new(
        url: &str,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Introspection, ConfigError> {
        Ok(Introspection {
            url: HttpUrl::parse(url)?,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            cache_secs: DEFAULT_CACHE_SECS,
        })
    }

    /// The whole HTTP/1.1 request asking about `token`.
    pub fn request(&self, token: &str) -> Vec<u8> {
        // RFC 7662 §2.1: "The protected resource calls the introspection endpoint using an
        // HTTP POST [RFC7231] request with parameters sent as "application/x-www-form-urlencoded"
        // data", "token REQUIRED", "token_type_hint OPTIONAL".
        let mut body = String::from("token=");
        push_form_encoded(&mut body, token);
        body.push_str("&token_type_hint=access_token");
        // RFC 7662 §2.1: "the endpoint MUST also require some form of authorization to access
        // this endpoint, such as client authentication"; RFC 6749 §2.3.1: "The client
        // identifier is encoded using the "application/x-www-form-urlencoded" encoding
        // algorithm per Appendix B, and the encoded value is used as the username; the client
        // password is encoded using the same algorithm and used as the password."
        let mut credentials = String::new();
        push_form_encoded(&mut credentials, &self.client_id);
        credentials.push(':');
        push_form_encoded(&mut credentials, &self.client_secret);
        let authorization = format!("Basic {}", base64::encode(credentials.as_bytes()));
        let mut out = Vec::with_capacity(256 + body.len());
        write_request_head(
            &mut out,
            "POST",
            &self.url.target,
            &self.url.authority,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("accept", "application/json"),
                ("authorization", &authorization),
            ],
            Some(body.len()),
        );
        out.extend_from_slice(body.as_bytes());
        out
    }

    /// The principal an introspection response describes, and until when (unix seconds) the
    /// answer may be cached: the token's `exp`, but no more than `cache_secs` from `now`.
    pub fn principal(
        &self,
        response_json: &[u8],
        config: &AuthConfig,
        now: u64,
    ) -> Result<(Principal, u64), TokenError> {
        if response_json.len() > MAX_RESPONSE_BYTES {
            return Err(TokenError::Unavailable);
        }
        let claims: Claims =
            serde_json::from_slice(response_json).map_err(|_| TokenError::Unavailable)?;
        // RFC 7662 §2.2: "active REQUIRED. Boolean indicator of whether or not the presented
        // token is currently active." Without it, this is no introspection response.
        match claims.active {
            Some(true) => {}
            Some(false) => return Err(TokenError::Inactive),
            None => return Err(TokenError::Unavailable),
        }
        let principal = claims.principal(Source::Introspection, config, now)?;
        // RFC 7662 §4: "One way to mitigate this problem is for consumers to never cache the
        // value beyond the expiration time of the token, which would have been returned in the
        // "exp" parameter of the introspection response."
        let cache_until = principal
            .expires_at
            .min(now.saturating_add(self.cache_secs));
        Ok((principal, cache_until))
    }
}

/// Appends `text` `application/x-www-form-urlencoded`: unreserved characters as they are,
/// every other byte as `%XX` (space too, which every decoder reads back as a space).
fn push_form_encoded(out: &mut String, text: &str) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'*') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}
