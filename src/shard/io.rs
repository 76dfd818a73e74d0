//! Socket reads and writes for connection tasks.
//!
//! Reads take one of two paths, chosen per shard at its start ([`choose_receive`]):
//! - **multishot** (Linux 6.17+, the default): one multishot `recv` per socket, armed again
//!   after each 64 KiB, into the shard's ring of provided buffers, consumed incrementally (the
//!   vendored glommio's patch 8). The reactor
//!   copies each arrival out of the shared buffer as it takes the completion, so there is no
//!   readiness poll to re-arm and no `recv` call per message.
//! - **readiness** (older kernels, or `--readiness-recv`): glommio's non-buffered stream
//!   waits for readiness and then `recv`s synchronously into one scratch buffer per shard.
//!
//! Either way a connection only needs its own buffer for bytes that did not form a whole
//! frame or head yet: an idle connection holds no read buffer at all.

use crate::transport::tls::TlsSession;
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub use super::wheel::Deadline;

/// Bytes one read may take from the socket.
const SCRATCH_BYTES: usize = 64 * 1024;

/// A buffer larger than this is released rather than kept for reuse once it empties.
pub const KEEP_BUFFER_BYTES: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_BYTES].into_boxed_slice());
    static MULTISHOT: Cell<bool> = const { Cell::new(false) };
}

/// Picks this shard's receive path (see the module docs): multishot unless `readiness_only`
/// or the kernel lacks it. Returns whether it is multishot. Called on the shard's thread.
pub fn choose_receive(readiness_only: bool) -> bool {
    let multishot = !readiness_only && glommio::net::recv_multishot_available();
    MULTISHOT.set(multishot);
    multishot
}

/// Whether this shard receives with multishot receives.
pub fn receives_multishot() -> bool {
    MULTISHOT.get()
}

/// Polls one receive from `tcp`, appending what arrived to `buf`.
fn poll_receive(
    tcp: &mut TcpStream,
    cx: &mut Context<'_>,
    buf: &mut Vec<u8>,
) -> Poll<io::Result<usize>> {
    if MULTISHOT.get() {
        return tcp.poll_recv_multishot(cx, buf);
    }
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let polled = Pin::new(tcp).poll_read(cx, &mut scratch[..]);
        if let Poll::Ready(Ok(n)) = polled {
            buf.extend_from_slice(&scratch[..n]);
        }
        polled
    })
}

/// A connection's socket: plain TCP, or TCP carrying TLS (the session travels with the socket
/// when a connection moves to another shard).
pub struct Socket {
    tcp: TcpStream,
    tls: Option<Box<TlsSession>>,
}

impl Socket {
    /// A socket speaking plain TCP, or TLS when `tls` is given.
    pub fn new(tcp: TcpStream, tls: Option<Box<TlsSession>>) -> Socket {
        Socket { tcp, tls }
    }

    /// Stops receiving and returns the TCP stream, the TLS session if any, and the application
    /// bytes received but not read yet (a multishot receive may have taken some from the
    /// socket; with TLS they pass through the session, which keeps a part of a record): what
    /// a connection carries to another shard. Fails when those bytes break a TLS rule.
    pub async fn into_parts(mut self) -> io::Result<(TcpStream, Option<Box<TlsSession>>, Vec<u8>)> {
        let mut unread = self.tcp.stop_recv_multishot().await;
        if let (Some(tls), false) = (&mut self.tls, unread.is_empty()) {
            let mut plaintext = Vec::new();
            tls.receive(&mut unread, &mut plaintext)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            unread = plaintext;
        }
        Ok((self.tcp, self.tls, unread))
    }

