//! Sans-IO tests of the Kafka codec, its messages and broker-address rewriting, on frames built
//! with the `kafka-protocol` crate as a real client or broker would send them.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponseTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, DescribeClusterRequest,
    DescribeClusterResponse, FetchRequest, FetchResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    RequestHeader, RequestKind, ResponseHeader, ResponseKind, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::rewrite::{BrokerAddressMap, Rewritten, UpstreamBroker, rewritable_versions};
use super::*;
use crate::test_support::cx;
use proxy_core::close::CloseReason;
use proxy_core::codec::{Codec, CodecError};
use proxy_core::io::WriteQueue;
use proxy_core::stage::{Emit, Flow, Stage, StageChain, StageContext};

// === frames, as clients and brokers write them ===

/// A length prefix, then what `write` puts after it.
fn frame(write: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    write(&mut buf);
    let len = i32::try_from(buf.len() - 4).unwrap();
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.freeze()
}

pub(super) fn request_frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &RequestKind,
) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("test-client")));
    frame(|buf| {
        header
            .encode(buf, api.request_header_version(version))
            .unwrap();
        body.encode(buf, version).unwrap();
    })
}

fn response_frame_with(
    header: &ResponseHeader,
    api: ApiKey,
    version: i16,
    body: &ResponseKind,
) -> Bytes {
    frame(|buf| {
        header
            .encode(buf, api.response_header_version(version))
            .unwrap();
        body.encode(buf, version).unwrap();
    })
}

pub(super) fn response_frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Bytes {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    response_frame_with(&header, api, version, body)
}

/// A frame of an API key no Kafka version has: header v1 layout, then opaque bytes.
fn unknown_api_frame(correlation_id: i32, tail: &[u8]) -> Bytes {
    frame(|buf| {
        buf.put_i16(9999);
        buf.put_i16(3);
        buf.put_i32(correlation_id);
        buf.put_i16(1);
        buf.put_slice(b"x");
        buf.put_slice(tail);
    })
}

/// Reads back a request frame the codec wrote, checking its length prefix.
fn read_request(frame: &Bytes) -> (RequestHeader, RequestKind) {
    let mut bytes = frame.clone();
    assert_eq!(bytes.get_i32() as usize, bytes.len(), "length prefix");
    let api = ApiKey::try_from(i16::from_be_bytes([bytes[0], bytes[1]])).unwrap();
    let version = i16::from_be_bytes([bytes[2], bytes[3]]);
    let header = RequestHeader::decode(&mut bytes, api.request_header_version(version)).unwrap();
    let body = RequestKind::decode(api, &mut bytes, version).unwrap();
    assert!(bytes.is_empty(), "bytes after the request body");
    (header, body)
}

/// Reads back a response frame the codec wrote, checking its length prefix.
pub(super) fn read_response(
    api: ApiKey,
    version: i16,
    frame: &Bytes,
) -> (ResponseHeader, ResponseKind) {
    let mut bytes = frame.clone();
    assert_eq!(bytes.get_i32() as usize, bytes.len(), "length prefix");
    let header = ResponseHeader::decode(&mut bytes, api.response_header_version(version)).unwrap();
    let body = ResponseKind::decode(api, &mut bytes, version).unwrap();
    assert!(bytes.is_empty(), "bytes after the response body");
    (header, body)
}

fn name(s: &'static str) -> StrBytes {
    StrBytes::from_static_str(s)
}

fn metadata_request(topics: &[&'static str]) -> RequestKind {
    let topics = topics
        .iter()
        .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(name(t)))))
        .collect();
    RequestKind::Metadata(MetadataRequest::default().with_topics(Some(topics)))
}

fn metadata_response() -> MetadataResponse {
    let broker = |id: i32, host: &'static str| {
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(name(host))
            .with_port(9092)
            .with_rack(Some(name("rack-a")))
    };
    MetadataResponse::default()
        .with_brokers(vec![
            broker(1, "kafka-1.internal"),
            broker(2, "kafka-2.internal"),
        ])
        .with_cluster_id(Some(name("cluster")))
        .with_controller_id(BrokerId(1))
        .with_topics(vec![
            MetadataResponseTopic::default().with_name(Some(TopicName(name("orders")))),
        ])
}

fn produce_request(acks: i16, records: usize) -> RequestKind {
    let partition = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(Bytes::from(vec![7u8; records])));
    let topic = TopicProduceData::default()
        .with_name(TopicName(name("orders")))
        .with_partition_data(vec![partition]);
    RequestKind::Produce(
        ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(name("tx"))))
            .with_acks(acks)
            .with_timeout_ms(1000)
            .with_topic_data(vec![topic]),
    )
}

