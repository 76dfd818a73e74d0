//! Per-shard SSE replay rings: every resumable stream of the shard keeps its
//! recent events here so a client reconnecting with `Last-Event-ID` gets
//! exactly what it missed, or a clear "can't" — never a silent gap.
//!
//! MCP 2025-11-25, Resumability and Redelivery: "The server MAY use this
//! header to replay messages that would have been sent after the last event
//! ID, on the stream that was disconnected, and to resume the stream from that
//! point." and "The server MUST NOT replay messages that would have been
//! delivered on a different stream." One ring per stream, and replay only
//! ever reads the ring named by the id, enforces the second sentence.
//!
//! Layout and overhead. Each ring keeps its payloads back to back in one
//! `Vec<u8>` (no allocation per event; evicted bytes at the front are
//! compacted away once they outweigh the live ones, so the buffer holds at
//! most about twice the live bytes, plus the newest payload) and a
//! `VecDeque` of 8-byte `Meta` (payload length, append time in milliseconds).
//! The shard keeps one 8-byte `OrderEntry` (the ring's id) per event in
//! append order for budget and age eviction across rings; entries of events
//! a ring evicted by its own limits are dropped lazily (each ring counts its
//! stale ones), at most as many again plus a constant. So: 16 bytes of
//! metadata per retained event (24 worst case), about 88 bytes per ring
//! slot, plus the collections' spare capacity. `total_bytes` and the budget
//! count payload bytes only.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// Limits every ring of the store enforces on itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLimits {
    /// Most events a ring keeps; older ones are evicted first.
    pub max_events: usize,
    /// Most payload bytes a ring keeps; a bigger single event is not kept.
    /// At most [`MAX_RING_BYTES`] (larger values are clamped).
    pub max_bytes: usize,
    /// Events older than this are gone (evicted lazily, never replayed), to
    /// the millisecond. At most [`MAX_AGE`] (larger values are clamped).
    pub max_age: Duration,
}

/// The largest `max_bytes`: event lengths are kept as `u32`.
pub const MAX_RING_BYTES: usize = u32::MAX as usize;
/// The longest `max_age` (about 12 days): append times are kept as `u32`
/// milliseconds since an epoch that moves forward (see `EventStore::tick`).
pub const MAX_AGE: Duration = Duration::from_millis(1 << 30);
/// Once the store's clock reaches this many milliseconds past its epoch, the
/// epoch moves forward so every append time still fits a `u32`.
const REBASE_AT_MS: u64 = 1 << 31;

/// Names one ring; a stale id (ring removed, slot reused) never matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RingId {
    slot: u32,
    generation: u32,
}

/// What [`EventStore::append`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The event's sequence number: 1 for a ring's first event, then +1.
    pub seq: u64,
    /// Whether it is in the ring now. `false` when it could not be kept (bigger
    /// than `max_bytes` or than the whole shard budget, or evicted at once by
    /// `max_events == 0` or the budget): the caller still sends it live, but
    /// a resume from before it will be refused as [`ResumeError::Evicted`].
    pub stored: bool,
}

/// Events evicted so far, by reason (metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evictions {
    /// Evicted because their ring held more than `max_events`.
    pub count: u64,
    /// Evicted because their ring held more than `max_bytes` (including
    /// events too big to keep at all, and the ring's older events they
    /// pushed out).
    pub bytes: u64,
    /// Evicted because they were older than `max_age`.
    pub age: u64,
    /// Evicted, oldest first across all rings, to keep the shard's total
    /// within its budget (including events bigger than the whole budget,
    /// and their ring's older events they pushed out).
    pub budget: u64,
}

/// Why a stream cannot be resumed from a given event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    /// The ring was removed, or never existed.
    UnknownStream,
    /// Some event after the given one is gone; replaying the rest would be
    /// silent loss.
    Evicted,
    /// The given event was never sent on this stream (a made-up id).
    UnknownEvent,
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResumeError::UnknownStream => "no such stream",
            ResumeError::Evicted => "events after Last-Event-ID were already evicted",
            ResumeError::UnknownEvent => "Last-Event-ID was never sent on this stream",
        })
    }
}

impl std::error::Error for ResumeError {}

/// One retained event: its payload's length and when it was appended.
#[derive(Debug, Clone, Copy)]
struct Meta {
    /// Payload bytes (at most `MAX_RING_BYTES`).
    len: u32,
    /// Append time, milliseconds since the store's epoch.
    at: u32,
}

/// One event in the shard's append order: the ring it was appended to. A
/// ring's entries are in its seq order, so the first of them that is not
/// stale (see `Ring::stale_in_order`) names its oldest retained event.
type OrderEntry = RingId;

#[derive(Debug)]
struct Ring {
    /// The sequence number the next append gets.
    next_seq: u64,
    /// Retained events, oldest first; their seqs are contiguous and end at
    /// `next_seq - 1`.
    events: VecDeque<Meta>,
    /// Payload bytes from logical offset `base` on.
    buf: Vec<u8>,
    /// Logical offset of `buf[0]`.
    base: usize,
    /// Logical offset where the oldest retained payload starts.
    front_start: usize,
    /// How many of this ring's first entries in the shard order name events
    /// the ring already evicted by its own limits. Invariant: the ring has
    /// `stale_in_order + events.len()` entries in the order.
    stale_in_order: usize,
}

