//! Connection deadlines in one coarse timer wheel per shard.
//!
//! Every deadline of a connection (idle, ping, pong, fragment, header, TLS handshake, a
//! stalled write) is seconds long and only has to fire "not before, and soon after". So,
//! the way uSockets sweeps its timeouts, a shard keeps them in a hashed wheel of
//! [`SLOTS`] lists, one per [`TICK`], and one small task sweeps the lists of the ticks that
//! passed and wakes the connections whose deadline did. It sleeps until the next tick in
//! which a deadline falls, so an idle shard is not woken a hundred times a second. A connection holds a [`Deadline`]: a
//! slab key of four bytes. Its entry (deadline, waker, two list links) is 32 bytes in the
//! shard's slab, instead of a glommio timer per connection (an `Rc` allocation plus an entry
//! in the reactor's timer map).
//!
//! A deadline fires once the tick it falls in has ended, so never early and at most one tick
//! late (plus however long the shard is busy before the sweeper runs). Moving a deadline is
//! an unlink and a link in the slot lists, no allocation; a deadline pushed later by
//! activity costs nothing at all when it stays in the same tick.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The wheel's resolution: the most a deadline fires late (the smallest configured timeout
/// anyone uses is hundreds of milliseconds; the defaults are seconds).
pub const TICK: Duration = Duration::from_millis(10);
const TICK_NANOS: u64 = 10_000_000;

/// Lists in the wheel: one revolution is `SLOTS * TICK` (10.24 s). A deadline further away
/// waits in its list and is passed over once per revolution until it is due.
const SLOTS: usize = 1024;

/// No entry (end of a list, or an empty slot).
const NIL: u32 = u32::MAX;
/// `prev` of an entry that heads its slot's list.
const HEAD: u32 = u32::MAX - 1;
/// `prev` of an entry that fired (in no list, waiting to be polled).
const FIRED: u32 = u32::MAX - 2;
/// `prev` of a free slab entry (`next` links the free list).
const VACANT: u32 = u32::MAX - 3;
/// Keys stop below the markers.
const MAX_KEYS: usize = VACANT as usize;

/// One deadline in the slab.
struct Entry {
    /// The tick whose end the deadline waits for.
    tick: u64,
    /// The task to wake when it fires.
    waker: Option<Waker>,
    /// The previous entry in the slot's list, or [`HEAD`], [`FIRED`], [`VACANT`].
    prev: u32,
    /// The next entry in the slot's list (or in the free list), or [`NIL`].
    next: u32,
}

/// The wheel proper, in ticks, without a clock: pure, so it is tested with made-up time.
pub struct Wheel {
    entries: Vec<Entry>,
    /// The first free entry, or [`NIL`].
    free: u32,
    /// The first entry of each slot's list (allocated with the first deadline).
    slots: Vec<u32>,
    /// Every tick up to this one is swept: a deadline in it or before fires at once.
    swept: u64,
    /// Entries in lists or fired (not free).
    live: usize,
}

impl Wheel {
    /// An empty wheel whose ticks up to `now` have passed.
    pub const fn new(now: u64) -> Wheel {
        Wheel {
            entries: Vec::new(),
            free: NIL,
            slots: Vec::new(),
            swept: now,
            live: 0,
        }
    }

    /// Adds a deadline at the end of `tick`; `None` when the slab is full (four billion).
    pub fn insert(&mut self, tick: u64) -> Option<u32> {
        let key = if self.free != NIL {
            let key = self.free;
            self.free = self.entries[key as usize].next;
            key
        } else {
            if self.entries.len() >= MAX_KEYS {
                return None;
            }
            self.entries.push(Entry {
                tick,
                waker: None,
                prev: VACANT,
                next: NIL,
            });
            (self.entries.len() - 1) as u32
        };
        self.live += 1;
        self.entries[key as usize].prev = FIRED;
        self.file(key, tick);
        Some(key)
    }

    /// Moves `key`'s deadline to the end of `tick` (a fired one is armed again).
    pub fn reset(&mut self, key: u32, tick: u64) {
        let Some(entry) = self.entries.get(key as usize) else {
            return;
        };
        if entry.prev == VACANT || (entry.tick == tick && entry.prev != FIRED) {
            return;
        }
        self.unlink(key);
        self.file(key, tick);
    }