fn api_versions_response() -> ApiVersionsResponse {
    let entry = |api: ApiKey, min, max| {
        ApiVersion::default()
            .with_api_key(api as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    ApiVersionsResponse::default().with_api_keys(vec![
        entry(ApiKey::Produce, 0, 20),
        entry(ApiKey::Fetch, 4, 30),
        entry(ApiKey::ListOffsets, 1, 100),
        entry(ApiKey::Metadata, 0, 20),
        entry(ApiKey::ApiVersions, 0, 4),
    ])
}

/// The one frame a queue held.
fn one(frames: Vec<Bytes>) -> Bytes {
    assert_eq!(frames.len(), 1, "{frames:?}");
    frames.into_iter().next().unwrap()
}

// === a session: the codec and its two write queues, as the forwarding driver holds them ===

#[derive(Debug, Default)]
struct Session {
    codec: KafkaCodec,
    to_backend: WriteQueue,
    to_client: WriteQueue,
}

impl Session {
    fn read_request(&mut self, frame: &[u8]) -> KafkaRequest {
        let mut buf = BytesMut::from(frame);
        let request = self.codec.decode_request(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        request
    }

    fn read_response(&mut self, frame: &[u8]) -> Result<KafkaResponse, CodecError> {
        let mut buf = BytesMut::from(frame);
        let response = self.codec.decode_response(&mut buf)?;
        assert!(buf.is_empty());
        response.ok_or_else(|| CodecError {
            detail: "incomplete frame".into(),
        })
    }

    /// Reads a request and sends it on unchanged.
    fn forward(&mut self, frame: &[u8]) {
        let request = self.read_request(frame);
        self.codec
            .encode_request(request, &mut self.to_backend)
            .unwrap();
    }

    /// Reads a response and delivers it unchanged.
    fn deliver(&mut self, frame: &[u8]) {
        let response = self.read_response(frame).unwrap();
        self.codec
            .encode_response(response, &mut self.to_client)
            .unwrap();
    }
}

impl Emit<Kafka> for Session {
    fn to_backend(&mut self, msg: KafkaRequest) -> Result<(), CloseReason> {
        self.codec
            .encode_request(msg, &mut self.to_backend)
            .map_err(|err| CloseReason::Internal(err.detail))
    }

    fn to_client(&mut self, msg: KafkaResponse) -> Result<(), CloseReason> {
        self.codec
            .encode_response(msg, &mut self.to_client)
            .map_err(|err| CloseReason::Internal(err.detail))
    }
}

// === framing ===

#[test]
fn a_frame_split_anywhere_across_two_reads_decodes_as_whole() {
    let whole = request_frame(ApiKey::Metadata, 12, 7, &metadata_request(&["orders"]));
    for at in 0..=whole.len() {
        let mut session = Session::default();
        let mut buf = BytesMut::from(&whole[..at]);
        if at < whole.len() {
            assert!(session.codec.decode_request(&mut buf).unwrap().is_none());
            assert_eq!(
                &buf[..],
                &whole[..at],
                "split at {at}: bytes consumed early"
            );
            buf.extend_from_slice(&whole[at..]);
        }
        let mut request = session.codec.decode_request(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty(), "split at {at}: bytes left over");
        assert_eq!(request.api(), Some(ApiKey::Metadata));
        assert_eq!((request.api_version(), request.correlation_id()), (12, 7));
        assert_eq!(request.client_id(), Some("test-client"));
        assert_eq!(request.body().unwrap(), &metadata_request(&["orders"]));
        session
            .codec
            .encode_request(request, &mut session.to_backend)
            .unwrap();
        assert_eq!(one(session.to_backend.take_chunks()), whole);
    }
}

#[test]
fn several_frames_in_one_buffer_decode_one_by_one() {
    let frames = [
        request_frame(ApiKey::Metadata, 12, 1, &metadata_request(&[])),
        request_frame(ApiKey::Produce, 9, 2, &produce_request(1, 100)),
        request_frame(
            ApiKey::ApiVersions,
            3,
            3,
            &RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ),
    ];
    let mut buf: BytesMut = frames.iter().flat_map(|f| f.iter().copied()).collect();
    let partial = request_frame(ApiKey::Metadata, 4, 4, &metadata_request(&["x"]));
    buf.extend_from_slice(&partial[..10]);
    let mut codec = KafkaCodec::default();
    for (expected, (api, correlation)) in frames.iter().zip([
        (ApiKey::Metadata, 1),
        (ApiKey::Produce, 2),
        (ApiKey::ApiVersions, 3),
    ]) {
        let request = codec.decode_request(&mut buf).unwrap().unwrap();
        assert_eq!(
            (request.api(), request.correlation_id()),
            (Some(api), correlation)
        );
        assert_eq!(request.wire_len(), expected.len());
    }
    assert!(codec.decode_request(&mut buf).unwrap().is_none());
    assert_eq!(&buf[..], &partial[..10], "the partial frame was disturbed");
}

#[test]
fn a_frame_over_max_frame_size_is_refused_from_its_length_prefix() {
    let mut codec = KafkaCodec::new(1024);
    for decode_response in [false, true] {
        let mut buf = BytesMut::with_capacity(16);
        buf.put_i32(1025);
        let err = if decode_response {
            codec.decode_response(&mut buf).map(|_| ()).unwrap_err()
        } else {
            codec.decode_request(&mut buf).map(|_| ()).unwrap_err()
        };
        assert!(err.detail.contains("max_frame_size"), "{err}");
        assert!(
            buf.capacity() < 1025,
            "the buffer grew to the declared size"
        );
    }
    // Exactly the maximum is allowed: it waits for more bytes.
    let mut buf = BytesMut::new();
    buf.put_i32(1024);
    assert!(codec.decode_request(&mut buf).unwrap().is_none());
}

#[test]
fn a_large_allowed_frame_does_not_allocate_its_declared_size_at_once() {
    let mut codec = KafkaCodec::default();
    let declared = 64 * 1024 * 1024;
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(declared);
    assert!(codec.decode_request(&mut buf).unwrap().is_none());
    assert!(
        buf.capacity() <= 4 * 1024 * 1024,
        "capacity {} for a frame still 64 MiB short",
        buf.capacity()
    );
}

#[test]
fn a_negative_frame_size_is_refused() {
    for size in [-1, i32::MIN] {
        let mut codec = KafkaCodec::default();
        let mut buf = BytesMut::from(&size.to_be_bytes()[..]);
        assert!(codec.decode_request(&mut buf).is_err(), "{size}");
        let mut buf = BytesMut::from(&size.to_be_bytes()[..]);
        assert!(codec.decode_response(&mut buf).is_err(), "{size}");
    }
}

#[test]
fn a_truncated_header_is_an_error_not_a_panic() {
    let whole = request_frame(ApiKey::Metadata, 12, 1, &metadata_request(&[]));
    // Header v2: key, version, correlation id, client id "test-client", no tagged fields.
    let header_len = 2 + 2 + 4 + 2 + "test-client".len() + 1;
    for len in 0..header_len {
        let truncated = frame(|buf| buf.put_slice(&whole[4..4 + len]));
        let mut buf = BytesMut::from(&truncated[..]);
        let result = KafkaCodec::default().decode_request(&mut buf);
        assert!(result.is_err(), "a header cut at {len} bytes was accepted");
    }
    // Responses: shorter than a correlation id, or (header v1) tagged fields cut short.
    let request = request_frame(ApiKey::Metadata, 12, 1, &metadata_request(&[]));
    let bodies: [&[u8]; 3] = [&[], &[0, 0, 1], &[0, 0, 0, 1, 2, 0, 5, 1]];
    for body in bodies {
        let mut session = Session::default();
        session.forward(&request);
        let response = frame(|buf| buf.put_slice(body));
        assert!(session.read_response(&response).is_err(), "{body:?}");
    }
}

#[test]
fn an_unknown_api_key_passes_through_unchanged() {
    let mut session = Session::default();
    let wire = Bytes::from(unknown_api_frame(42, b"opaque body").to_vec());
    let mut buf = BytesMut::from(&wire[..]);
    let read_at = buf.as_ptr();
    let mut request = session.codec.decode_request(&mut buf).unwrap().unwrap();
    assert_eq!(request.api(), None);
    assert_eq!(request.api_key(), 9999);
    assert_eq!(request.correlation_id(), 42);
    assert_eq!(request.client_id(), Some("x"));
    assert!(request.expects_response());
    assert_eq!(request.body().unwrap_err(), KafkaError::UnknownApiKey(9999));
    assert!(request.header_mut().is_err());
    session
        .codec
        .encode_request(request, &mut session.to_backend)
        .unwrap();
    let sent = session.to_backend.take_chunks();
    assert_eq!(sent, [wire]);
    assert_eq!(sent[0].as_ptr(), read_at, "the request was copied");

    let answer = frame(|buf| {
        buf.put_i32(42);
        buf.put_slice(b"opaque answer");
    });
    let mut response = session.read_response(&answer).unwrap();
    assert_eq!((response.api(), response.api_key()), (None, 9999));
    assert!(response.body().is_err());
    session
        .codec
        .encode_response(response, &mut session.to_client)
        .unwrap();
    assert_eq!(session.to_client.take_chunks(), [answer]);
}

// === pass-through and changes ===

#[test]
fn undecoded_and_read_only_messages_are_written_as_the_bytes_read() {
    for read_body in [false, true] {
        let mut session = Session::default();
        let wire = request_frame(ApiKey::Metadata, 12, 5, &metadata_request(&["orders"]));
        let mut buf = BytesMut::from(&wire[..]);
        let read_at = buf.as_ptr();
        let mut request = session.codec.decode_request(&mut buf).unwrap().unwrap();
        if read_body {
            assert_eq!(request.body().unwrap(), &metadata_request(&["orders"]));
        }
        session
            .codec
            .encode_request(request, &mut session.to_backend)
            .unwrap();
        let sent = session.to_backend.take_chunks();
        assert_eq!(sent, [wire]);
        assert_eq!(
            sent[0].as_ptr(),
            read_at,
            "request copied (read_body {read_body})"
        );

        let body = ResponseKind::Metadata(metadata_response());
        let wire = response_frame(ApiKey::Metadata, 12, 5, &body);
        let mut buf = BytesMut::from(&wire[..]);
        let read_at = buf.as_ptr();
        let mut response = session.codec.decode_response(&mut buf).unwrap().unwrap();
        if read_body {
            assert_eq!(response.body().unwrap(), &body);
        }
        session
            .codec
            .encode_response(response, &mut session.to_client)
            .unwrap();
        let delivered = session.to_client.take_chunks();
        assert_eq!(delivered, [wire]);
        assert_eq!(
            delivered[0].as_ptr(),
            read_at,
            "response copied (read_body {read_body})"
        );
    }
}

#[test]
fn body_mut_changes_are_re_encoded() {
    let mut session = Session::default();
    let wire = request_frame(ApiKey::Metadata, 12, 3, &metadata_request(&["orders"]));
    let mut request = session.read_request(&wire);
    let RequestKind::Metadata(body) = request.body_mut().unwrap() else {
        panic!("not a Metadata request");
    };
    body.topics = Some(vec![
        MetadataRequestTopic::default().with_name(Some(TopicName(name("payments")))),
    ]);
    session
        .codec
        .encode_request(request, &mut session.to_backend)
        .unwrap();
    let sent = one(session.to_backend.take_chunks());
    let (header, body) = read_request(&sent);
    assert_eq!(header.correlation_id, 3);
    assert_eq!(header.client_id.as_deref(), Some("test-client"));
    assert_eq!(body, metadata_request(&["payments"]));

    let mut response = session
        .read_response(&response_frame(
            ApiKey::Metadata,
            12,
            3,
            &ResponseKind::Metadata(metadata_response()),
        ))
        .unwrap();
    let ResponseKind::Metadata(body) = response.body_mut().unwrap() else {
        panic!("not a Metadata response");
    };
    body.throttle_time_ms = 250;
    session
        .codec
        .encode_response(response, &mut session.to_client)
        .unwrap();
    let delivered = one(session.to_client.take_chunks());
    let (header, body) = read_response(ApiKey::Metadata, 12, &delivered);
    assert_eq!(header.correlation_id, 3);
    assert_eq!(
        body,
        ResponseKind::Metadata(metadata_response().with_throttle_time_ms(250))
    );
}

#[test]
fn a_client_id_changed_with_header_mut_shows_on_the_wire() {
    // Metadata v4 has header v1 (no tagged fields), v12 header v2: both are re-encoded.
    for version in [4, 12] {
        let mut session = Session::default();
        let mut request = session.read_request(&request_frame(
            ApiKey::Metadata,
            version,
            9,
            &metadata_request(&["orders"]),
        ));
        request.header_mut().unwrap().client_id = Some(name("renamed-client"));
        assert_eq!(request.client_id(), Some("renamed-client"));
        session
            .codec
            .encode_request(request, &mut session.to_backend)
            .unwrap();
        let sent = one(session.to_backend.take_chunks());
        let again = Session::default().read_request(&sent);
        assert_eq!(again.client_id(), Some("renamed-client"), "v{version}");
        assert_eq!((again.api_version(), again.correlation_id()), (version, 9));
        let (_, body) = read_request(&sent);
        assert_eq!(body, metadata_request(&["orders"]));
    }
}

// === which request a response answers ===

#[test]
fn produce_with_acks_0_expects_no_response() {
    // v7: string transactional id; v9 and v11: compact string (flexible).
    for version in [3, 7, 9, 11] {
        let mut session = Session::default();
        session.forward(&request_frame(
            ApiKey::Produce,
            version,
            1,
            &produce_request(0, 10),
        ));
        session.forward(&request_frame(
            ApiKey::Metadata,
            12,
            2,
            &metadata_request(&[]),
        ));
        assert_eq!(session.codec.in_flight(), 1, "v{version}");
        let body = ResponseKind::Metadata(metadata_response());
        let mut response = session
            .read_response(&response_frame(ApiKey::Metadata, 12, 2, &body))
            .unwrap();
        assert_eq!(response.api(), Some(ApiKey::Metadata));
        assert_eq!(response.correlation_id(), 2);
        assert_eq!(response.body().unwrap(), &body);
    }
}

#[test]
fn a_broker_answering_acks_0_is_passed_on_and_still_in_order() {
    // librdkafka's mock cluster answers acks=0 Produce requests; Kafka brokers do not.
    let mut session = Session::default();
    session.forward(&request_frame(
        ApiKey::Produce,
        9,
        1,
        &produce_request(0, 1),
    ));
    session.forward(&request_frame(
        ApiKey::Metadata,
        12,
        2,
        &metadata_request(&[]),
    ));
    assert_eq!(session.codec.at_request_boundary(), Some(false));
    let produced = ResponseKind::Produce(ProduceResponse::default());
    let answer = session
        .read_response(&response_frame(ApiKey::Produce, 9, 1, &produced))
        .unwrap();
    assert!(answer.is_unsolicited());
    assert_eq!(answer.correlation_id(), 1);
    session
        .codec
        .encode_response(answer, &mut session.to_client)
        .unwrap();
    // The Metadata request is still the one awaited, and its response is delivered after.
    session.deliver(&response_frame(
        ApiKey::Metadata,
        12,
        2,
        &ResponseKind::Metadata(metadata_response()),
    ));
    assert_eq!(
        correlation_ids(&session.to_client.take_chunks(), false),
        vec![1, 2]
    );
    assert_eq!(session.codec.at_request_boundary(), Some(true));
    // An answer to an acks=0 request older than a response that did arrive is an error now.
    assert!(
        session
            .read_response(&response_frame(ApiKey::Produce, 9, 1, &produced))
            .is_err()
    );
}

#[test]
fn produce_with_acks_1_expects_a_response() {
    for version in [3, 7, 9, 11] {
        let mut session = Session::default();
        let produce = session.read_request(&request_frame(
            ApiKey::Produce,
            version,
            1,
            &produce_request(1, 10),
        ));
        assert!(produce.expects_response());
        session
            .codec
            .encode_request(produce, &mut session.to_backend)
            .unwrap();
        session.forward(&request_frame(
            ApiKey::Metadata,
            12,
            2,
            &metadata_request(&[]),
        ));
        assert_eq!(session.codec.in_flight(), 2, "v{version}");
        let answer = frame(|buf| {
            buf.put_i32(1);
            if ApiKey::Produce.response_header_version(version) >= 1 {
                buf.put_u8(0);
            }
            buf.put_slice(b"produce response body");
        });
        let response = session.read_response(&answer).unwrap();
        assert_eq!(
            (response.api(), response.correlation_id()),
            (Some(ApiKey::Produce), 1)
        );
    }
}

#[test]
fn a_response_must_answer_the_oldest_request_in_flight() {
    let body = ResponseKind::Metadata(metadata_response());
    let mut session = Session::default();
    let err = session
        .read_response(&response_frame(ApiKey::Metadata, 12, 1, &body))
        .unwrap_err();
    assert!(err.detail.contains("no request"), "{err}");

    session.forward(&request_frame(
        ApiKey::Metadata,
        12,
        7,
        &metadata_request(&[]),
    ));
    session.forward(&request_frame(
        ApiKey::Metadata,
        12,
        8,
        &metadata_request(&[]),
    ));
    let err = session
        .read_response(&response_frame(ApiKey::Metadata, 12, 8, &body))
        .unwrap_err();
    assert!(err.detail.contains("oldest"), "{err}");
}

#[test]
fn a_flexible_response_header_with_tagged_fields_is_skipped() {
    assert_eq!(ApiKey::Metadata.response_header_version(12), 1);
    let mut session = Session::default();
    session.forward(&request_frame(
        ApiKey::Metadata,
        12,
        5,
        &metadata_request(&[]),
    ));
    let header = ResponseHeader::default()
        .with_correlation_id(5)
        .with_unknown_tagged_field(3, Bytes::from_static(b"hello"));
    let body = ResponseKind::Metadata(metadata_response());
    let mut response = session
        .read_response(&response_frame_with(&header, ApiKey::Metadata, 12, &body))
        .unwrap();
    assert_eq!(response.body().unwrap(), &body);
}

#[test]
fn api_versions_responses_always_use_header_v0() {
    // v3 requests are flexible (header v2), yet the response header is v0.
    assert_eq!(ApiKey::ApiVersions.request_header_version(3), 2);
    for version in [0, 3] {
        let mut session = Session::default();
        let request = RequestKind::ApiVersions(ApiVersionsRequest::default());
        session.forward(&request_frame(ApiKey::ApiVersions, version, 1, &request));
        // throttle_time_ms exists from v1 (v0 would silently drop it).
        let throttle = if version >= 1 { 7 } else { 0 };
        let body =
            ResponseKind::ApiVersions(api_versions_response().with_throttle_time_ms(throttle));
        let wire = frame(|buf| {
            buf.put_i32(1);
            body.encode(buf, version).unwrap();
        });
        let mut response = session.read_response(&wire).unwrap();
        assert_eq!(response.body().unwrap(), &body, "v{version}");
    }
}

// === order and origin ===

/// Answers ApiVersions requests itself; forwards the rest.
struct AnswerApiVersions;

impl Stage<Kafka> for AnswerApiVersions {
    fn kind(&self) -> &'static str {
        "answer-api-versions"
    }

    fn on_request(
        &mut self,
        msg: KafkaRequest,
        _cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        if msg.api() != Some(ApiKey::ApiVersions) {
            return Flow::Forward(msg);
        }
        let body = ApiVersionsResponse::default().with_throttle_time_ms(msg.correlation_id());
        Flow::Respond(KafkaResponse::answer(&msg, ResponseKind::ApiVersions(body)))
    }
}

/// The correlation id of each frame: after the length prefix in a response, and after the API
/// key and version too in a request.
fn correlation_ids(frames: &[Bytes], request: bool) -> Vec<i32> {
    let at = if request { 8 } else { 4 };
    frames
        .iter()
        .map(|f| i32::from_be_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]]))
        .collect()
}

