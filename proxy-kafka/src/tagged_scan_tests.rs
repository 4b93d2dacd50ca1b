//! Tests of the KIP-951 scan: on Produce and Fetch responses encoded by `kafka-protocol` (several
//! topics and partitions, records, error messages, per-partition tagged fields), the scan says
//! what the decoder finds; on a body changed anywhere it never says "absent" about one the
//! decoder refuses or finds endpoints in; and a body it cannot walk is an error, not a panic.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    self, AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData, SnapshotId,
};
use kafka_protocol::messages::produce_response::{
    self, BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchResponse, ProduceResponse, ProducerId, ResponseKind, TopicName,
};
use kafka_protocol::protocol::Decodable;
use proxy_core::codec::Codec;

use crate::rewrite::{Rewritten, rewrite_response};
use crate::tagged_scan::{ScanError, node_endpoints_present};
use crate::test_support::*;

/// The versions with `node_endpoints`, as far as `kafka-protocol` goes.
const PRODUCE_VERSIONS: [i16; 4] = [10, 11, 12, 13];
const FETCH_VERSIONS: [i16; 3] = [16, 17, 18];

/// A topic whose id is `n` in every byte (`kafka-protocol` does not re-export `uuid`: the id is
/// decoded into place, from the id, an empty array and no tagged fields).
fn with_topic_id<T: Decodable>(n: u8, version: i16) -> T {
    let mut bytes = vec![n; 16];
    bytes.extend_from_slice(&[1, 0]);
    T::decode(&mut Bytes::from(bytes), version).unwrap()
}

fn produce_body(version: i16, endpoints: bool) -> ResponseKind {
    let partition = |index: i32| {
        PartitionProduceResponse::default()
            .with_index(index)
            .with_base_offset(1000 + i64::from(index))
            .with_log_start_offset(7)
    };
    let invalid = partition(1)
        .with_error_code(87)
        .with_record_errors(vec![
            BatchIndexAndErrorMessage::default()
                .with_batch_index(3)
                .with_batch_index_error_message(Some(name("record 3 has no key: é"))),
            BatchIndexAndErrorMessage::default().with_batch_index(4),
        ])
        .with_error_message(Some(name("one batch was invalid")));
    let moved = partition(2)
        .with_error_code(6)
        .with_current_leader(
            produce_response::LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(2))
                .with_leader_epoch(9),
        )
        .with_unknown_tagged_field(5, Bytes::from_static(b"future"));
    let topic = |n: u8, topic: &'static str, partitions| {
        let named = match version {
            13.. => with_topic_id::<TopicProduceResponse>(n, version),
            _ => TopicProduceResponse::default().with_name(TopicName(name(topic))),
        };
        named.with_partition_responses(partitions)
    };
    let node = produce_response::NodeEndpoint::default()
        .with_node_id(BrokerId(2))
        .with_host(name("kafka-2.internal"))
        .with_port(9092)
        .with_rack(Some(name("rack-b")));
    ResponseKind::Produce(
        ProduceResponse::default()
            .with_responses(vec![
                topic(1, "orders", vec![partition(0), invalid, moved]),
                topic(2, "payments", vec![partition(0)]),
                topic(3, "idle", vec![]),
            ])
            .with_throttle_time_ms(5)
            .with_node_endpoints(if endpoints { vec![node] } else { vec![] }),
    )
}

