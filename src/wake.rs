//! The one waiter of a shared flag or queue.

use std::cell::Cell;
use std::task::Waker;

/// Remembers the waker of the one task waiting on something another task
/// changes (a reply, a cancellation, bytes to write), and wakes it once.
#[derive(Default)]
pub struct WakeSlot(Cell<Option<Waker>>);

impl WakeSlot {
    /// Remembers `waker` (no clone when the same task is already remembered).
    pub fn register(&self, waker: &Waker) {
        match self.0.take() {
            Some(held) if held.will_wake(waker) => self.0.set(Some(held)),
            _ => self.0.set(Some(waker.clone())),
        }
    }

    /// Forgets the waiting task: it is running and will look again before it waits.
    pub fn forget(&self) {
        self.0.set(None);
    }

    /// Wakes the waiting task, if any.
    pub fn wake(&self) {
        if let Some(waker) = self.0.take() {
            waker.wake();
        }
    }
}

/// A waker that counts its wakes, from any thread.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct CountingWaker(std::sync::atomic::AtomicUsize);

#[cfg(test)]
impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
impl CountingWaker {
    pub(crate) fn wakes(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
