//! TLS on a connection, without I/O: rustls's unbuffered connection (the server's, or the load
//! generator's client), fed the ciphertext the shard read and asked for the ciphertext the
//! shard should write.
//!
//! The caller owns every buffer (rustls's unbuffered API), so a session keeps only what is in
//! transit: a partly received record, and the ciphertext of at most one sealed chunk of the
//! connection's outbound queue. Both are released once empty, so an idle TLS connection holds
//! no record buffer, as an idle plain one holds no read or write buffer.

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::pki_types::ServerName;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, InsufficientSizeError,
    UnbufferedStatus, WriteTraffic,
};
use rustls::{ClientConfig, ServerConfig};
use std::fmt;
use std::sync::Arc;

/// Plaintext sealed into one record at a time: RFC 8446 §5.1, "The length (in bytes) of the
/// following TLSPlaintext.fragment. The length MUST NOT exceed 2^14 bytes."
const RECORD_PLAINTEXT: usize = 16 * 1024;

/// Room for a record's header, tag and content type besides its plaintext when sealing (grown
/// on demand if rustls asks for more).
const RECORD_OVERHEAD: usize = 256;

/// Protocols offered by ALPN: HTTP/1.1 only (WebSocket upgrades ride on it). RFC 7301 §3.2: a
/// server that supports none of the client's protocols "MUST respond with a fatal
/// "no_application_protocol" alert"; a client that offers no ALPN is served.
const ALPN: &[&[u8]] = &[b"http/1.1"];