    /// Removes `key`, handing back its waker (to drop outside any borrow of the wheel).
    pub fn remove(&mut self, key: u32) -> Option<Waker> {
        match self.entries.get(key as usize) {
            Some(entry) if entry.prev != VACANT => {}
            _ => return None,
        }
        self.unlink(key);
        let entry = &mut self.entries[key as usize];
        entry.prev = VACANT;
        entry.next = self.free;
        self.free = key;
        self.live -= 1;
        entry.waker.take()
    }

    /// Clones the waker of every deadline not removed into `wakers` (to wake outside any
    /// borrow of the wheel).
    pub fn wakers(&self, wakers: &mut Vec<Waker>) {
        let held = (self.entries.iter()).filter(|entry| entry.prev != VACANT);
        wakers.extend(held.filter_map(|entry| entry.waker.clone()));
    }

    /// The tick `key` waits for.
    pub fn tick_of(&self, key: u32) -> Option<u64> {
        self.entries.get(key as usize).map(|e| e.tick)
    }

    /// Whether `key`'s deadline passed (a removed key counts as passed).
    pub fn fired(&self, key: u32) -> bool {
        self.entries
            .get(key as usize)
            .is_none_or(|e| e.prev == FIRED || e.prev == VACANT)
    }

    /// Whether `key`'s deadline passed; if not, `waker` is woken when it does. A waker
    /// replaced is handed back, to be dropped outside any borrow of the wheel.
    pub fn poll(&mut self, key: u32, waker: &Waker) -> (bool, Option<Waker>) {
        let Some(entry) = self.entries.get_mut(key as usize) else {
            return (true, None);
        };
        if entry.prev == FIRED || entry.prev == VACANT {
            return (true, None);
        }
        match &entry.waker {
            Some(w) if w.will_wake(waker) => (false, None),
            _ => (false, entry.waker.replace(waker.clone())),
        }
    }

    /// Entries not free.
    #[cfg(test)]
    pub fn live(&self) -> usize {
        self.live
    }

    /// The last tick swept.
    pub fn swept(&self) -> u64 {
        self.swept
    }

    /// Fires every deadline in a tick up to `now`, pushing the wakers of those that had one
    /// onto `woken` (to wake outside any borrow of the wheel). Looks at each slot at most
    /// once however long the sweeper slept.
    pub fn sweep(&mut self, now: u64, woken: &mut Vec<Waker>) {
        if now <= self.swept {
            return;
        }
        if self.slots.is_empty() {
            self.swept = now;
            return;
        }
        let passed = (now - self.swept).min(SLOTS as u64);
        for tick in now - passed + 1..=now {
            let slot = (tick % SLOTS as u64) as usize;
            let mut key = self.slots[slot];
            while key != NIL {
                let entry = &mut self.entries[key as usize];
                let next = entry.next;
                // A deadline a revolution or more away stays in its list.
                if entry.tick <= now {
                    if let Some(waker) = entry.waker.take() {
                        woken.push(waker);
                    }
                    self.unlink(key);
                }
                key = next;
            }
        }
        self.swept = now;
    }

    /// The first tick after the swept ones in which a deadline falls, looking one revolution
    /// ahead: past that, the tick that ends the revolution (a deadline further away is looked
    /// at again then). `None` when no deadline waits. Walks the lists up to the tick found.
    pub fn next_due(&self) -> Option<u64> {
        if self.slots.is_empty() {
            return None;
        }
        let mut waiting = false;
        for tick in self.swept + 1..=self.swept + SLOTS as u64 {
            let mut key = self.slots[(tick % SLOTS as u64) as usize];
            while key != NIL {
                let entry = &self.entries[key as usize];
                if entry.tick <= tick {
                    return Some(tick);
                }
                waiting = true;
                key = entry.next;
            }
        }
        waiting.then_some(self.swept + SLOTS as u64)
    }

    /// Puts an unlinked `key` in the list of `tick`, or fires it if that tick was swept.
    fn file(&mut self, key: u32, tick: u64) {
        let entry = &mut self.entries[key as usize];
        entry.tick = tick;
        if tick <= self.swept {
            entry.prev = FIRED;
            return;
        }
        if self.slots.is_empty() {
            self.slots = vec![NIL; SLOTS];
        }
        let slot = (tick % SLOTS as u64) as usize;
        let head = self.slots[slot];
        entry.prev = HEAD;
        entry.next = head;
        if head != NIL {
            self.entries[head as usize].prev = key;
        }
        self.slots[slot] = key;
    }

