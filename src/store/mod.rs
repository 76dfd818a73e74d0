//! Per-shard state that outlives one connection: the session table and the
//! SSE event rings. Owned by its shard's thread: plain `&mut self`, no locks,
//! no atomics.

pub mod ring;
pub mod sessions;

pub use ring::{Appended, EventStore, Evictions, ResumeError, RingId, RingLimits};
