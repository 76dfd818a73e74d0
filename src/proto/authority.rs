//! The authority of an `http`/`https` URI (RFC 3986 §3.2) as the `Host`
//! field, an absolute-form request-target and an `Origin` carry it:
//! `host [":" port]`, never userinfo. Sans-IO.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The host of an authority (RFC 3986 §3.2.2: `host = IP-literal / IPv4address / reg-name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// An `IP-literal` holding an `IPv6address`.
    Ipv6(Ipv6Addr),
    /// An `IP-literal` holding an `IPvFuture` (the text between the brackets).
    IpvFuture(&'a str),
    /// An `IPv4address`.
    Ipv4(Ipv4Addr),
    /// A `reg-name` as sent, possibly empty.
    RegName(&'a str),
}

impl Host<'_> {
    /// Whether the host names this machine over loopback (`localhost`, 127.0.0.0/8, `::1`).
    pub fn is_loopback(&self) -> bool {
        match self {
            Host::Ipv6(ip) => ip.is_loopback(),
            Host::Ipv4(ip) => ip.is_loopback(),
            Host::RegName(name) => name.eq_ignore_ascii_case("localhost"),
            Host::IpvFuture(_) => false,
        }
    }
}

/// `host [":" port]` (RFC 9110 §7.2: `Host = uri-host [ ":" port ]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authority<'a> {
    /// The host.
    pub host: Host<'a>,
    /// The port, if one was given (an empty port after `:` counts as none).
    pub port: Option<u16>,
}

/// One broken rule of authority syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorityError {
    /// A `userinfo@` part, which `Host` and `Origin` never carry.
    Userinfo,
    /// A `[` without its `]`, or something other than `:port` after the `]`.
    UnclosedIpLiteral,
    /// Brackets around something that is neither an IPv6 address nor an `IPvFuture`.
    BadIpLiteral,
    /// A character `reg-name` does not allow, or a broken percent-encoding.
    BadRegName,
    /// A port that is not all digits.
    BadPort,
    /// A port above 65535.
    PortOutOfRange,
}

impl fmt::Display for AuthorityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthorityError::Userinfo => "userinfo in an authority",
            AuthorityError::UnclosedIpLiteral => "unterminated IP literal",
            AuthorityError::BadIpLiteral => "invalid IP literal",
            AuthorityError::BadRegName => "invalid host name",
            AuthorityError::BadPort => "port is not a number",
            AuthorityError::PortOutOfRange => "port above 65535",
        })
    }
}

impl std::error::Error for AuthorityError {}

impl<'a> Authority<'a> {
    /// Parses `host [":" port]`, the whole of `text`.
    pub fn parse(text: &'a str) -> Result<Authority<'a>, AuthorityError> {
        // RFC 9110 §4.2.4: "A recipient SHOULD parse for userinfo and treat its presence as an
        // error; it is likely being used to obscure the authority for the sake of phishing attacks."
        // No host or port may contain an "@" either, so this also catches `host:80@evil`.
        if text.contains('@') {
            return Err(AuthorityError::Userinfo);
        }
        let (host, port) = match text.strip_prefix('[') {
            Some(literal) => {
                let (inside, after) = literal
                    .split_once(']')
                    .ok_or(AuthorityError::UnclosedIpLiteral)?;
                // RFC 3986 §3.2: `authority = [ userinfo "@" ] host [ ":" port ]`: only a port
                // may follow the host.
                let port = match after {
                    "" => None,
                    _ => Some(
                        after
                            .strip_prefix(':')
                            .ok_or(AuthorityError::UnclosedIpLiteral)?,
                    ),
                };
                (ip_literal(inside)?, port)
            }
            None => {
                let (host, port) = match text.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (text, None),
                };
                (ipv4_or_reg_name(host)?, port)
            }
        };
        Ok(Authority {
            host,
            port: port.map(parse_port).transpose()?.flatten(),
        })
    }
}

/// RFC 3986 §3.2.2: `IP-literal = "[" ( IPv6address / IPvFuture ) "]"`, without the brackets.
fn ip_literal(inside: &str) -> Result<Host<'_>, AuthorityError> {
    if let Ok(ip) = inside.parse::<Ipv6Addr>() {
        return Ok(Host::Ipv6(ip));
    }
    // `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`
    let future = inside
        .strip_prefix(['v', 'V'])
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(version, address)| {
            !version.is_empty()
                && version.bytes().all(|b| b.is_ascii_hexdigit())
                && !address.is_empty()
                && address
                    .bytes()
                    .all(|b| is_unreserved(b) || is_sub_delim(b) || b == b':')
        });
    if future {
        Ok(Host::IpvFuture(inside))
    } else {
        Err(AuthorityError::BadIpLiteral)
    }
}