#[test]
fn a_stage_answer_waits_for_the_responses_to_earlier_requests() {
    let mut chain = StageChain::<Kafka>::new(vec![Box::new(AnswerApiVersions)]);
    let (mut cx, mut session) = (cx(), Session::default());
    let api_versions = RequestKind::ApiVersions(ApiVersionsRequest::default());
    for (api, correlation, body) in [
        (ApiKey::Metadata, 1, metadata_request(&[])),
        (ApiKey::Metadata, 2, metadata_request(&[])),
        (ApiKey::ApiVersions, 3, api_versions.clone()),
    ] {
        let request = session.read_request(&request_frame(api, 3, correlation, &body));
        chain.on_request(request, &mut cx, &mut session).unwrap();
    }
    assert_eq!(
        correlation_ids(&session.to_backend.take_chunks(), true),
        [1, 2]
    );
    assert!(
        session.to_client.is_empty(),
        "the answer overtook earlier responses"
    );

    let body = ResponseKind::Metadata(metadata_response());
    for correlation in [1, 2] {
        let response = session
            .read_response(&response_frame(ApiKey::Metadata, 3, correlation, &body))
            .unwrap();
        chain.on_response(response, &mut cx, &mut session).unwrap();
        if correlation == 1 {
            // Held behind the latest earlier request, not the oldest.
            assert_eq!(
                correlation_ids(&session.to_client.take_chunks(), false),
                [1]
            );
        }
    }
    let delivered = session.to_client.take_chunks();
    assert_eq!(correlation_ids(&delivered, false), [2, 3]);
    let (_, answer) = read_response(ApiKey::ApiVersions, 3, &delivered[1]);
    assert_eq!(
        answer,
        ResponseKind::ApiVersions(ApiVersionsResponse::default().with_throttle_time_ms(3))
    );

    // Nothing outstanding: an answer goes out at once.
    let request = session.read_request(&request_frame(ApiKey::ApiVersions, 3, 4, &api_versions));
    chain.on_request(request, &mut cx, &mut session).unwrap();
    assert_eq!(
        correlation_ids(&session.to_client.take_chunks(), false),
        [4]
    );
    assert_eq!(session.codec.in_flight(), 0);
}

