//! What the resource server trusts and requires: the issuer, the resource it is, the
//! algorithms it takes, and the scopes each operation needs.

use super::uri;
use super::Principal;
use crate::proto::authority::{Authority, Host};
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use std::fmt;

/// The algorithms accepted unless configured otherwise: every asymmetric one jsonwebtoken
/// verifies. Never an HMAC algorithm (its key would have to be shared with every resource
/// server, and a public key mistaken for one is the classic key-confusion forgery) and never
/// `none`, which jsonwebtoken cannot even parse.
pub const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

/// The scope that asks for a refresh token: a client's business with the authorization
/// server, never a resource's requirement.
const OFFLINE_ACCESS: &str = "offline_access";

/// The OAuth 2.1 resource server's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The authorization server's issuer identifier, compared exactly with `iss`.
    pub issuer: String,
    /// The canonical URI of this MCP server (RFC 8707), e.g. `https://127.0.0.1:8443/mcp`:
    /// the `resource` of the metadata document and the base of its URL.
    pub resource: String,
    /// The value tokens must carry in `aud`; the resource unless the authorization server
    /// maps resources to other audiences.
    pub audience: String,
    /// The issuer identifiers listed in the metadata document; the issuer by default.
    pub authorization_servers: Vec<String>,
    /// The signature algorithms accepted.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// The scopes every request needs (may be empty).
    pub scopes: Vec<String>,
    /// The scopes a tool needs besides the base ones, by tool name.
    pub tool_scopes: Vec<(String, Vec<String>)>,
    /// Scope hierarchy: a granted scope (the first) that implies narrower ones (the second),
    /// followed transitively.
    pub implied_scopes: Vec<(String, Vec<String>)>,
    /// Accept JWTs whatever their `typ` header (some identity providers send `JWT`).
    pub accept_any_typ: bool,
    /// The human-readable `resource_name` of the metadata document.
    pub resource_name: Option<String>,
}

