//! The one driver loop for a connection past its HTTP head (a WebSocket, an
//! SSE response): it writes the connection's outbound queue, reads, watches
//! the shard's stop and one timer, and hands each of those to the
//! transport's state machine, which decides.

use super::io::{Deadline, Socket};
use super::{ConnGuard, Shard};
use crate::transport::outbound::Stall;
use crate::transport::{Connection, Env, Flow, FlushedFlow, HeldBytes};
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

/// What woke the driver.
enum Wake {
    Read(usize),
    /// Input held back at the outbound bound can be taken up again.
    Resume,
    /// The peer went away, the socket failed, or the machine finished.
    End(Flow),
    Timer,
    Stopping,
}

/// A connection past its HTTP head, run by its transport `machine` until it ends; the future
/// resolves to how it ended: [`Flow::Reusable`] when the connection may carry the next HTTP
/// request ([`Driver::into_parts`] gives it back).
///
/// Written by hand rather than as an `async fn`: the shard's table entry (`drive.rs`) then
/// holds these fields and nothing else, where an `async fn` kept references to them, its
/// loop's locals and its `poll_fn` closure beside them (a WebSocket's future: 528 B before,
/// 376 B after, when each was a task of its own). Fields drop in order: the machine, then the
/// socket, then the guard that frees the connection's slot.
pub(super) struct Driver<C> {
    machine: C,
    timer: Deadline,
    stream: Socket,
    /// Bytes read and not taken by the machine yet, between two polls (an idle connection
    /// keeps no read buffer, see io.rs).
    inbuf: HeldBytes,
    conn: ConnGuard,
    /// The machine has taken up the last wake (`on_input`, the deadline) and waits for the next.
    settled: bool,
    half_closed: bool,
    stop_seen: bool,
}

impl<C: Connection> Driver<C> {
    /// Drives `machine` on `stream`; `inbuf` holds bytes already read.
    pub fn new(stream: Socket, inbuf: Vec<u8>, conn: ConnGuard, machine: C) -> Self {
        let timer = Deadline::at(machine.next_deadline(&conn.env()));
        Driver {
            machine,
            timer,
            stream,
            inbuf: HeldBytes::new(inbuf),
            conn,
            settled: false,
            half_closed: false,
            stop_seen: false,
        }
    }

    /// The connection, once the future has resolved (its machine is dropped).
    pub fn into_parts(mut self) -> (Socket, Vec<u8>, ConnGuard) {
        (self.stream, self.inbuf.take(), self.conn)
    }

    /// Hands the machine what it has not seen yet: new input, the inbound budget, and the
    /// deadline it now wants.
    fn settle(&mut self, inbuf: &mut Vec<u8>, now: Instant) {
        let env = self.conn.env();
        self.machine.on_input(inbuf, &env, now);
        if !self.conn.hold_inbound(self.machine.inbound_held(inbuf)) {
            self.machine.over_inbound_budget(inbuf, &env);
        }
        self.timer.pull_in(self.machine.next_deadline(&env));
        self.settled = true;
    }

    /// Writes the outbound queue, then waits for the first of: a read, room again after the
    /// outbound bound, the end, the shard's stop, the timer.
    fn poll_wake(&mut self, cx: &mut Context<'_>, inbuf: &mut Vec<u8>) -> Poll<Wake> {
        let shard = &self.conn.shard;
        let queue = self.machine.outbound();
        let stream = &mut self.stream;
        match queue.with_bytes(|bytes| stream.poll_flush(cx, bytes)) {
            Poll::Ready(Ok(n)) => shard.metrics.wrote(n),
            Poll::Ready(Err(_)) => return Poll::Ready(Wake::End(Flow::Drop)),
            Poll::Pending => {}
        }
        let holding = self.machine.is_holding();
        match queue.watch_stall(holding, Instant::now) {
            Stall::Started(_) => {
                shard.metrics.backpressure();
                return Poll::Ready(Wake::Timer);
            }
            Stall::Since(_) | Stall::Flowing => {}
        }
        if holding && queue.has_room_again() {
            return Poll::Ready(Wake::Resume);
        }
        if queue.is_empty() {
            match self.machine.when_flushed() {
                FlushedFlow::Finish(flow) => return Poll::Ready(Wake::End(flow)),
                FlushedFlow::HalfClose if !self.half_closed => {
                    let _ = self.stream.poll_close(cx);
                    self.half_closed = true;
                }
                FlushedFlow::HalfClose | FlushedFlow::Continue => {}
            }
        }
        // The stop wakes the deadline polled below (`Shard::begin_stop`).
        if !self.stop_seen && shard.stopping() {
            return Poll::Ready(Wake::Stopping);
        }
        let reading =
            queue.stalled_since().is_none() && self.machine.wants_read(inbuf.len(), &shard.config);
        if reading {
            if let Poll::Ready(r) = self.stream.poll_read_into(cx, inbuf) {
                return Poll::Ready(match r {
                    Ok(0) | Err(_) => Wake::End(Flow::Drop),
                    Ok(n) => Wake::Read(n),
                });
            }
        }
        if self.timer.poll_expired(cx).is_ready() {
            return Poll::Ready(Wake::Timer);
        }
        queue.register_writer(cx.waker());
        Poll::Pending
    }