#[test]
fn proxy_requests_get_proxy_correlation_ids_and_their_responses_stay_in_the_proxy() {
    let mut session = Session::default();
    session.forward(&request_frame(
        ApiKey::Metadata,
        12,
        0,
        &metadata_request(&[]),
    ));
    for _ in 0..2 {
        let own = KafkaRequest::originate(ApiKey::Metadata, 12, "sluice", metadata_request(&[]));
        assert_eq!(own.origin(), Origin::Proxy);
        session
            .codec
            .encode_request(own, &mut session.to_backend)
            .unwrap();
    }
    session.forward(&request_frame(
        ApiKey::Metadata,
        12,
        1,
        &metadata_request(&[]),
    ));
    let sent = session.to_backend.take_chunks();
    let ids = correlation_ids(&sent, true);
    let (own_a, own_b) = (ids[1], ids[2]);
    assert!(
        ![0, 1].contains(&own_a) && ![0, 1].contains(&own_b) && own_a != own_b,
        "{ids:?}"
    );
    let (header, body) = read_request(&sent[1]);
    assert_eq!(header.client_id.as_deref(), Some("sluice"));
    assert_eq!(body, metadata_request(&[]));

    let body = ResponseKind::Metadata(metadata_response());
    for (correlation, origin) in [
        (0, Origin::Client),
        (own_a, Origin::Proxy),
        (own_b, Origin::Proxy),
        (1, Origin::Client),
    ] {
        let response = session
            .read_response(&response_frame(ApiKey::Metadata, 12, correlation, &body))
            .unwrap();
        assert_eq!(response.origin(), origin, "correlation id {correlation}");
        if correlation == own_a {
            assert_eq!(response.into_body().unwrap(), body);
            continue;
        }
        session
            .codec
            .encode_response(response, &mut session.to_client)
            .unwrap();
    }
    assert_eq!(
        correlation_ids(&session.to_client.take_chunks(), false),
        [0, 1]
    );
}

