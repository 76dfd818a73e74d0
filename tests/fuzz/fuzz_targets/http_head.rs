//! HTTP/1.1 request heads (RequestHead::parse) and, when chunked, the body (ChunkedDecoder), under a fuzzer-chosen chunking.
//! The driver and its invariants live in `tests/fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringmcp_fuzz::fuzz_http(data));