/// Capacity a ring's buffer may keep while nearly empty.
const SMALL_BUF: usize = 4096;

impl Ring {
    fn new() -> Ring {
        Ring {
            next_seq: 1,
            events: VecDeque::new(),
            buf: Vec::new(),
            base: 0,
            front_start: 0,
            stale_in_order: 0,
        }
    }

    /// Seq of the oldest retained event (`next_seq` when empty).
    fn first_seq(&self) -> u64 {
        self.next_seq - self.events.len() as u64
    }

    fn bytes(&self) -> usize {
        self.end() - self.front_start
    }

    /// Logical offset just past the newest payload.
    fn end(&self) -> usize {
        self.base + self.buf.len()
    }

    /// `payload` is at most `MAX_RING_BYTES` long (the store never keeps a
    /// longer one).
    fn push(&mut self, payload: &[u8], at: u32) {
        self.buf.extend_from_slice(payload);
        self.events.push_back(Meta {
            len: payload.len() as u32,
            at,
        });
    }

    /// Drops the oldest event because of this ring's own limits (its entry
    /// in the shard order goes stale); returns its payload length.
    fn evict_front(&mut self) -> usize {
        let len = self.pop_front();
        self.stale_in_order += 1;
        len
    }

    /// Drops the oldest event; returns its payload length.
    fn pop_front(&mut self) -> usize {
        let Some(meta) = self.events.pop_front() else {
            return 0;
        };
        let len = meta.len as usize;
        self.front_start += len;
        let dead = self.front_start - self.base;
        // Compact once the dead prefix outweighs the live bytes: amortised
        // O(1) per byte, and the buffer stays within ~2x the live bytes.
        if dead * 2 >= self.buf.len() {
            self.buf.drain(..dead);
            self.base = self.front_start;
            let keep = (2 * self.buf.len()).max(SMALL_BUF);
            if self.buf.capacity() > 2 * keep {
                self.buf.shrink_to(keep);
            }
        }
        len
    }
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    ring: Option<Ring>,
}

/// All replay rings of one shard, with per-ring limits and a shard-wide
/// byte budget. Single-threaded by design (`&mut self`, no sharing).
#[derive(Debug)]
pub struct EventStore {
    limits: RingLimits,
    max_age_ms: u64,
    budget: usize,
    epoch: Instant,
    /// Latest time seen, milliseconds since `epoch`; append times never go
    /// backwards, so expired events are always a prefix of `order`.
    clock: u64,
    slots: Vec<Slot>,
    free: Vec<u32>,
    order: VecDeque<OrderEntry>,
    rings: usize,
    events: usize,
    bytes: usize,
    evictions: Evictions,
}

impl EventStore {
    /// An empty store; `now` is the shard clock's start (earlier times count
    /// as `now`).
    pub fn new(limits: RingLimits, shard_budget_bytes: usize, now: Instant) -> EventStore {
        let limits = RingLimits {
            max_bytes: limits.max_bytes.min(MAX_RING_BYTES),
            max_age: limits.max_age.min(MAX_AGE),
            ..limits
        };
        EventStore {
            limits,
            max_age_ms: millis(limits.max_age),
            budget: shard_budget_bytes,
            epoch: now,
            clock: 0,
            slots: Vec::new(),
            free: Vec::new(),
            order: VecDeque::new(),
            rings: 0,
            events: 0,
            bytes: 0,
            evictions: Evictions::default(),
        }
    }

    /// Opens a new, empty ring; its first event will be seq 1.
    pub fn create_ring(&mut self) -> RingId {
        self.rings += 1;
        if let Some(slot) = self.free.pop() {
            if let Some(entry) = self.slots.get_mut(slot as usize) {
                entry.ring = Some(Ring::new());
                return RingId {
                    slot,
                    generation: entry.generation,
                };
            }
        }
        // Each slot costs ~88 bytes, so memory runs out long before 2^32.
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 rings per shard");
        self.slots.push(Slot {
            generation: 0,
            ring: Some(Ring::new()),
        });
        RingId {
            slot,
            generation: 0,
        }
    }

    /// Creates an empty ring whose first event will get `next_seq`: a stream restored from
    /// the shared event store continues its numbering (see [`EventStore::append`]).
    pub fn create_ring_at(&mut self, next_seq: u64) -> RingId {
        let id = self.create_ring();
        if let Some(ring) = ring_mut(&mut self.slots, id) {
            ring.next_seq = next_seq.max(1);
        }
        id
    }

    /// The last sequence number `ring` handed out (0 before its first event).
    pub fn last_seq(&self, ring: RingId) -> Option<u64> {
        self.ring(ring).map(|r| r.next_seq - 1)
    }

    /// Gives back a ring's spare capacity once no more events will be appended
    /// to it (a finished request stream kept only for replay).
    pub fn seal(&mut self, id: RingId) {
        if let Some(r) = ring_mut(&mut self.slots, id) {
            // A copy into an allocation of the exact size, not a shrink in place: shrinking
            // leaves the freed tail as a hole between live blocks, which an idle server never
            // reuses (measured: ~6 KB a session for rings grown while their stream was served).
            r.buf = Vec::from(r.buf.as_slice());
            r.events.shrink_to_fit();
        }
    }

