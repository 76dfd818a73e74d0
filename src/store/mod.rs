//! Per-shard stores: the session table and, with the Streamable HTTP transport, the SSE event rings.

pub mod sessions;
