// Unless explicitly stated otherwise all files in this repository are licensed
// under the MIT/Apache-2.0 License, at your convenience
//
// This product includes software developed at Datadog (https://www.datadoghq.com/). Copyright 2021 Datadog, Inc.
//
use crate::{
    iou::sqe::SockAddrStorage,
    sys::{
        DmaBuffer, IoBuffer, PollableStatus, RingId, SourceId, Statx, TimeSpec64,
        Wakers,
    },
    GlommioError, IoRequirements, ReactorErrorKind, RingIoStats, TaskQueueHandle,
};
use futures_lite::{future, io};
use std::{
    cell::{Ref, RefCell, RefMut},
    convert::TryFrom,
    ffi::CString,
    fmt,
    mem::MaybeUninit,
    os::unix::io::RawFd,
    path::PathBuf,
    pin::Pin,
    rc::Rc,
    task::{Poll, Waker},
    time::Duration,
};

#[derive(Debug)]
#[allow(dead_code)] // Clippy is unhappy with some of the fields on these enums never being read,
                    // but they are certainly used, and read by debug
pub(crate) enum SourceType {
    // ringmcp patch: the buffers of the file and one-shot socket operations (48-56 bytes) and
    // a rename's two paths are boxed, so the largest variant is the multishot receive (32
    // bytes) every stream keeps: a source's allocation one 32-byte class smaller (patch 15).
    Write(PollableStatus, Box<IoBuffer>),
    Read(PollableStatus, Option<Box<IoBuffer>>),
    PollAdd,
    SockSend(Box<DmaBuffer>),
    SockRecv(Option<Box<DmaBuffer>>),
    // ringmcp patch: a multishot receive into the ring's provided buffers.
    SockRecvMultishot(MultishotRecv),
    // ringmcp patch: the datagram message operations' state is boxed. Inline it was 256 of
    // the 472 bytes of every source, and every stream keeps one source armed.
    SockRecvMsg(
        Box<(
            Option<DmaBuffer>,
            libc::iovec,
            libc::msghdr,
            MaybeUninit<nix::sys::socket::sockaddr_storage>,
        )>,
    ),
    SockSendMsg(
        Box<(
            DmaBuffer,
            libc::iovec,
            libc::msghdr,
            nix::sys::socket::SockaddrStorage,
        )>,
    ),
    Open(CString),
    FdataSync,
    Fallocate,
    Truncate,
    Close,
    LinkRings,
    ForeignNotifier(u64, bool),
    Statx(CString, Box<RefCell<Statx>>),
    Timeout(TimeSpec64, u32),
    // ringmcp patch: boxed, as the message operations' state is (128 bytes of address).
    Connect(Box<nix::sys::socket::SockaddrStorage>),
    Accept(Box<SockAddrStorage>),
    Rename(Box<(PathBuf, PathBuf)>),
    CreateDir(PathBuf),
    Remove(PathBuf),
    BlockingFn,
    Invalid,
    CopyFileRange(RawFd, u64, usize),
    #[cfg(feature = "bench")]
    Noop,
}

/// Bytes one arming of a multishot receive takes before the kernel ends it (`sqe->optlen`,
/// Linux 6.17). Only the reader's next poll arms it again, so a connection that is not reading
/// keeps at most this in user memory, or twice this when the cap ended an arming with bytes
/// still in the socket and the poll that armed it again took none (`MultishotState::Capped`).
/// Stopping the receive from here once this much waited
/// was not a bound: the kernel fills every free provided buffer (up to two rings' worth, 4
/// MiB) before a cancellation reaches it when the shard's thread is kept from running.
pub(crate) const MULTISHOT_LIMIT_BYTES: u32 = 64 * 1024;

/// ringmcp patch: a multishot `recv` on a socket. The reactor appends what each completion
/// carries to `pending`; the stream's reader takes it from there.
#[derive(Debug, Default)]
pub(crate) struct MultishotRecv {
    pub(crate) pending: Vec<u8>,
    pub(crate) state: MultishotState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MultishotState {
    /// Not in the kernel: arm it when the reader wants bytes.
    #[default]
    Stopped,
    /// In the kernel, posting a completion per arrival.
    Armed,
    /// In the kernel with a cancellation on its way (the stream hands its socket on).
    Stopping,
    /// Ended by its cap while the socket still held bytes (`IORING_CQE_F_SOCK_NONEMPTY`):
    /// the next poll arms it again and keeps what waits until the next arrival, so the cap
    /// does not cut a message the peer sent whole (a cut message is partial input, which the
    /// server refuses while its inbound budget is spent).
    Capped,
    /// The peer closed (`None`) or the socket failed (the errno).
    Ended(Option<i32>),
}

impl MultishotRecv {
    /// Takes a completion's result (its bytes are already in `pending`); `more` says the
    /// request stays armed, `socket_nonempty` that bytes are still waiting in the socket.
    pub(crate) fn complete(&mut self, res: i32, more: bool, socket_nonempty: bool) {
        if more {
            return;
        }
        self.state = match res {
            0 => MultishotState::Ended(None),
            r if r > 0 && socket_nonempty => MultishotState::Capped,
            // Out of buffers (ENOBUFS), stopped by us (ECANCELED), or a last completion
            // that carried data (its arming took `MULTISHOT_LIMIT_BYTES`): arm again when the
            // reader asks.
            r if r > 0 || r == -libc::ENOBUFS || r == -libc::ECANCELED => {
                MultishotState::Stopped
            }
            r => MultishotState::Ended(Some(-r)),
        };
    }
}

impl TryFrom<SourceType> for Statx {
    type Error = GlommioError<()>;

