//! Socket reads and writes for connection tasks.
//!
//! Reads go through one scratch buffer per shard: glommio's non-buffered
//! stream waits for readiness and then `recv`s synchronously into whatever
//! slice the poll was given, so a connection only needs its own buffer for
//! bytes that did not form a whole frame or head yet. An idle connection
//! therefore holds no read buffer at all.

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use glommio::timer::Timer;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Bytes one read may take from the socket.
const SCRATCH_BYTES: usize = 64 * 1024;

/// A buffer larger than this is released rather than kept for reuse once it empties.
pub const KEEP_BUFFER_BYTES: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_BYTES].into_boxed_slice());
}

/// Polls one read, appending what arrived to `buf`. `Ok(0)` is end of stream.
pub fn poll_read_into(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    buf: &mut Vec<u8>,
) -> Poll<io::Result<usize>> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let polled = Pin::new(&mut *stream).poll_read(cx, &mut scratch[..]);
        if let Poll::Ready(Ok(n)) = polled {
            buf.extend_from_slice(&scratch[..n]);
        }
        polled
    })
}

/// Polls writing all of `out`, removing what was written.
pub fn poll_flush(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    out: &mut Vec<u8>,
) -> Poll<io::Result<usize>> {
    let mut written = 0;
    while !out.is_empty() {
        match Pin::new(&mut *stream).poll_write(cx, out) {
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
    release_if_large(out);
    Poll::Ready(Ok(written))
}

/// Writes all of `out`.
pub async fn flush(stream: &mut TcpStream, out: &mut Vec<u8>) -> io::Result<()> {
    while !out.is_empty() {
        std::future::poll_fn(|cx| poll_flush(stream, cx, out)).await?;
    }
    Ok(())
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

/// A timer armed for an absolute deadline. It registers the task's waker with
/// the reactor once and keeps it across resets, so polling it on every turn of
/// a connection loop costs a clock read, not a timer-table update.
pub struct Deadline {
    timer: Timer,
    at: Instant,
    registered: bool,
}

impl Deadline {
    /// A timer that fires at `at`.
    pub fn at(at: Instant) -> Self {
        Deadline {
            timer: Timer::new(at.saturating_duration_since(Instant::now())),
            at,
            registered: false,
        }
    }

    /// Re-arms for a new deadline (no-op when unchanged).
    pub fn reset(&mut self, at: Instant) {
        if at != self.at {
            self.at = at;
            // The reactor drops a fired timer's waker, so a reset must register anew.
            self.registered = false;
            self.timer.reset(
                at.saturating_duration_since(Instant::now())
                    .max(Duration::from_micros(1)),
            );
        }
    }

    /// Moves the deadline to `at` only if that is earlier (or the timer already fired): a
    /// later deadline is left to the early wake-up, whose handler re-arms it. Activity that
    /// pushes an idle deadline back (every message) thus costs no timer-table update.
    pub fn pull_in(&mut self, at: Instant) {
        if at < self.at || Instant::now() >= self.at {
            self.reset(at);
        }
    }

    /// Ready once the deadline passed.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            self.registered = false;
            return Poll::Ready(());
        }
        if !self.registered {
            if Pin::new(&mut self.timer).poll(cx).is_ready() {
                return Poll::Ready(());
            }
            self.registered = true;
        }
        Poll::Pending
    }
}