/// One thing wrong with an [`AuthConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The issuer is empty.
    EmptyIssuer,
    /// The resource (or the introspection endpoint) is not an absolute `http`/`https` URI
    /// with a valid host, written in URI characters only.
    NotAbsoluteUri(String),
    /// The resource has a fragment.
    ResourceHasFragment,
    /// The resource has a query.
    ResourceHasQuery,
    /// The audience is empty.
    EmptyAudience,
    /// No authorization server is listed.
    NoAuthorizationServer,
    /// No algorithm is allowed.
    NoAlgorithm,
    /// An HMAC algorithm is allowed.
    SymmetricAlgorithm(Algorithm),
    /// A scope that is empty or holds a character RFC 6749 §3.3 does not allow.
    BadScope(String),
    /// `offline_access` among the required scopes.
    OfflineAccess,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::EmptyIssuer => f.write_str("the issuer is empty"),
            ConfigError::NotAbsoluteUri(uri) => {
                write!(f, "{uri:?} is not an absolute http(s) URI")
            }
            ConfigError::ResourceHasFragment => f.write_str("the resource URI has a fragment"),
            ConfigError::ResourceHasQuery => f.write_str("the resource URI has a query"),
            ConfigError::EmptyAudience => f.write_str("the audience is empty"),
            ConfigError::NoAuthorizationServer => f.write_str("no authorization server"),
            ConfigError::NoAlgorithm => f.write_str("no signature algorithm allowed"),
            ConfigError::SymmetricAlgorithm(alg) => {
                write!(
                    f,
                    "{alg:?} is symmetric; only asymmetric algorithms are allowed"
                )
            }
            ConfigError::BadScope(scope) => write!(f, "{scope:?} is not a valid scope"),
            ConfigError::OfflineAccess => {
                f.write_str("offline_access is not a scope a resource can require")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl AuthConfig {
    /// A configuration for tokens from `issuer` for the resource `resource`, with the
    /// defaults: audience = resource, authorization server = issuer, the
    /// [`DEFAULT_ALGORITHMS`], [`DEFAULT_LEEWAY_SECS`], no scopes, `typ` checked.
    pub fn new(issuer: impl Into<String>, resource: impl Into<String>) -> AuthConfig {
        let issuer = issuer.into();
        let resource = resource.into();
        AuthConfig {
            authorization_servers: vec![issuer.clone()],
            audience: resource.clone(),
            issuer,
            resource,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            scopes: Vec::new(),
            tool_scopes: Vec::new(),
            accept_any_typ: false,
            resource_name: None,
            implied_scopes: Vec::new(),
        }
    }

    /// Refuses a configuration the server could not honestly serve.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.issuer.is_empty() {
            return Err(ConfigError::EmptyIssuer);
        }
        let parts = absolute_http_uri(&self.resource)?;
        // RFC 8707 §2: the resource "MUST be an absolute URI, as specified by Section 4.3 of
        // [RFC3986]. The URI MUST NOT include a fragment component. It SHOULD NOT include a
        // query component".
        if parts.fragment.is_some() {
            return Err(ConfigError::ResourceHasFragment);
        }
        if parts.query.is_some() {
            return Err(ConfigError::ResourceHasQuery);
        }
        if self.audience.is_empty() {
            return Err(ConfigError::EmptyAudience);
        }
        // MCP 2025-11-25: the metadata document "MUST include the authorization_servers field
        // containing at least one authorization server".
        if self.authorization_servers.is_empty() {
            return Err(ConfigError::NoAuthorizationServer);
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithm);
        }
        if let Some(&alg) = self
            .algorithms
            .iter()
            .find(|alg| alg.family() == AlgorithmFamily::Hmac)
        {
            return Err(ConfigError::SymmetricAlgorithm(alg));
        }
        let tool_scopes = self.tool_scopes.iter().flat_map(|(_, scopes)| scopes);
        for scope in self.scopes.iter().chain(tool_scopes) {
            // RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`
            if scope.is_empty()
                || !scope
                    .bytes()
                    .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
            {
                return Err(ConfigError::BadScope(scope.clone()));
            }
            // MCP 2026-07-28: "MCP Servers (Protected Resources) SHOULD NOT include
            // offline_access in WWW-Authenticate scope or Protected Resource Metadata
            // scopes_supported".
            if scope == OFFLINE_ACCESS {
                return Err(ConfigError::OfflineAccess);
            }
        }
        Ok(())
    }

    /// The scopes a request needs: the base scopes, and for `tools/call` the called tool's
    /// too, each once. With no method known yet (the 401 before the body is read) pass `""`.
    ///
    /// For a 403 this is also the challenge's `scope`: MCP 2025-11-25, Scope Challenge
    /// Handling, "Recommended approach: Include both existing relevant scopes and newly
    /// required scopes to prevent clients from losing previously granted permissions".
    pub fn required_scopes(&self, method: &str, tool: Option<&str>) -> Vec<&str> {
        let tool_scopes = self
            .tool_scopes
            .iter()
            .filter(|(name, _)| method == "tools/call" && Some(name.as_str()) == tool)
            .flat_map(|(_, scopes)| scopes);
        let mut out: Vec<&str> = Vec::new();
        for scope in self.scopes.iter().chain(tool_scopes) {
            if !out.contains(&scope.as_str()) {
                out.push(scope);
            }
        }
        out
    }
}

impl AuthConfig {
    /// The scopes of `required` that `principal` was not granted, in order: empty when the
    /// request may go on, else the reason for a 403 step-up challenge. MCP 2026-07-28:
    /// "Servers MUST account for scope hierarchies, where a broader scope implies narrower
    /// ones, when deciding whether a token is sufficient for an operation" (the hierarchy is
    /// [`Self::implied_scopes`]).
    pub fn missing_scopes<'r>(&self, principal: &Principal, required: &[&'r str]) -> Vec<&'r str> {
        let mut granted: Vec<&str> = principal.scopes.iter().map(String::as_str).collect();
        let mut next = 0;
        while next < granted.len() {
            let scope = granted[next];
            for (broad, narrower) in &self.implied_scopes {
                if broad == scope {
                    for implied in narrower {
                        if !granted.contains(&implied.as_str()) {
                            granted.push(implied);
                        }
                    }
                }
            }
            next += 1;
        }
        (required.iter().copied())
            .filter(|scope| !granted.contains(scope))
            .collect()
    }
}

