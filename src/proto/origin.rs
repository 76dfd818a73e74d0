//! Origin and Host policy: the guard against browsers being used to reach a
//! local server (cross-site requests and DNS rebinding).

use crate::proto::authority::Authority;
use crate::proto::http1::RequestHead;

/// Which browser origins may talk to the server, and which hosts it answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    allowed: Vec<String>,
    /// Hosts (`name`, or `name:port`) requests may name besides local ones, lowercase.
    hosts: Vec<String>,
    require_local_host: bool,
}

/// Why a request was refused by the policy; both are answered with 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyError {
    /// An `Origin` header outside the allow list.
    OriginNotAllowed,
    /// A `Host` the server does not answer for: not local on a loopback bind (DNS
    /// rebinding), or not in the `--allow-host` list.
    HostNotAllowed,
}

impl PolicyError {
    /// Short text for the response body and logs.
    pub fn message(self) -> &'static str {
        match self {
            PolicyError::OriginNotAllowed => "origin not allowed",
            PolicyError::HostNotAllowed => "host not allowed",
        }
    }
}

impl OriginPolicy {
    /// `allowed` empty means: localhost origins only. `hosts` lists the hosts requests may
    /// name; `loopback_bind` adds the local ones. With neither, any host passes.
    pub fn new(allowed: &[String], hosts: &[String], loopback_bind: bool) -> Self {
        OriginPolicy {
            allowed: allowed
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            hosts: hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
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
        // On a loopback bind that is the DNS-rebinding guard; on any bind, `--allow-host`
        // names the hosts this server answers for.
        if self.require_local_host || !self.hosts.is_empty() {
            if let Some(authority) = head.authority() {
                let local = self.require_local_host && is_loopback(authority);
                if !local && !self.host_listed(authority) {
                    return Err(PolicyError::HostNotAllowed);
                }
            }
        }
        Ok(())
    }

    /// Whether `authority` names a listed host: the same `name:port`, or the same name when
    /// the entry has no port (compared without case).
    fn host_listed(&self, authority: &str) -> bool {
        let authority = authority.to_ascii_lowercase();
        let name = match authority.strip_prefix('[') {
            Some(_) => authority
                .find(']')
                .map_or(authority.as_str(), |end| &authority[..=end]),
            None => authority.split(':').next().unwrap_or_default(),
        };
        self.hosts.iter().any(|h| *h == authority || *h == name)
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
        let p = OriginPolicy::new(&[], &[], true);
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
            OriginPolicy::new(&[], &[], true).check(&h),
            Err(PolicyError::HostNotAllowed)
        );
        assert_eq!(OriginPolicy::new(&[], &[], false).check(&h), Ok(()));
    }

    #[test]
    fn allowed_hosts_replace_the_loopback_check_on_a_public_bind() {
        let hosts = ["mcp.example.com".to_owned(), "10.0.0.5:8443".to_owned()];
        let public = OriginPolicy::new(&[], &hosts, false);
        for (host, expected) in [
            ("MCP.example.com", Ok(())),
            ("mcp.example.com:443", Ok(())),
            ("10.0.0.5:8443", Ok(())),
            ("10.0.0.5:9000", Err(PolicyError::HostNotAllowed)),
            ("10.0.0.5", Err(PolicyError::HostNotAllowed)),
            ("attacker.example", Err(PolicyError::HostNotAllowed)),
            ("localhost", Err(PolicyError::HostNotAllowed)),
        ] {
            let h = head(&format!("Host: {host}\r\n"));
            assert_eq!(public.check(&h), expected, "{host}");
        }
        // On a loopback bind the listed hosts come on top of the local ones.
        let local = OriginPolicy::new(&[], &hosts, true);
        assert_eq!(local.check(&head("Host: localhost:8080\r\n")), Ok(()));
        assert_eq!(local.check(&head("Host: mcp.example.com\r\n")), Ok(()));
        let v6 = OriginPolicy::new(&[], &["[2001:db8::1]".to_owned()], false);
        assert_eq!(v6.check(&head("Host: [2001:db8::1]:8080\r\n")), Ok(()));
    }

    #[test]
    fn explicit_allow_list() {
        let p = OriginPolicy::new(&["https://app.example/".into()], &[], false);
        let ok = head("Host: x\r\nOrigin: https://APP.example\r\n");
        assert_eq!(p.check(&ok), Ok(()));
        let local = head("Host: x\r\nOrigin: http://localhost\r\n");
        assert_eq!(p.check(&local), Err(PolicyError::OriginNotAllowed));
    }
}
