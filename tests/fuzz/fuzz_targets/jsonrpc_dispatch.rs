//! JSON-RPC parsing and MCP dispatch (Dispatcher::handle) over the built-in registry, one session per input.
//! The driver and its invariants live in `tests/fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringmcp_fuzz::fuzz_dispatch(data));
