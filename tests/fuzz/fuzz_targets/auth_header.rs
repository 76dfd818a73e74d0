//! The OAuth bearer codecs (RFC 6750): `bearer_token`, `query_carries_token` and the
//! `WWW-Authenticate` challenge writer. The driver and its invariants live in
//! `tests/fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringmcp_fuzz::fuzz_auth(data));
