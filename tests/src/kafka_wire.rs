//! Kafka on the wire, for tests that go below a client library: raw request frames, blocking
//! loopback connections to read their answers, librdkafka's mock cluster's broker addresses,
//! and blocks of free ports for a port-per-broker gateway.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};

use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::{Encodable, StrBytes};
use rdkafka::mocking::MockCluster;

use crate::STEP_TIMEOUT;

/// A bootstrap port `p` with `p + 1 + id` free for broker ids 1..=`brokers` (librdkafka's mock
/// numbers its brokers from 1); returns `p`.
pub fn free_port_block(brokers: u16) -> u16 {
    proxy_core::test_ports::free_block(brokers + 1)
}

/// The mock brokers' own addresses.
pub fn mock_addrs(mock: &MockCluster<'_, impl rdkafka::ClientContext>) -> Vec<SocketAddr> {
    mock.bootstrap_servers()
        .split(',')
        .map(|addr| {
            addr.parse()
                .expect("the mock's brokers are socket addresses")
        })
        .collect()
}

/// One request frame: the length prefix, request header v1 (client id `raw-test`), then `body`.
pub fn frame(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut header = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api_key)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("raw-test")))
        .encode(&mut header, 1)
        .expect("encode a request header");
    let len = (header.len() + body.len()) as i32;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    out
}

/// Reads one response frame (without its length prefix), bounded by the stream's read timeout.
pub fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0; 4];
    stream.read_exact(&mut len)?;
    let mut body = vec![0; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// A connection to `port` on loopback whose reads time out after [`STEP_TIMEOUT`].
pub fn connect(port: u16) -> TcpStream {
    let stream =
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect to the loopback port");
    stream
        .set_read_timeout(Some(STEP_TIMEOUT))
        .expect("set a read timeout");
    stream
}