    fn try_from(value: SourceType) -> Result<Self, Self::Error> {
        match value {
            SourceType::Statx(_, buf) => Ok(buf.into_inner()),
            src => Err(GlommioError::ReactorError(
                ReactorErrorKind::IncorrectSourceType(format!("{src:?}")),
            )),
        }
    }
}

#[derive(PartialEq, Clone, Copy)]
pub(crate) enum EnqueuedStatus {
    Enqueued,
    Canceled,
    Dispatched,
}

#[derive(Clone)]
pub struct EnqueuedSource {
    pub(crate) id: SourceId,
    pub(crate) ring: RingId,
    pub(crate) status: EnqueuedStatus,
}

pub(crate) type StatsCollectionFn = fn(&io::Result<usize>, &mut RingIoStats, waiters: u64) -> ();
pub(crate) type LatencyCollectionFn =
    fn(std::time::Duration, std::time::Duration, std::time::Duration, &mut RingIoStats) -> ();

#[derive(Copy, Clone)]
pub(crate) struct StatsCollection {
    /// fulfilled runs when the source exits the reactor
    pub(crate) fulfilled: Option<StatsCollectionFn>,

    /// reused runs when a fulfilled source is reused by another consumer
    pub(crate) reused: Option<StatsCollectionFn>,

    /// Called when a result is first consumed. It collects the time
    /// it took for user code to consume the result of a fulfilled source.
    /// This is called once, even if the source is reused multiple time.
    pub(crate) latency: Option<LatencyCollectionFn>,
}

/// A registered source of I/O events.
pub(crate) struct InnerSource {
    /// Raw file descriptor on Unix platforms.
    pub(crate) raw: RawFd,

    /// Tasks interested in events on this source.
    pub(crate) wakers: Wakers,

    pub(crate) source_type: SourceType,

    // ringmcp patch: whether latency matters, the one question anything asks of a source's
    // I/O requirements (a blocking call's); the whole 24-byte `IoRequirements` made every
    // source a 224-byte allocation, this one fits the padding after `raw`.
    pub(crate) latency_sensitive: bool,

    pub(crate) enqueued: Option<EnqueuedSource>,

    // ringmcp patch: the timeout and the statistics callbacks, which sockets use neither of,
    // are boxed together, with the task queue the statistics are also counted for. Inline
    // they were 72 of the source's 240 bytes.
    pub(crate) extras: Option<Box<SourceExtras>>,
}

/// ringmcp patch: the parts of a source that only some sources have.
#[derive(Default)]
pub(crate) struct SourceExtras {
    pub(crate) timeout: Option<TimeSpec64>,
    pub(crate) stats_collection: Option<StatsCollection>,
    /// The task queue whose statistics the callbacks count in too; read only beside them.
    pub(crate) task_queue: Option<TaskQueueHandle>,
    /// Waiters beyond `Wakers::waiter`: the other readers of a file read several share.
    pub(crate) more_waiters: Vec<Waker>,
    /// The operation's timestamps, kept only by sources that collect latencies, which have
    /// their statistics callbacks here (in `Wakers` they took 8 B of every source, patch 19).
    pub(crate) stamps: super::Stamps,
}

impl InnerSource {
    /// Whether anyone reads this source's queued/submitted/fulfilled timestamps: only
    /// sources with a latency collector do, so the others skip the clock reads.
    pub(crate) fn collects_latency(&self) -> bool {
        self.stats_collection().is_some_and(|x| x.latency.is_some())
    }

    pub(crate) fn stats_collection(&self) -> Option<StatsCollection> {
        self.extras.as_ref().and_then(|x| x.stats_collection)
    }

    /// The timestamps to set, for a source that collects latencies.
    pub(crate) fn stamps(&mut self) -> &mut super::Stamps {
        &mut self.extras.get_or_insert_with(Default::default).stamps
    }

