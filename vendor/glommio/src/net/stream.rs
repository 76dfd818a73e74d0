// Unless explicitly stated otherwise all files in this repository are licensed
// under the MIT/Apache-2.0 License, at your convenience
//
// This product includes software developed at Datadog (https://www.datadoghq.com/). Copyright 2020 Datadog, Inc.
//
use crate::{
    reactor::Reactor,
    sys::{self, MultishotState, Source, SourceType},
};
use futures_lite::ready;
use nix::sys::socket::MsgFlags;
use std::{
    cell::{Cell, OnceCell},
    io,
    net::Shutdown,
    os::unix::io::{AsRawFd, FromRawFd, RawFd},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

type Result<T> = crate::Result<T, ()>;

/// Root trait for socket stream receive buffer
pub trait RxBuf {
    fn read(&mut self, buf: &mut [u8]) -> usize;
    fn peek(&self, buf: &mut [u8]) -> usize;
    fn is_empty(&self) -> bool;
    fn as_bytes(&self) -> &[u8];
    fn consume(&mut self, amt: usize);
    fn buffer_size(&self) -> usize;
    fn handle_result(&mut self, result: usize);
    fn unfilled(&mut self) -> &mut [u8];
}

#[derive(Debug, Default)]
pub struct NonBuffered;

impl RxBuf for NonBuffered {
    fn read(&mut self, _buf: &mut [u8]) -> usize {
        0
    }

    fn peek(&self, _buf: &mut [u8]) -> usize {
        0
    }

    fn is_empty(&self) -> bool {
        true
    }

    fn as_bytes(&self) -> &[u8] {
        &[]
    }

    fn consume(&mut self, _amt: usize) {}

    fn buffer_size(&self) -> usize {
        0
    }

    fn handle_result(&mut self, _result: usize) {}

    fn unfilled(&mut self) -> &mut [u8] {
        &mut []
    }
}

/// Trait for receive buffer implementations
pub trait Buffered: RxBuf {}

/// Non-shared fixed sized receive buffer allocated
/// when buffered stream is created
#[derive(Debug)]
pub struct Preallocated {
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    cap: usize,
}

impl Preallocated {
    const DEFAULT_BUFFER_SIZE: usize = 8192;

    /// Creates a fixed sized receive buffer
    pub fn new(size: usize) -> Self {
        Self {
            buf: vec![0; size],
            tail: 0,
            head: 0,
            cap: size,
        }
    }
}

impl Default for Preallocated {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BUFFER_SIZE)
    }
}

impl Preallocated {
    fn len(&self) -> usize {
        self.tail - self.head
    }
}

impl Buffered for Preallocated {}

impl RxBuf for Preallocated {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        let sz = std::cmp::min(self.len(), buf.len());
        if sz > 0 {
            buf[..sz].copy_from_slice(&self.buf[self.head..self.head + sz]);
            self.head += sz;
        }
        sz
    }

    fn peek(&self, buf: &mut [u8]) -> usize {
        let sz = std::cmp::min(self.len(), buf.len());
        if sz > 0 {
            buf[..sz].copy_from_slice(&self.buf[self.head..self.head + sz]);
        }
        sz
    }

    fn is_empty(&self) -> bool {
        self.head >= self.tail
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.head..self.tail]
    }

    fn consume(&mut self, amt: usize) {
        self.head += std::cmp::min(self.len(), amt);
    }

    fn buffer_size(&self) -> usize {
        self.cap
    }

    fn handle_result(&mut self, result: usize) {
        self.tail += result;
    }

    fn unfilled(&mut self) -> &mut [u8] {
        if self.len() == 0 {
            self.head = 0;
            self.tail = 0;
        }
        &mut self.buf[self.tail..]
    }
}

#[derive(Debug)]
struct Timeout {
    id: u64,
    timeout: Cell<Option<Duration>>,
    timer: Cell<Option<Instant>>,
}

impl Timeout {
    fn new(id: u64) -> Self {
        Self {
            id,
            timeout: Cell::new(None),
            timer: Cell::new(None),
        }
    }

    fn get(&self) -> Option<Duration> {
        self.timeout.get()
    }

    fn set(&self, dur: Option<Duration>) -> Result<()> {
        if let Some(dur) = dur.as_ref() {
            if dur.as_nanos() == 0 {
                return Err(io::Error::from_raw_os_error(libc::EINVAL).into());
            }
        }
        self.timeout.set(dur);
        Ok(())
    }