    /// Drops a ring and its events; `false` if it was already gone. The
    /// events are not counted as evictions.
    pub fn remove_ring(&mut self, id: RingId) -> bool {
        let Some(slot) = self.slots.get_mut(id.slot as usize) else {
            return false;
        };
        if slot.generation != id.generation {
            return false;
        }
        let Some(ring) = slot.ring.take() else {
            return false;
        };
        // A slot whose generation would wrap is retired, so no id is ever
        // reused.
        if let Some(next) = slot.generation.checked_add(1) {
            slot.generation = next;
            self.free.push(id.slot);
        }
        self.rings -= 1;
        self.events -= ring.events.len();
        self.bytes -= ring.bytes();
        self.compact_order();
        true
    }

    /// Appends an event to `ring` and evicts: first every event older than
    /// `max_age`, then this ring's oldest beyond `max_events` / `max_bytes`,
    /// then the shard's oldest (any ring) while over budget. `None` if the
    /// ring is gone.
    pub fn append(&mut self, ring: RingId, payload: &[u8], now: Instant) -> Option<Appended> {
        self.ring(ring)?;
        let at = self.tick(now);
        self.evict_expired_at(at);
        let limits = self.limits;
        let r = ring_mut(&mut self.slots, ring)?;
        let seq = r.next_seq;
        r.next_seq += 1;
        if payload.len() > limits.max_bytes.min(self.budget) {
            // Can never be kept (and must not empty other rings trying). The
            // ring's older events go too: the retained window must stay
            // contiguous, or a resume from before this event would skip it
            // silently.
            let (n, bytes) = (r.events.len(), r.bytes());
            while !r.events.is_empty() {
                r.evict_front();
            }
            self.events -= n;
            self.bytes -= bytes;
            let reason = if payload.len() > limits.max_bytes {
                &mut self.evictions.bytes
            } else {
                &mut self.evictions.budget
            };
            *reason += n as u64 + 1;
            self.compact_order();
            return Some(Appended { seq, stored: false });
        }
        // `tick` keeps the clock below REBASE_AT_MS.
        r.push(payload, at as u32);
        self.order.push_back(ring);
        self.events += 1;
        self.bytes += payload.len();
        while r.events.len() > limits.max_events {
            self.bytes -= r.evict_front();
            self.events -= 1;
            self.evictions.count += 1;
        }
        while r.bytes() > limits.max_bytes {
            self.bytes -= r.evict_front();
            self.events -= 1;
            self.evictions.bytes += 1;
        }
        while self.bytes > self.budget && self.evict_oldest() {
            self.evictions.budget += 1;
        }
        self.compact_order();
        let stored = self.ring(ring).is_some_and(|r| r.first_seq() <= seq);
        Some(Appended { seq, stored })
    }

    /// Evicts every event older than `max_age` at `now`, in all rings.
    pub fn evict_expired(&mut self, now: Instant) {
        let now = self.tick(now);
        self.evict_expired_at(now);
        self.compact_order();
    }