fn fetch_body(version: i16, endpoints: bool) -> ResponseKind {
    let partition = |index: i32, records: &'static [u8]| {
        PartitionData::default()
            .with_partition_index(index)
            .with_high_watermark(500)
            .with_last_stable_offset(480)
            .with_log_start_offset(0)
            .with_records(Some(Bytes::from_static(records)))
    };
    let transactional = partition(1, b"a record batch of a transaction")
        .with_aborted_transactions(Some(vec![
            AbortedTransaction::default()
                .with_producer_id(ProducerId(77))
                .with_first_offset(470),
        ]))
        .with_preferred_read_replica(BrokerId(3));
    let diverged = partition(2, b"")
        .with_error_code(74)
        .with_aborted_transactions(None)
        .with_records(None)
        .with_diverging_epoch(EpochEndOffset::default().with_epoch(4).with_end_offset(410))
        .with_snapshot_id(SnapshotId::default().with_end_offset(400).with_epoch(3));
    let moved = partition(3, b"")
        .with_error_code(6)
        .with_current_leader(
            fetch_response::LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(2))
                .with_leader_epoch(9),
        )
        .with_unknown_tagged_field(9, Bytes::from_static(b"future"));
    let topic = |n: u8, partitions| {
        with_topic_id::<FetchableTopicResponse>(n, version).with_partitions(partitions)
    };
    let node = fetch_response::NodeEndpoint::default()
        .with_node_id(BrokerId(2))
        .with_host(name("kafka-2.internal"))
        .with_port(9092);
    ResponseKind::Fetch(
        FetchResponse::default()
            .with_session_id(17)
            .with_responses(vec![
                topic(
                    1,
                    vec![partition(0, b"records"), transactional, diverged, moved],
                ),
                topic(2, vec![partition(0, &[0x5a; 300])]),
                topic(3, vec![]),
            ])
            .with_node_endpoints(if endpoints { vec![node] } else { vec![] }),
    )
}

/// Every case: API, version, endpoints or not, and the encoded body.
fn cases() -> Vec<(ApiKey, i16, bool, Bytes)> {
    let mut cases = Vec::new();
    for endpoints in [false, true] {
        for version in PRODUCE_VERSIONS {
            let body = encode(&produce_body(version, endpoints), version);
            cases.push((ApiKey::Produce, version, endpoints, body));
        }
        for version in FETCH_VERSIONS {
            let body = encode(&fetch_body(version, endpoints), version);
            cases.push((ApiKey::Fetch, version, endpoints, body));
        }
    }
    cases
}

fn encode(body: &ResponseKind, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

/// Whether the decoder finds endpoints in `body`; `None` when it refuses the body.
fn decoder_finds_endpoints(api: ApiKey, version: i16, body: &[u8]) -> Option<bool> {
    match ResponseKind::decode(api, &mut Bytes::copy_from_slice(body), version).ok()? {
        ResponseKind::Produce(body) => Some(!body.node_endpoints.is_empty()),
        ResponseKind::Fetch(body) => Some(!body.node_endpoints.is_empty()),
        _ => None,
    }
}

#[test]
fn the_scan_agrees_with_the_decoder() {
    for (api, version, endpoints, body) in cases() {
        assert_eq!(
            decoder_finds_endpoints(api, version, &body),
            Some(endpoints),
            "{api:?} v{version}: the case itself"
        );
        assert_eq!(
            node_endpoints_present(api, version, &body),
            Ok(endpoints),
            "{api:?} v{version} endpoints {endpoints}"
        );
    }
}

#[test]
fn a_truncated_body_cannot_be_scanned() {
    for (api, version, _, body) in cases() {
        for len in 0..body.len() {
            assert!(
                node_endpoints_present(api, version, &body[..len]).is_err(),
                "{api:?} v{version} cut at {len} of {}",
                body.len()
            );
        }
    }
}

#[test]
fn a_changed_body_is_never_said_to_lack_endpoints_the_decoder_would_refuse_or_find() {
    for (api, version, endpoints, body) in cases() {
        let mut judged = 0;
        for at in 0..body.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff, body[at] ^ 0x01] {
                let mut changed = body.to_vec();
                changed[at] = value;
                if node_endpoints_present(api, version, &changed) == Ok(false) {
                    judged += 1;
                    assert_eq!(
                        decoder_finds_endpoints(api, version, &changed),
                        Some(false),
                        "{api:?} v{version}: byte {at} set to {value:#04x}"
                    );
                }
            }
        }
        // Without endpoints, records, offsets and ids change freely: many bodies are judged.
        assert!(
            endpoints || judged > body.len(),
            "{api:?} v{version}: only {judged} judged"
        );
    }
}

