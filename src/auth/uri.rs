//! The few URI rules the resource server needs (RFC 3986): an absolute URI taken apart, for
//! the metadata URLs and the configuration checks, and its normal form, for comparing an
//! audience with the configured one.

use crate::proto::authority::{Authority, Host};
use crate::proto::hex;

/// An absolute URI with an authority, taken apart (RFC 3986 §3:
/// `scheme ":" "//" authority path-abempty [ "?" query ] [ "#" fragment ]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UriParts<'a> {
    /// The scheme as written.
    pub scheme: &'a str,
    /// `[ userinfo "@" ] host [ ":" port ]` as written.
    pub authority: &'a str,
    /// The path, possibly empty; it starts with `/` otherwise.
    pub path: &'a str,
    /// The query without its `?`.
    pub query: Option<&'a str>,
    /// The fragment without its `#`.
    pub fragment: Option<&'a str>,
}

/// Takes `uri` apart, or `None` unless it has a valid scheme followed by `//`.
pub(crate) fn split(uri: &str) -> Option<UriParts<'_>> {
    let (scheme, rest) = uri.split_once(':')?;
    // RFC 3986 §3.1: `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`
    let mut chars = scheme.bytes();
    if !chars.next()?.is_ascii_alphabetic()
        || !chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let rest = rest.strip_prefix("//")?;
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Some(UriParts {
        scheme,
        authority,
        path,
        query,
        fragment,
    })
}

/// Whether every byte of `text` may appear in a URI (RFC 3986 §2: unreserved, reserved and
/// `%`). No space, quote, backslash or control character: such a URI could not be written
/// into a header's quoted-string as it is.
pub(crate) fn is_uri_text(text: &str) -> bool {
    text.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b':'
                    | b'/'
                    | b'?'
                    | b'#'
                    | b'['
                    | b']'
                    | b'@'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
            )
    })
}

/// Whether `a` and `b` name the same resource: equal as written, or equal in their normal
/// forms. A value that is not an absolute URI with an authority (`urn:…`, a bare name) only
/// matches itself.
pub(crate) fn same_resource(a: &str, b: &str) -> bool {
    // MCP 2025-11-25, Canonical Server URI: "While the canonical form uses lowercase scheme and
    // host components, implementations SHOULD accept uppercase scheme and host components for
    // robustness and interoperability."
    a == b || matches!((normalize(a), normalize(b)), (Some(a), Some(b)) if a == b)
}

/// The normal form of an absolute URI with an authority (RFC 3986 §6.2.2, syntax-based, and
/// the `http`/`https` rules of §6.2.3), or `None` if `uri` is not one.
///
/// Scheme and host lowercase (§6.2.2.1: "the scheme and host are case-insensitive and
/// therefore should be normalized to lowercase"); percent-encodings with uppercase hex digits
/// (§6.2.2.1) and unreserved characters decoded (§6.2.2.2); the port dropped when it is the
/// scheme's default or empty and an empty path read as `/` (§6.2.3: `http://example.com` and
/// `http://example.com:80/` are equivalent). Dot segments (§6.2.2.3) are left alone: no
/// audience or resource has a reason to carry them.
fn normalize(uri: &str) -> Option<String> {
    let parts = split(uri)?;
    let scheme = parts.scheme.to_ascii_lowercase();
    let authority = Authority::parse(parts.authority).ok()?;
    let default_port = match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let mut out = scheme;
    out.push_str("://");
    match authority.host {
        Host::Ipv6(ip) => out.push_str(&format!("[{ip}]")),
        Host::IpvFuture(text) => out.push_str(&format!("[{}]", text.to_ascii_lowercase())),
        Host::Ipv4(ip) => out.push_str(&ip.to_string()),
        Host::RegName(name) => push_percent_normal(&mut out, &name.to_ascii_lowercase()),
    }
    if let Some(port) = authority.port.filter(|&port| Some(port) != default_port) {
        out.push_str(&format!(":{port}"));
    }
    if parts.path.is_empty() && default_port.is_some() {
        out.push('/');
    }
    push_percent_normal(&mut out, parts.path);
    if let Some(query) = parts.query {
        out.push('?');
        push_percent_normal(&mut out, query);
    }
    if let Some(fragment) = parts.fragment {
        out.push('#');
        push_percent_normal(&mut out, fragment);
    }
    Some(out)
}

