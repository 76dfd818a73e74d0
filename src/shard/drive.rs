//! Connections past their HTTP head (WebSockets, SSE responses) as entries of their shard's
//! tables, polled by one task per shard when something wakes them (issue 23, item 3), instead
//! of a glommio task each: a task is its future behind a 40 B header and an 8 B schedule
//! closure, in an allocator chunk of its own, where an entry is the driver alone, in pages of
//! [`PAGE`].
//!
//! An entry's waker is a number, not a pointer: the shard's id in the process and the entry's
//! token (its table and slot), so it costs no allocation and cloning it is a copy. Waking it
//! on the shard's own thread queues the token (once) and wakes the shard's drive task; from
//! any other thread it goes through the shard's [`Remote`] half, behind a mutex. A token
//! whose entry has ended since, or was reused, is a spurious poll, which every driver takes.

use super::conn::Driver;
use super::{http, Shard};
use crate::transport::streamable::SseStream;
use crate::transport::ws::WsConnection;
use crate::transport::Flow;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

/// Entries per page of a table: a page is allocated whole when the table is full, so a
/// table holds at most this many free entries past its highest count (a doubling vector
/// would hold up to as many as it has, and move them all as it grows).
const PAGE: usize = 64;

/// The token's low bit names the table.
const WEBSOCKET: u32 = 0;
const STREAM: u32 = 1;

/// Slots a table may hold: a token is a slot and a table bit in a `u32`.
const MAX_SLOTS: usize = 1 << 31;

// A waker is a shard id and a token in one word.
const _: () = assert!(usize::BITS == 64, "entry wakers need 64-bit addresses");

/// Polls between two looks at whether the executor wants the drive task to yield.
const POLLS_BETWEEN_PREEMPT_CHECKS: u32 = 32;

/// This shard's connections past their HTTP head, and what wakes them.
pub(super) struct Drivers {
    ready: Rc<Ready>,
    websockets: RefCell<Table<Driver<WsConnection>>>,
    streams: RefCell<Table<StreamDriver>>,
    /// The shard ended: entries are no longer taken (they would keep the shard alive).
    closed: Cell<bool>,
}

/// An SSE response's driver, and whether its connection may carry requests after it.
pub(super) struct StreamDriver {
    pub driver: Driver<SseStream>,
    pub keep_alive: bool,
}

impl Future for StreamDriver {
    type Output = Flow;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Flow> {
        Pin::new(&mut self.driver).poll(cx)
    }
}

impl Drivers {
    /// The tables of the shard running on this thread, whose wakers reach it from now on.
    pub fn new() -> Self {
        let ready = Ready::register();
        LOCAL.with(|local| *local.borrow_mut() = Some(Rc::clone(&ready)));
        Drivers {
            ready,
            websockets: RefCell::new(Table::default()),
            streams: RefCell::new(Table::default()),
            closed: Cell::new(false),
        }
    }

    /// Drives a WebSocket until it closes.
    pub fn websocket(&self, driver: Driver<WsConnection>) {
        self.insert(&self.websockets, WEBSOCKET, driver);
    }

    /// Drives an SSE response until it ends; [`http::stream_ended`] takes the connection then.
    pub fn stream(&self, stream: StreamDriver) {
        self.insert(&self.streams, STREAM, stream);
    }

    fn insert<T>(&self, table: &RefCell<Table<T>>, kind: u32, entry: T) {
        if self.closed.get() {
            return;
        }
        let inserted = table.borrow_mut().insert(entry);
        match inserted {
            // Its first poll at once: it writes what its machine holds (an SSE response's head
            // and the events its handler sent so far) before that handler runs again.
            Ok(slot) => self.poll_entry(slot << 1 | kind),
            // Past 2^31 connections on one shard: dropped, which closes it.
            Err(entry) => drop(entry),
        }
    }