#[test]
fn bytes_after_the_body_cannot_be_scanned() {
    for (api, version, _, body) in cases() {
        let mut longer = body.to_vec();
        longer.push(0);
        assert_eq!(
            node_endpoints_present(api, version, &longer),
            Err(ScanError::Trailing(1)),
            "{api:?} v{version}"
        );
    }
}

#[test]
fn other_top_level_tags_are_not_endpoints() {
    let version = 12;
    let ResponseKind::Produce(body) = produce_body(version, false) else {
        unreachable!()
    };
    let unknown = body.with_unknown_tagged_field(3, Bytes::from_static(b"\x00\x01"));
    let bytes = encode(&ResponseKind::Produce(unknown.clone()), version);
    assert_eq!(
        node_endpoints_present(ApiKey::Produce, version, &bytes),
        Ok(false)
    );
    let ResponseKind::Produce(with) = produce_body(version, true) else {
        unreachable!()
    };
    let both = with.with_unknown_tagged_field(3, Bytes::from_static(b"\x00\x01"));
    let bytes = encode(&ResponseKind::Produce(both), version);
    assert_eq!(
        node_endpoints_present(ApiKey::Produce, version, &bytes),
        Ok(true)
    );
}

#[test]
fn versions_without_node_endpoints_or_beyond_the_schema_are_not_scanned() {
    for (api, version) in [
        (ApiKey::Produce, 9),
        (ApiKey::Produce, 14),
        (ApiKey::Fetch, 15),
        (ApiKey::Fetch, 19),
        (ApiKey::Metadata, 12),
    ] {
        assert_eq!(
            node_endpoints_present(api, version, &[0, 0, 0, 0, 0]),
            Err(ScanError::Version { api, version })
        );
    }
}

#[test]
fn a_null_topic_array_is_refused_as_the_decoder_refuses_it() {
    // Produce v10: responses null (0), throttle_time_ms, no tagged fields.
    let body = [0, 0, 0, 0, 0, 0];
    assert_eq!(decoder_finds_endpoints(ApiKey::Produce, 10, &body), None);
    assert!(matches!(
        node_endpoints_present(ApiKey::Produce, 10, &body),
        Err(ScanError::Refused(_))
    ));
}

// === in the rewrite ===

#[test]
fn a_produce_v10_response_without_node_endpoints_is_written_on_undecoded() {
    for version in PRODUCE_VERSIONS {
        let mut session = Session::default();
        session.forward(&request_frame(
            ApiKey::Produce,
            version,
            11,
            &produce_request(1, 10),
        ));
        let wire = response_frame(ApiKey::Produce, version, 11, &produce_body(version, false));
        let mut buf = BytesMut::from(&wire[..]);
        let read_at = buf.as_ptr();
        let mut response = session.codec.decode_response(&mut buf).unwrap().unwrap();
        let map = RecordingMap::default();
        let rewritten = rewrite_response(&mut response, &map).unwrap();
        assert_eq!(rewritten, Rewritten::default());
        assert!(
            !response.is_decoded(),
            "v{version}: the response was decoded"
        );
        assert!(map.calls.borrow().is_empty());
        session
            .codec
            .encode_response(response, &mut session.to_client)
            .unwrap();
        let delivered = one(session.to_client.take_chunks());
        assert_eq!(delivered, wire);
        assert_eq!(
            delivered.as_ptr(),
            read_at,
            "v{version}: the response was copied"
        );
    }
}

#[test]
fn a_truncated_body_is_decoded_and_refused_as_before_the_scan() {
    let version = 10;
    let whole = response_frame(ApiKey::Produce, version, 11, &produce_body(version, false));
    // Header v1: correlation id and no tagged fields; the body is cut, the prefix kept right.
    let body_at = 4 + 4 + 1;
    for len in body_at..whole.len() {
        let mut session = Session::default();
        session.forward(&request_frame(
            ApiKey::Produce,
            version,
            11,
            &produce_request(1, 10),
        ));
        let cut = frame(|buf| buf.put_slice(&whole[4..len]));
        let mut response = session.read_response(&cut).unwrap();
        assert!(
            rewrite_response(&mut response, &RecordingMap::default()).is_err(),
            "a body cut at {} bytes was let through",
            len - body_at
        );
    }
}
