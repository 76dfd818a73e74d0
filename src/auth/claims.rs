//! The claims of an access token, wherever they came from (a JWT's payload or an
//! introspection response, which share their names: RFC 7662 §2.2 takes them from RFC 7519),
//! and the rules both must pass.

use super::{uri, AuthConfig, Principal, TokenError};
use serde::Deserialize;
use serde_json::Number;
use std::collections::BTreeSet;

/// A string, or an array of strings (`aud`, `scp`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    /// A single value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values.
    fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many) = match self {
            OneOrMany::One(value) => (Some(value.as_str()), &[][..]),
            OneOrMany::Many(values) => (None, values.as_slice()),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }
}

/// The claims the resource server reads; any other member is ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Claims {
    /// Introspection only (RFC 7662 §2.2): whether the token is active.
    pub active: Option<bool>,
    /// The issuer.
    pub iss: Option<String>,
    /// The subject.
    pub sub: Option<String>,
    /// The audience(s).
    pub aud: Option<OneOrMany>,
    /// Expiry, NumericDate.
    pub exp: Option<Number>,
    /// Not-before, NumericDate.
    pub nbf: Option<Number>,
    /// The client (RFC 9068 §2.2, RFC 7662 §2.2).
    pub client_id: Option<String>,
    /// The authorized party (OpenID Connect), which some providers send instead of
    /// `client_id`.
    pub azp: Option<String>,
    /// Space-delimited scopes (RFC 9068 §2.2.3, RFC 7662 §2.2).
    pub scope: Option<String>,
    /// Scopes as an array or a string, as some providers spell it.
    pub scp: Option<OneOrMany>,
}

/// Where claims came from, for the rules that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A signed JWT (RFC 9068), which must carry `iss` and `exp`.
    Jwt,
    /// An introspection response (RFC 7662), where both are optional.
    Introspection,
}

impl Claims {
    /// The principal these claims describe, if they pass the configured rules at `now`.
    pub fn principal(
        self,
        source: Source,
        config: &AuthConfig,
        now: u64,
    ) -> Result<Principal, TokenError> {
        // RFC 9068 §4: "The issuer identifier for the authorization server (which is
        // typically obtained during discovery) MUST exactly match the value of the "iss"
        // claim." An introspection response may leave it out: the endpoint is the issuer's.
        let issuer = match (self.iss, source) {
            (Some(iss), _) if iss == config.issuer => iss,
            (None, Source::Introspection) => config.issuer.clone(),
            _ => return Err(TokenError::WrongIssuer),
        };
        // RFC 9068 §4: "The resource server MUST validate that the "aud" claim contains a
        // resource indicator value corresponding to an identifier the resource server expects
        // for itself." RFC 8707 §2: "the top-level member of the same name provides the
        // audience restriction information in a Token Introspection [RFC7662] response".
        let audience_ok = self
            .aud
            .as_ref()
            .is_some_and(|aud| aud.iter().any(|a| uri::same_resource(a, &config.audience)));
        if !audience_ok {
            return Err(TokenError::WrongAudience);
        }
        let expires_at = match (self.exp.as_ref().map(numeric_date), source) {
            (Some(exp), _) => exp?,
            (None, Source::Introspection) => u64::MAX,
            (None, Source::Jwt) => return Err(TokenError::MissingClaim("exp")),
        };
        // RFC 7519 §4.1.4: "the current date/time MUST be before the expiration date/time
        // listed in the "exp" claim. Implementers MAY provide for some small leeway, usually no
        // more than a few minutes, to account for clock skew."
        if now >= expires_at.saturating_add(config.leeway_secs) {
            return Err(TokenError::Expired);
        }
        // RFC 7519 §4.1.5: "the current date/time MUST be after or equal to the not-before
        // date/time listed in the "nbf" claim."
        if let Some(nbf) = self.nbf.as_ref().map(numeric_date).transpose()? {
            if now.saturating_add(config.leeway_secs) < nbf {
                return Err(TokenError::NotYetValid);
            }
        }
        let client_id = self.client_id.or(self.azp);
        // RFC 9068 §2.2: "In cases of access tokens obtained through grants where no resource
        // owner is involved, such as the client credentials grant, the value of "sub" SHOULD
        // correspond to an identifier the authorization server uses to indicate the client
        // application." An introspection response may omit `sub` then; the client stands in.
        let subject = self
            .sub
            .or_else(|| client_id.clone())
            .ok_or(TokenError::MissingClaim("sub"))?;
        let scopes: BTreeSet<String> = match (&self.scope, &self.scp) {
            (Some(scope), _) => scope.split_ascii_whitespace().map(str::to_owned).collect(),
            (None, Some(scp)) => scp
                .iter()
                .flat_map(str::split_ascii_whitespace)
                .map(str::to_owned)
                .collect(),
            (None, None) => BTreeSet::new(),
        };
        Principal::new(issuer, subject, client_id, scopes, expires_at)
    }
}

/// A NumericDate (RFC 7519 §2: "the number of seconds from 1970-01-01T00:00:00Z UTC ...
/// Non-integer values can be represented") in whole seconds, rounded down.
fn numeric_date(value: &Number) -> Result<u64, TokenError> {
    if let Some(seconds) = value.as_u64() {
        return Ok(seconds);
    }
    match value.as_f64() {
        // `as` saturates at u64::MAX for the huge ones.
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(seconds.floor() as u64),
        _ => Err(TokenError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_dates_in_any_json_number_form() {
        let parse =
            |text: &str| numeric_date(&serde_json::from_str::<Number>(text).expect("number"));
        assert_eq!(parse("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse("1700000000.9"), Ok(1_700_000_000));
        assert_eq!(parse("1e30"), Ok(u64::MAX));
        assert_eq!(parse("-1"), Err(TokenError::Malformed));
    }
}