    /// Polls the entries woken since, in the order they were woken; never ready (the drive
    /// task lives as long as its shard). Yields to the executor when it asks, as a task
    /// would.
    fn poll_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.ready.set_task(cx.waker());
        self.ready.take_remote();
        self.ready.driving.set(true);
        let mut polled = 0u32;
        while let Some(token) = self.ready.next() {
            self.poll_entry(token);
            polled += 1;
            if polled.is_multiple_of(POLLS_BETWEEN_PREEMPT_CHECKS)
                && glommio::executor().need_preempt()
            {
                cx.waker().wake_by_ref();
                break;
            }
        }
        self.ready.driving.set(false);
        Poll::Pending
    }

    fn poll_entry(&self, token: u32) {
        let slot = token >> 1;
        let waker = entry_waker(self.ready.id, token);
        if token & 1 == WEBSOCKET {
            // A WebSocket that ended has nothing after it: dropping it closes the socket.
            drop(poll_in(&self.websockets, slot, &waker));
        } else if let Some((stream, flow)) = poll_in(&self.streams, slot, &waker) {
            http::stream_ended(stream, flow);
        }
    }

    /// Drops every entry (closing its connection) and takes no more: the end of the shard.
    /// The entries hold their shard, which holds them, so they go here, not with it.
    pub fn close(&self) {
        self.closed.set(true);
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            if local.as_ref().is_some_and(|r| Rc::ptr_eq(r, &self.ready)) {
                *local = None;
            }
        });
        let websockets = std::mem::take(&mut *self.websockets.borrow_mut());
        let streams = std::mem::take(&mut *self.streams.borrow_mut());
        drop((websockets, streams));
    }
}

/// The shard's drive task: polls its woken connections, for as long as the shard runs.
pub(super) async fn drive(shard: Rc<Shard>) {
    std::future::poll_fn(|cx| shard.drivers.poll_woken(cx)).await
}

/// Polls the entry in `slot` of `table` with `waker`: the entry and what it ended with, once
/// it has ended (its slot is free again). The entry is out of the table while it runs, so it
/// may add connections to it.
fn poll_in<T: Future + Unpin>(
    table: &RefCell<Table<T>>,
    slot: u32,
    waker: &Waker,
) -> Option<(T, T::Output)> {
    let mut entry = table.borrow_mut().take(slot)?;
    let polled = Pin::new(&mut entry).poll(&mut Context::from_waker(waker));
    let mut table = table.borrow_mut();
    match polled {
        Poll::Pending => {
            table.put_back(slot, entry);
            None
        }
        Poll::Ready(output) => {
            table.release(slot);
            Some((entry, output))
        }
    }
}

/// A slab in pages that never move: an entry's slot is its key for as long as it lives, and
/// a free slot is reused before a page is added.
struct Table<T> {
    pages: Vec<Box<[Slot<T>]>>,
    /// The first free slot, [`NO_SLOT`] if none; each free slot names the next.
    free: u32,
}

const NO_SLOT: u32 = u32::MAX;

enum Slot<T> {
    Free {
        next: u32,
    },
    Held(T),
    /// Taken out to be polled.
    Out,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            pages: Vec::new(),
            free: NO_SLOT,
        }
    }
}

impl<T> Table<T> {
    /// Stores `entry` and returns its slot; gives it back when the table holds [`MAX_SLOTS`].
    fn insert(&mut self, entry: T) -> Result<u32, T> {
        if self.free == NO_SLOT {
            let first = self.pages.len() * PAGE;
            if first + PAGE > MAX_SLOTS {
                return Err(entry);
            }
            let page = (first + 1..=first + PAGE)
                .map(|next| Slot::Free {
                    next: if next < first + PAGE {
                        next as u32
                    } else {
                        NO_SLOT
                    },
                })
                .collect();
            self.pages.push(page);
            self.free = first as u32;
        }
        let slot = self.free;
        let place = self
            .slot(slot)
            .expect("the free list names slots of the table");
        let Slot::Free { next } = *place else {
            unreachable!("the free list holds free slots only");
        };
        *place = Slot::Held(entry);
        self.free = next;
        Ok(slot)
    }