    /// Polls one read, appending the application bytes that arrived to `buf`. `Ok(0)` is end
    /// of stream (for TLS, also the peer's close_notify).
    pub fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<io::Result<usize>> {
        let Some(tls) = &mut self.tls else {
            return poll_receive(&mut self.tcp, cx, buf);
        };
        if tls.peer_closed() {
            return Poll::Ready(Ok(0));
        }
        // A part of a record gives no application bytes yet: read on until a whole one
        // arrived or the socket has nothing more.
        let mut ciphertext = Vec::new();
        loop {
            ciphertext.clear();
            match poll_receive(&mut self.tcp, cx, &mut ciphertext) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(0)),
                Poll::Ready(Ok(_)) => {}
                other => return other,
            }
            match tls.receive(&mut ciphertext, buf) {
                Ok(got) if got.plaintext > 0 => return Poll::Ready(Ok(got.plaintext)),
                Ok(got) if got.peer_closed => return Poll::Ready(Ok(0)),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e))),
            }
        }
    }

    /// Polls writing all of `out`, removing what was written.
    pub fn poll_flush(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<u8>,
    ) -> Poll<io::Result<usize>> {
        let polled = match &mut self.tls {
            None => poll_write_all(&mut self.tcp, cx, out),
            Some(tls) => poll_write_sealed(&mut self.tcp, tls, cx, out),
        };
        if let Poll::Ready(Ok(_)) = polled {
            release_if_large(out);
        }
        polled
    }

    /// Writes all of `out`, or fails with `TimedOut` once the peer has taken nothing for
    /// `timeout` (a write timeout measured between two successive writes, like nginx's
    /// `send_timeout`, so a slow but steady reader is kept while one that stopped reading is
    /// not). The timer exists only while the socket is full.
    pub async fn flush(&mut self, out: &mut Vec<u8>, timeout: Duration) -> io::Result<()> {
        let mut stalled: Option<Deadline> = None;
        std::future::poll_fn(|cx| loop {
            if out.is_empty() && self.ciphertext_owed().is_empty() {
                return Poll::Ready(Ok(()));
            }
            match self.poll_flush(cx, out) {
                Poll::Ready(Ok(_)) => {
                    if let Some(deadline) = &mut stalled {
                        deadline.reset(Instant::now() + timeout);
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    let deadline =
                        stalled.get_or_insert_with(|| Deadline::at(Instant::now() + timeout));
                    if deadline.poll_expired(cx).is_ready() {
                        return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
                    }
                    return Poll::Pending;
                }
            }
        })
        .await
    }

    /// Closes the write side (after TLS's close_notify, sent if the socket takes it now).
    pub fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(tls) = &mut self.tls {
            if tls.close_notify().is_ok() {
                let _ = poll_write_sealed(&mut self.tcp, tls, cx, &mut Vec::new());
            }
        }
        Pin::new(&mut self.tcp).poll_close(cx)
    }

    /// Runs the TLS handshake to its end (the client's first application bytes, if they came
    /// with it, land in `inbuf`). Plain sockets have none.
    pub async fn handshake(&mut self, inbuf: &mut Vec<u8>, deadline: Instant) -> Handshake {
        let mut timer = Deadline::at(deadline);
        let mut none = Vec::new();
        std::future::poll_fn(|cx| loop {
            let Some(tls) = &mut self.tls else {
                return Poll::Ready(Handshake::Done);
            };
            // The session's flight goes out first; the socket may not take all of it now.
            let write_blocked = match poll_write_sealed(&mut self.tcp, tls, cx, &mut none) {
                Poll::Ready(Ok(_)) => false,
                Poll::Ready(Err(_)) => return Poll::Ready(Handshake::Closed),
                Poll::Pending => true,
            };
            if !tls.is_handshaking() {
                if !write_blocked {
                    return Poll::Ready(Handshake::Done);
                }
            } else {
                match self.poll_read_into(cx, inbuf) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Handshake::Closed),
                    Poll::Ready(Ok(_)) => continue,
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
                        // The alert that says why is queued: hand it to the socket if it takes it.
                        if let Some(tls) = &mut self.tls {
                            let _ = poll_write_sealed(&mut self.tcp, tls, cx, &mut none);
                        }
                        return Poll::Ready(Handshake::Failed);
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(Handshake::Closed),
                    Poll::Pending => {
                        // What the read processed may have finished the handshake or made a
                        // flight to send: go round while the socket can take it.
                        let progressed = self.tls.as_ref().is_some_and(|tls| {
                            !tls.is_handshaking() || !tls.ciphertext().is_empty()
                        });
                        if progressed && !write_blocked {
                            continue;
                        }
                    }
                }
            }
            if timer.poll_expired(cx).is_ready() {
                return Poll::Ready(Handshake::TimedOut);
            }
            return Poll::Pending;
        })
        .await
    }

    /// Ciphertext sealed but not yet written (always empty for plain TCP).
    fn ciphertext_owed(&self) -> &[u8] {
        self.tls.as_ref().map_or(&[], |tls| tls.ciphertext())
    }
}

impl std::os::fd::AsRawFd for Socket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.tcp.as_raw_fd()
    }
}

/// How a TLS handshake ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Application data may flow.
    Done,
    /// The client broke a TLS rule (its alert was sent).
    Failed,
    /// The client did not finish within the handshake timeout.
    TimedOut,
    /// The peer went away.
    Closed,
}

/// Writes as much of `out` as the socket takes now, removing it from `out`.
fn poll_write_all(
    tcp: &mut TcpStream,
    cx: &mut Context<'_>,
    out: &mut Vec<u8>,
) -> Poll<io::Result<usize>> {
    let mut written = 0;
    while !out.is_empty() {
        match Pin::new(&mut *tcp).poll_write(cx, out) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Poll::Ready(Ok(n)) => {
                out.drain(..n);
                written += n;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending if written > 0 => return Poll::Ready(Ok(written)),
            Poll::Pending => return Poll::Pending,
        }
    }
    Poll::Ready(Ok(written))
}

/// The TLS form of [`poll_write_all`]: seals `out` a record at a time and writes the
/// ciphertext the session owes; plaintext leaves `out` once its record was written, so the
/// queue's length still says what the peer has not taken (the outbound bound holds).
fn poll_write_sealed(
    tcp: &mut TcpStream,
    tls: &mut TlsSession,
    cx: &mut Context<'_>,
    out: &mut Vec<u8>,
) -> Poll<io::Result<usize>> {
    let mut written = 0;
    loop {
        while !tls.ciphertext().is_empty() {
            match Pin::new(&mut *tcp).poll_write(cx, tls.ciphertext()) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    let sent = tls.wrote(n);
                    out.drain(..sent);
                    written += sent;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending if written > 0 => return Poll::Ready(Ok(written)),
                Poll::Pending => return Poll::Pending,
            }
        }
        if out.is_empty() {
            return Poll::Ready(Ok(written));
        }
        if let Err(e) = tls.seal(out) {
            return Poll::Ready(Err(io::Error::other(e)));
        }
    }
}

/// Drops an emptied buffer's allocation: a connection that waits for its peer holds no buffer
/// (the price is one small allocation per message on a busy one).
pub fn release_if_empty(buf: &mut Vec<u8>) {
    if buf.is_empty() {
        *buf = Vec::new();
    }
}

/// Drops an emptied buffer's allocation when it grew large, so a burst does not pin memory.
pub fn release_if_large(buf: &mut Vec<u8>) {
    if buf.is_empty() && buf.capacity() > KEEP_BUFFER_BYTES {
        *buf = Vec::new();
    }
}