/// Appends `text` with each `%XX` rewritten in uppercase hex, or decoded when it stands for an
/// unreserved character. A broken escape is kept as written.
fn push_percent_normal(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = &rest[at..];
        let decoded = escape.as_bytes().get(1..3).and_then(hex::pair);
        match decoded {
            Some(byte) if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) => {
                out.push(char::from(byte));
                rest = &escape[3..];
            }
            Some(_) => {
                out.push('%');
                out.push_str(&escape[1..3].to_ascii_uppercase());
                rest = &escape[3..];
            }
            None => {
                out.push('%');
                rest = &escape[1..];
            }
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_come_apart() {
        assert_eq!(
            split("https://h:8443/a/b?q=1#f"),
            Some(UriParts {
                scheme: "https",
                authority: "h:8443",
                path: "/a/b",
                query: Some("q=1"),
                fragment: Some("f"),
            })
        );
        assert_eq!(split("https://h").map(|p| p.path), Some(""));
        assert_eq!(
            split("https://h?x").map(|p| (p.path, p.query)),
            Some(("", Some("x")))
        );
        for not_absolute in ["/mcp", "h/mcp", "urn:x:y", "1http://h", "://h", "https:/h"] {
            assert_eq!(split(not_absolute), None, "{not_absolute}");
        }
    }

    #[test]
    fn equivalent_spellings_are_the_same_resource() {
        for (a, b) in [
            ("https://mcp.example.com/mcp", "HTTPS://MCP.Example.COM/mcp"),
            (
                "https://mcp.example.com/mcp",
                "https://mcp.example.com:443/mcp",
            ),
            ("http://127.0.0.1/mcp", "http://127.0.0.1:80/mcp"),
            ("https://h:8443/mcp", "https://H:8443/mcp"),
            ("https://h", "https://h/"),
            ("https://h", "https://h:/"),
            ("https://h/a%2fb", "https://h/a%2Fb"),
            ("https://h/%7Euser", "https://h/~user"),
            (
                "https://[::1]:8443/mcp",
                "https://[0:0:0:0:0:0:0:1]:8443/mcp",
            ),
            ("urn:example:mcp", "urn:example:mcp"),
        ] {
            assert!(same_resource(a, b), "{a} vs {b}");
            assert!(same_resource(b, a), "{b} vs {a}");
        }
    }

    #[test]
    fn different_resources_stay_different() {
        for (a, b) in [
            ("https://h/mcp", "https://h/MCP"),
            ("https://h/mcp", "http://h/mcp"),
            ("https://h/mcp", "https://h:8443/mcp"),
            ("https://h/mcp", "https://h/mcp/"),
            ("https://h/mcp", "https://h/mcp?x"),
            ("https://h/mcp", "https://evil@h/mcp"),
            ("https://h/a%2Fb", "https://h/a/b"),
            ("urn:example:mcp", "URN:example:mcp"),
            ("mcp", "https://mcp"),
        ] {
            assert!(!same_resource(a, b), "{a} vs {b}");
        }
    }

    #[test]
    fn uri_text_refuses_what_a_quoted_string_cannot_carry() {
        assert!(is_uri_text("https://h:1/a-b_c~d/%20?x=[1]&y=(2)#f"));
        for bad in [
            "https://h/a b",
            "https://h/\"",
            "https://h/\\",
            "https://h/\r\n",
            "https://h/é",
        ] {
            assert!(!is_uri_text(bad), "{bad:?}");
        }
    }
}