    /// The entry in `slot`, taken out (the slot stays held); `None` if it holds none.
    fn take(&mut self, slot: u32) -> Option<T> {
        let place = self.slot(slot)?;
        match std::mem::replace(place, Slot::Out) {
            Slot::Held(entry) => Some(entry),
            other => {
                *place = other;
                None
            }
        }
    }

    /// Puts a taken entry back.
    fn put_back(&mut self, slot: u32, entry: T) {
        if let Some(place) = self.slot(slot) {
            *place = Slot::Held(entry);
        }
    }

    /// Frees the slot of a taken entry for the next one.
    fn release(&mut self, slot: u32) {
        let next = self.free;
        if let Some(place) = self.slot(slot) {
            *place = Slot::Free { next };
            self.free = slot;
        }
    }

    fn slot(&mut self, slot: u32) -> Option<&mut Slot<T>> {
        let slot = slot as usize;
        self.pages
            .get_mut(slot / PAGE)
            .map(|page| &mut page[slot % PAGE])
    }
}

thread_local! {
    /// The ready queue of the shard running on this thread.
    static LOCAL: RefCell<Option<Rc<Ready>>> = const { RefCell::new(None) };
}

/// Every live shard's [`Remote`] half, at its id; a dead shard's id is given to the next.
static REMOTES: Mutex<Vec<Weak<Remote>>> = Mutex::new(Vec::new());

/// The tokens a shard's entries were woken with, in order, each queued once.
struct Ready {
    /// This shard's place in [`REMOTES`], the high half of its wakers.
    id: u32,
    tokens: RefCell<VecDeque<u32>>,
    /// One bit per token: queued and not polled yet.
    queued: RefCell<Vec<u64>>,
    /// The drive task.
    task: RefCell<Option<Waker>>,
    /// The drive task is polling: it looks at the queue again before it waits.
    driving: Cell<bool>,
    remote: Arc<Remote>,
}

/// What reaches a shard's entries from other threads.
#[derive(Default)]
struct Remote {
    tokens: Mutex<Vec<u32>>,
    pending: AtomicBool,
    /// The drive task (glommio's wakers may be woken from any thread).
    task: Mutex<Option<Waker>>,
}

impl Ready {
    fn register() -> Rc<Ready> {
        let remote = Arc::new(Remote::default());
        let mut remotes = REMOTES.lock().unwrap_or_else(PoisonError::into_inner);
        let id = match remotes.iter().position(|r| r.strong_count() == 0) {
            Some(dead) => {
                remotes[dead] = Arc::downgrade(&remote);
                dead
            }
            None => {
                remotes.push(Arc::downgrade(&remote));
                remotes.len() - 1
            }
        };
        Rc::new(Ready {
            // More than 2^32 shards alive in one process would share wakers: spurious polls.
            id: id as u32,
            tokens: RefCell::new(VecDeque::new()),
            queued: RefCell::new(Vec::new()),
            task: RefCell::new(None),
            driving: Cell::new(false),
            remote,
        })
    }

    /// Queues `token` unless it is queued already, and wakes the drive task if it waits.
    fn queue(&self, token: u32) {
        if !self.mark_queued(token) {
            return;
        }
        let mut tokens = self.tokens.borrow_mut();
        tokens.push_back(token);
        if tokens.len() == 1 && !self.driving.get() {
            if let Some(task) = &*self.task.borrow() {
                task.wake_by_ref();
            }
        }
    }

    /// Marks `token` queued; false if it was already.
    fn mark_queued(&self, token: u32) -> bool {
        let (word, bit) = (token as usize / 64, 1u64 << (token % 64));
        let mut queued = self.queued.borrow_mut();
        if queued.len() <= word {
            queued.resize(word + 1, 0);
        }
        let unmarked = queued[word] & bit == 0;
        queued[word] |= bit;
        unmarked
    }

