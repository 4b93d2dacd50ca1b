//! The `kafka_frames` fuzz target's checks ([`crate::fuzz_checks`]), run on stable in CI over its
//! committed seed corpus (`fuzz/corpus/kafka_frames/`): no fuzzer, a bounded replay of the inputs
//! that reach the codec, the lazy body decoders and the broker-address rewrite. Inputs a fuzzing
//! run found (and that were fixed) are committed there too and stay fixed through this test.
//!
//! The seeds are written by `seeds` below from the builders of [`crate::test_support`], in the
//! input format [`kafka_frames`] documents (a control byte, then a raw stream or
//! `[kind][len][bytes]` messages).

use bytes::Bytes;
use kafka_protocol::messages::produce_response::NodeEndpoint;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, BrokerId, ProduceResponse, RequestKind, ResponseKind,
};
use proxy_core::fuzz_corpus::{self, Replaying};

use crate::fuzz_checks::kafka_frames;
use crate::test_support::{
    api_versions_response, metadata_request, metadata_response, name, produce_request,
    request_frame, response_frame, unknown_api_frame,
};

#[test]
fn corpus_replays_through_the_fuzz_targets_session() {
    for (name, input) in fuzz_corpus::read("kafka_frames") {
        let _replaying = Replaying::seed(&name, &input);
        let end = kafka_frames(&input);
        // The `framed_` seeds are well-formed exchanges: every message reads, every request
        // expecting an answer gets it, and nothing is left half-read.
        if name.starts_with("framed_") {
            assert!(!end.closed, "{name}: the session was abandoned");
            assert!(end.messages > 0, "{name}: no message read");
            assert_eq!(end.in_flight, 0, "{name}: requests left unanswered");
            assert_eq!(end.unread, 0, "{name}: bytes left half-read");
        }
    }
}

// === the seeds ===

/// Control bytes: chunk size (low six bits, plus one), framed input (bit 6), re-encode (bit 7).
const FRAMED: u8 = 0x40;
const REENCODE: u8 = 0x80;
const WHOLE: u8 = 0x3f;

/// The seeds on disk are the ones the builders make (a drifted encoder shows here).
/// `SLUICE_WRITE_SEEDS=1 cargo test -p proxy-kafka --lib corpus` rewrites them after a seed
/// changes; files of other names (regressions a fuzzing run found) are left alone.
#[test]
fn seeds_on_disk_are_the_ones_written() {
    let dir = fuzz_corpus::dir("kafka_frames");
    if std::env::var_os("SLUICE_WRITE_SEEDS").is_some_and(|value| value == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, input) in seeds() {
            std::fs::write(dir.join(name), input).unwrap();
        }
    }
    for (name, input) in seeds() {
        let on_disk = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(on_disk, input, "{name}: rerun with SLUICE_WRITE_SEEDS=1");
    }
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let api_versions = RequestKind::ApiVersions(
        ApiVersionsRequest::default()
            .with_client_software_name(name("sluice-fuzz"))
            .with_client_software_version(name("1.0")),
    );
    let metadata = metadata_request(&["orders"]);
    let metadata_body = ResponseKind::Metadata(metadata_response());
    let produce_v10 = ResponseKind::Produce(ProduceResponse::default().with_node_endpoints(vec![
            NodeEndpoint::default()
                .with_node_id(BrokerId(2))
                .with_host(name("kafka-2.internal"))
                .with_port(9092),
        ]));
    let request =
        |api, version, id, body: &RequestKind| framed(0, &request_frame(api, version, id, body));
    let response = |api, version, body: &ResponseKind| {
        // The target puts the correlation id of the oldest request in flight: drop the frame's.
        let frame = response_frame(api, version, 0, body);
        let mut message = vec![1, u8::try_from(frame.len() - 8).unwrap()];
        message.extend_from_slice(&frame[8..]);
        message
    };
    let api_versions_answer = ResponseKind::ApiVersions(api_versions_response());
    vec![
        (
            "framed_api_versions_v3",
            [
                vec![FRAMED | WHOLE],
                request(ApiKey::ApiVersions, 3, 1, &api_versions),
                response(ApiKey::ApiVersions, 3, &api_versions_answer),
            ]
            .concat(),
        ),
        (
            "framed_metadata_v12_rewritten",
            [
                vec![FRAMED | WHOLE],
                request(ApiKey::Metadata, 12, 7, &metadata),
                response(ApiKey::Metadata, 12, &metadata_body),
            ]
            .concat(),
        ),
        (
            "framed_metadata_v1_bytewise_reencoded",
            [
                vec![FRAMED | REENCODE],
                request(ApiKey::Metadata, 1, 8, &metadata),
                request(ApiKey::Metadata, 1, 9, &metadata),
                response(ApiKey::Metadata, 1, &metadata_body),
                response(ApiKey::Metadata, 1, &metadata_body),
            ]
            .concat(),
        ),
        (
            "framed_produce_acks0_then_acks1",
            [
                vec![FRAMED | 6],
                request(ApiKey::Produce, 9, 20, &produce_request(0, 12)),
                request(ApiKey::Produce, 9, 21, &produce_request(1, 12)),
                response(
                    ApiKey::Produce,
                    9,
                    &ResponseKind::Produce(ProduceResponse::default()),
                ),
            ]
            .concat(),
        ),
        (
            "framed_produce_v10_node_endpoints",
            [
                vec![FRAMED | WHOLE],
                request(ApiKey::Produce, 10, 30, &produce_request(1, 4)),
                response(ApiKey::Produce, 10, &produce_v10),
            ]
            .concat(),
        ),
        (
            "raw_two_requests_in_segments",
            [
                vec![6],
                request_frame(ApiKey::ApiVersions, 3, 1, &api_versions).to_vec(),
                request_frame(ApiKey::Metadata, 12, 2, &metadata).to_vec(),
            ]
            .concat(),
        ),
        (
            "raw_unknown_api_key",
            [vec![WHOLE], unknown_api_frame(5, b"opaque").to_vec()].concat(),
        ),
        (
            "raw_huge_declared_length",
            vec![WHOLE, 0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 3],
        ),
    ]
}

/// A request frame as a framed-input message: its bytes after the length prefix.
fn framed(kind: u8, frame: &Bytes) -> Vec<u8> {
    let mut message = vec![kind, u8::try_from(frame.len() - 4).unwrap()];
    message.extend_from_slice(&frame[4..]);
    message
}