    /// The operation's latencies, once all three timestamps are set.
    pub(crate) fn timestamps(&mut self) -> Option<super::Latencies> {
        self.extras.as_mut()?.stamps.take_latencies()
    }

    /// The task queue the statistics callbacks also count in.
    pub(crate) fn task_queue(&self) -> Option<TaskQueueHandle> {
        self.extras.as_ref().and_then(|x| x.task_queue)
    }

    /// Wakes every waiter; whether there was one.
    pub(crate) fn wake_waiters(&mut self) -> bool {
        let more = self.extras.as_mut().map(|x| std::mem::take(&mut x.more_waiters));
        let woke = self.wakers.waiter.is_some();
        if let Some(waiter) = self.wakers.waiter.take() {
            wake!(waiter);
        }
        for waiter in more.into_iter().flatten() {
            wake!(waiter);
        }
        woke
    }

    /// How many tasks wait for this source's result.
    pub(crate) fn waiter_count(&self) -> usize {
        usize::from(self.wakers.waiter.is_some())
            + self.extras.as_ref().map_or(0, |x| x.more_waiters.len())
    }

    pub(crate) fn update_source_type(&mut self, source_type: SourceType) -> SourceType {
        std::mem::replace(&mut self.source_type, source_type)
    }
}

impl fmt::Debug for InnerSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InnerSource")
            .field("raw", &self.raw)
            .field("wakers", &self.wakers)
            .field("source_type", &self.source_type)
            .field("latency_sensitive", &self.latency_sensitive)
            .finish()
    }
}

#[derive(Debug)]
pub struct Source {
    pub(crate) inner: Pin<Rc<RefCell<InnerSource>>>,
}

impl Source {
    /// Registers an I/O source in the reactor.
    pub(crate) fn new(
        ioreq: IoRequirements,
        raw: RawFd,
        source_type: SourceType,
        stats_collection: Option<StatsCollection>,
        task_queue: Option<TaskQueueHandle>,
    ) -> Source {
        Source {
            inner: Rc::pin(RefCell::new(InnerSource {
                raw,
                wakers: Wakers::new(),
                source_type,
                latency_sensitive: matches!(ioreq.latency_req, crate::Latency::Matters(_)),
                enqueued: None,
                extras: stats_collection.map(|stats| {
                    Box::new(SourceExtras {
                        stats_collection: Some(stats),
                        task_queue,
                        ..SourceExtras::default()
                    })
                }),
            })),
        }
    }

    pub(crate) fn set_timeout(&self, d: Duration) -> Option<Duration> {
        let mut inner = self.inner.borrow_mut();
        let t = &mut inner.extras.get_or_insert_with(Default::default).timeout;
        let old = *t;
        match TimeSpec64::try_from(d) {
            Ok(dur) | Err(dur) => *t = Some(dur),
        }
        old.map(Duration::from)
    }