    /// Takes `key` out of its slot's list (it counts as fired until filed again).
    fn unlink(&mut self, key: u32) {
        let Entry {
            tick, prev, next, ..
        } = self.entries[key as usize];
        match prev {
            FIRED | VACANT => return,
            HEAD => self.slots[(tick % SLOTS as u64) as usize] = next,
            prev => self.entries[prev as usize].next = next,
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        let entry = &mut self.entries[key as usize];
        entry.prev = FIRED;
        entry.next = NIL;
    }
}

/// A shard's wheel with its clock and its sweeper.
struct Shared {
    wheel: Wheel,
    /// Tick 0 starts here.
    epoch: Option<Instant>,
    /// The executor whose task sweeps this wheel, once one was spawned.
    sweeper: Option<usize>,
    /// The tick the sweeper sleeps until (`u64::MAX`: none is due). A deadline filed
    /// before it moves it and wakes the sweeper, which re-arms its timer.
    planned: u64,
    /// The sweeper's waker.
    sleeper: Option<Waker>,
    /// Times the sweeper woke and swept (for tests).
    sweeps: u64,
}

thread_local! {
    static SHARED: RefCell<Shared> = const {
        RefCell::new(Shared {
            wheel: Wheel::new(0),
            epoch: None,
            sweeper: None,
            planned: u64::MAX,
            sleeper: None,
            sweeps: 0,
        })
    };
}

impl Shared {
    /// The tick that ends at or after `at`: a deadline in it never fires early.
    fn tick_for(&mut self, at: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert_with(Instant::now);
        nanos(at.saturating_duration_since(epoch)).div_ceil(TICK_NANOS)
    }

    /// The tick now falls in: every tick before it has ended.
    fn now_tick(&mut self) -> u64 {
        let epoch = *self.epoch.get_or_insert_with(Instant::now);
        nanos(Instant::now().saturating_duration_since(epoch)) / TICK_NANOS
    }

    /// When `tick` is before the sweeper's plan: moves the plan and hands back the sweeper's
    /// waker (to wake outside the borrow).
    fn plan(&mut self, tick: u64) -> Option<Waker> {
        // A deadline in a swept tick fired when it was filed.
        if tick > self.wheel.swept() && tick < self.planned {
            self.planned = tick;
            return self.sleeper.take();
        }
        None
    }

    /// When tick `tick` ends, since tick 0 starts at the epoch (`None` past the clock's range).
    fn instant_of(&mut self, tick: u64) -> Option<Instant> {
        let epoch = *self.epoch.get_or_insert_with(Instant::now);
        epoch.checked_add(Duration::from_nanos(tick.saturating_mul(TICK_NANOS)))
    }
}

/// `d` in nanoseconds (saturating: 584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A connection's deadline: a key into its shard's wheel, removed when dropped. Its API is
/// that of the glommio timer it replaces: re-armed with `reset`, moved earlier only with
/// `pull_in`, and polled on every turn of a connection loop (a borrow and a flag, no clock).
pub struct Deadline {
    /// [`NIL`] if the wheel was full: such a deadline is always expired.
    key: u32,
}

impl Deadline {
    /// A deadline at `at`, on the current executor's wheel (whose sweeper starts with it).
    pub fn at(at: Instant) -> Self {
        let executor = glommio::executor().id();
        let (key, spawn, unpark) = SHARED.with(|shared| {
            let mut shared = shared.borrow_mut();
            let tick = shared.tick_for(at);
            let key = shared.wheel.insert(tick).unwrap_or(NIL);
            let spawn = shared.sweeper != Some(executor);
            if spawn {
                shared.sweeper = Some(executor);
            }
            (key, spawn, shared.plan(tick))
        });
        if spawn {
            glommio::spawn_local(sweep()).detach();
        }
        if let Some(waker) = unpark {
            waker.wake();
        }
        Deadline { key }
    }

    /// Re-arms for a new deadline (no-op when it falls in the same tick and did not fire).
    pub fn reset(&mut self, at: Instant) {
        let unpark = SHARED.with(|shared| {
            let mut shared = shared.borrow_mut();
            let tick = shared.tick_for(at);
            shared.wheel.reset(self.key, tick);
            shared.plan(tick)
        });
        if let Some(waker) = unpark {
            waker.wake();
        }
    }