// === broker-address rewriting ===

#[derive(Debug, PartialEq)]
enum MapCall {
    Learn(Vec<UpstreamBroker>),
    Advertised(i32),
}

/// Advertises node `n` as `sluice-n.proxy:19000+n`, and records what it was asked.
#[derive(Debug, Default)]
struct RecordingMap {
    calls: RefCell<Vec<MapCall>>,
}

impl BrokerAddressMap for RecordingMap {
    fn learn(&self, brokers: &[UpstreamBroker]) {
        self.calls
            .borrow_mut()
            .push(MapCall::Learn(brokers.to_vec()));
    }

    fn advertised(&self, node_id: i32) -> (String, u16) {
        self.calls.borrow_mut().push(MapCall::Advertised(node_id));
        (format!("sluice-{node_id}.proxy"), 19000 + node_id as u16)
    }
}

impl RecordingMap {
    /// The brokers learnt, checking `learn` ran once, before any address was looked up.
    fn learnt(&self) -> Vec<UpstreamBroker> {
        let calls = self.calls.borrow();
        let Some((MapCall::Learn(learnt), rest)) = calls.split_first() else {
            panic!("learn was not called first: {calls:?}");
        };
        assert!(
            rest.iter().all(|c| matches!(c, MapCall::Advertised(_))),
            "{calls:?}"
        );
        learnt.clone()
    }
}

