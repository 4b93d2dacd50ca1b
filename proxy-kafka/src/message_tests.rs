//! Sans-IO tests of the messages stages see: a frame nobody changed is written on as the very
//! bytes read (even one this proxy cannot decode), and a change made through `body_mut` or
//! `header_mut` is re-encoded.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, TopicName};
use proxy_core::codec::Codec;

use crate::test_support::*;
use crate::*;

// === pass-through and changes ===

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
