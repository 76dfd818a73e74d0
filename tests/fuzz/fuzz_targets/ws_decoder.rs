//! The WebSocket decoder (Decoder::decode) in either role, under a fuzzer-chosen chunking and read window.
//! The driver and its invariants live in `tests/fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringmcp_fuzz::fuzz_ws(data));
