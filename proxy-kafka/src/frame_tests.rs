//! Sans-IO tests of Kafka framing through the codec: frames cut across reads or several to a
//! buffer, and sizes refused from the length prefix before anything is allocated.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestKind};
use proxy_core::codec::Codec;

use crate::test_support::*;
use crate::*;

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
fn requests_may_be_held_to_a_smaller_size_than_responses() {
    let mut codec = KafkaCodec::new(4096).with_max_request_size(1024);
    let mut buf = BytesMut::new();
    buf.put_i32(1025);
    let err = codec.decode_request(&mut buf).map(|_| ()).unwrap_err();
    assert!(err.detail.contains("1024"), "{err}");
    // A response of that size waits for its bytes.
    let mut buf = BytesMut::new();
    buf.put_i32(4096);
    assert!(codec.decode_response(&mut buf).unwrap().is_none());
}

#[test]
fn the_codec_tells_a_frames_whole_length_once_its_prefix_is_in() {
    let codec = KafkaCodec::default();
    assert_eq!(codec.message_len(&[0, 0, 1]), None);
    assert_eq!(codec.message_len(&[0, 0, 1, 0]), Some(4 + 256));
    assert_eq!(codec.message_len(&[0, 0, 1, 0, 9, 9]), Some(4 + 256));
    assert_eq!(codec.message_len(&(-1_i32).to_be_bytes()), None);
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