/// Builds the server side of TLS 1.3 and 1.2 from a PEM certificate chain (leaf first) and
/// its PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn server_config(chain_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate chain: {e}"))?;
    if chain.is_empty() {
        return Err("certificate chain: no CERTIFICATE in the file".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("private key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        // Fails when the key does not belong to the leaf certificate: caught at start and at a
        // reload, not at a client's handshake.
        .with_single_cert(chain, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The client side of TLS in `versions` (the shard's requests to an authorization server, the
/// load generator, the tests): the server's certificate verified against the PEM roots
/// `roots_pem` (certificates rustls cannot use, which a system bundle may hold, are skipped;
/// none usable is an error), ALPN `http/1.1`.
pub fn client_config(
    roots_pem: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots_pem) {
        let _ = roots.add(cert.map_err(|e| format!("trusted roots: {e}"))?);
    }
    if roots.is_empty() {
        return Err("trusted roots: no usable CERTIFICATE".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// One shard's copy of a server configuration: its own session-resumption cache, so a
/// handshake never takes a lock another core holds (rustls's cache is a mutex).
pub fn for_shard(config: &ServerConfig) -> Arc<ServerConfig> {
    let mut config = config.clone();
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSIONS_PER_SHARD);
    Arc::new(config)
}

/// TLS sessions a shard remembers for resumption (rustls's default for a whole server).
const SESSIONS_PER_SHARD: usize = 256;

/// Why a TLS connection cannot go on.
#[derive(Debug)]
pub struct TlsError(rustls::Error);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS: {}", self.0)
    }
}

impl std::error::Error for TlsError {}

/// What one batch of ciphertext gave.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Application bytes appended to the caller's plaintext buffer.
    pub plaintext: usize,
    /// The peer sent close_notify: no more application data follows.
    pub peer_closed: bool,
}

/// The TLS state of one connection.
pub struct TlsSession {
    side: Side,
    /// A record (or records) received in part, kept until the rest arrives.
    incoming: Vec<u8>,
    /// Ciphertext owed to the peer: handshake records, then at most one sealed chunk.
    outgoing: Vec<u8>,
    /// Bytes at the front of `outgoing` already written.
    written: usize,
    /// Plaintext bytes of the caller's queue that `outgoing` carries sealed.
    sealed: usize,
    peer_closed: bool,
    /// A fatal error happened: rustls is never called again (it may still hold handshake
    /// messages as places in a buffer that is gone).
    failed: bool,
}

impl TlsSession {
    /// A server connection that has yet to receive the client's hello.
    pub fn new(config: Arc<ServerConfig>) -> Result<Box<Self>, TlsError> {
        let conn = UnbufferedServerConnection::new(config).map_err(TlsError)?;
        Ok(Self::with(Side::Server(conn)))
    }

    /// A client connection to `name`, its hello ready in [`Self::ciphertext`].
    pub fn client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<Box<Self>, TlsError> {
        let conn = UnbufferedClientConnection::new(config, name).map_err(TlsError)?;
        let mut session = Self::with(Side::Client(conn));
        session.process(&mut [], &mut Vec::new())?;
        Ok(session)
    }

    fn with(side: Side) -> Box<Self> {
        Box::new(TlsSession {
            side,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            written: 0,
            sealed: 0,
            peer_closed: false,
            failed: false,
        })
    }

    /// Whether the handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        match &self.side {
            Side::Server(conn) => conn.is_handshaking(),
            Side::Client(conn) => conn.is_handshaking(),
        }
    }

    /// Whether the peer sent close_notify.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Takes `ciphertext` from the socket (decrypted in place), appends the application data
    /// it completes to `plaintext`, and queues whatever the handshake answers. A fatal error
    /// leaves the alert for the peer in [`Self::ciphertext`].
    pub fn receive(
        &mut self,
        ciphertext: &mut [u8],
        plaintext: &mut Vec<u8>,
    ) -> Result<Received, TlsError> {
        let before = plaintext.len();
        let result = if self.incoming.is_empty() {
            let used = self.process(ciphertext, plaintext);
            if let Ok(used) = used {
                self.incoming.extend_from_slice(&ciphertext[used..]);
            }
            used
        } else {
            self.incoming.extend_from_slice(ciphertext);
            let mut incoming = std::mem::take(&mut self.incoming);
            let used = self.process(&mut incoming, plaintext);
            if let Ok(used) = used {
                incoming.drain(..used);
            }
            self.incoming = incoming;
            used
        };
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        result.map(|_| Received {
            plaintext: plaintext.len() - before,
            peer_closed: self.peer_closed,
        })
    }

    /// Runs rustls over `buf` until it needs more input; returns the bytes it consumed. A
    /// fatal error leaves its alert in `outgoing` and fails the session for good.
    fn process(&mut self, buf: &mut [u8], plaintext: &mut Vec<u8>) -> Result<usize, TlsError> {
        if self.failed {
            return Err(failed_before());
        }
        let (outgoing, peer_closed) = (&mut self.outgoing, &mut self.peer_closed);
        let result = match &mut self.side {
            Side::Server(conn) => process(conn, buf, plaintext, outgoing, peer_closed),
            Side::Client(conn) => process(conn, buf, plaintext, outgoing, peer_closed),
        };
        self.failed = result.is_err();
        result
    }

    /// The ciphertext to write now (empty when nothing is owed).
    pub fn ciphertext(&self) -> &[u8] {
        &self.outgoing[self.written..]
    }

    /// `n` bytes of [`Self::ciphertext`] were written. Returns how many plaintext bytes of the
    /// caller's queue that completed: those may leave the queue now.
    pub fn wrote(&mut self, n: usize) -> usize {
        self.written += n;
        if self.written < self.outgoing.len() {
            return 0;
        }
        self.outgoing = Vec::new();
        self.written = 0;
        std::mem::take(&mut self.sealed)
    }

    /// Seals the front of the caller's `queue` (up to one record) once the ciphertext owed
    /// before it is out; the queue keeps those bytes until [`Self::wrote`] says they left, so
    /// its length still measures what the peer has not taken.
    pub fn seal(&mut self, queue: &[u8]) -> Result<(), TlsError> {
        if self.sealed > 0 || !self.ciphertext().is_empty() || queue.is_empty() {
            return Ok(());
        }
        let chunk = &queue[..queue.len().min(RECORD_PLAINTEXT)];
        self.encrypt(chunk.len(), |traffic, room| traffic.encrypt(chunk, room))?;
        if self.outgoing.is_empty() {
            return Err(TlsError(rustls::Error::EncryptError));
        }
        self.sealed = chunk.len();
        Ok(())
    }

    /// Queues close_notify (RFC 8446 §6.1: "Each party MUST send a "close_notify" alert before
    /// closing its write side of the connection").
    pub fn close_notify(&mut self) -> Result<(), TlsError> {
        self.encrypt(0, |traffic, room| traffic.queue_close_notify(room))
    }

    /// Runs one encryption of `plaintext` bytes into `outgoing` in the traffic state.
    fn encrypt(
        &mut self,
        plaintext: usize,
        op: impl FnMut(&mut dyn Encrypt, &mut [u8]) -> Result<usize, EncryptError>,
    ) -> Result<(), TlsError> {
        if self.failed {
            return Err(failed_before());
        }
        match &mut self.side {
            Side::Server(conn) => encrypt(conn, &mut self.outgoing, plaintext, op),
            Side::Client(conn) => encrypt(conn, &mut self.outgoing, plaintext, op),
        }
    }
}

/// What a session that failed answers from then on.
fn failed_before() -> TlsError {
    TlsError(rustls::Error::General(
        "the TLS session failed earlier".into(),
    ))
}

/// The two ends rustls's unbuffered API has.
enum Side {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// What the session needs of either end: rustls gives each its own `process_tls_records`.
trait Records {
    type Data;
    fn records<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Records for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn records<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

impl Records for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn records<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

/// Encryption in the traffic state, whichever end.
trait Encrypt {
    fn encrypt(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, EncryptError>;
    fn queue_close_notify(&mut self, out: &mut [u8]) -> Result<usize, EncryptError>;
}

impl<Data> Encrypt for WriteTraffic<'_, Data> {
    fn encrypt(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, EncryptError> {
        WriteTraffic::encrypt(self, plaintext, out)
    }
    fn queue_close_notify(&mut self, out: &mut [u8]) -> Result<usize, EncryptError> {
        WriteTraffic::queue_close_notify(self, out)
    }
}

/// Runs rustls over `buf` until it needs more input: application data to `plaintext`,
/// handshake records to `outgoing`. Returns the bytes consumed.
fn process<C: Records>(
    conn: &mut C,
    buf: &mut [u8],
    plaintext: &mut Vec<u8>,
    outgoing: &mut Vec<u8>,
    peer_closed: &mut bool,
) -> Result<usize, TlsError> {
    let mut used = 0;
    loop {
        let status = conn.records(&mut buf[used..]);
        let mut discard = status.discard;
        let state = match status.state {
            Ok(state) => state,
            Err(e) => {
                used += discard;
                alert(conn, &mut buf[used..], outgoing);
                return Err(TlsError(e));
            }
        };
        match state {
            ConnectionState::ReadTraffic(mut traffic) => {
                while let Some(record) = traffic.next_record() {
                    let record = record.map_err(TlsError)?;
                    discard += record.discard;
                    plaintext.extend_from_slice(record.payload);
                }
            }
            ConnectionState::EncodeTlsData(mut data) => encode(&mut data, outgoing),
            // Queued in `outgoing`, which the caller writes before anything sealed later.
            ConnectionState::TransmitTlsData(data) => data.done(),
            ConnectionState::PeerClosed => *peer_closed = true,
            ConnectionState::Closed
            | ConnectionState::BlockedHandshake
            | ConnectionState::WriteTraffic(_) => return Ok(used + discard),
            // Early data is off (`max_early_data_size` stays 0); anything else is new.
            _ => {
                return Err(TlsError(rustls::Error::General(
                    "unexpected TLS state".into(),
                )))
            }
        }
        used += discard;
    }
}

/// Encodes what rustls queued when it failed: the records of the message that failed, if
/// any, and its fatal alert last. `rest` is what `buf` had left: handshake messages rustls has
/// yet to process are places in that buffer (with an empty one rustls panicked on a refused
/// hello that had another message behind it in its record).
///
/// It stops at the alert: one call more would read the failed record again when a record was
/// what failed, and queue a second alert (a debug assertion in rustls, which the `tls_server`
/// fuzz target found).
fn alert<C: Records>(conn: &mut C, rest: &mut [u8], outgoing: &mut Vec<u8>) {
    // A refused ClientHello may first have queued the server's hello and a change_cipher_spec.
    for _ in 0..MAX_RECORDS_BEFORE_ALERT {
        let ConnectionState::EncodeTlsData(mut data) = (match conn.records(rest).state {
            Ok(state) => state,
            Err(_) => return,
        }) else {
            return;
        };
        let start = outgoing.len();
        encode(&mut data, outgoing);
        if is_alert(&outgoing[start..]) {
            return;
        }
    }
}

/// Records a failed message may have queued before its alert.
const MAX_RECORDS_BEFORE_ALERT: usize = 8;

/// Whether `record` is an alert: RFC 8446 §5.1 `ContentType alert(21)` in the clear (and in
/// TLS 1.2, encrypted too); in TLS 1.3 an encrypted one is `application_data(23)` with a
/// 19-byte body (2 alert bytes, the inner content type, a 16-byte tag), shorter than any
/// encrypted handshake message (a 4-byte header at least).
fn is_alert(record: &[u8]) -> bool {
    matches!(record, [21, ..] | [23, _, _, 0, 19, ..])
}

/// Appends a handshake (or alert) record rustls has ready to `outgoing`.
fn encode<Data>(data: &mut EncodeTlsData<'_, Data>, outgoing: &mut Vec<u8>) {
    // An empty room first: rustls answers with the record's exact size.
    grow_into(outgoing, 0, |room| match data.encode(room) {
        Ok(n) => Ok(n),
        Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
            Err(Some(required_size))
        }
        Err(EncodeError::AlreadyEncoded) => Err(None),
    });
}

/// Runs `op` in the traffic state, appending what it encrypts to `outgoing`.
fn encrypt<C: Records>(
    conn: &mut C,
    outgoing: &mut Vec<u8>,
    plaintext: usize,
    mut op: impl FnMut(&mut dyn Encrypt, &mut [u8]) -> Result<usize, EncryptError>,
) -> Result<(), TlsError> {
    let status = conn.records(&mut []);
    let ConnectionState::WriteTraffic(mut traffic) = status.state.map_err(TlsError)? else {
        return Err(TlsError(rustls::Error::HandshakeNotComplete));
    };
    let mut exhausted = false;
    grow_into(outgoing, plaintext + RECORD_OVERHEAD, |room| {
        match op(&mut traffic, room) {
            Ok(n) => Ok(n),
            Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                Err(Some(required_size))
            }
            Err(_) => {
                exhausted = true;
                Err(None)
            }
        }
    });
    if exhausted {
        return Err(TlsError(rustls::Error::EncryptError));
    }
    Ok(())
}

/// Appends to `out` what `write` puts into `room` bytes, growing the room if `write` says
/// how much it needs (`Err(Some(size))`).
fn grow_into(
    out: &mut Vec<u8>,
    mut room: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) {
    let start = out.len();
    loop {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return;
            }
            Err(Some(required)) if required > room => room = required,
            Err(_) => {
                out.truncate(start);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use rustls::ClientConnection;
    use std::io::{Read, Write};

    const CA: &[u8] = include_bytes!("../../tests/data/tls/ca.pem");
    const CERT: &[u8] = include_bytes!("../../tests/data/tls/server.pem");
    const KEY: &[u8] = include_bytes!("../../tests/data/tls/server.key");

    fn client(
        versions: &[&'static rustls::SupportedProtocolVersion],
        alpn: &[&[u8]],
    ) -> ClientConnection {
        let mut config = client_config(CA, versions).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = ServerName::try_from("localhost").unwrap();
        ClientConnection::new(Arc::new(config), name).unwrap()
    }

    fn server() -> Box<TlsSession> {
        TlsSession::new(server_config(CERT, KEY).unwrap()).unwrap()
    }

    /// Moves the client's ciphertext to the server `chunk` bytes at a time; returns the
    /// plaintext the server got.
    fn to_server(
        client: &mut ClientConnection,
        server: &mut TlsSession,
        chunk: usize,
    ) -> Result<Vec<u8>, TlsError> {
        let mut wire = Vec::new();
        client.write_tls(&mut wire).unwrap();
        let mut plaintext = Vec::new();
        for piece in wire.chunks_mut(chunk.max(1)) {
            server.receive(piece, &mut plaintext)?;
        }
        Ok(plaintext)
    }

    /// Moves everything the server owes to the client.
    fn to_client(server: &mut TlsSession, client: &mut ClientConnection) {
        let wire = server.ciphertext().to_vec();
        server.wrote(wire.len());
        let mut reader = &wire[..];
        while !reader.is_empty() {
            client.read_tls(&mut reader).unwrap();
        }
        client.process_new_packets().unwrap();
    }

    fn handshake(client: &mut ClientConnection, server: &mut TlsSession, chunk: usize) {
        while client.is_handshaking() || server.is_handshaking() {
            to_server(client, server, chunk).unwrap();
            to_client(server, client);
        }
        // TLS 1.3 tickets or the client's last flight.
        to_server(client, server, chunk).unwrap();
        to_client(server, client);
    }

    #[test]
    fn a_handshake_fed_a_byte_at_a_time_completes_in_both_versions_with_alpn() {
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let mut client = client(&[version], &[b"h2", b"http/1.1"]);
            let mut server = server();
            handshake(&mut client, &mut server, 1);
            assert!(!server.is_handshaking());
            assert_eq!(client.alpn_protocol(), Some(&b"http/1.1"[..]));
            assert_eq!(client.protocol_version(), Some(version.version));
        }
    }

    #[test]
    fn application_data_crosses_both_ways_and_the_queue_keeps_its_bytes_until_written() {
        let mut client = client(&[&rustls::version::TLS13], &[]);
        let mut server = server();
        handshake(&mut client, &mut server, 4096);
        client
            .writer()
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .unwrap();
        assert_eq!(
            to_server(&mut client, &mut server, 7).unwrap(),
            b"GET / HTTP/1.1\r\n\r\n"
        );

        // 40,000 bytes go out as three records, each leaving the queue once written.
        let mut queue: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let expected = queue.clone();
        let mut received = Vec::new();
        while !queue.is_empty() {
            server.seal(&queue).unwrap();
            let wire = server.ciphertext().to_vec();
            assert!(wire.len() <= RECORD_PLAINTEXT + RECORD_OVERHEAD);
            // Half of it first: nothing leaves the queue yet.
            assert_eq!(server.wrote(wire.len() / 2), 0);
            let sent = server.wrote(wire.len() - wire.len() / 2);
            assert!(sent > 0 && sent <= RECORD_PLAINTEXT);
            queue.drain(..sent);
            let mut reader = &wire[..];
            while !reader.is_empty() {
                client.read_tls(&mut reader).unwrap();
                client.process_new_packets().unwrap();
                let mut got = Vec::new();
                let _ = client.reader().read_to_end(&mut got);
                received.extend_from_slice(&got);
            }
        }
        assert!(received == expected, "{} bytes arrived", received.len());
        // Idle again: no record buffer held.
        assert!(server.ciphertext().is_empty());
        assert_eq!(server.outgoing.capacity(), 0);
        assert_eq!(server.incoming.capacity(), 0);
    }

    #[test]
    fn close_notify_goes_both_ways() {
        let mut client = client(&[&rustls::version::TLS13], &[]);
        let mut server = server();
        handshake(&mut client, &mut server, 4096);
        client.send_close_notify();
        let mut wire = Vec::new();
        client.write_tls(&mut wire).unwrap();
        let got = server.receive(&mut wire, &mut Vec::new()).unwrap();
        assert!(got.peer_closed && server.peer_closed());
        server.close_notify().unwrap();
        to_client(&mut server, &mut client);
        let mut rest = Vec::new();
        assert_eq!(client.reader().read_to_end(&mut rest).unwrap(), 0);
    }

    #[test]
    fn a_client_offering_only_other_protocols_gets_the_no_application_protocol_alert() {
        let mut client = client(&[&rustls::version::TLS13], &[b"h2"]);
        let mut server = server();
        let err = to_server(&mut client, &mut server, 4096).unwrap_err();
        assert!(err.to_string().contains("protocol"), "{err}");
        let alert = server.ciphertext().to_vec();
        client.read_tls(&mut &alert[..]).unwrap();
        let err = client.process_new_packets().unwrap_err();
        assert!(err.to_string().contains("NoApplicationProtocol"), "{err}");
    }

    #[test]
    fn a_tampered_record_and_plain_http_are_refused() {
        let mut client = client(&[&rustls::version::TLS13], &[]);
        let mut server = server();
        handshake(&mut client, &mut server, 4096);
        client.writer().write_all(b"hello").unwrap();
        let mut wire = Vec::new();
        client.write_tls(&mut wire).unwrap();
        let last = wire.len() - 1;
        wire[last] ^= 1;
        assert!(server.receive(&mut wire, &mut Vec::new()).is_err());

        let mut server = self::server();
        let mut plain = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        assert!(server.receive(&mut plain, &mut Vec::new()).is_err());
    }

    #[test]
    fn the_client_session_talks_to_the_server_session() {
        let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
        let config = client_config(CA, &versions).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = TlsSession::client(Arc::new(config), name).unwrap();
        let mut server = server();
        // Each side takes what the other owes until neither owes anything.
        let mut plaintext = Vec::new();
        for _ in 0..8 {
            let mut wire = client.ciphertext().to_vec();
            client.wrote(wire.len());
            server.receive(&mut wire, &mut plaintext).unwrap();
            let mut wire = server.ciphertext().to_vec();
            server.wrote(wire.len());
            client.receive(&mut wire, &mut plaintext).unwrap();
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        assert!(plaintext.is_empty());
        client.seal(b"ping").unwrap();
        let mut wire = client.ciphertext().to_vec();
        assert_eq!(client.wrote(wire.len()), 4);
        server.receive(&mut wire, &mut plaintext).unwrap();
        assert_eq!(plaintext, b"ping");
    }

    /// Feeds `wire` to a fresh server `chunk` bytes at a time until it fails; checks that the
    /// error names `reason`, that the alert went out, and that the session then refuses
    /// everything without calling rustls again.
    fn refused(wire: &[u8], chunk: usize, reason: &str) {
        let mut server = server();
        let mut plaintext = Vec::new();
        let mut result = Ok(Received::default());
        for piece in wire.to_vec().chunks_mut(chunk) {
            result = server.receive(piece, &mut plaintext);
            if result.is_err() {
                break;
            }
        }
        let err = result.unwrap_err();
        assert!(err.to_string().contains(reason), "{chunk}: {err}");
        let alert = server.ciphertext().to_vec();
        assert_eq!(alert[0], 21, "an alert record");
        server.wrote(alert.len());
        assert!(server
            .receive(&mut [22, 3, 3, 0, 0], &mut plaintext)
            .is_err());
        assert!(server.close_notify().is_err());
        assert!(server.seal(b"late").is_err());
        assert!(server.ciphertext().is_empty());
    }

    #[test]
    fn a_fatal_error_with_handshake_messages_still_in_the_buffer_gets_its_alert_out() {
        let mut client = client(&[&rustls::version::TLS13], &[]);
        let mut hello = Vec::new();
        client.write_tls(&mut hello).unwrap();
        assert_eq!(hello[0], 22, "a handshake record");

        // The hello and one more handshake message in one record, which RFC 8446 §5.1 forbids
        // ("Handshake messages MUST NOT span key changes"): rustls refuses the hello still
        // holding the second message as a place in the buffer.
        let mut wire = hello.clone();
        let extra = [4u8, 0, 0, 0]; // new_session_ticket, empty
        let length = u16::from_be_bytes([wire[3], wire[4]]) + extra.len() as u16;
        wire[3..5].copy_from_slice(&length.to_be_bytes());
        wire.extend_from_slice(&extra);
        for chunk in [wire.len(), 7, 1] {
            refused(&wire, chunk, "KeyEpochWithPendingFragment");
        }

        // Half of the hello in one record, then a record that is not TLS: rustls holds the half
        // as a place in the buffer when it refuses the second.
        let body = &hello[5..];
        let half = body.len() / 2;
        let mut wire = vec![22, 3, 1];
        wire.extend_from_slice(&(half as u16).to_be_bytes());
        wire.extend_from_slice(&body[..half]);
        wire.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        for chunk in [wire.len(), 7, 1] {
            refused(&wire, chunk, "InvalidContentType");
        }
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_at_configuration() {
        let other = include_bytes!("../../tests/data/tls/renewed.key");
        let err = server_config(CERT, other).unwrap_err();
        assert!(err.starts_with("certificate and key"), "{err}");
        assert!(server_config(b"", KEY).is_err());
        assert!(server_config(CERT, b"not a key").is_err());
    }
}