    /// The events of `ring` after `after_seq`, oldest first: exactly those
    /// with seq > `after_seq`, or an error if any of them is gone (evicted,
    /// or older than `max_age` at `now`). `after_seq == 0` asks for all
    /// (the priming event's id); `after_seq` equal to the last seq gives none.
    pub fn replay_after(
        &self,
        ring: RingId,
        after_seq: u64,
        now: Instant,
    ) -> Result<impl Iterator<Item = (u64, &[u8])> + '_, ResumeError> {
        let r = self.ring(ring).ok_or(ResumeError::UnknownStream)?;
        if after_seq >= r.next_seq {
            return Err(ResumeError::UnknownEvent);
        }
        let now = self.millis_since_epoch(now).max(self.clock);
        let expired = r.events.partition_point(|m| self.is_expired(m.at, now));
        let first_kept = r.first_seq() + expired as u64;
        // A gap between the client's last event and our oldest would be
        // silent loss: refuse instead.
        if after_seq + 1 < first_kept {
            return Err(ResumeError::Evicted);
        }
        // In range: first_kept <= after_seq + 1 <= next_seq.
        let skip = (after_seq + 1 - r.first_seq()) as usize;
        // The replayed payloads are the last bytes of the buffer: O(replayed).
        let replayed: usize = r.events.range(skip..).map(|m| m.len as usize).sum();
        let mut start = r.end() - replayed - r.base;
        let buf = &r.buf;
        Ok(r.events
            .range(skip..)
            .zip(after_seq + 1..)
            .map(move |(meta, seq)| {
                let payload = &buf[start..start + meta.len as usize];
                start += meta.len as usize;
                (seq, payload)
            }))
    }

    /// Payload bytes held, all rings.
    pub fn total_bytes(&self) -> usize {
        self.bytes
    }

    /// Live rings.
    pub fn ring_count(&self) -> usize {
        self.rings
    }

    /// Events held, all rings (including expired ones not yet evicted).
    pub fn event_count(&self) -> usize {
        self.events
    }

    /// Events evicted so far, by reason.
    pub fn evictions(&self) -> Evictions {
        self.evictions
    }

    fn ring(&self, id: RingId) -> Option<&Ring> {
        self.slots
            .get(id.slot as usize)
            .filter(|slot| slot.generation == id.generation)
            .and_then(|slot| slot.ring.as_ref())
    }

    fn millis_since_epoch(&self, now: Instant) -> u64 {
        millis(now.saturating_duration_since(self.epoch))
    }

    /// Advances the clock to `now` (never backwards) and returns it. Append
    /// times are `u32` milliseconds since the epoch, so once the clock reaches
    /// `REBASE_AT_MS` the epoch moves forward to `clock - max_age`: every
    /// retained event is younger than `max_age` (expired ones are evicted
    /// first), so its time stays non-negative, and the clock restarts at
    /// `max_age` (at most 2^30 ms) — once every ~12 days of uptime at worst.
    fn tick(&mut self, now: Instant) -> u64 {
        self.clock = self.clock.max(self.millis_since_epoch(now));
        if self.clock >= REBASE_AT_MS {
            self.evict_expired_at(self.clock);
            let shift = self.clock - self.max_age_ms;
            self.epoch += Duration::from_millis(shift);
            self.clock -= shift;
            for ring in self.slots.iter_mut().filter_map(|slot| slot.ring.as_mut()) {
                for meta in &mut ring.events {
                    meta.at = (u64::from(meta.at) - shift) as u32;
                }
            }
        }
        self.clock
    }

    fn is_expired(&self, at: u32, now: u64) -> bool {
        now.saturating_sub(u64::from(at)) > self.max_age_ms
    }

    /// Append times never decrease, so the expired events are the oldest in
    /// shard order: pop them from the front.
    fn evict_expired_at(&mut self, now: u64) {
        let max_age = self.max_age_ms;
        while let Some(ring) = live_order_front(&mut self.order, &mut self.slots) {
            let expired = ring
                .events
                .front()
                .is_some_and(|meta| now.saturating_sub(u64::from(meta.at)) > max_age);
            if !expired {
                break;
            }
            self.bytes -= ring.pop_front();
            self.order.pop_front();
            self.events -= 1;
            self.evictions.age += 1;
        }
    }

    /// Evicts the shard's oldest event; `false` if there is none.
    fn evict_oldest(&mut self) -> bool {
        let Some(ring) = live_order_front(&mut self.order, &mut self.slots) else {
            return false;
        };
        self.bytes -= ring.pop_front();
        self.order.pop_front();
        self.events -= 1;
        true
    }

    /// Drops entries of events already gone once they are as many as the
    /// live ones (amortised O(1) per append).
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.events + 32 {
            let slots = &mut self.slots;
            // A ring's stale entries are its first ones, and `retain` visits
            // in order.
            self.order.retain(|&entry| match ring_mut(slots, entry) {
                Some(ring) if ring.stale_in_order > 0 => {
                    ring.stale_in_order -= 1;
                    false
                }
                Some(_) => true,
                None => false,
            });
        }
    }
}

fn ring_mut(slots: &mut [Slot], id: RingId) -> Option<&mut Ring> {
    slots
        .get_mut(id.slot as usize)
        .filter(|slot| slot.generation == id.generation)
        .and_then(|slot| slot.ring.as_mut())
}