    /// Runs the machine until it waits (or ends), with the bytes read and not taken yet in
    /// `inbuf`.
    fn turn(&mut self, cx: &mut Context<'_>, inbuf: &mut Vec<u8>) -> Poll<Flow> {
        // The clock is read where the driver learns something (a read, a timer, the stop), not
        // on every poll: a busy connection turns once per message.
        let mut now = None;
        loop {
            if !self.settled {
                self.settle(inbuf, *now.get_or_insert_with(Instant::now));
            }
            let wake = ready!(self.poll_wake(cx, inbuf));
            self.settled = false;
            let at = Instant::now();
            now = Some(at);
            let shard = &self.conn.shard;
            let flow = match wake {
                Wake::Read(n) => {
                    shard.metrics.read(n);
                    self.machine.on_read(inbuf, at);
                    continue;
                }
                // `on_input` takes the held input up when the driver settles.
                Wake::Resume => continue,
                Wake::End(flow) => flow,
                Wake::Stopping => {
                    self.stop_seen = true;
                    self.machine.on_stop(&self.conn.env(), at);
                    continue;
                }
                Wake::Timer => {
                    let env = self.conn.env();
                    if self.machine.on_timer(&env, at) == Flow::Drop {
                        Flow::Drop
                    } else {
                        self.timer.reset(self.machine.next_deadline(&env));
                        continue;
                    }
                }
            };
            self.machine.on_end(&self.conn.env());
            return Poll::Ready(flow);
        }
    }
}

impl<C: Connection + Unpin> Future for Driver<C> {
    type Output = Flow;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Flow> {
        let this = self.get_mut();
        // Whatever the machine queues from here on, `turn` writes before this poll waits
        // (every wake it acts on leads back to `poll_wake`, which writes first): a wake for it
        // would be one more poll per message that finds nothing to do.
        this.machine.outbound().writer_running();
        let mut inbuf = this.inbuf.take();
        let polled = this.turn(cx, &mut inbuf);
        this.inbuf.keep(inbuf);
        polled
    }
}

impl Shard {
    /// What the transport rules use of this shard.
    pub(super) fn env(&self) -> Env<'_> {
        Env {
            config: &self.config,
            policy: &self.policy,
            dispatcher: &self.dispatcher,
            metrics: &self.metrics,
            sessions: &self.http_sessions,
            admission: &self.admission,
            auth: self.auth.as_ref(),
            principal: None,
            peer: None,
            stopped_at: self.stopped_at.get(),
            spawn: |task| {
                glommio::spawn_local(task).detach();
            },
        }
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::Driver;
    use crate::transport::streamable::SseStream;
    use crate::transport::ws::WsConnection;
    use std::mem::size_of;

    /// Every open WebSocket and SSE stream holds one driver in its shard's tables for as long
    /// as it lives, so its size is memory per connection (docs/benchmarks.md, "Smaller I/O
    /// sources"). A field added here costs 15,000 connections its size each: grow these bounds
    /// only with a measurement.
    #[test]
    fn drivers_stay_small() {
        let websocket = size_of::<Driver<WsConnection>>();
        assert!(websocket <= 192, "a WebSocket's driver is {websocket} B");
        let stream = size_of::<Driver<SseStream>>();
        assert!(stream <= 120, "an SSE stream's driver is {stream} B");
    }
}
