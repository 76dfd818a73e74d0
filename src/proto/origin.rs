//! Origin and Host policy: the guard against browsers being used to reach a
//! local server (cross-site requests and DNS rebinding).

use crate::proto::authority::Authority;
use crate::proto::http1::RequestHead;

/// Which browser origins may talk to the server, and whether Host must be local.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    allowed: Vec<String>,
    require_local_host: bool,
}

/// Why a request was refused by the policy; both are answered with 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyError {
    /// An `Origin` header outside the allow list.
    OriginNotAllowed,
    /// A non-local `Host` on a loopback-bound server (DNS rebinding).
    HostNotLocal,
}

impl PolicyError {
    /// Short text for the response body and logs.
    pub fn message(self) -> &'static str {
        match self {
            PolicyError::OriginNotAllowed => "origin not allowed",
            PolicyError::HostNotLocal => "host not allowed on a loopback-bound server",
        }
    }
}

impl OriginPolicy {
    /// `allowed` empty means: localhost origins only. `loopback_bind` turns on the Host check.
    pub fn new(allowed: &[String], loopback_bind: bool) -> Self {
        OriginPolicy {
            allowed: allowed
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            require_local_host: loopback_bind,
        }
    }

    /// Checks a request head against the policy.
    pub fn check(&self, head: &RequestHead) -> Result<(), PolicyError> {
        // MCP 2025-11-25, Streamable HTTP, security warning: "Servers MUST validate the Origin
        // header on all incoming connections to prevent DNS rebinding attacks. If the Origin
        // header is present and invalid, servers MUST respond with HTTP 403 Forbidden."
        if let Some(origin) = head.header("origin") {
            let origin = std::str::from_utf8(origin).map_err(|_| PolicyError::OriginNotAllowed)?;
            if !self.origin_allowed(origin.trim()) {
                return Err(PolicyError::OriginNotAllowed);
            }
        }
        // The authority the request is for: the absolute-form target's, else Host's (parsing
        // the head already refused an invalid one; a failed parse here still counts as foreign).
        if self.require_local_host {
            if let Some(authority) = head.authority() {
                if !is_loopback(authority) {
                    return Err(PolicyError::HostNotLocal);
                }
            }
        }
        Ok(())
    }

    /// The request's `Origin`, when it has one the policy allows: the origin a browser may
    /// read the response from (CORS).
    pub fn allowed_origin<'h>(&self, head: &'h RequestHead) -> Option<&'h str> {
        let origin = head.header_str("origin")?.trim();
        self.origin_allowed(origin).then_some(origin)
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        if self.allowed.is_empty() {
            let Some(rest) = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
            else {
                return false;
            };
            // RFC 6454 §7.1: `serialized-origin = scheme "://" host [ ":" port ]`; anything
            // else after the scheme (userinfo, a path, a bad port) is not a local origin.
            return is_loopback(rest);
        }
        self.allowed.iter().any(|a| a == "*" || *a == origin)
    }
}

/// Whether `authority` is a valid `host [":" port]` naming a loopback host.
fn is_loopback(authority: &str) -> bool {
    Authority::parse(authority).is_ok_and(|a| a.host.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http1::Limits;

    fn head(extra: &str) -> RequestHead {
        let text = format!("GET / HTTP/1.1\r\n{extra}\r\n");
        RequestHead::parse(text.as_bytes(), &Limits::default())
            .unwrap()
            .complete()
            .unwrap()
            .0
    }

    #[test]
    fn default_policy_allows_local_origins_and_no_origin() {
        let p = OriginPolicy::new(&[], true);
        assert_eq!(p.check(&head("Host: 127.0.0.1:8080\r\n")), Ok(()));
        for origin in [
            "http://localhost:3000",
            "https://127.0.0.1",
            "http://[::1]:9",
        ] {
            let h = head(&format!("Host: localhost\r\nOrigin: {origin}\r\n"));
            assert_eq!(p.check(&h), Ok(()), "{origin}");
        }
        let evil = head("Host: localhost\r\nOrigin: https://evil.example\r\n");
        assert_eq!(p.check(&evil), Err(PolicyError::OriginNotAllowed));
        let null = head("Host: localhost\r\nOrigin: null\r\n");
        assert_eq!(p.check(&null), Err(PolicyError::OriginNotAllowed));
    }

    #[test]
    fn rebinding_host_refused_on_loopback_only() {
        let h = head("Host: attacker.example:8080\r\n");
        assert_eq!(
            OriginPolicy::new(&[], true).check(&h),
            Err(PolicyError::HostNotLocal)
        );
        assert_eq!(OriginPolicy::new(&[], false).check(&h), Ok(()));
    }

    #[test]
    fn explicit_allow_list() {
        let p = OriginPolicy::new(&["https://app.example/".into()], false);
        let ok = head("Host: x\r\nOrigin: https://APP.example\r\n");
        assert_eq!(p.check(&ok), Ok(()));
        let local = head("Host: x\r\nOrigin: http://localhost\r\n");
        assert_eq!(p.check(&local), Err(PolicyError::OriginNotAllowed));
    }
}
