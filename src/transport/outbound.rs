//! The one outbound queue every connection kind writes through: a WebSocket's
//! frames and an SSE response's chunks alike.

use super::stamp::Stamp;
use super::HeldBytes;
use crate::wake::WakeSlot;
use std::cell::Cell;
use std::task::Waker;
use std::time::Instant;

/// Bytes waiting to be written to one connection, the task that writes them,
/// and the bound past which the client counts as not reading.
///
/// Handlers that finish later (other tasks of the shard) write into it and
/// wake the connection. Once ended (an SSE response's last chunk, a
/// WebSocket's Close frame) it takes nothing more: bytes after the end would
/// be read as the next response or break RFC 6455 §5.5.1 ("the endpoint MUST
/// NOT send any more data frames").
///
/// 40 B: a WebSocket's peer with it is an 80 B allocator chunk, an SSE response's sink 64 B
/// (the queue's bytes a `Cell`, lent out by [`Outbound::with_bytes`], not a `RefCell` with
/// its 8 B borrow flag, and [`HeldBytes`], not a 24 B `Vec`; the stall's start a [`Stamp`],
/// not a 16 B `Option<Instant>`).
pub struct Outbound {
    /// None while empty: a connection waits with no write buffer.
    bytes: Cell<HeldBytes>,
    writer: WakeSlot,
    /// A `u32` (a bound past 4 GiB is held as 4 GiB, as the WebSocket decoder's limit is):
    /// every connection holds a queue, and 8 B fewer take an SSE response's into the next
    /// smaller allocator chunk.
    bound: u32,
    ended: Cell<bool>,
    stalled_since: Cell<Option<Stamp>>,
}

/// What [`Outbound::watch_stall`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// The reader keeps up.
    Flowing,
    /// The queue just reached its bound (count it once).
    Started(Instant),
    /// Stalled since then, not drained below half the bound yet.
    Since(Instant),
}

impl Outbound {
    /// An empty queue with `bound` bytes before the reader counts as stalled.
    pub fn new(bound: usize) -> Self {
        Stamp::start();
        Outbound {
            bytes: Cell::new(HeldBytes::default()),
            writer: WakeSlot::default(),
            bound: u32::try_from(bound).unwrap_or(u32::MAX),
            ended: Cell::new(false),
            stalled_since: Cell::new(None),
        }
    }

    /// Appends what `write` writes and wakes the writer; false (nothing
    /// written) once the queue was ended.
    pub fn push(&self, write: impl FnOnce(&mut Vec<u8>)) -> bool {
        if self.ended.get() {
            return false;
        }
        self.with_bytes(write);
        self.writer.wake();
        true
    }

    /// Puts what `write` writes before everything queued.
    pub fn push_front(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let mut front = Vec::new();
        write(&mut front);
        self.with_bytes(|bytes| {
            bytes.splice(0..0, front);
        });
        self.writer.wake();
    }

    /// Appends the last bytes: nothing is queued after them.
    pub fn end_with(&self, write: impl FnOnce(&mut Vec<u8>)) {
        if self.push(write) {
            self.ended.set(true);
        }
    }

    /// Whether the queue was ended.
    pub fn is_ended(&self) -> bool {
        self.ended.get()
    }

    /// Whether it was ended and everything was taken.
    pub fn is_done(&self) -> bool {
        self.ended.get() && self.is_empty()
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        let bytes = self.bytes.take();
        let len = bytes.len();
        self.bytes.set(bytes);
        len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds its bound: the client is not reading what it
    /// asked for, so nothing that may wait (dispatch, notifications) adds to it.
    pub fn is_full(&self) -> bool {
        self.len() >= self.bound as usize
    }

    /// Whether what was held back at the bound may go on: the queue drained
    /// below half of it (the same hysteresis as [`Outbound::watch_stall`]).
    pub fn has_room_again(&self) -> bool {
        self.len() < self.bound as usize / 2
    }

    /// Follows whether the reader stalls: from the moment the queue reaches
    /// its bound (or the caller holds input back at it: `holding`) until it
    /// drained below half of it. Without the hysteresis a socket that takes a
    /// few bytes now and then (TCP memory pressure) would reset the slow-reader
    /// clock forever while the queue stays full.
    /// `now` is asked only when a stall starts (this runs on every poll of a busy connection).
    pub fn watch_stall(&self, holding: bool, now: impl FnOnce() -> Instant) -> Stall {
        match self.stalled_since.get() {
            None if self.is_full() || holding => {
                let now = now();
                self.stalled_since.set(Some(Stamp::of(now)));
                Stall::Started(now)
            }
            None => Stall::Flowing,
            // Held input is taken up again from here (see `has_room_again`); if it fills the
            // queue once more, that is a new stall: a reader that keeps draining is not one.
            Some(_) if self.has_room_again() => {
                self.stalled_since.set(None);
                Stall::Flowing
            }
            Some(since) => Stall::Since(since.instant()),
        }
    }

    /// Since when the reader stalls, if it does.
    pub fn stalled_since(&self) -> Option<Instant> {
        self.stalled_since.get().map(Stamp::instant)
    }

    /// Lends the queued bytes to `f`, for the connection to write from (and drain). Bytes
    /// queued while they are lent (by `f` itself) go after them, not lost.
    /// Emptied, the queue keeps no buffer (see [`HeldBytes`]).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut bytes = self.bytes.take();
        let result = bytes.with(f);
        let queued_meanwhile = self.bytes.take().take();
        if !queued_meanwhile.is_empty() {
            bytes.with(|bytes| bytes.extend_from_slice(&queued_meanwhile));
        }
        self.bytes.set(bytes);
        result
    }

