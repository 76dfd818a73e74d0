//! Requests a shard makes itself (the authorization server's key set, token introspection):
//! one HTTP/1.1 exchange on a connection of its own, plain or TLS, bounded in time and in
//! size, awaited on the shard's executor so that nothing blocks it.

use super::io::{Handshake, Socket};
use crate::proto::http1::{BodyDecoder, Limits, Method, ResponseHead};
use crate::proto::Status;
use crate::transport::tls::TlsSession;
use glommio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where requests go: an address resolved once (at start, off the shards: a DNS lookup
/// would block an executor) and, for `https`, the TLS client settings.
#[derive(Clone)]
pub struct Endpoint {
    addr: SocketAddr,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Endpoint {
    /// Resolves `authority` (`host[:port]`, the port defaulting to 443 with TLS and 80
    /// without); `tls` trusts the roots given.
    pub fn resolve(authority: &str, tls: Option<Arc<ClientConfig>>) -> Result<Endpoint, String> {
        let default_port = if tls.is_some() { 443 } else { 80 };
        let (host, port) = split_authority(authority, default_port)?;
        let bare = host.trim_matches(['[', ']']);
        let addr = (bare, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {authority}: {e}"))?
            .next()
            .ok_or_else(|| format!("{authority} resolves to no address"))?;
        let tls = match tls {
            None => None,
            Some(config) => {
                let name = ServerName::try_from(bare.to_owned())
                    .map_err(|e| format!("{host} is not a TLS server name: {e}"))?;
                Some((config, name))
            }
        };
        Ok(Endpoint { addr, tls })
    }
}

/// `host` and port of an authority (`[v6]:port` included).
fn split_authority(authority: &str, default_port: u16) -> Result<(&str, u16), String> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let port = match port {
        None => default_port,
        Some(p) => p.parse().map_err(|_| format!("bad port in {authority}"))?,
    };
    if host.is_empty() {
        return Err(format!("no host in {authority}"));
    }
    Ok((host, port))
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum FetchError {
    /// Connecting, the TLS handshake or the socket failed.
    Io(String),
    /// It did not finish within its time.
    TimedOut,
    /// The answer was not HTTP, or broke a limit.
    Malformed(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Io(e) => write!(f, "{e}"),
            FetchError::TimedOut => f.write_str("no answer in time"),
            FetchError::Malformed(e) => write!(f, "not a usable HTTP answer: {e}"),
        }
    }
}

/// Sends `request` (a whole HTTP/1.1 request, `Connection: close`) to `endpoint` and reads
/// the answer: its status and a body of at most `max_body` bytes, all within `timeout`.
pub async fn exchange(
    endpoint: &Endpoint,
    request: Vec<u8>,
    timeout: Duration,
    max_body: usize,
) -> Result<(u16, Vec<u8>), FetchError> {
    glommio::timer::timeout(timeout, async {
        Ok(exchange_now(endpoint, request, timeout, max_body).await)
    })
    .await
    .unwrap_or(Err(FetchError::TimedOut))
}

async fn exchange_now(
    endpoint: &Endpoint,
    mut request: Vec<u8>,
    timeout: Duration,
    max_body: usize,
) -> Result<(u16, Vec<u8>), FetchError> {
    let io = |e: std::io::Error| FetchError::Io(e.to_string());
    let tcp = TcpStream::connect(endpoint.addr)
        .await
        .map_err(|e| FetchError::Io(e.to_string()))?;
    let tls = match &endpoint.tls {
        None => None,
        Some((config, name)) => Some(
            TlsSession::client(Arc::clone(config), name.clone())
                .map_err(|e| FetchError::Io(e.to_string()))?,
        ),
    };
    let mut socket = Socket::new(tcp, tls);
    let mut inbuf = Vec::new();
    let deadline = Instant::now() + timeout;
    match socket.handshake(&mut inbuf, deadline).await {
        Handshake::Done => {}
        other => return Err(FetchError::Io(format!("TLS handshake: {other:?}"))),
    }
    socket.flush(&mut request, timeout).await.map_err(io)?;
    let limits = Limits {
        max_head_bytes: 16 * 1024,
        max_headers: 64,
        max_uri_bytes: 0,
        max_body_bytes: max_body,
    };
    let head = loop {
        match ResponseHead::parse(&inbuf, &limits, Method::Get)
            .map_err(|e| FetchError::Malformed(e.to_string()))?
        {
            Status::Complete(head, used) if head.status() >= 200 => {
                inbuf.drain(..used);
                break head;
            }
            // An interim answer (100 Continue) is not the answer.
            Status::Complete(_, used) => {
                inbuf.drain(..used);
            }
            Status::Partial => read_more(&mut socket, &mut inbuf).await?,
        }
    };
    let mut decoder = BodyDecoder::new(head.framing(), max_body);
    let mut body = Vec::new();
    loop {
        let used = decoder
            .decode(&inbuf, &mut body)
            .map_err(|e| FetchError::Malformed(e.to_string()))?;
        inbuf.drain(..used);
        if decoder.is_done() {
            break;
        }
        match read_more(&mut socket, &mut inbuf).await {
            Err(FetchError::Io(_)) if decoder.ends_at_close() => break,
            other => other?,
        }
    }
    Ok((head.status(), body))
}

/// One more read; the end of the stream is an error here (the answer is not complete).
async fn read_more(socket: &mut Socket, inbuf: &mut Vec<u8>) -> Result<(), FetchError> {
    match std::future::poll_fn(|cx| socket.poll_read_into(cx, inbuf)).await {
        Ok(0) => Err(FetchError::Io(
            "closed before the answer was complete".into(),
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(FetchError::Io(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_into_host_and_port() {
        assert_eq!(
            split_authority("idp.example", 443).unwrap(),
            ("idp.example", 443)
        );
        assert_eq!(
            split_authority("127.0.0.1:8080", 80).unwrap(),
            ("127.0.0.1", 8080)
        );
        assert_eq!(split_authority("[::1]:9000", 80).unwrap(), ("[::1]", 9000));
        assert_eq!(split_authority("[::1]", 443).unwrap(), ("[::1]", 443));
        assert!(split_authority("host:port", 80).is_err());
        assert!(split_authority(":80", 80).is_err());
    }
}
