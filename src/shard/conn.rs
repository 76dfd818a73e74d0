//! The one driver loop for a connection past its HTTP head (a WebSocket, an
//! SSE response): it writes the connection's outbound queue, reads, watches
//! the shard's stop and one timer, and hands each of those to the
//! transport's state machine, which decides.

use super::io::{self, Deadline, Socket};
use super::{ConnGuard, Shard};
use crate::transport::outbound::Stall;
use crate::transport::{Connection, Env, Flow, FlushedFlow};
use std::task::Poll;
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

/// Runs `machine` on `stream` until it ends; `inbuf` holds bytes already read.
/// Returns how it ended: [`Flow::Reusable`] when the connection may carry the
/// next HTTP request.
pub(super) async fn drive<C: Connection>(
    stream: &mut Socket,
    inbuf: &mut Vec<u8>,
    conn: &ConnGuard,
    machine: &mut C,
) -> Flow {
    let shard = &conn.shard;
    // The Env is made where it is used, not kept across awaits: it would add its six pointers
    // to every idle connection's future.
    let mut timer = Deadline::at(machine.next_deadline(&shard.config));
    let mut half_closed = false;
    let mut stop_seen = false;
    // The clock is read where the driver learns something (a read, a timer, the stop), not on
    // every turn: a busy connection turns once per message.
    let mut now = Instant::now();
    let ended = loop {
        machine.on_input(inbuf, &shard.env(), now);
        if !conn.hold_inbound(machine.inbound_held(inbuf)) {
            machine.over_inbound_budget(inbuf, &shard.env());
        }
        // Idle connections keep no read buffer (see io.rs).
        io::release_if_empty(inbuf);
        timer.pull_in(machine.next_deadline(&shard.config));
        let before = inbuf.len();
        let wake = std::future::poll_fn(|cx| {
            let queue = machine.outbound();
            match stream.poll_flush(cx, &mut queue.bytes()) {
                Poll::Ready(Ok(n)) => shard.metrics.wrote(n),
                Poll::Ready(Err(_)) => return Poll::Ready(Wake::End(Flow::Drop)),
                Poll::Pending => {}
            }
            let holding = machine.is_holding();
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
                match machine.when_flushed() {
                    FlushedFlow::Finish(flow) => return Poll::Ready(Wake::End(flow)),
                    FlushedFlow::HalfClose if !half_closed => {
                        let _ = stream.poll_close(cx);
                        half_closed = true;
                    }
                    FlushedFlow::HalfClose | FlushedFlow::Continue => {}
                }
            }
            if !stop_seen && shard.poll_stopping(conn, cx).is_ready() {
                return Poll::Ready(Wake::Stopping);
            }
            let reading =
                queue.stalled_since().is_none() && machine.wants_read(inbuf.len(), &shard.config);
            if reading {
                if let Poll::Ready(r) = stream.poll_read_into(cx, inbuf) {
                    return Poll::Ready(match r {
                        Ok(0) | Err(_) => Wake::End(Flow::Drop),
                        Ok(n) => Wake::Read(n),
                    });
                }
            }
            if timer.poll_expired(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
            // Nor a write buffer while waiting.
            io::release_if_empty(&mut queue.bytes());
            queue.register_writer(cx.waker());
            Poll::Pending
        })
        .await;
        match wake {
            Wake::Read(n) => {
                shard.metrics.read(n);
                debug_assert_eq!(n, inbuf.len() - before);
                now = Instant::now();
                machine.on_read(inbuf, now);
            }
            // `on_input` takes the held input up at the top of the loop.
            Wake::Resume => now = Instant::now(),
            Wake::End(flow) => break flow,
            Wake::Stopping => {
                stop_seen = true;
                now = Instant::now();
                machine.on_stop(&shard.env(), now);
            }
            Wake::Timer => {
                now = Instant::now();
                if machine.on_timer(&shard.env(), now) == Flow::Drop {
                    break Flow::Drop;
                }
                timer.reset(machine.next_deadline(&shard.config));
            }
        }
    };
    machine.on_end(&shard.env());
    ended
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
            spawn: |task| {
                glommio::spawn_local(task).detach();
            },
        }
    }
}