    /// Moves the deadline to `at` only if that is earlier (or it already fired): a later
    /// deadline is left to the early wake-up, whose handler re-arms it. Activity that pushes
    /// an idle deadline back (every message) thus costs no wheel update.
    pub fn pull_in(&mut self, at: Instant) {
        let unpark = SHARED.with(|shared| {
            let mut shared = shared.borrow_mut();
            let tick = shared.tick_for(at);
            let earlier = shared.wheel.tick_of(self.key).is_some_and(|t| tick < t);
            if earlier || shared.wheel.fired(self.key) {
                shared.wheel.reset(self.key, tick);
                return shared.plan(tick);
            }
            None
        });
        if let Some(waker) = unpark {
            waker.wake();
        }
    }

    /// Ready once the deadline passed (at most one tick after it).
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let (fired, replaced) =
            SHARED.with(|shared| shared.borrow_mut().wheel.poll(self.key, cx.waker()));
        drop(replaced);
        if fired {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        // The thread's wheel may be gone already when a task is dropped at thread exit.
        let waker = SHARED
            .try_with(|shared| shared.borrow_mut().wheel.remove(self.key))
            .ok()
            .flatten();
        drop(waker);
    }
}

/// Wakes every task that polled a deadline of this thread's wheel, due or not, and leaves the
/// deadlines as they are: the shard's stop, which each connection waiting for it also waits on
/// its deadline for (so the shard keeps no waker per connection).
pub fn wake_all() {
    let mut wakers = Vec::new();
    SHARED.with(|shared| shared.borrow().wheel.wakers(&mut wakers));
    for waker in wakers {
        waker.wake();
    }
}

/// The shard's sweeper: sleeps until the end of the next tick in which a deadline falls,
/// fires the due ones and wakes their tasks. With no deadline it waits for one; a deadline
/// filed before its plan wakes it to re-arm. A shard whose deadlines are seconds away thus
/// wakes for them, not once per tick.
async fn sweep() {
    let mut woken = Vec::new();
    // The reactor timer the sweeper sleeps on, armed for the end of tick `armed`.
    let mut timer: Option<(u64, glommio::timer::Timer)> = None;
    loop {
        std::future::poll_fn(|cx| {
            let (planned, at) = SHARED.with(|shared| {
                let mut shared = shared.borrow_mut();
                if !shared
                    .sleeper
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    shared.sleeper = Some(cx.waker().clone());
                }
                let planned = shared.planned;
                (planned, shared.instant_of(planned))
            });
            if planned == u64::MAX {
                timer = None;
                return Poll::Pending;
            }
            // Past the clock's range, the wheel is swept once per revolution.
            let at = at.unwrap_or_else(|| Instant::now() + TICK * SLOTS as u32);
            if timer.as_ref().is_none_or(|(armed, _)| *armed != planned) {
                let wait = at.saturating_duration_since(Instant::now());
                timer = Some((planned, glommio::timer::Timer::new(wait)));
            }
            match &mut timer {
                Some((_, t)) => Pin::new(t).poll(cx).map(|_| ()),
                None => Poll::Pending,
            }
        })
        .await;
        timer = None;
        SHARED.with(|shared| {
            let mut shared = shared.borrow_mut();
            let now = shared.now_tick();
            shared.sweeps += 1;
            shared.wheel.sweep(now, &mut woken);
            shared.planned = shared.wheel.next_due().unwrap_or(u64::MAX);
        });
        for waker in woken.drain(..) {
            waker.wake();
        }
    }
}

