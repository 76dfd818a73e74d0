//! Per-shard state that outlives one connection: the session table, the
//! SSE event rings, and the Redis event store (its client and what it keeps). Owned by its
//! shard's thread: plain `&mut self` or `RefCell`s, no locks, no atomics.

pub mod redis;
pub mod ring;
pub mod sessions;
pub mod shared;

pub use ring::{Appended, EventStore, Evictions, ResumeError, RingId, RingLimits};