    fn maybe_set_timer(&self, reactor: &Reactor, waker: &Waker) {
        if let Some(timeout) = self.timeout.get() {
            if self.timer.get().is_none() {
                let deadline = Instant::now() + timeout;
                reactor.insert_timer(self.id, deadline, waker.clone());
                self.timer.set(Some(deadline));
            }
        }
    }

    fn cancel_timer(&self, reactor: &Reactor) {
        if self.timer.take().is_some() {
            reactor.remove_timer(self.id);
        }
    }

    fn check(&self, reactor: &Reactor) -> io::Result<()> {
        if let Some(deadline) = self.timer.get() {
            if !reactor.timer_exists(&(deadline, self.id)) {
                reactor.remove_timer(self.id);
                self.timer.take();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "Operation timed out",
                ));
            }
        }
        Ok(())
    }
}

/// ringmcp patch: what few streams need, boxed together when first needed: the readiness
/// source of a write that waits (its reader is slower than the writer) and the read and write
/// timeouts, allocated together when either is first set. Inline, the timeouts took 80 of a
/// stream's 120 bytes, and the source and the timeouts' box still took 16 of its 32.
#[derive(Debug, Default)]
struct Rare(OnceCell<Box<RareParts>>);

#[derive(Debug, Default)]
struct RareParts {
    source_tx: Option<Source>,
    timeouts: OnceCell<Timeouts>,
}

#[derive(Debug)]
struct Timeouts {
    read: Timeout,
    write: Timeout,
}

/// Which of a stream's timeouts.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Read,
    Write,
}

impl Rare {
    fn parts_mut(&mut self) -> &mut RareParts {
        self.0.get_or_init(Box::default);
        self.0.get_mut().expect("initialized above")
    }

    /// The readiness source of the write that waits, if one does.
    fn source_tx(&mut self) -> Option<&mut Option<Source>> {
        self.0.get_mut().map(|parts| &mut parts.source_tx)
    }

    fn of(&self, direction: Direction) -> Option<&Timeout> {
        let timeouts = self.0.get()?.timeouts.get()?;
        Some(match direction {
            Direction::Read => &timeouts.read,
            Direction::Write => &timeouts.write,
        })
    }

    fn get(&self, direction: Direction) -> Option<Duration> {
        self.of(direction).and_then(Timeout::get)
    }

    fn set(&self, direction: Direction, dur: Option<Duration>) -> Result<()> {
        if self.of(direction).is_none() {
            if dur.is_none() {
                return Ok(());
            }
            let reactor = crate::executor().reactor();
            let parts = self.0.get_or_init(Box::default);
            let _ = parts.timeouts.set(Timeouts {
                read: Timeout::new(reactor.register_timer()),
                write: Timeout::new(reactor.register_timer()),
            });
        }
        self.of(direction).map_or(Ok(()), |timeout| timeout.set(dur))
    }

    fn maybe_set_timer(&self, direction: Direction, reactor: &Reactor, waker: &Waker) {
        if let Some(timeout) = self.of(direction) {
            timeout.maybe_set_timer(reactor, waker);
        }
    }

    fn cancel_timer(&self, direction: Direction, reactor: &Reactor) {
        if let Some(timeout) = self.of(direction) {
            timeout.cancel_timer(reactor);
        }
    }

    fn check(&self, direction: Direction, reactor: &Reactor) -> io::Result<()> {
        self.of(direction)
            .map_or(Ok(()), |timeout| timeout.check(reactor))
    }
}

#[derive(Debug)]
/// ringmcp patch: no `reactor: Weak<Reactor>` field; a stream is `!Send`, so the reactor of the
/// thread it runs on, `crate::executor().reactor()`, is the one it was made on (8 B per socket).
pub(crate) struct NonBufferedStream<S> {
    stream: S,
    source_rx: Option<Source>,
    rare: Rare,
    /// ringmcp patch: the peer ended the stream (a read returned 0). Here rather than in
    /// `GlommioStream`, where it took 8 bytes of its own: beside the descriptor it takes none.
    rx_done: Cell<bool>,
}