/// Sleeps until `at` on the shard's wheel (for tests: a connection loop polls its
/// [`Deadline`] instead).
#[cfg(test)]
async fn sleep_until(at: Instant) {
    let mut deadline = Deadline::at(at);
    std::future::poll_fn(|cx| deadline.poll_expired(cx)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn woken(wheel: &mut Wheel, now: u64) -> usize {
        let mut woken = Vec::new();
        wheel.sweep(now, &mut woken);
        woken.len()
    }

    fn waker() -> Waker {
        Waker::noop().clone()
    }

    #[test]
    fn handle_is_four_bytes_and_entry_thirty_two() {
        assert!(std::mem::size_of::<Deadline>() <= 4);
        assert!(std::mem::size_of::<Entry>() <= 32);
    }

    #[test]
    fn fires_at_the_end_of_its_tick_never_before() {
        let mut wheel = Wheel::new(0);
        let key = wheel.insert(5).unwrap();
        assert!(!wheel.poll(key, &waker()).0);
        assert_eq!(woken(&mut wheel, 4), 0);
        assert!(!wheel.fired(key));
        assert_eq!(woken(&mut wheel, 5), 1);
        assert!(wheel.fired(key));
        assert!(wheel.poll(key, &waker()).0);
    }

    #[test]
    fn every_deadline_polled_and_not_removed_gives_its_waker_to_wake_all() {
        let mut wheel = Wheel::new(0);
        let polled = wheel.insert(5).unwrap();
        let removed = wheel.insert(6).unwrap();
        let _never_polled = wheel.insert(7).unwrap();
        wheel.poll(polled, &waker());
        wheel.poll(removed, &waker());
        wheel.remove(removed);
        let mut wakers = Vec::new();
        wheel.wakers(&mut wakers);
        assert_eq!(wakers.len(), 1);
        assert!(!wheel.fired(polled), "waking is not firing");
    }

    #[test]
    fn a_deadline_already_swept_fires_at_once() {
        let mut wheel = Wheel::new(10);
        let key = wheel.insert(10).unwrap();
        assert!(wheel.fired(key));
        let key = wheel.insert(11).unwrap();
        assert!(!wheel.fired(key));
    }

    #[test]
    fn a_far_deadline_waits_out_revolutions() {
        let mut wheel = Wheel::new(0);
        let far = 3 * SLOTS as u64 + 7;
        let key = wheel.insert(far).unwrap();
        for now in 1..far {
            wheel.sweep(now, &mut Vec::new());
            assert!(!wheel.fired(key), "early at {now}");
        }
        wheel.sweep(far, &mut Vec::new());
        assert!(wheel.fired(key));
    }

    #[test]
    fn a_long_sleep_sweeps_each_slot_once_and_fires_everything_due() {
        let mut wheel = Wheel::new(0);
        let keys: Vec<u32> = (1..=5000).map(|t| wheel.insert(t).unwrap()).collect();
        wheel.sweep(4000, &mut Vec::new());
        for (i, &key) in keys.iter().enumerate() {
            assert_eq!(wheel.fired(key), i < 4000, "key {i}");
        }
    }

    #[test]
    fn next_due_is_the_first_tick_with_a_deadline_within_a_revolution() {
        let mut wheel = Wheel::new(100);
        assert_eq!(wheel.next_due(), None);
        let far = wheel.insert(100 + 5 * SLOTS as u64).unwrap();
        assert_eq!(
            wheel.next_due(),
            Some(100 + SLOTS as u64),
            "a revolution ahead"
        );
        let near = wheel.insert(140).unwrap();
        assert_eq!(wheel.next_due(), Some(140));
        wheel.reset(near, 120);
        assert_eq!(wheel.next_due(), Some(120));
        wheel.sweep(120, &mut Vec::new());
        assert_eq!(wheel.next_due(), Some(120 + SLOTS as u64));
        wheel.remove(far);
        assert_eq!(wheel.next_due(), None);
    }

    #[test]
    fn cancel_removes_and_reuses_the_key() {
        let mut wheel = Wheel::new(0);
        let a = wheel.insert(3).unwrap();
        let b = wheel.insert(3).unwrap();
        wheel.poll(a, &waker());
        assert!(wheel.remove(a).is_some());
        assert_eq!(wheel.live(), 1);
        assert_eq!(woken(&mut wheel, 3), 0, "a's waker went with it");
        assert!(wheel.fired(b));
        let c = wheel.insert(9).unwrap();
        assert_eq!(c, a, "the freed key is reused, the slab does not grow");
        assert_eq!(wheel.entries.len(), 2);
        assert!(wheel.remove(a).is_none() || wheel.live() == 1);
    }

    #[test]
    fn reset_earlier_and_later() {
        let mut wheel = Wheel::new(0);
        let key = wheel.insert(100).unwrap();
        wheel.reset(key, 20);
        wheel.sweep(19, &mut Vec::new());
        assert!(!wheel.fired(key));
        wheel.sweep(20, &mut Vec::new());
        assert!(wheel.fired(key));
        wheel.reset(key, 50);
        assert!(!wheel.fired(key), "a fired deadline is armed again");
        wheel.reset(key, 70);
        wheel.sweep(69, &mut Vec::new());
        assert!(
            !wheel.fired(key),
            "pushed later, it did not fire at its old tick"
        );
        wheel.sweep(70, &mut Vec::new());
        assert!(wheel.fired(key));
    }

    #[test]
    fn many_entries_fire_each_in_its_tick() {
        let mut wheel = Wheel::new(0);
        let n = 20_000u64;
        // Spread over several revolutions, inserted out of order, some moved, some removed.
        let keys: Vec<(u32, u64)> = (0..n)
            .map(|i| {
                let tick = 1 + (i * 7919) % (4 * SLOTS as u64);
                (wheel.insert(tick).unwrap(), tick)
            })
            .collect();
        let mut expect: Vec<(u32, Option<u64>)> = Vec::new();
        for (i, &(key, tick)) in keys.iter().enumerate() {
            match i % 3 {
                0 => expect.push((key, Some(tick))),
                1 => {
                    let moved = tick / 2 + 1;
                    wheel.reset(key, moved);
                    expect.push((key, Some(moved)));
                }
                _ => {
                    wheel.remove(key);
                    expect.push((key, None));
                }
            }
        }
        for now in 1..=4 * SLOTS as u64 {
            wheel.sweep(now, &mut Vec::new());
            for &(key, tick) in &expect {
                if let Some(tick) = tick {
                    assert_eq!(wheel.fired(key), tick <= now, "key {key} at {now}");
                }
            }
        }
        assert_eq!(wheel.live() as u64, n - n / 3);
    }

    #[test]
    fn on_an_executor_a_deadline_is_never_early_and_at_most_a_tick_late() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                for ms in [0u64, 1, 15, 33, 120] {
                    let start = Instant::now();
                    let at = start + Duration::from_millis(ms);
                    sleep_until(at).await;
                    let late = Instant::now().saturating_duration_since(at);
                    assert!(Instant::now() >= at, "early by {ms} ms");
                    // One tick, plus slack for a shared test machine.
                    assert!(late <= TICK + Duration::from_millis(40), "{late:?} late");
                }
                // Cancelled deadlines leave the wheel; the sweeper waits and comes back.
                drop(Deadline::at(Instant::now() + Duration::from_secs(5)));
                glommio::timer::sleep(TICK * 3).await;
                assert_eq!(SHARED.with(|s| s.borrow().wheel.live()), 0);
                let at = Instant::now() + Duration::from_millis(25);
                sleep_until(at).await;
                assert!(Instant::now() >= at);
            })
            .expect("an executor")
            .join()
            .expect("the test ran");
    }

    #[test]
    fn the_sweeper_sleeps_until_a_deadline_is_due() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let sweeps = || SHARED.with(|s| s.borrow().sweeps);
                let far = Deadline::at(Instant::now() + Duration::from_secs(5));
                glommio::timer::sleep(Duration::from_millis(300)).await;
                let idle = sweeps();
                assert!(idle <= 2, "{idle} sweeps in 300 ms with nothing due");
                // A nearer deadline filed later wakes it for that one.
                let at = Instant::now() + Duration::from_millis(50);
                sleep_until(at).await;
                assert!(Instant::now() >= at);
                assert!(sweeps() - idle <= 2);
                drop(far);
            })
            .expect("an executor")
            .join()
            .expect("the test ran");
    }

    #[test]
    fn pull_in_moves_only_earlier() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let start = Instant::now();
                let mut deadline = Deadline::at(start + Duration::from_secs(10));
                deadline.pull_in(start + Duration::from_secs(20));
                let tick = |d: &Deadline| SHARED.with(|s| s.borrow().wheel.tick_of(d.key));
                let ten = tick(&deadline);
                deadline.pull_in(start + Duration::from_millis(30));
                assert!(tick(&deadline) < ten);
                std::future::poll_fn(|cx| deadline.poll_expired(cx)).await;
                assert!(Instant::now() >= start + Duration::from_millis(30));
                // Fired: pull_in re-arms even for a later deadline.
                deadline.pull_in(Instant::now() + Duration::from_secs(1));
                assert!(deadline
                    .poll_expired(&mut Context::from_waker(Waker::noop()))
                    .is_pending());
            })
            .expect("an executor")
            .join()
            .expect("the test ran");
    }
}
