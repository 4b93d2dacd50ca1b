//! Fuzzes the SASL PLAIN (RFC 4616) message parser, which reads a Kafka client's credentials,
//! and what the client side writes (`plain_message`): the input is a PLAIN message, and is also
//! read as `user \n password` for the client side.
//!
//! `proxy_core::sasl::fuzz_checks::plain` documents the checks; `proxy-core`'s
//! `sasl::corpus_tests` runs the same on the seed corpus (`fuzz/corpus/sasl_plain/`) on stable
//! in CI.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    proxy_core::sasl::fuzz_checks::plain(input);
});
