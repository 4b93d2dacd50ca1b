//! Raw Kafka frames against the proxy: a Metadata answer rewritten to the proxy's ports, and
//! frames that break the protocol (oversized, truncated, an unknown API key) closing the
//! session with a reason while the listener keeps serving.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;

use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::{Decodable, Encodable};
use rdkafka::mocking::MockCluster;
use sluice_tests::kafka_wire::{connect, frame, mock_addrs, read_frame};

use crate::{KafkaProxy, close_with};

#[test]
fn bad_frames_close_the_session_with_a_reason_and_metadata_is_rewritten() {
    let mock = MockCluster::new(3).unwrap();
    let mock_ports: BTreeSet<u16> = mock_addrs(&mock).iter().map(SocketAddr::port).collect();
    let proxy = KafkaProxy::start(&mock, "kafka-frames.toml", "max_frame_size = \"1MiB\"");

    // A raw Metadata v4 exchange: the answer names only the proxy's ports.
    let mut stream = connect(proxy.bootstrap);
    let mut body = bytes::BytesMut::new();
    MetadataRequest::default()
        .with_topics(Some(Vec::new()))
        .encode(&mut body, 4)
        .unwrap();
    stream
        .write_all(&frame(ApiKey::Metadata as i16, 4, 41, &body))
        .unwrap();
    let response = read_frame(&mut stream).unwrap();
    assert_eq!(&response[..4], &41i32.to_be_bytes());
    let mut rest = bytes::Bytes::copy_from_slice(&response[4..]);
    let metadata = MetadataResponse::decode(&mut rest, 4).unwrap();
    assert_eq!(metadata.brokers.len(), 3);
    for broker in &metadata.brokers {
        assert_eq!(broker.host.as_str(), "127.0.0.1");
        assert_eq!(
            broker.port,
            i32::from(proxy.broker_port_start) + broker.node_id.0
        );
        assert!(!mock_ports.contains(&(broker.port as u16)));
    }
    drop(stream);

    // A declared size above max_frame_size: closed at once, without waiting for the bytes.
    let mut stream = connect(proxy.bootstrap);
    stream
        .write_all(&(64 * 1024 * 1024i32).to_be_bytes())
        .unwrap();
    let mut byte = [0; 1];
    assert!(
        matches!(stream.read(&mut byte), Ok(0) | Err(_)),
        "an oversized frame was not refused"
    );
    let line = close_with(&proxy, "protocol_error");
    assert!(
        line["reason.detail"]
            .as_str()
            .unwrap()
            .contains("max_frame_size"),
        "{line}"
    );

    // A frame too short to hold a request header.
    let mut stream = connect(proxy.bootstrap);
    stream.write_all(&[0, 0, 0, 3, 0, 3, 0]).unwrap();
    assert!(matches!(stream.read(&mut byte), Ok(0) | Err(_)));
    let line = close_with(&proxy, "protocol_error");
    assert!(
        line["reason.detail"]
            .as_str()
            .unwrap()
            .contains("truncated"),
        "{line}"
    );

    // An unknown API key passes to the broker, which closes the connection as brokers do, and
    // the listener keeps serving. (librdkafka's mock resets rather than closes, so the proxy
    // passes a reset on and logs it as the broker's; a broker's orderly close on an unknown
    // key is the client's fault: `faults::kafka_broker`.)
    let mut stream = connect(proxy.bootstrap);
    stream.write_all(&frame(9999, 0, 7, &[])).unwrap();
    assert!(matches!(stream.read(&mut byte), Ok(0) | Err(_)));
    let mut stream = connect(proxy.bootstrap);
    stream
        .write_all(&frame(ApiKey::Metadata as i16, 4, 42, &body))
        .unwrap();
    let response = read_frame(&mut stream).unwrap();
    assert_eq!(&response[..4], &42i32.to_be_bytes());
}
