//! Fuzzes the inbound PROXY-protocol header parser, the first bytes Sluice reads from a client:
//! `detect` and `decode`, on the input whole and split in two where its first byte says.
//!
//! The checks are `proxy_core::proxy_protocol::fuzz_checks::proxy_header`, which documents them;
//! `proxy-core`'s `proxy_protocol::corpus_tests` runs the same on the seed corpus in CI, on
//! stable, without a fuzzer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| proxy_core::proxy_protocol::fuzz_checks::proxy_header(input));