impl<S: AsRawFd> NonBufferedStream<S> {
    fn init(&mut self) {
        let reactor = crate::executor().reactor();
        let stream_fd = self.stream.as_raw_fd();
        self.source_rx = Some(reactor.poll_read_ready(stream_fd));
    }

    pub(crate) fn try_peek(&self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        super::yolo_peek(self.stream.as_raw_fd(), buf)
    }

    pub(crate) async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let source = crate::executor().reactor().recv(
            self.stream.as_raw_fd(),
            buf.len(),
            MsgFlags::MSG_PEEK,
        );

        let sz = source.collect_rw().await?;
        match source.extract_source_type() {
            SourceType::SockRecv(mut src) => {
                buf[0..sz].copy_from_slice(&src.take().unwrap().as_bytes()[0..sz]);
            }
            _ => unreachable!(),
        }
        Ok(sz)
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let reactor = crate::executor().reactor();
        let reactor = reactor.as_ref();

        let no_pending_poll = self
            .source_rx
            .as_ref()
            .map(|src| src.result().is_some())
            .unwrap_or(true);

        if no_pending_poll {
            if let Some(result) = super::yolo_recv(self.stream.as_raw_fd(), buf) {
                self.source_rx.take();
                self.rare.cancel_timer(Direction::Read, reactor);
                let result = poll_err!(result);
                // Start an early poll if the buffer is not fully filled. So when
                // the next time `poll_read` is called, it will be known immediately
                // whether the underlying stream is ready for reading.
                if result > 0 && result < buf.len() {
                    self.source_rx = Some(reactor.poll_read_ready(self.stream.as_raw_fd()));
                    // The `rush_dispatch`s here and after could be removed to
                    // improve performance if #458 is handled appropriately.
                    // reactor.rush_dispatch(self.source_rx.as_ref().unwrap());
                }
                return Poll::Ready(Ok(result));
            }
        }

        poll_err!(self.rare.check(Direction::Read, reactor));

        if no_pending_poll {
            self.source_rx = Some(reactor.poll_read_ready(self.stream.as_raw_fd()));
            // reactor.rush_dispatch(self.source_rx.as_ref().unwrap());
        }

