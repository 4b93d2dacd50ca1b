//! Fuzzes SCRAM-SHA-256/512 (RFC 5802) message parsing on both sides of the proxy: as the
//! server that verifies a Kafka client and as the client that authenticates to a cluster (a
//! broker can lie), plus an honest exchange for an arbitrary user name.
//!
//! The first input byte steers the run: bit 0 picks the hash, and the rest of it, modulo 3, the
//! side (server: `client-first \n client-final`; client: `server-first \n server-final`; round
//! trip: a user name). `proxy_core::sasl::fuzz_checks::scram` documents the format and the
//! checks; `proxy-core`'s `sasl::corpus_tests` runs the same on the seed corpus
//! (`fuzz/corpus/sasl_scram/`) on stable in CI.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    proxy_core::sasl::fuzz_checks::scram(input);
});
