//! Fuzzes the Kafka codec, which reads every byte of a Kafka session from both peers: framing,
//! request headers, the request/response bookkeeping, (through `body()`) the `kafka-protocol`
//! decoders a stage reaches, re-encoding, and the broker-address rewrite every response goes
//! through.
//!
//! The first input byte steers the run: its low six bits give the chunk size the rest is fed in
//! (1–64 bytes), bit 7 re-encodes every other decoded message, and bit 6 picks the shape (*raw*:
//! the rest is the client's stream, then the backend's; *framed*: `[kind][len][len bytes]`
//! messages, each framed correctly, responses given the oldest request's correlation id).
//! `proxy_kafka::fuzz_checks::kafka_frames` documents the format and the checks; `proxy-kafka`'s
//! `corpus_tests` runs the same on the seed corpus (`fuzz/corpus/kafka_frames/`) on stable in CI.
//!
//! Found here (kafka-protocol 0.18): array decoders pre-allocated `Vec::with_capacity(count)`
//! from the wire, so `body()` on a tiny frame declaring a huge array aborted the process (OOM);
//! `vendor/kafka-protocol` bounds it (see its `SLUICE-PATCH.md`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    proxy_kafka::fuzz_checks::kafka_frames(input);
});