    pub(super) fn timeout_ref(&self) -> Ref<'_, Option<TimeSpec64>> {
        Ref::map(self.inner.borrow(), |x| {
            x.extras.as_ref().map_or(&None, |extras| &extras.timeout)
        })
    }

    pub(super) fn source_type(&self) -> Ref<'_, SourceType> {
        Ref::map(self.inner.borrow(), |x| &x.source_type)
    }

    pub(crate) fn source_type_mut(&self) -> RefMut<'_, SourceType> {
        RefMut::map(self.inner.borrow_mut(), |x| &mut x.source_type)
    }

    pub(crate) fn extract_source_type(self) -> SourceType {
        self.inner
            .borrow_mut()
            .update_source_type(SourceType::Invalid)
    }

    pub(crate) fn extract_buffer(self) -> IoBuffer {
        let stype = self.extract_source_type();
        match stype {
            SourceType::Read(_, Some(buffer)) => *buffer,
            SourceType::Write(_, buffer) => *buffer,
            x => panic!("Could not extract buffer. Source: {:?}", x),
        }
    }

    pub(crate) fn buffer(&self) -> Ref<'_, IoBuffer> {
        Ref::map(self.source_type(), |stype| match stype {
            SourceType::Read(_, Some(buffer)) => &**buffer,
            SourceType::Write(_, buffer) => &**buffer,
            x => panic!("Could not extract buffer. Source: {:?}", x),
        })
    }

    pub(crate) fn result(&self) -> Option<io::Result<usize>> {
        let mut inner = self.inner.borrow_mut();
        let ret = inner.wakers.result.get();
        if ret.is_none() {
            return ret;
        }

        // if there is a scheduler latency collection function present, invoke it once
        if let Some(Some(stat_fn)) = inner.stats_collection().map(|x| x.latency) {
            if let Some(lat) = inner.timestamps() {
                drop(inner);
                let pre_lat = lat.submitted_at - lat.queued_at;
                let io_lat = lat.fulfilled_at - lat.submitted_at;
                let post_lat = lat.fulfilled_at.elapsed();

                let reactor = &crate::executor().reactor().sys;
                (stat_fn)(
                    pre_lat,
                    io_lat,
                    post_lat,
                    reactor.ring_for_source(self).io_stats_mut(),
                );
                (stat_fn)(
                    pre_lat,
                    io_lat,
                    post_lat,
                    reactor
                        .ring_for_source(self)
                        .io_stats_for_task_queue_mut(crate::executor().current_task_queue()),
                );
            }
        }

        ret
    }

    // adds a single waiter to the list, replacing any waiter that may already
    // exist. Should be used for single streams that map a future 1:1 to their I/O
    // source
    pub(crate) fn add_waiter_single(&self, waker: &Waker) {
        let mut inner = self.inner.borrow_mut();
        match &mut inner.wakers.waiter {
            Some(w) if w.will_wake(waker) => {}
            waiter => *waiter = Some(waker.clone()),
        }
    }

    // adds a waiter to the list. Useful for streams that have many futures waiting
    // on a single I/O source (ringmcp patch: a task already waiting is not added again, so
    // a source polled at every wake-up of its task does not pile up clones of its waker)
    pub(crate) fn add_waiter_many(&self, waker: Waker) {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        match &inner.wakers.waiter {
            None => inner.wakers.waiter = Some(waker),
            Some(first) if first.will_wake(&waker) => {}
            Some(_) => {
                let more = &mut inner.extras.get_or_insert_with(Default::default).more_waiters;
                if !more.iter().any(|w| w.will_wake(&waker)) {
                    more.push(waker);
                }
            }
        }
    }

    pub(super) fn is_installed(&self) -> Option<bool> {
        match &self.inner.borrow().source_type {
            SourceType::ForeignNotifier(_, installed) => Some(*installed),
            _ => None,
        }
    }

    pub(super) fn raw(&self) -> RawFd {
        self.inner.borrow().raw
    }

    pub(crate) fn stats_collection(&self) -> Option<StatsCollection> {
        self.inner.borrow().stats_collection()
    }

    pub(crate) async fn collect_rw(&self) -> io::Result<usize> {
        future::poll_fn(|cx| {
            if let Some(result) = self.result() {
                return Poll::Ready(result);
            }

            // ringmcp patch: one waiter, replaced only by a different waker. Each source's
            // result is awaited by the one operation that owns it, and a source that stays
            // pending (a blocking call) is polled again at every wake-up of its task: pushing
            // a clone per poll piled them up until the task's i16 waker count overflowed.
            self.add_waiter_single(cx.waker());
            Poll::Pending
        })
        .await
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        let mut inner = self.inner.borrow_mut();
        // ringmcp patch: a pending timeout is removed with IORING_OP_TIMEOUT_REMOVE.
        // IORING_OP_ASYNC_CANCEL would first search the poll-cancel hash, which holds
        // every pending socket poll, on every executor turn.
        let is_timeout = matches!(inner.source_type, SourceType::Timeout(..));
        let enqueued = inner.enqueued.as_mut();
        if let Some(EnqueuedSource { id, ring, status }) = enqueued {
            match status {
                EnqueuedStatus::Enqueued => {
                    // We never submitted the request, so it's safe to consume
                    // source here -- kernel didn't see our buffers. By consuming
                    // the source we are signaling to the submit method that we are
                    // no longer interested in submitting this. This should be cheaper
                    // than removing elements from the vector all the time.

                    *status = EnqueuedStatus::Canceled;
                }
                EnqueuedStatus::Dispatched => {
                    // We are cancelling this request, but it is already submitted.
                    // This means that the kernel might be using the buffers right
                    // now, so we delay `consume_source` until we consume the
                    // corresponding event from the completion queue.

                    // ringmcp patch: the queue is found through the running executor. A
                    // source dropped outside `run` (a task dropped with its executor) skips
                    // the cancellation: the request stays in the kernel until it completes
                    // or the ring closes, its source kept by the source map meanwhile.
                    if let Some(reactor) = crate::executor::running_reactor() {
                        let queue = reactor.sys.submission_queue(*ring);
                        queue.borrow_mut().cancel_request(*id, is_timeout);
                    }
                    *status = EnqueuedStatus::Canceled; // not necessary, but useful for correctness
                }
                // ringmcp patch: a multishot receive stopped before it was submitted.
                EnqueuedStatus::Canceled => {}
            }
        }
    }
}
