//! The SSE decoder (SseDecoder::decode) and the Last-Event-ID parser (EventId::parse).
//! The driver and its invariants live in `tests/fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringmcp_fuzz::fuzz_sse(data));