fn upstream(node_id: i32, host: &str, port: u16) -> UpstreamBroker {
    UpstreamBroker {
        node_id,
        host: host.to_owned(),
        port,
    }
}

/// Sends `request`, reads `response` to it, rewrites it through `map` and delivers it: what the
/// rewrite reported, whether the frame delivered is the very one read, and that frame.
fn rewrite(
    api: ApiKey,
    version: i16,
    request: &RequestKind,
    response: &ResponseKind,
    map: &RecordingMap,
) -> (Rewritten, bool, Bytes) {
    let mut session = Session::default();
    session.forward(&request_frame(api, version, 11, request));
    let wire = response_frame(api, version, 11, response);
    let mut buf = BytesMut::from(&wire[..]);
    let read_at = buf.as_ptr();
    let mut response = session.codec.decode_response(&mut buf).unwrap().unwrap();
    let rewritten = rewrite::rewrite_response(&mut response, map).unwrap();
    session
        .codec
        .encode_response(response, &mut session.to_client)
        .unwrap();
    let delivered = one(session.to_client.take_chunks());
    let (header, _) = read_response(api, version, &delivered);
    assert_eq!(header.correlation_id, 11);
    let as_read = delivered.as_ptr() == read_at && delivered == wire;
    (rewritten, as_read, delivered)
}

