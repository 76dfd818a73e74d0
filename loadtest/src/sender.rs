//! One sending task per shard for the WebSocket request scenarios (ws-echo, ws-mcp and the
//! fast clients of slow-readers).
//!
//! A connection task that slept on a timer of its own until its next intended send cost a
//! reactor timer update (in a table of 15,000) and a task wake-up per request. Here one task
//! per shard writes every due request itself, straight to its connection's socket, and
//! sleeps on a single timer until the next one is due; the connection tasks only read
//! replies, and flush what a full socket did not take. At ws-mcp 90,000/s over 15K
//! connections that took the load generator's busy share from 87% to 82-83%.
//!
//! Every connection of a run has the same period and is phase-shifted by its global index
//! (see [`Ctx::schedule`](crate::ctx::Ctx::schedule)), so in index order their sends come round in a fixed
//! cycle: the sender walks its connections in that order with a cursor and never searches.
//!
//! Over TLS (`wss://`) the sender cannot write plaintext to the socket: it queues the frame in
//! the link's `out` and wakes the connection task, whose flush seals it. TLS runs therefore
//! pay a task wake-up per request on the client side besides the encryption, so the load
//! generator's busy share of a TLS run is not comparable to a plain run's; compare the
//! server's busy shares.

use crate::cli::Protocol;
use crate::mcp::EchoTemplate;
use crate::net::ScheduleTimer;
use crate::schedule::Schedule;
use crate::stats::ShardStats;
use ringmcp::proto::ws::{deflate, encode_frame, CompressPolicy, OpCode};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::task::Waker;
use std::time::Instant;

/// Requests written per turn at most when behind, before replies get their turn.
const BATCH: usize = 64;

/// What a connection's requests are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A text message of the payload's size, echoed back.
    Echo,
    /// MCP `tools/call echo` with the payload as its message.
    McpEcho,
}

/// Requests in flight on one connection, oldest first: (id, intended send time).
#[derive(Debug, Default)]
pub struct InFlight {
    pub queue: VecDeque<(u64, Instant)>,
}

impl InFlight {
    /// Removes request `id` (FIFO for echo, where replies carry no id); its intended time.
    pub fn take(&mut self, id: Option<u64>) -> Option<Instant> {
        match id {
            None => self.queue.pop_front().map(|(_, at)| at),
            Some(id) => {
                let pos = self.queue.iter().position(|(i, _)| *i == id)?;
                self.queue.remove(pos).map(|(_, at)| at)
            }
        }
    }
}

/// The sending half of one connection, shared by its task and the shard's [`Sender`].
#[derive(Debug)]
pub struct Link {
    /// The socket to write requests to directly; None over TLS, where only the connection
    /// task's flush can seal them.
    fd: Option<RawFd>,
    global: usize,
    request: Request,
    /// Requests go compressed (permessage-deflate was agreed).
    compress: Option<CompressPolicy>,
    schedule: Schedule,
    next_id: u64,
    /// Requests written and not yet answered.
    pub inflight: InFlight,
    /// Bytes the socket has not taken yet (queued frames go behind them, in order).
    pub out: Vec<u8>,
    /// Intended times of the requests still (partly) in `out`.
    pub lag_pending: Vec<Instant>,
    /// Bytes written to the socket by the sender.
    pub bytes_out: u64,
    /// The connection task, woken when `out` needs flushing.
    flusher: Option<Waker>,
    /// The connection sends nothing more (its task is closing or gone).
    retired: bool,
}

impl Link {
    /// The sending half of connection `global` on plain socket `fd` (None: a TLS socket). It
    /// sends nothing until the [`Sender`] it joins gives it its schedule.
    pub fn new(
        fd: Option<RawFd>,
        global: usize,
        request: Request,
        compress: Option<CompressPolicy>,
    ) -> Link {
        Link {
            fd,
            global,
            request,
            compress,
            schedule: Schedule::empty(Instant::now()),
            next_id: 1,
            inflight: InFlight::default(),
            out: Vec::new(),
            lag_pending: Vec::new(),
            bytes_out: 0,
            flusher: None,
            retired: false,
        }
    }

    /// No request is left to send.
    pub fn schedule_done(&self) -> bool {
        self.schedule.peek().is_none()
    }

    /// Registers the connection task to flush `out` (kept while it stays the same task).
    pub fn set_flusher(&mut self, waker: &Waker) {
        if !self.flusher.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.flusher = Some(waker.clone());
        }
    }

    /// Stops sending; hands back what the socket has not taken yet.
    pub fn retire(&mut self) -> Vec<u8> {
        self.retired = true;
        std::mem::take(&mut self.out)
    }

    /// Records the send lag of every request in `out` once it is empty.
    pub fn record_flushed(&mut self, stats: &ShardStats) {
        if self.out.is_empty() {
            let now = Instant::now();
            for &at in &self.lag_pending {
                stats.record_lag(now.saturating_duration_since(at));
            }
            self.lag_pending.clear();
        }
    }

    fn next_due(&self) -> Option<Instant> {
        if self.retired {
            return None;
        }
        self.schedule.peek()
    }

    /// Writes `frame` (the requests due now) directly to a plain socket when nothing is
    /// queued ahead of it; what the socket does not take, and over TLS all of it, waits in
    /// `out` for the connection task.
    fn write(&mut self, frame: &[u8]) {
        let mut rest = frame;
        // A full socket, or an error: the connection task's flush waits for room, or meets
        // the error again and reports it.
        if let (Some(fd), true) = (self.fd, self.out.is_empty()) {
            if let Ok(n) = send_now(fd, frame) {
                self.bytes_out += n as u64;
                rest = &frame[n..];
            }
        }
        if !rest.is_empty() {
            self.out.extend_from_slice(rest);
            if let Some(task) = &self.flusher {
                task.wake_by_ref();
            }
        }
    }
}