    /// Remembers the task that writes this queue out, to wake on new bytes.
    pub fn register_writer(&self, waker: &Waker) {
        self.writer.register(waker);
    }

    /// The writer runs now and writes the queue out before it waits again: bytes pushed until
    /// it registers again do not wake it (that wake would only poll it once more, for nothing).
    pub fn writer_running(&self) {
        self.writer.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Every connection holds one (an SSE response's in its `Sink`, a WebSocket's in its
    /// peer): grow this bound only with a measurement.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn an_outbound_queue_stays_small() {
        let size = size_of::<Outbound>();
        assert!(size <= 40, "Outbound is {size} B");
    }

    /// A bound past 4 GiB is held as 4 GiB, not wrapped into a small one (4 GiB + 10 B would
    /// be 10 B: a reader would count as stalled after one frame).
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_bound_past_4_gib_is_held_as_4_gib() {
        let queue = Outbound::new((1 << 32) + 10);
        queue.push(|bytes| bytes.extend_from_slice(&[0; 64]));
        assert!(!queue.is_full());
        assert!(queue.has_room_again());
        assert_eq!(queue.watch_stall(false, Instant::now), Stall::Flowing);
    }

    /// A connection waiting with everything written holds no write buffer: the queue lets it
    /// go once emptied (the driver released it before waiting, until `HeldBytes`).
    #[test]
    fn an_emptied_queue_keeps_no_buffer() {
        let queue = Outbound::new(64);
        queue.push(|bytes| bytes.extend_from_slice(b"frame"));
        queue.with_bytes(|bytes| bytes.drain(..3).count());
        assert!(
            queue.with_bytes(|bytes| bytes.capacity()) >= 2,
            "bytes left, buffer kept"
        );
        queue.with_bytes(|bytes| bytes.drain(..).count());
        assert_eq!(queue.with_bytes(|bytes| bytes.capacity()), 0);
    }

    /// A WebSocket's reply is pushed while its driver runs, which writes it before it waits:
    /// waking the driver for it would poll it once more per message, for nothing.
    #[test]
    fn a_push_wakes_the_writer_only_while_it_waits() {
        let queue = Outbound::new(100);
        let writer = std::sync::Arc::new(crate::wake::CountingWaker::default());
        let waker = Waker::from(std::sync::Arc::clone(&writer));
        queue.register_writer(&waker);
        queue.writer_running();
        queue.push(|b| b.extend_from_slice(b"reply"));
        assert_eq!(writer.wakes(), 0, "running");
        queue.register_writer(&waker);
        queue.push(|b| b.extend_from_slice(b"notification"));
        assert_eq!(writer.wakes(), 1, "waiting");
    }

    #[test]
    fn nothing_is_queued_after_the_end() {
        let queue = Outbound::new(100);
        assert!(queue.push(|b| b.extend_from_slice(b"one")));
        queue.end_with(|b| b.extend_from_slice(b"|last"));
        assert!(!queue.push(|b| b.extend_from_slice(b"late")));
        queue.end_with(|b| b.extend_from_slice(b"|again"));
        assert_eq!(queue.with_bytes(|b| b.clone()), b"one|last");
        assert!(!queue.is_done());
        queue.with_bytes(Vec::clear);
        assert!(queue.is_done());
    }

    #[test]
    fn bytes_queued_while_lent_go_after_them() {
        let queue = Outbound::new(100);
        queue.push(|b| b.extend_from_slice(b"first"));
        let drained = queue.with_bytes(|bytes| {
            queue.push(|b| b.extend_from_slice(b",second"));
            bytes.drain(..2).count()
        });
        assert_eq!(drained, 2);
        assert_eq!(queue.with_bytes(|b| b.clone()), b"rst,second");
    }

    #[test]
    fn front_bytes_go_before_what_is_queued() {
        let queue = Outbound::new(100);
        queue.push(|b| b.extend_from_slice(b"event"));
        queue.push_front(|b| b.extend_from_slice(b"primer,"));
        assert_eq!(queue.with_bytes(|b| b.clone()), b"primer,event");
    }

    #[test]
    fn a_stall_lasts_until_the_queue_drains_below_half_the_bound() {
        let queue = Outbound::new(10);
        let t0 = Instant::now();
        assert_eq!(queue.watch_stall(false, || t0), Stall::Flowing);
        queue.push(|b| b.extend_from_slice(&[0; 10]));
        assert!(queue.is_full());
        assert_eq!(queue.watch_stall(false, || t0), Stall::Started(t0));
        // A reader that takes a little keeps the queue above half: still the same stall.
        queue.with_bytes(|b| b.drain(..4).count());
        let later = t0 + Duration::from_secs(1);
        assert_eq!(queue.watch_stall(false, || later), Stall::Since(t0));
        assert!(!queue.has_room_again());
        queue.with_bytes(|b| b.drain(..2).count());
        assert_eq!(queue.watch_stall(false, || later), Stall::Flowing);
        assert_eq!(queue.stalled_since(), None);
    }

    #[test]
    fn input_held_at_the_bound_is_a_stall_too() {
        let queue = Outbound::new(10);
        let t0 = Instant::now();
        queue.push(|b| b.extend_from_slice(&[0; 5]));
        assert_eq!(queue.watch_stall(true, || t0), Stall::Started(t0));
        assert_eq!(queue.watch_stall(true, || t0), Stall::Since(t0));
        // Drained below half: the held input goes on, and the clock stops.
        queue.with_bytes(|b| b.drain(..1).count());
        assert_eq!(queue.watch_stall(true, || t0), Stall::Flowing);
    }
}