#[test]
fn metadata_brokers_are_rewritten() {
    let map = RecordingMap::default();
    let request = metadata_request(&[]);
    let (rewritten, _, delivered) = rewrite(
        ApiKey::Metadata,
        12,
        &request,
        &ResponseKind::Metadata(metadata_response()),
        &map,
    );
    assert_eq!(rewritten.addresses, 2);
    assert_eq!(
        map.learnt(),
        [
            upstream(1, "kafka-1.internal", 9092),
            upstream(2, "kafka-2.internal", 9092)
        ]
    );
    let (_, ResponseKind::Metadata(body)) = read_response(ApiKey::Metadata, 12, &delivered) else {
        panic!("not a Metadata response");
    };
    let mut expected = metadata_response();
    for broker in &mut expected.brokers {
        broker.host = StrBytes::from_string(format!("sluice-{}.proxy", broker.node_id.0));
        broker.port = 19000 + broker.node_id.0;
    }
    assert_eq!(body, expected);
}

#[test]
fn find_coordinator_v3_top_level_address_is_rewritten() {
    let map = RecordingMap::default();
    let response = FindCoordinatorResponse::default()
        .with_node_id(BrokerId(3))
        .with_host(name("kafka-3.internal"))
        .with_port(9093);
    let request =
        RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key(name("g")));
    let (rewritten, _, delivered) = rewrite(
        ApiKey::FindCoordinator,
        3,
        &request,
        &ResponseKind::FindCoordinator(response),
        &map,
    );
    assert_eq!(rewritten.addresses, 1);
    assert_eq!(map.learnt(), [upstream(3, "kafka-3.internal", 9093)]);
    let (_, ResponseKind::FindCoordinator(body)) =
        read_response(ApiKey::FindCoordinator, 3, &delivered)
    else {
        panic!("not a FindCoordinator response");
    };
    assert_eq!((body.host.as_str(), body.port), ("sluice-3.proxy", 19003));
}

#[test]
fn find_coordinator_v4_coordinators_are_rewritten_except_failed_ones() {
    for version in [4, 6] {
        let map = RecordingMap::default();
        let coordinators = vec![
            Coordinator::default()
                .with_key(name("group-a"))
                .with_node_id(BrokerId(4))
                .with_host(name("kafka-4.internal"))
                .with_port(9094),
            Coordinator::default()
                .with_key(name("group-b"))
                .with_node_id(BrokerId(-1))
                .with_error_code(15),
            // A failed lookup that still names a node: not an address to rewrite either.
            Coordinator::default()
                .with_key(name("group-c"))
                .with_node_id(BrokerId(7))
                .with_error_code(15),
        ];
        let response = FindCoordinatorResponse::default().with_coordinators(coordinators.clone());
        let request = RequestKind::FindCoordinator(
            FindCoordinatorRequest::default().with_coordinator_keys(vec![
                name("group-a"),
                name("group-b"),
                name("group-c"),
            ]),
        );
        let (rewritten, _, delivered) = rewrite(
            ApiKey::FindCoordinator,
            version,
            &request,
            &ResponseKind::FindCoordinator(response),
            &map,
        );
        assert_eq!(rewritten.addresses, 1, "v{version}");
        assert_eq!(map.learnt(), [upstream(4, "kafka-4.internal", 9094)]);
        let (_, ResponseKind::FindCoordinator(body)) =
            read_response(ApiKey::FindCoordinator, version, &delivered)
        else {
            panic!("not a FindCoordinator response");
        };
        let mut expected = coordinators;
        expected[0].host = name("sluice-4.proxy");
        expected[0].port = 19004;
        assert_eq!(body.coordinators, expected);
    }
}

#[test]
fn describe_cluster_brokers_are_rewritten() {
    let map = RecordingMap::default();
    let response = DescribeClusterResponse::default()
        .with_cluster_id(name("cluster"))
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(5))
                .with_host(name("kafka-5.internal"))
                .with_port(9095)
                .with_rack(Some(name("rack-b"))),
        ]);
    let (rewritten, _, delivered) = rewrite(
        ApiKey::DescribeCluster,
        1,
        &RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        &ResponseKind::DescribeCluster(response),
        &map,
    );
    assert_eq!(rewritten.addresses, 1);
    assert_eq!(map.learnt(), [upstream(5, "kafka-5.internal", 9095)]);
    let (_, ResponseKind::DescribeCluster(body)) =
        read_response(ApiKey::DescribeCluster, 1, &delivered)
    else {
        panic!("not a DescribeCluster response");
    };
    let broker = &body.brokers[0];
    assert_eq!(
        (broker.host.as_str(), broker.port),
        ("sluice-5.proxy", 19005)
    );
    assert_eq!(broker.rack.as_deref(), Some("rack-b"));
    assert_eq!(body.cluster_id.as_str(), "cluster");
}

fn fetch_response(node_endpoints: Vec<NodeEndpoint>) -> FetchResponse {
    let partition = PartitionData::default()
        .with_high_watermark(42)
        .with_records(Some(Bytes::from_static(b"record batch")));
    FetchResponse::default()
        .with_session_id(17)
        .with_responses(vec![
            FetchableTopicResponse::default().with_partitions(vec![partition]),
        ])
        .with_node_endpoints(node_endpoints)
}