    /// Queues the tokens woken from other threads since the last look. Once per poll of the
    /// drive task: a wake from another thread during the poll wakes the task again (glommio
    /// polls a task woken while it runs once more), which takes it up then.
    fn take_remote(&self) {
        if self.remote.pending.swap(false, Ordering::Acquire) {
            let woken = std::mem::take(
                &mut *(self.remote.tokens.lock()).unwrap_or_else(PoisonError::into_inner),
            );
            let mut tokens = self.tokens.borrow_mut();
            tokens.extend(woken.into_iter().filter(|&token| self.mark_queued(token)));
        }
    }

    /// The next token to poll, for the drive task.
    fn next(&self) -> Option<u32> {
        let token = self.tokens.borrow_mut().pop_front()?;
        if let Some(word) = self.queued.borrow_mut().get_mut(token as usize / 64) {
            *word &= !(1u64 << (token % 64));
        }
        Some(token)
    }

    /// Remembers the drive task's waker, here and for other threads.
    fn set_task(&self, waker: &Waker) {
        let mut task = self.task.borrow_mut();
        if task.as_ref().is_some_and(|held| held.will_wake(waker)) {
            return;
        }
        *task = Some(waker.clone());
        *(self.remote.task.lock()).unwrap_or_else(PoisonError::into_inner) = Some(waker.clone());
    }
}

/// Wakes the entry `token` of shard `id` from a thread that is not the shard's.
fn wake_from_elsewhere(id: u32, token: u32) {
    let remote = {
        let remotes = REMOTES.lock().unwrap_or_else(PoisonError::into_inner);
        remotes.get(id as usize).and_then(Weak::upgrade)
    };
    // A shard that ended has nothing to wake.
    let Some(remote) = remote else { return };
    remote
        .tokens
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(token);
    remote.pending.store(true, Ordering::Release);
    let task = remote
        .task
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if let Some(task) = task {
        task.wake();
    }
}

/// Wakes the entry a waker names: on its shard's thread through the ready queue, elsewhere
/// through the shard's remote half.
fn wake_entry(address: usize) {
    let (id, token) = ((address >> 32) as u32, address as u32);
    let queued_here = LOCAL
        .try_with(|local| match &*local.borrow() {
            Some(ready) if ready.id == id => {
                ready.queue(token);
                true
            }
            _ => false,
        })
        .unwrap_or(false);
    if !queued_here {
        wake_from_elsewhere(id, token);
    }
}

/// std::task::RawWakerVTable: "These functions must all be thread-safe (even though RawWaker
/// is !Send + !Sync), because Waker is Send + Sync, and thus wakers may be moved to arbitrary
/// threads or invoked by & from arbitrary threads." They read the data as a number, and a
/// wake on another thread than the shard's takes the mutexes of [`wake_from_elsewhere`].
static ENTRY_WAKER: RawWakerVTable =
    RawWakerVTable::new(clone_entry_waker, wake_raw, wake_raw, drop_entry_waker);

fn clone_entry_waker(data: *const ()) -> RawWaker {
    RawWaker::new(data, &ENTRY_WAKER)
}

fn wake_raw(data: *const ()) {
    wake_entry(data.addr());
}

fn drop_entry_waker(_: *const ()) {}

