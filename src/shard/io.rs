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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    /// Echoes whatever arrives on one connection of a loopback listener; returns its address.
    fn echo_server() -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            let Ok((mut conn, _)) = listener.accept() else {
                return;
            };
            let _ = conn.set_nodelay(true);
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                if conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        addr
    }

    /// A task woken by its timer runs on time while socket reads wake the same shard at
    /// nearby instants, as the load generator's sender does beside its connections' readers.
    /// Regression: an executor turn that found a completion in glommio's latency ring before it
    /// ran any task queue (a sleep timer left armed from the last park that fired just then)
    /// reported "no work" and parked with the woken tasks still queued, so the sender slept
    /// until some unrelated event (vendor/glommio/PATCHES.md, patch 6).
    #[test]
    fn a_timer_woken_task_runs_on_time_beside_socket_reads() {
        const RUN: Duration = Duration::from_millis(1500);
        // Nothing else wakes the shard: a task stranded in its queue waits for this.
        const RESCUE: Duration = Duration::from_secs(4);
        let addr = echo_server();
        let worst = crate::shard::pool("io-test", 1)
            .expect("pool")
            .on_all_shards(move || async move {
                let mut stream = TcpStream::connect(addr).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let fd = stream.as_raw_fd();
                let reader = glommio::spawn_local(async move {
                    let mut inbuf = Vec::new();
                    while let Ok(1..) =
                        std::future::poll_fn(|cx| poll_read_into(&mut stream, cx, &mut inbuf)).await
                    {
                        inbuf.clear();
                    }
                });
                glommio::spawn_local(glommio::timer::sleep(RESCUE)).detach();
                let start = Instant::now();
                let mut next = start;
                let mut timer = Deadline::at(next);
                let mut worst = Duration::ZERO;
                // Periods from 20 to 147 us sweep the sender's deadline across the echo's
                // round trip, so the two wake-ups race at every phase.
                let mut period_us = 20;
                while next < start + RUN {
                    timer.reset(next);
                    std::future::poll_fn(|cx| timer.poll_expired(cx)).await;
                    let now = Instant::now();
                    worst = worst.max(now - next);
                    // SAFETY: `fd` is the open socket `reader` owns; one byte from a live array.
                    let sent =
                        unsafe { libc::send(fd, b"x".as_ptr().cast(), 1, libc::MSG_DONTWAIT) };
                    assert_eq!(sent, 1, "send");
                    period_us = 20 + (period_us * 7 + 13) % 128;
                    next = now + Duration::from_micros(period_us);
                }
                // SAFETY: as above; the reader sees end of stream once the echo closes.
                unsafe { libc::shutdown(fd, libc::SHUT_WR) };
                reader.await;
                worst
            })
            .expect("spawn")
            .join_all()
            .into_iter()
            .map(|r| r.expect("shard"))
            .max()
            .expect("one shard");
        assert!(
            worst < Duration::from_millis(250),
            "the timer-woken task ran {worst:?} after its deadline"
        );
    }
}