/// The parts of `text`, an absolute `http`/`https` URI with a valid host written in URI
/// characters only.
pub(crate) fn absolute_http_uri(text: &str) -> Result<uri::UriParts<'_>, ConfigError> {
    let refused = || ConfigError::NotAbsoluteUri(text.to_owned());
    let parts = uri::split(text).ok_or_else(refused)?;
    let http = ["http", "https"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(parts.scheme));
    let host = Authority::parse(parts.authority).map_err(|_| refused())?;
    let empty_host = matches!(host.host, Host::RegName(""));
    if !http || empty_host || !uri::is_uri_text(text) {
        return Err(refused());
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig::new("https://as.example", "https://127.0.0.1:8443/mcp")
    }

    #[test]
    fn new_fills_in_the_defaults() {
        let c = config();
        assert_eq!(c.audience, "https://127.0.0.1:8443/mcp");
        assert_eq!(c.authorization_servers, ["https://as.example"]);
        assert_eq!(c.algorithms, DEFAULT_ALGORITHMS);
        assert_eq!(c.leeway_secs, 30);
        assert!(!c.accept_any_typ);
        assert_eq!(c.validate(), Ok(()));
        assert!(c
            .algorithms
            .iter()
            .all(|a| a.family() != AlgorithmFamily::Hmac));
    }

    #[test]
    fn validate_refuses_nonsense() {
        type Breakage = fn(&mut AuthConfig);
        let cases: Vec<(Breakage, ConfigError)> = vec![
            (|c| c.issuer.clear(), ConfigError::EmptyIssuer),
            (
                |c| c.resource = "https://h/mcp#top".into(),
                ConfigError::ResourceHasFragment,
            ),
            (
                |c| c.resource = "https://h/mcp?x=1".into(),
                ConfigError::ResourceHasQuery,
            ),
            (
                |c| c.resource = "/mcp".into(),
                ConfigError::NotAbsoluteUri("/mcp".into()),
            ),
            (
                |c| c.resource = "urn:x:mcp".into(),
                ConfigError::NotAbsoluteUri("urn:x:mcp".into()),
            ),
            (
                |c| c.resource = "https:///mcp".into(),
                ConfigError::NotAbsoluteUri("https:///mcp".into()),
            ),
            (
                |c| c.resource = "https://u@h/mcp".into(),
                ConfigError::NotAbsoluteUri("https://u@h/mcp".into()),
            ),
            (
                |c| c.resource = "https://h/m\"cp".into(),
                ConfigError::NotAbsoluteUri("https://h/m\"cp".into()),
            ),
            (|c| c.audience.clear(), ConfigError::EmptyAudience),
            (
                |c| c.authorization_servers.clear(),
                ConfigError::NoAuthorizationServer,
            ),
            (|c| c.algorithms.clear(), ConfigError::NoAlgorithm),
            (
                |c| c.algorithms.push(Algorithm::HS256),
                ConfigError::SymmetricAlgorithm(Algorithm::HS256),
            ),
            (
                |c| c.scopes.push("a b".into()),
                ConfigError::BadScope("a b".into()),
            ),
            (
                |c| c.tool_scopes.push(("t".into(), vec!["q\"".into()])),
                ConfigError::BadScope("q\"".into()),
            ),
            (
                |c| c.scopes.push("offline_access".into()),
                ConfigError::OfflineAccess,
            ),
        ];
        for (break_it, expected) in cases {
            let mut c = config();
            break_it(&mut c);
            assert_eq!(c.validate(), Err(expected));
        }
    }

    #[test]
    fn resources_of_every_valid_form_pass() {
        for resource in [
            "https://mcp.example.com/mcp",
            "https://mcp.example.com",
            "https://mcp.example.com:8443",
            "HTTP://[::1]:8080/mcp",
            "https://mcp.example.com/",
        ] {
            let mut c = config();
            c.resource = resource.into();
            assert_eq!(c.validate(), Ok(()), "{resource}");
        }
    }

    #[test]
    fn required_scopes_are_the_base_and_the_tools() {
        let mut c = config();
        c.scopes = vec!["mcp".into(), "mcp:read".into()];
        c.tool_scopes = vec![
            ("write".into(), vec!["mcp:write".into(), "mcp".into()]),
            ("admin".into(), vec!["mcp:admin".into()]),
        ];
        assert_eq!(c.required_scopes("", None), ["mcp", "mcp:read"]);
        assert_eq!(c.required_scopes("tools/list", None), ["mcp", "mcp:read"]);
        assert_eq!(
            c.required_scopes("tools/call", Some("write")),
            ["mcp", "mcp:read", "mcp:write"]
        );
        assert_eq!(
            c.required_scopes("tools/call", Some("echo")),
            ["mcp", "mcp:read"]
        );
        // A tool's name only counts for a call of it.
        assert_eq!(
            c.required_scopes("prompts/get", Some("admin")),
            ["mcp", "mcp:read"]
        );
        c.scopes.clear();
        assert!(c.required_scopes("initialize", None).is_empty());
    }
}