#[test]
fn fetch_v16_node_endpoints_are_rewritten() {
    let map = RecordingMap::default();
    let endpoint = NodeEndpoint::default()
        .with_node_id(BrokerId(6))
        .with_host(name("kafka-6.internal"))
        .with_port(9096)
        .with_rack(Some(name("rack-c")));
    let (rewritten, _, delivered) = rewrite(
        ApiKey::Fetch,
        16,
        &RequestKind::Fetch(FetchRequest::default()),
        &ResponseKind::Fetch(fetch_response(vec![endpoint.clone()])),
        &map,
    );
    assert_eq!(rewritten.addresses, 1);
    assert_eq!(map.learnt(), [upstream(6, "kafka-6.internal", 9096)]);
    let (_, ResponseKind::Fetch(body)) = read_response(ApiKey::Fetch, 16, &delivered) else {
        panic!("not a Fetch response");
    };
    let expected = endpoint.with_host(name("sluice-6.proxy")).with_port(19006);
    assert_eq!(body, fetch_response(vec![expected]));
}

#[test]
fn a_fetch_v16_response_without_node_endpoints_is_not_re_encoded() {
    let map = RecordingMap::default();
    let (rewritten, as_read, delivered) = rewrite(
        ApiKey::Fetch,
        16,
        &RequestKind::Fetch(FetchRequest::default()),
        &ResponseKind::Fetch(fetch_response(vec![])),
        &map,
    );
    assert_eq!(rewritten, Rewritten::default());
    assert!(map.calls.borrow().is_empty());
    assert!(as_read, "the response was re-encoded: {delivered:?}");
}

#[test]
fn api_versions_caps_the_rewritable_apis_only() {
    let map = RecordingMap::default();
    let (rewritten, _, delivered) = rewrite(
        ApiKey::ApiVersions,
        3,
        &RequestKind::ApiVersions(ApiVersionsRequest::default()),
        &ResponseKind::ApiVersions(api_versions_response()),
        &map,
    );
    // Produce (min and max), Fetch and Metadata; not ListOffsets nor ApiVersions.
    assert_eq!(rewritten.versions_capped, 3);
    assert!(map.calls.borrow().is_empty());
    let (_, ResponseKind::ApiVersions(body)) = read_response(ApiKey::ApiVersions, 3, &delivered)
    else {
        panic!("not an ApiVersions response");
    };
    let range = |api: ApiKey| rewritable_versions(api).unwrap();
    let offered: Vec<_> = body
        .api_keys
        .iter()
        .map(|e| (e.api_key, e.min_version, e.max_version))
        .collect();
    assert_eq!(
        offered,
        [
            (
                ApiKey::Produce as i16,
                range(ApiKey::Produce).min,
                range(ApiKey::Produce).max
            ),
            (ApiKey::Fetch as i16, 4, range(ApiKey::Fetch).max),
            (ApiKey::ListOffsets as i16, 1, 100),
            (ApiKey::Metadata as i16, 0, range(ApiKey::Metadata).max),
            (ApiKey::ApiVersions as i16, 0, 4),
        ]
    );
    assert!(range(ApiKey::Fetch).max < 30 && range(ApiKey::Metadata).max < 20);
}

// === metrics ===

#[test]
fn metrics_count_requests_bytes_and_latency_per_api_key() {
    let metrics = Arc::new(KafkaMetrics::default());
    let mut session = Session {
        codec: KafkaCodec::default().with_metrics(Arc::clone(&metrics)),
        ..Session::default()
    };
    let metadata = request_frame(ApiKey::Metadata, 12, 1, &metadata_request(&["orders"]));
    let produce = request_frame(ApiKey::Produce, 9, 2, &produce_request(1, 500));
    session.forward(&metadata);
    session.forward(&produce);
    let metadata_answer = response_frame(
        ApiKey::Metadata,
        12,
        1,
        &ResponseKind::Metadata(metadata_response()),
    );
    session.deliver(&metadata_answer);
    std::thread::sleep(Duration::from_millis(3));
    let produce_answer = frame(|buf| {
        buf.put_i32(2);
        buf.put_u8(0);
        buf.put_slice(&[0; 9]);
    });
    session.deliver(&produce_answer);

    let snapshot = metrics.snapshot();
    let keys: Vec<_> = snapshot.iter().map(|s| s.api_key).collect();
    assert_eq!(
        keys,
        [Some(ApiKey::Produce as i16), Some(ApiKey::Metadata as i16)]
    );
    let (produce_stats, metadata_stats) = (&snapshot[0], &snapshot[1]);
    assert_eq!(metadata_stats.requests, 1);
    assert_eq!(metadata_stats.request_bytes, metadata.len() as u64);
    assert_eq!(metadata_stats.response_bytes, metadata_answer.len() as u64);
    assert_eq!(metadata_stats.latency_count, 1);
    assert_eq!(produce_stats.requests, 1);
    assert_eq!(produce_stats.request_bytes, produce.len() as u64);
    assert_eq!(produce_stats.response_bytes, produce_answer.len() as u64);
    assert_eq!(produce_stats.latency_count, 1);
    assert!(produce_stats.latency_sum_seconds >= 0.003);
    // At least 3 ms: not in the buckets up to 2.5 ms, but in every one from 5 ms.
    let le_2_5ms = LATENCY_BUCKETS.iter().position(|&le| le == 0.0025).unwrap();
    assert_eq!(produce_stats.latency_cumulative[le_2_5ms], 0);
    assert_eq!(produce_stats.latency_cumulative.last(), Some(&1));
    assert_eq!(
        produce_stats.latency_cumulative.len(),
        LATENCY_BUCKETS.len() + 1
    );
}