/// RFC 3986 §3.2.2: a host that matches `IPv4address` is one; else it must be a `reg-name`,
/// `*( unreserved / pct-encoded / sub-delims )`.
fn ipv4_or_reg_name(host: &str) -> Result<Host<'_>, AuthorityError> {
    // The standard parser takes exactly the dotted-decimal `dec-octet` form (no leading zeros).
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(Host::Ipv4(ip));
    }
    let bytes = host.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'%' => {
                // `pct-encoded = "%" HEXDIG HEXDIG`
                let hex = bytes
                    .get(at + 1..at + 3)
                    .ok_or(AuthorityError::BadRegName)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(AuthorityError::BadRegName);
                }
                at += 3;
            }
            b if is_unreserved(b) || is_sub_delim(b) => at += 1,
            _ => return Err(AuthorityError::BadRegName),
        }
    }
    Ok(Host::RegName(host))
}

/// RFC 3986 §3.2.3: `port = *DIGIT`; an empty port is as good as none (§6.2.3). The value
/// must fit the 16 bits of a TCP port.
fn parse_port(port: &str) -> Result<Option<u16>, AuthorityError> {
    if port.is_empty() {
        return Ok(None);
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthorityError::BadPort);
    }
    let value = port.bytes().try_fold(0u32, |n, d| {
        let n = n * 10 + u32::from(d - b'0');
        (n <= u32::from(u16::MAX)).then_some(n)
    });
    value
        .and_then(|n| u16::try_from(n).ok())
        .map(Some)
        .ok_or(AuthorityError::PortOutOfRange)
}

/// `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="`
fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(input, expected)` rows through [`Authority::parse`].
    macro_rules! authority_cases {
        ($($text:expr => $expected:expr),* $(,)?) => {
            $(assert_eq!(Authority::parse($text), $expected, "{:?}", $text);)*
        };
    }

    fn ok(host: Host<'_>, port: Option<u16>) -> Result<Authority<'_>, AuthorityError> {
        Ok(Authority { host, port })
    }

    #[test]
    fn valid_authorities() {
        let v6_loopback = Ipv6Addr::LOCALHOST;
        authority_cases! {
            "localhost" => ok(Host::RegName("localhost"), None),
            "localhost:8080" => ok(Host::RegName("localhost"), Some(8080)),
            "localhost:" => ok(Host::RegName("localhost"), None),
            "127.0.0.1:65535" => ok(Host::Ipv4(Ipv4Addr::LOCALHOST), Some(65535)),
            "[::1]" => ok(Host::Ipv6(v6_loopback), None),
            "[::1]:0" => ok(Host::Ipv6(v6_loopback), Some(0)),
            "[v7.a:b]" => ok(Host::IpvFuture("v7.a:b"), None),
            "" => ok(Host::RegName(""), None),
            "ex%41mple.com:00080" => ok(Host::RegName("ex%41mple.com"), Some(80)),
            // Not an IPv4address (leading zero, three parts), so a reg-name.
            "127.000.0.1" => ok(Host::RegName("127.000.0.1"), None),
            "127.1" => ok(Host::RegName("127.1"), None),
        }
    }

    #[test]
    fn invalid_authorities() {
        authority_cases! {
            "localhost:80@evil.com" => Err(AuthorityError::Userinfo),
            "user@localhost" => Err(AuthorityError::Userinfo),
            "[::1]evil.com" => Err(AuthorityError::UnclosedIpLiteral),
            "[::1" => Err(AuthorityError::UnclosedIpLiteral),
            "[localhost]" => Err(AuthorityError::BadIpLiteral),
            "[v.x]" => Err(AuthorityError::BadIpLiteral),
            "[::1%25eth0]" => Err(AuthorityError::BadIpLiteral),
            "localhost:99999999" => Err(AuthorityError::PortOutOfRange),
            "localhost:65536" => Err(AuthorityError::PortOutOfRange),
            "localhost:abc" => Err(AuthorityError::BadPort),
            "localhost:80:81" => Err(AuthorityError::BadPort),
            "localhost:+80" => Err(AuthorityError::BadPort),
            "local host" => Err(AuthorityError::BadRegName),
            "localhost/evil" => Err(AuthorityError::BadRegName),
            "a%4" => Err(AuthorityError::BadRegName),
            "a%zz" => Err(AuthorityError::BadRegName),
            "ex\u{e4}mple" => Err(AuthorityError::BadRegName),
        }
    }

    #[test]
    fn loopback_hosts() {
        for text in [
            "localhost",
            "LOCALHOST:1",
            "127.0.0.1",
            "127.9.9.9:80",
            "[::1]:3",
        ] {
            let authority = Authority::parse(text).unwrap();
            assert!(authority.host.is_loopback(), "{text}");
        }
        for text in ["localhost.evil", "10.0.0.1", "[::2]", "[v1.x]", "", "127.1"] {
            let authority = Authority::parse(text).unwrap();
            assert!(!authority.host.is_loopback(), "{text}");
        }
    }
}