/// One non-blocking `send`; `WouldBlock` when the socket is full.
fn send_now(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is a live slice of `bytes.len()` bytes; `fd` is the link's socket,
    // open while the link is not retired (its connection task retires it before closing).
    let n = unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// The shard's sender: connections join it once set up, it runs the measured phase.
#[derive(Default)]
pub struct Sender {
    links: RefCell<Vec<Rc<RefCell<Link>>>>,
}

impl Sender {
    /// Adds a set-up connection (before the measured phase starts).
    pub fn join(&self, link: Rc<RefCell<Link>>) {
        self.links.borrow_mut().push(link);
    }

    /// Gives every joined connection its schedule (`schedule(global index)`), then writes each
    /// request (of a `payload`-byte message, MCP ones in `protocol`'s shape) at its intended time until every schedule ran
    /// out or its connection retired.
    pub async fn run(
        &self,
        stats: &ShardStats,
        protocol: Protocol,
        payload: usize,
        schedule: impl Fn(usize) -> Schedule,
    ) {
        let mut links = self.links.take();
        if links.is_empty() {
            return;
        }
        links.sort_by_key(|link| link.borrow().global);
        for link in &links {
            let mut link = link.borrow_mut();
            link.schedule = schedule(link.global);
        }
        let mut writer = RequestWriter::new(protocol, payload);
        let mut cursor = 0;
        let mut timer = ScheduleTimer::at(Instant::now());
        loop {
            let now = Instant::now();
            let mut written = 0;
            // Links passed in a row with nothing left to send.
            let mut finished = 0;
            let next = loop {
                if finished == links.len() {
                    return;
                }
                let mut link = links[cursor].borrow_mut();
                match link.next_due() {
                    None => finished += 1,
                    Some(at) if at > now => break Some(at),
                    Some(_) => {
                        finished = 0;
                        writer.write_due(&mut link, now, stats);
                        written += 1;
                    }
                }
                drop(link);
                cursor = (cursor + 1) % links.len();
                if written == BATCH {
                    break None;
                }
            };
            match next {
                Some(at) => {
                    timer.reset(at);
                    std::future::poll_fn(|cx| timer.poll_expired(cx)).await;
                }
                // Behind schedule: let the executor read replies before the next batch.
                None => glommio::executor().yield_task_queue_now().await,
            }
        }
    }
}

/// Encodes requests into one reused frame buffer.
struct RequestWriter {
    template: EchoTemplate,
    echo_payload: Vec<u8>,
    body: Vec<u8>,
    frame: Vec<u8>,
}

impl RequestWriter {
    fn new(protocol: Protocol, payload: usize) -> RequestWriter {
        RequestWriter {
            template: EchoTemplate::speaking(protocol, payload),
            echo_payload: crate::mcp::echo_message(payload).into_bytes(),
            body: Vec::new(),
            frame: Vec::new(),
        }
    }

    /// Writes every request of `link` due at `now` (more than one when behind).
    fn write_due(&mut self, link: &mut Link, now: Instant, stats: &ShardStats) {
        self.frame.clear();
        while let Some(intended) = link.schedule.take_due(now) {
            match link.request {
                Request::Echo => {
                    text_frame(&mut self.frame, &self.echo_payload, link.compress);
                    link.inflight.queue.push_back((0, intended));
                }
                Request::McpEcho => {
                    self.body.clear();
                    self.template.write(&mut self.body, link.next_id);
                    text_frame(&mut self.frame, &self.body, link.compress);
                    link.inflight.queue.push_back((link.next_id, intended));
                    link.next_id += 1;
                }
            }
            link.lag_pending.push(intended);
            ShardStats::add(&stats.sent, 1);
        }
        link.write(&self.frame);
        link.record_flushed(stats);
    }
}

/// Appends a masked text frame (RFC 6455 §5.3: "The client MUST mask all frames that it
/// sends to the server"), compressed by `compress` when the connection agreed to it.
pub fn text_frame(out: &mut Vec<u8>, payload: &[u8], compress: Option<CompressPolicy>) {
    match compress {
        Some(policy) => deflate::encode_message(out, OpCode::Text, payload, policy, random_mask()),
        None => encode_frame(out, OpCode::Text, true, payload, random_mask()),
    }
}

/// A fresh masking key (RFC 6455 §5.3: "unpredictable").
pub fn random_mask() -> Option<[u8; 4]> {
    Some(fastrand::u32(..).to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn inflight_matches_by_id_or_fifo() {
        let now = Instant::now();
        let later = now + Duration::from_millis(1);
        let mut f = InFlight {
            queue: VecDeque::from([(1, now), (2, later)]),
        };
        assert_eq!(f.take(Some(2)), Some(later));
        assert_eq!(f.take(Some(9)), None);
        assert_eq!(f.take(None), Some(now));
        assert_eq!(f.take(None), None);
    }
}