        let source = self.source_rx.as_ref().unwrap();
        source.add_waiter_single(cx.waker());
        self.rare
            .maybe_set_timer(Direction::Read, reactor, cx.waker());
        Poll::Pending
    }

    /// ringmcp patch: appends what arrived to `buf`, from a multishot receive into the
    /// reactor's provided buffers (armed on first use, and again after it stopped): no
    /// readiness poll re-armed and no `recv` call per arrival. Once used, the stream must not
    /// be read with `poll_read`.
    pub(crate) fn poll_recv_multishot(
        &mut self,
        cx: &Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<io::Result<usize>> {
        let reactor = crate::executor().reactor();
        if self.multishot_source().is_none() {
            // The readiness poll a new stream starts with (`init`) is dropped, and canceled.
            self.source_rx = Some(reactor.recv_multishot(self.stream.as_raw_fd()));
        }
        let source = self.source_rx.as_ref().unwrap();
        let mut inner = source.inner.borrow_mut();
        let SourceType::SockRecvMultishot(recv) = &mut inner.source_type else {
            unreachable!();
        };
        let state = recv.state;
        if state == MultishotState::Capped {
            // The rest of what the peer sent is in the socket: one more arrival, then all of
            // it goes to the reader at once.
            drop(inner);
            reactor.arm_recv_multishot(source);
            source.add_waiter_single(cx.waker());
            return Poll::Pending;
        }
        let got = recv.pending.len();
        if got > 0 {
            if buf.is_empty() {
                *buf = std::mem::take(&mut recv.pending);
            } else {
                buf.extend_from_slice(&recv.pending);
                recv.pending = Vec::new();
            }
        }
        drop(inner);
        if state == MultishotState::Stopped {
            reactor.arm_recv_multishot(source);
        }
        if got > 0 {
            return Poll::Ready(Ok(got));
        }
        match state {
            MultishotState::Ended(None) => Poll::Ready(Ok(0)),
            MultishotState::Ended(Some(errno)) => {
                Poll::Ready(Err(io::Error::from_raw_os_error(errno)))
            }
            MultishotState::Stopped
            | MultishotState::Armed
            | MultishotState::Stopping
            | MultishotState::Capped => {
                source.add_waiter_single(cx.waker());
                Poll::Pending
            }
        }
    }

    /// ringmcp patch: the stream's multishot receive, once one was armed.
    fn multishot_source(&self) -> Option<&Source> {
        self.source_rx.as_ref().filter(|source| {
            matches!(source.inner.borrow().source_type, SourceType::SockRecvMultishot(_))
        })
    }

    /// ringmcp patch: stops the multishot receive, if one runs, and returns the bytes it
    /// took that nobody read: after this the socket's unread bytes are all in the kernel or
    /// in the returned buffer (for a socket that moves to another thread's reactor).
    pub(crate) async fn stop_recv_multishot(&mut self) -> Vec<u8> {
        let Some(source) = self.multishot_source() else {
            return Vec::new();
        };
        crate::executor().reactor().stop_recv_multishot(source);
        futures_lite::future::poll_fn(|cx| {
            let mut inner = source.inner.borrow_mut();
            let SourceType::SockRecvMultishot(recv) = &mut inner.source_type else {
                unreachable!();
            };
            if recv.state != MultishotState::Stopping {
                return Poll::Ready(std::mem::take(&mut recv.pending));
            }
            drop(inner);
            source.add_waiter_single(cx.waker());
            Poll::Pending
        })
        .await
    }

    pub(crate) fn poll_write(&mut self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        // On the write path, we always start with calling `yolo_send`, because
        // it is very likely to success. It could be a waste if it already timed
        // out since the last `poll_write`, but it would not cost much more to
        // give it one last chance in this case.
        if let Some(result) = super::yolo_send(self.stream.as_raw_fd(), buf) {
            if let Some(source_tx) = self.rare.source_tx() {
                source_tx.take();
                let reactor = crate::executor().reactor();
                self.rare.cancel_timer(Direction::Write, reactor.as_ref());
            }
            return Poll::Ready(result);
        }

        let reactor = crate::executor().reactor();
        let reactor = reactor.as_ref();
        poll_err!(self.rare.check(Direction::Write, reactor));

        let fd = self.stream.as_raw_fd();
        let source_tx = &mut self.rare.parts_mut().source_tx;
        let no_pending_poll = source_tx
            .as_ref()
            .map(|src| src.result().is_some())
            .unwrap_or(true);

        if no_pending_poll {
            *source_tx = Some(reactor.poll_write_ready(fd));
        }

        let source = source_tx.as_ref().unwrap();
        source.add_waiter_single(cx.waker());
        self.rare
            .maybe_set_timer(Direction::Write, reactor, cx.waker());
        Poll::Pending
    }

    pub(crate) fn poll_close(&mut self, _: &Context<'_>) -> Poll<io::Result<()>> {
        if let Some(source_tx) = self.rare.source_tx() {
            source_tx.take();
        }
        Poll::Ready(sys::shutdown(self.stream.as_raw_fd(), Shutdown::Write))
    }

    /// io_uring has support for shutdown now, but it is not in any released
    /// kernel. Even with my "let's use latest" policy it would be crazy to
    /// mandate a kernel that doesn't even exist. So in preparation for that
    /// we'll sync-emulate this but already on an async wrapper
    pub(crate) fn poll_shutdown(
        &self,
        _cx: &mut Context<'_>,
        how: Shutdown,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(sys::shutdown(self.stream.as_raw_fd(), how))
    }
}

#[derive(Debug)]
pub(crate) struct GlommioStream<S, B> {
    stream: NonBufferedStream<S>,
    rx_buf: B,
}

impl<S> From<socket2::Socket> for GlommioStream<S, NonBuffered>
where
    S: AsRawFd + From<socket2::Socket> + Unpin,
{
    fn from(socket: socket2::Socket) -> Self {
        let mut stream = NonBufferedStream {
            stream: socket.into(),
            source_rx: None,
            rare: Rare::default(),
            rx_done: Cell::new(false),
        };
        stream.init();
        GlommioStream {
            stream,
            rx_buf: NonBuffered,
        }
    }
}

impl<S: AsRawFd> AsRawFd for GlommioStream<S, NonBuffered> {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.stream.as_raw_fd()
    }
}