/// Pops the shard order's leading entries of events already gone (their
/// ring removed, or evicted by its own limits); returns the ring whose
/// oldest retained event the front entry then names, if any.
fn live_order_front<'a>(
    order: &mut VecDeque<OrderEntry>,
    slots: &'a mut [Slot],
) -> Option<&'a mut Ring> {
    loop {
        let &entry = order.front()?;
        match ring_mut(slots, entry) {
            Some(ring) if ring.stale_in_order > 0 => ring.stale_in_order -= 1,
            // A live entry: the ring's invariant says it has an event for it.
            Some(_) => break,
            None => {}
        }
        order.pop_front();
    }
    let &entry = order.front()?;
    ring_mut(slots, entry)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    fn limits(max_events: usize, max_bytes: usize, max_age_ms: u64) -> RingLimits {
        RingLimits {
            max_events,
            max_bytes,
            max_age: MS * max_age_ms as u32,
        }
    }

    fn replay(
        store: &EventStore,
        ring: RingId,
        after: u64,
        now: Instant,
    ) -> Result<Vec<(u64, Vec<u8>)>, ResumeError> {
        store
            .replay_after(ring, after, now)
            .map(|it| it.map(|(seq, p)| (seq, p.to_vec())).collect())
    }

    fn payloads(items: &[(u64, &str)]) -> Vec<(u64, Vec<u8>)> {
        items
            .iter()
            .map(|&(s, p)| (s, p.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn seqs_start_at_one_and_replay_is_the_suffix() {
        let t0 = Instant::now();
        let mut store = EventStore::new(limits(10, 1000, 1000), 10_000, t0);
        let ring = store.create_ring();
        // Fresh ring: resuming from the priming event (seq 0) misses nothing.
        assert_eq!(replay(&store, ring, 0, t0), Ok(vec![]));
        assert_eq!(replay(&store, ring, 1, t0), Err(ResumeError::UnknownEvent));
        for (i, p) in ["a", "bb", "", "dddd"].iter().enumerate() {
            let got = store.append(ring, p.as_bytes(), t0);
            assert_eq!(
                got,
                Some(Appended {
                    seq: i as u64 + 1,
                    stored: true
                })
            );
        }
        let all = payloads(&[(1, "a"), (2, "bb"), (3, ""), (4, "dddd")]);
        for after in 0..=4 {
            assert_eq!(
                replay(&store, ring, after, t0),
                Ok(all[after as usize..].to_vec())
            );
        }
        assert_eq!(replay(&store, ring, 5, t0), Err(ResumeError::UnknownEvent));
        assert_eq!(
            replay(&store, ring, u64::MAX, t0),
            Err(ResumeError::UnknownEvent)
        );
        assert_eq!(
            (store.total_bytes(), store.event_count(), store.ring_count()),
            (7, 4, 1)
        );
    }

    #[test]
    fn evicted_when_id_is_before_the_window() {
        let t0 = Instant::now();
        let mut store = EventStore::new(limits(3, 1000, 1000), 10_000, t0);
        let ring = store.create_ring();
        for p in ["1", "2", "3", "4", "5"] {
            store.append(ring, p.as_bytes(), t0);
        }
        // Window is 3..=5: resuming after 2 is fine, after 1 or 0 is a gap.
        assert_eq!(
            replay(&store, ring, 2, t0),
            Ok(payloads(&[(3, "3"), (4, "4"), (5, "5")]))
        );
        assert_eq!(replay(&store, ring, 1, t0), Err(ResumeError::Evicted));
        assert_eq!(replay(&store, ring, 0, t0), Err(ResumeError::Evicted));
        assert_eq!(
            store.evictions(),
            Evictions {
                count: 2,
                ..Evictions::default()
            }
        );
    }

    #[test]
    fn byte_limit_and_oversized_event() {
        let t0 = Instant::now();
        let mut store = EventStore::new(limits(100, 10, 1000), 10_000, t0);
        let ring = store.create_ring();
        store.append(ring, b"aaaa", t0);
        store.append(ring, b"bbbb", t0);
        store.append(ring, b"cccc", t0); // 12 > 10: "aaaa" goes
        assert_eq!(
            replay(&store, ring, 1, t0),
            Ok(payloads(&[(2, "bbbb"), (3, "cccc")]))
        );
        assert_eq!(replay(&store, ring, 0, t0), Err(ResumeError::Evicted));
        // Too big to keep: delivered live, not stored, and the window restarts
        // after it so nobody resumes across it.
        let big = store.append(ring, b"0123456789X", t0);
        assert_eq!(
            big,
            Some(Appended {
                seq: 4,
                stored: false
            })
        );
        assert_eq!(replay(&store, ring, 3, t0), Err(ResumeError::Evicted));
        assert_eq!(replay(&store, ring, 4, t0), Ok(vec![]));
        store.append(ring, b"e", t0);
        assert_eq!(replay(&store, ring, 4, t0), Ok(payloads(&[(5, "e")])));
        assert_eq!((store.total_bytes(), store.event_count()), (1, 1));
        assert_eq!(
            store.evictions(),
            Evictions {
                bytes: 4,
                ..Evictions::default()
            }
        );
    }

    #[test]
    fn age_counts_as_evicted_even_before_eviction_runs() {
        let t0 = Instant::now();
        let mut store = EventStore::new(limits(100, 1000, 100), 10_000, t0);
        let ring = store.create_ring();
        store.append(ring, b"old", t0);
        store.append(ring, b"new", t0 + 60 * MS);
        // At 100 ms nothing is older than max_age yet.
        assert_eq!(
            replay(&store, ring, 0, t0 + 100 * MS),
            Ok(payloads(&[(1, "old"), (2, "new")]))
        );
        // At 101 ms "old" is gone for replay, though still held.
        assert_eq!(
            replay(&store, ring, 0, t0 + 101 * MS),
            Err(ResumeError::Evicted)
        );
        assert_eq!(
            replay(&store, ring, 1, t0 + 101 * MS),
            Ok(payloads(&[(2, "new")]))
        );
        assert_eq!(store.event_count(), 2);
        // At 200 ms both are expired: nothing after 2 was missed, but 1 was.
        store.evict_expired(t0 + 200 * MS);
        assert_eq!((store.event_count(), store.total_bytes()), (0, 0));
        assert_eq!(
            store.evictions(),
            Evictions {
                age: 2,
                ..Evictions::default()
            }
        );
        assert_eq!(replay(&store, ring, 2, t0 + 200 * MS), Ok(vec![]));
        assert_eq!(
            replay(&store, ring, 1, t0 + 200 * MS),
            Err(ResumeError::Evicted)
        );
        // Seqs continue after expiry.
        assert_eq!(
            store.append(ring, b"x", t0 + 200 * MS).map(|a| a.seq),
            Some(3)
        );
    }

    /// Append times are u32 milliseconds: past ~24 days of uptime the epoch
    /// moves forward, and ages, replay and eviction carry on unchanged.
    #[test]
    fn ages_survive_the_epoch_moving_forward() {
        let t0 = Instant::now();
        let rebase = Duration::from_millis(REBASE_AT_MS);
        let mut store = EventStore::new(limits(100, 1000, 1000), 10_000, t0);
        let ring = store.create_ring();
        store.append(ring, b"a", t0 + rebase - 500 * MS);
        store.append(ring, b"b", t0 + rebase + 200 * MS);
        assert_eq!(
            replay(&store, ring, 0, t0 + rebase + 500 * MS),
            Ok(payloads(&[(1, "a"), (2, "b")]))
        );
        // "a" is 1001 ms old: gone for replay, and evicted by age.
        assert_eq!(
            replay(&store, ring, 0, t0 + rebase + 501 * MS),
            Err(ResumeError::Evicted)
        );
        store.evict_expired(t0 + rebase + 501 * MS);
        assert_eq!(
            replay(&store, ring, 1, t0 + rebase + 501 * MS),
            Ok(payloads(&[(2, "b")]))
        );
        // Many epochs later (and a clock far past u32): everything is old.
        let later = t0 + Duration::from_millis(1 << 40);
        assert_eq!(
            store.append(ring, b"c", later),
            Some(Appended {
                seq: 3,
                stored: true
            })
        );
        assert_eq!(replay(&store, ring, 2, later), Ok(payloads(&[(3, "c")])));
        assert_eq!(
            store.evictions(),
            Evictions {
                age: 2,
                ..Evictions::default()
            }
        );
        assert_eq!(store.event_count(), 1);
    }

    #[test]
    fn stale_ring_id_after_remove_and_reuse_is_unknown() {
        let t0 = Instant::now();
        let mut store = EventStore::new(limits(10, 1000, 1000), 10_000, t0);
        let old = store.create_ring();
        store.append(old, b"secret", t0);
        assert!(store.remove_ring(old));
        assert!(!store.remove_ring(old));
        let new = store.create_ring();
        assert_eq!(new.slot, old.slot, "slot is reused");
        assert_ne!(new, old);
        store.append(new, b"other", t0);
        assert_eq!(replay(&store, old, 0, t0), Err(ResumeError::UnknownStream));
        assert_eq!(store.append(old, b"x", t0), None);
        assert!(!store.remove_ring(old));
        assert_eq!(replay(&store, new, 0, t0), Ok(payloads(&[(1, "other")])));
        assert_eq!(
            (store.ring_count(), store.event_count(), store.total_bytes()),
            (1, 1, 5)
        );
        assert_eq!(store.evictions(), Evictions::default());
    }

    #[test]
    fn exhausted_generation_retires_the_slot() {
        let t0 = Instant::now();
        let mut store = EventStore::new(limits(10, 1000, 1000), 10_000, t0);
        let id = store.create_ring();
        store.slots[0].generation = u32::MAX;
        let last = RingId {
            slot: id.slot,
            generation: u32::MAX,
        };
        assert!(store.remove_ring(last));
        assert_ne!(store.create_ring().slot, id.slot);
        assert_eq!(replay(&store, last, 0, t0), Err(ResumeError::UnknownStream));
    }

    #[test]
    fn budget_evicts_oldest_across_rings_first() {
        let t0 = Instant::now();
        let mut store = EventStore::new(limits(100, 100, 1000), 10, t0);
        let a = store.create_ring();
        let b = store.create_ring();
        store.append(a, b"a1a", t0);
        store.append(b, b"b1b", t0);
        store.append(a, b"a2a", t0);
        assert_eq!(store.total_bytes(), 9);
        store.append(b, b"b2b", t0); // 12 > 10: a1 (oldest overall) goes
        assert_eq!(replay(&store, a, 0, t0), Err(ResumeError::Evicted));
        assert_eq!(replay(&store, a, 1, t0), Ok(payloads(&[(2, "a2a")])));
        assert_eq!(
            replay(&store, b, 0, t0),
            Ok(payloads(&[(1, "b1b"), (2, "b2b")]))
        );
        store.append(a, b"a3a", t0); // next oldest is b1
        assert_eq!(replay(&store, b, 0, t0), Err(ResumeError::Evicted));
        assert_eq!(
            replay(&store, a, 1, t0),
            Ok(payloads(&[(2, "a2a"), (3, "a3a")]))
        );
        // An event bigger than the whole budget is not kept, and empties only
        // its own ring (b2), not the others.
        let big = store.append(b, b"0123456789AB", t0);
        assert_eq!(
            big,
            Some(Appended {
                seq: 3,
                stored: false
            })
        );
        assert_eq!(
            replay(&store, a, 1, t0),
            Ok(payloads(&[(2, "a2a"), (3, "a3a")]))
        );
        assert_eq!(replay(&store, b, 2, t0), Err(ResumeError::Evicted));
        assert_eq!(replay(&store, b, 3, t0), Ok(vec![]));
        assert_eq!(store.total_bytes(), 6);
        assert_eq!(
            store.evictions(),
            Evictions {
                budget: 4,
                ..Evictions::default()
            }
        );
    }

    #[test]
    fn sealing_keeps_the_events_and_drops_spare_capacity() {
        let now = Instant::now();
        let mut store = EventStore::new(
            RingLimits {
                max_events: 1000,
                max_bytes: 1 << 20,
                max_age: Duration::from_secs(60),
            },
            1 << 30,
            now,
        );
        let ring = store.create_ring();
        for _ in 0..100 {
            store.append(ring, &[7; 256], now);
        }
        store.seal(ring);
        let r = store.ring(ring).unwrap();
        assert_eq!(r.buf.capacity(), r.buf.len());
        assert_eq!(store.replay_after(ring, 0, now).unwrap().count(), 100);
    }

    #[test]
    fn payload_buffer_stays_compact() {
        let t0 = Instant::now();
        let mut store = EventStore::new(limits(10, 100_000, 1000), 1_000_000, t0);
        let ring = store.create_ring();
        for i in 0..10_000u32 {
            let payload = [i as u8; 100];
            store.append(ring, &payload, t0);
            let r = store.ring(ring).expect("live");
            assert!(
                r.buf.len() <= 2 * r.bytes() + 100,
                "buffer {} live {}",
                r.buf.len(),
                r.bytes()
            );
        }
        assert!(store.order.len() <= 2 * store.event_count() + 32);
        let got = replay(&store, ring, 9_990, t0).expect("in window");
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|(seq, p)| p == &vec![(*seq - 1) as u8; 100]));
    }

    /// Overhead the module docs promise: 8 bytes per event in the ring, 8
    /// in the shard order, an 8-byte id, under 100 bytes per ring slot.
    #[test]
    fn sizes() {
        assert_eq!(size_of::<Meta>(), 8);
        assert_eq!(size_of::<OrderEntry>(), 8);
        assert_eq!(size_of::<RingId>(), 8);
        assert!(size_of::<Slot>() <= 96, "{}", size_of::<Slot>());
    }

    // ------------------------------------------------------------ model

    #[derive(Debug, Clone)]
    enum Op {
        Create,
        Remove(prop::sample::Index),
        Append(prop::sample::Index, usize, u64),
        EvictExpired(u64),
        Replay(prop::sample::Index, After, u64),
    }

    /// Which Last-Event-ID to resume from.
    #[derive(Debug, Clone)]
    enum After {
        /// Any seq the ring could be asked about (0..=last), or one past.
        Any(prop::sample::Index),
        /// `back` before the last seq (the common case: a recent id).
        Recent(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => Just(Op::Create),
            1 => any::<prop::sample::Index>().prop_map(Op::Remove),
            12 => (any::<prop::sample::Index>(), 0usize..24, 0u64..20)
                .prop_map(|(r, len, dt)| Op::Append(r, len, dt)),
            1 => (0u64..60).prop_map(Op::EvictExpired),
            6 => (
                any::<prop::sample::Index>(),
                prop_oneof![
                    any::<prop::sample::Index>().prop_map(After::Any),
                    (0u64..6).prop_map(After::Recent),
                ],
                prop_oneof![Just(0u64), 0u64..60],
            )
                .prop_map(|(r, a, dt)| Op::Replay(r, a, dt)),
        ]
    }

    struct ModelEvent {
        ring: usize,
        seq: u64,
        payload: Vec<u8>,
        at: u64,
        gone: bool,
    }

    struct ModelRing {
        id: RingId,
        removed: bool,
        next_seq: u64,
    }

    /// The naive model: every event ever appended, in order, with a flag.
    struct Model {
        limits: RingLimits,
        budget: usize,
        rings: Vec<ModelRing>,
        log: Vec<ModelEvent>,
        evictions: Evictions,
    }

    impl Model {
        fn live(&self) -> impl Iterator<Item = usize> + '_ {
            (0..self.log.len())
                .filter(|&i| !self.log[i].gone && !self.rings[self.log[i].ring].removed)
        }

        fn ring_live(&self, ring: usize) -> Vec<usize> {
            self.live().filter(|&i| self.log[i].ring == ring).collect()
        }

        fn bytes_of(&self, idx: &[usize]) -> usize {
            idx.iter().map(|&i| self.log[i].payload.len()).sum()
        }

        fn expire(&mut self, now_ms: u64) {
            let max_age = self.limits.max_age.as_millis() as u64;
            for i in self.live().collect::<Vec<_>>() {
                if now_ms - self.log[i].at > max_age {
                    self.log[i].gone = true;
                    self.evictions.age += 1;
                }
            }
        }

        fn append(&mut self, ring: usize, payload: Vec<u8>, now_ms: u64) -> Appended {
            self.expire(now_ms);
            let seq = self.rings[ring].next_seq;
            self.rings[ring].next_seq += 1;
            let oversized = payload.len() > self.limits.max_bytes.min(self.budget);
            if oversized {
                let gone = self.ring_live(ring);
                let reason = if payload.len() > self.limits.max_bytes {
                    &mut self.evictions.bytes
                } else {
                    &mut self.evictions.budget
                };
                *reason += gone.len() as u64 + 1;
                for i in gone {
                    self.log[i].gone = true;
                }
            }
            self.log.push(ModelEvent {
                ring,
                seq,
                payload,
                at: now_ms,
                gone: oversized,
            });
            if oversized {
                return Appended { seq, stored: false };
            }
            while self.ring_live(ring).len() > self.limits.max_events {
                let oldest = self.ring_live(ring)[0];
                self.log[oldest].gone = true;
                self.evictions.count += 1;
            }
            while self.bytes_of(&self.ring_live(ring)) > self.limits.max_bytes {
                let oldest = self.ring_live(ring)[0];
                self.log[oldest].gone = true;
                self.evictions.bytes += 1;
            }
            while self.bytes_of(&self.live().collect::<Vec<_>>()) > self.budget {
                let oldest = self
                    .live()
                    .next()
                    .expect("over budget means something is live");
                self.log[oldest].gone = true;
                self.evictions.budget += 1;
            }
            Appended {
                seq,
                stored: !self.log.last().expect("just pushed").gone,
            }
        }

        fn replay(
            &self,
            ring: usize,
            after: u64,
            now_ms: u64,
        ) -> Result<Vec<(u64, Vec<u8>)>, ResumeError> {
            let r = &self.rings[ring];
            if r.removed {
                return Err(ResumeError::UnknownStream);
            }
            if after >= r.next_seq {
                return Err(ResumeError::UnknownEvent);
            }
            let max_age = self.limits.max_age.as_millis() as u64;
            let suffix: Vec<&ModelEvent> = self
                .log
                .iter()
                .filter(|e| e.ring == ring && e.seq > after)
                .collect();
            // The property: replay is exactly every event appended after
            // `after`, or Evicted if any of them is gone — never a subset.
            if suffix.iter().any(|e| e.gone || now_ms - e.at > max_age) {
                return Err(ResumeError::Evicted);
            }
            Ok(suffix.iter().map(|e| (e.seq, e.payload.clone())).collect())
        }
    }

    fn payload_for(ring: usize, seq: u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|k| (ring as u64 * 97 + seq * 31 + k as u64) as u8)
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// For any sequence of appends, evictions (count, bytes, age, budget,
        /// removal) across interleaved rings and any Last-Event-ID, replay is
        /// exactly the suffix after it — or an error, never a gap or a
        /// duplicate — and the accounting matches the model.
        #[test]
        fn replay_is_exactly_the_suffix(
            max_events in prop_oneof![0usize..4, 4usize..16],
            max_bytes in prop_oneof![0usize..40, 40usize..200],
            max_age_ms in prop_oneof![1u64..100, 100u64..1000],
            budget in prop_oneof![0usize..100, 100usize..600],
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let t0 = Instant::now();
            let limits = limits(max_events, max_bytes, max_age_ms);
            let mut store = EventStore::new(limits, budget, t0);
            let mut model = Model { limits, budget, rings: Vec::new(), log: Vec::new(), evictions: Evictions::default() };
            let mut now_ms = 0u64;
            for _ in 0..3 {
                model.rings.push(ModelRing { id: store.create_ring(), removed: false, next_seq: 1 });
            }
            for op in ops {
                match op {
                    Op::Create => {
                        let id = store.create_ring();
                        prop_assert!(model.rings.iter().all(|r| r.id != id), "ids are never reused");
                        model.rings.push(ModelRing { id, removed: false, next_seq: 1 });
                    }
                    Op::Remove(r) => {
                        let r = r.index(model.rings.len());
                        prop_assert_eq!(store.remove_ring(model.rings[r].id), !model.rings[r].removed);
                        model.rings[r].removed = true;
                    }
                    Op::Append(r, len, dt) => {
                        now_ms += dt;
                        let r = r.index(model.rings.len());
                        let now = t0 + MS * now_ms as u32;
                        let payload = payload_for(r, model.rings[r].next_seq, len);
                        let got = store.append(model.rings[r].id, &payload, now);
                        if model.rings[r].removed {
                            prop_assert_eq!(got, None);
                        } else {
                            prop_assert_eq!(got, Some(model.append(r, payload, now_ms)));
                        }
                    }
                    Op::EvictExpired(dt) => {
                        now_ms += dt;
                        store.evict_expired(t0 + MS * now_ms as u32);
                        model.expire(now_ms);
                    }
                    Op::Replay(r, after, dt) => {
                        let r = r.index(model.rings.len());
                        let next = model.rings[r].next_seq;
                        let after = match after {
                            After::Any(i) => i.index(next as usize + 1) as u64,
                            After::Recent(back) => (next - 1).saturating_sub(back),
                        };
                        let at = now_ms + dt;
                        prop_assert_eq!(
                            replay(&store, model.rings[r].id, after, t0 + MS * at as u32),
                            model.replay(r, after, at)
                        );
                    }
                }
                let live: Vec<usize> = model.live().collect();
                prop_assert_eq!(store.event_count(), live.len());
                prop_assert_eq!(store.total_bytes(), model.bytes_of(&live));
                prop_assert_eq!(store.ring_count(), model.rings.iter().filter(|r| !r.removed).count());
                prop_assert_eq!(store.evictions(), model.evictions);
                prop_assert!(store.total_bytes() <= budget);
                // The order holds, per live ring, its stale entries and one per
                // event, and its garbage stays bounded.
                let owed: usize = store.slots.iter().filter_map(|slot| slot.ring.as_ref())
                    .map(|ring| ring.stale_in_order + ring.events.len()).sum();
                let live_entries = store.order.iter().filter(|&&id| store.ring(id).is_some()).count();
                prop_assert_eq!(live_entries, owed);
                prop_assert!(store.order.len() <= 2 * store.event_count() + 32);
            }
        }
    }
}