/// The waker of entry `token` of shard `id`.
fn entry_waker(id: u32, token: u32) -> Waker {
    let address = (id as usize) << 32 | token as usize;
    // SAFETY: the vtable's functions never dereference the data (a number without provenance)
    // and are safe on any thread (see `ENTRY_WAKER`).
    unsafe { Waker::new(std::ptr::without_provenance(address), &ENTRY_WAKER) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wake::CountingWaker;

    /// This thread's shard tables, with a drive task that counts its wakes.
    fn drivers_with_task() -> (Drivers, Arc<CountingWaker>) {
        let drivers = Drivers::new();
        let task = Arc::new(CountingWaker::default());
        drivers.ready.set_task(&Waker::from(Arc::clone(&task)));
        (drivers, task)
    }

    #[test]
    fn a_table_reuses_freed_slots_before_it_adds_a_page() {
        let mut table = Table::default();
        let first: Vec<u32> = (0..PAGE as u32).map(|n| table.insert(n).unwrap()).collect();
        assert_eq!(first, (0..PAGE as u32).collect::<Vec<_>>());
        assert_eq!(table.pages.len(), 1);
        // An entry taken out to be polled keeps its slot; put back, it is there again.
        assert_eq!(table.take(7), Some(7));
        assert_eq!(table.take(7), None, "taken: polled by nobody else");
        table.put_back(7, 7);
        assert_eq!(table.take(7), Some(7));
        table.release(7);
        assert_eq!(table.take(7), None, "a free slot holds nothing");
        assert_eq!(table.insert(100), Ok(7), "the freed slot first");
        assert_eq!(table.insert(101), Ok(PAGE as u32), "then a new page");
        assert_eq!(table.pages.len(), 2);
        assert_eq!(table.take(PAGE as u32 + 1), None);
        assert_eq!(table.take(u32::MAX >> 1), None, "past the pages");
    }

    /// An entry is the driver alone: the slot's free-list link and taken mark fit in the
    /// driver's unused bit patterns (a tag beside it would cost 8 B per connection).
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_slot_costs_no_more_than_its_driver() {
        use std::mem::size_of;
        let websocket = size_of::<Driver<WsConnection>>();
        assert_eq!(size_of::<Slot<Driver<WsConnection>>>(), websocket);
        let stream = size_of::<Slot<StreamDriver>>();
        eprintln!("slots: websocket {websocket} B, stream {stream} B");
        assert!(stream <= size_of::<Driver<SseStream>>() + 8);
    }

    #[test]
    fn a_wake_on_the_shard_thread_queues_its_token_once_and_wakes_the_task_once() {
        let (drivers, task) = drivers_with_task();
        let waker = entry_waker(drivers.ready.id, 5);
        waker.wake_by_ref();
        let twin = waker.clone();
        assert!(twin.will_wake(&waker));
        twin.wake();
        entry_waker(drivers.ready.id, 8).wake();
        assert_eq!(task.wakes(), 1, "woken when the queue became non-empty");
        assert_eq!(drivers.ready.next(), Some(5));
        assert_eq!(drivers.ready.next(), Some(8));
        assert_eq!(drivers.ready.next(), None);
        // Polled, it may be queued again.
        waker.wake();
        assert_eq!(drivers.ready.next(), Some(5));
        drivers.close();
    }

    #[test]
    fn a_wake_from_another_thread_reaches_the_shard_and_wakes_its_task() {
        let (drivers, task) = drivers_with_task();
        let waker = entry_waker(drivers.ready.id, 3);
        std::thread::spawn(move || waker.wake()).join().unwrap();
        assert_eq!(task.wakes(), 1);
        drivers.ready.take_remote();
        assert_eq!(drivers.ready.next(), Some(3));
        assert_eq!(drivers.ready.next(), None);
        // Once the shard has ended, a late wake from elsewhere finds nothing and does nothing.
        let late = entry_waker(drivers.ready.id, 4);
        drivers.close();
        drop(drivers);
        std::thread::spawn(move || late.wake()).join().unwrap();
        assert_eq!(task.wakes(), 1);
    }

    #[test]
    fn the_wakers_of_a_closed_shard_no_longer_reach_it() {
        let drivers = Drivers::new();
        let id = drivers.ready.id;
        drivers.close();
        LOCAL.with(|local| assert!(local.borrow().is_none()));
        // Goes the other-thread way, to a queue nobody reads: no panic, nothing queued here.
        entry_waker(id, 1).wake();
        assert_eq!(drivers.ready.tokens.borrow().len(), 0);
    }
}