impl<S> FromRawFd for GlommioStream<S, NonBuffered>
where
    S: AsRawFd + FromRawFd + From<socket2::Socket> + Unpin,
{
    unsafe fn from_raw_fd(fd: RawFd) -> Self {
        let socket = socket2::Socket::from_raw_fd(fd);
        GlommioStream::from(socket)
    }
}

impl<S: AsRawFd> GlommioStream<S, NonBuffered> {
    pub(crate) fn poll_recv_multishot(
        &mut self,
        cx: &Context<'_>,
        buf: &mut Vec<u8>,
    ) -> Poll<io::Result<usize>> {
        self.stream.poll_recv_multishot(cx, buf)
    }

    pub(crate) async fn stop_recv_multishot(&mut self) -> Vec<u8> {
        self.stream.stop_recv_multishot().await
    }
}

impl<S> GlommioStream<S, NonBuffered> {
    pub(crate) fn buffered_with<B: Buffered>(self, rx_buf: B) -> GlommioStream<S, B> {
        GlommioStream {
            stream: self.stream,
            rx_buf,
        }
    }
}

impl<S: AsRawFd, B: RxBuf> GlommioStream<S, B> {
    /// Receives data on the socket from the remote address to which it is
    /// connected, without removing that data from the queue.
    ///
    /// On success, returns the number of bytes peeked.
    /// Successive calls return the same data. This is accomplished by passing
    /// `MSG_PEEK` as a flag to the underlying `recv` system call.
    pub(crate) async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut pos = self.rx_buf.peek(buf);
        if pos < buf.len() && !self.stream.rx_done.get() {
            if let Some(result) = self.stream.try_peek(&mut buf[pos..]) {
                match result {
                    Err(e) => return Err(e),
                    Ok(len) => {
                        pos += len;
                        if len == 0 {
                            self.stream.rx_done.set(true);
                        }
                    }
                }
            }
        }
        if pos > 0 || self.stream.rx_done.get() {
            return Ok(pos);
        }
        self.stream.peek(buf).await
    }

    pub(crate) fn poll_read(
        &mut self,
        cx: &Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if self.rx_buf.is_empty() {
            if buf.len() >= self.rx_buf.buffer_size() {
                return self.stream.poll_read(cx, buf);
            }
            if !self.stream.rx_done.get() {
                poll_err!(ready!(self.poll_replenish_buffer(cx)));
            }
        }
        Poll::Ready(Ok(self.rx_buf.read(buf)))
    }

    fn poll_replenish_buffer(&mut self, cx: &Context<'_>) -> Poll<io::Result<usize>> {
        let result = poll_err!(ready!(self.stream.poll_read(cx, self.rx_buf.unfilled())));
        self.rx_buf.handle_result(result);
        if result == 0 {
            self.stream.rx_done.set(true);
        }
        Poll::Ready(Ok(result))
    }

    pub(crate) fn poll_write(&mut self, cx: &Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.stream.poll_write(cx, buf)
    }

    pub(crate) fn poll_flush(&self, _cx: &Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    pub(crate) fn poll_close(&mut self, cx: &Context<'_>) -> Poll<io::Result<()>> {
        self.stream.poll_close(cx)
    }

    pub(crate) fn poll_shutdown(
        &self,
        cx: &mut Context<'_>,
        how: Shutdown,
    ) -> Poll<io::Result<()>> {
        self.stream.poll_shutdown(cx, how)
    }

    pub(crate) fn set_write_timeout(&self, dur: Option<Duration>) -> Result<()> {
        self.stream.rare.set(Direction::Write, dur)
    }

    pub(crate) fn set_read_timeout(&self, dur: Option<Duration>) -> Result<()> {
        self.stream.rare.set(Direction::Read, dur)
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.stream.rare.get(Direction::Write)
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.stream.rare.get(Direction::Read)
    }

    pub(crate) fn stream(&self) -> &S {
        &self.stream.stream
    }
}

impl<S: AsRawFd, B: Buffered> GlommioStream<S, B> {
    pub(crate) fn poll_fill_buf(&mut self, cx: &Context<'_>) -> Poll<io::Result<&[u8]>> {
        if self.rx_buf.is_empty() {
            poll_err!(ready!(self.poll_replenish_buffer(cx)));
        }
        Poll::Ready(Ok(self.rx_buf.as_bytes()))
    }

    pub(crate) fn consume(&mut self, amt: usize) {
        self.rx_buf.consume(amt);
    }
}
