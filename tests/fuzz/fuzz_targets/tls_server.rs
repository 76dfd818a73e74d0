//! A TLS server session (`ringmcp::transport::tls::TlsSession`) fed what a client sends
//! before any authentication. The driver and its invariants live in `tests/fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringmcp_fuzz::fuzz_tls_server(data));
