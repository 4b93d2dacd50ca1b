//! Sans-IO tests of the codec's bookkeeping: which request each response answers (`acks = 0`
//! Produce, header versions), the order responses and stage answers reach the client in, and the
//! proxy's own requests, on frames built as a real client or broker would send them.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ProduceResponse, RequestKind, ResponseHeader,
    ResponseKind,
};
use proxy_core::codec::Codec;
use proxy_core::stage::{Flow, Stage, StageChain, StageContext};

use crate::test_support::*;
use crate::*;

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

// === whose fault a broker's hang-up is ===

#[test]
fn a_broker_closing_on_an_unknown_api_key_is_the_clients_fault() {
    let mut session = Session::default();
    assert_eq!(
        session.codec.backend_hung_up_on_client(),
        None,
        "nothing sent"
    );
    session.forward(&request_frame(
        ApiKey::Metadata,
        12,
        1,
        &metadata_request(&[]),
    ));
    session.forward(&unknown_api_frame(2, b"opaque"));
    assert_eq!(
        session.codec.backend_hung_up_on_client(),
        None,
        "the broker hung up on a Metadata request: its own fault"
    );

    let body = ResponseKind::Metadata(metadata_response());
    session
        .read_response(&response_frame(ApiKey::Metadata, 12, 1, &body))
        .unwrap();
    let cause = session.codec.backend_hung_up_on_client().unwrap();
    assert_eq!(cause.label, "unknown_api_key");
    assert!(cause.detail.contains("9999"), "{}", cause.detail);
    let reason = proxy_core::CloseReason::from(cause);
    assert_eq!(reason.label(), "unknown_api_key");
    assert_eq!(reason.fault(), Some(proxy_core::Fault::Downstream));

    // A newer broker that knows the key answers it (header v0): nothing is left to blame.
    session
        .read_response(&frame(|buf| {
            buf.put_i32(2);
            buf.put_slice(b"answer");
        }))
        .unwrap();
    assert_eq!(session.codec.backend_hung_up_on_client(), None);
}

// === frames streamed past the stages ===

#[test]
fn a_streamed_request_is_booked_and_what_the_proxy_sends_meanwhile_waits_for_its_end() {
    use proxy_core::gate::Side;
    let mut session = Session::default();
    let produce = request_frame(ApiKey::Produce, 9, 1, &produce_request(1, 10));
    let mut asked = Vec::new();
    let mut stream = |head: &KafkaHead| {
        asked.push(*head);
        true
    };
    // Only the head has arrived: enough to stream it.
    let head_only = &produce[..produce.len() - 20];
    let len = session
        .codec
        .stream_message(Side::Client, head_only, &mut stream)
        .unwrap();
    assert_eq!(len, Some(produce.len()));
    assert_eq!(
        asked,
        [KafkaHead {
            api_key: ApiKey::Produce as i16,
            api_version: 9,
            wire_len: produce.len(),
        }]
    );
    assert_eq!(session.codec.in_flight(), 1, "it expects an answer");
    assert_eq!(session.codec.at_request_boundary(), Some(false));

    // The proxy's own request, sent while the frame streams, must not land inside it.
    let own = KafkaRequest::originate(ApiKey::Metadata, 12, "sluice", metadata_request(&[]));
    session
        .codec
        .encode_request(own, &mut session.to_backend)
        .unwrap();
    assert!(session.to_backend.is_empty());
    session
        .codec
        .end_stream(Side::Client, &mut session.to_backend);
    assert_eq!(session.to_backend.take_chunks().len(), 1);
    assert_eq!(session.codec.in_flight(), 2);

    // The broker's answer to the streamed request is read as any other.
    let body = ResponseKind::Produce(ProduceResponse::default());
    let response = session
        .read_response(&response_frame(ApiKey::Produce, 9, 1, &body))
        .unwrap();
    assert_eq!(response.correlation_id(), 1);
}

#[test]
fn a_request_whose_acks_has_not_arrived_or_that_the_chain_needs_is_not_streamed() {
    use proxy_core::gate::Side;
    let mut codec = KafkaCodec::default();
    let produce = request_frame(ApiKey::Produce, 9, 1, &produce_request(0, 10));
    let header_len = 2 + 2 + 4 + 2 + "test-client".len() + 1;
    let mut yes = |_: &KafkaHead| true;
    // Header in, acks not yet: whether an answer will come is not known.
    let cut = &produce[..4 + header_len + 1];
    assert_eq!(
        codec.stream_message(Side::Client, cut, &mut yes).unwrap(),
        None
    );
    let mut no = |_: &KafkaHead| false;
    assert_eq!(
        codec
            .stream_message(Side::Client, &produce, &mut no)
            .unwrap(),
        None
    );
    assert_eq!(codec.in_flight(), 0);
    // acks = 0 streams, and waits for no answer.
    assert!(
        codec
            .stream_message(Side::Client, &produce, &mut yes)
            .unwrap()
            .is_some()
    );
    assert_eq!(codec.in_flight(), 0);
}

#[test]
fn a_stage_answer_waits_for_the_end_of_a_streamed_response_before_it() {
    use proxy_core::gate::Side;
    let mut chain = StageChain::<Kafka>::new(vec![Box::new(AnswerApiVersions)]);
    let (mut cx, mut session) = (cx(), Session::default());
    let request = session.read_request(&request_frame(
        ApiKey::Metadata,
        12,
        1,
        &metadata_request(&[]),
    ));
    chain.on_request(request, &mut cx, &mut session).unwrap();
    let body = ResponseKind::Metadata(metadata_response());
    let response = response_frame(ApiKey::Metadata, 12, 1, &body);
    let mut yes = |_: &KafkaHead| true;
    let len = session
        .codec
        .stream_message(Side::Backend, &response, &mut yes)
        .unwrap();
    assert_eq!(len, Some(response.len()));
    assert_eq!(session.codec.in_flight(), 0);
    assert_eq!(session.codec.at_request_boundary(), Some(false));
    // A stage answers a later request while the response streams: it waits.
    let api_versions = RequestKind::ApiVersions(ApiVersionsRequest::default());
    let request = session.read_request(&request_frame(ApiKey::ApiVersions, 3, 2, &api_versions));
    chain.on_request(request, &mut cx, &mut session).unwrap();
    assert!(session.to_client.is_empty());
    session
        .codec
        .end_stream(Side::Backend, &mut session.to_client);
    assert_eq!(
        correlation_ids(&session.to_client.take_chunks(), false),
        [2]
    );
    assert_eq!(session.codec.at_request_boundary(), Some(true));
}
