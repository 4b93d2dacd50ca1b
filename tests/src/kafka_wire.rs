//! Kafka on the wire, for tests that go below a client library: raw request frames, blocking
//! loopback connections to read their answers, librdkafka's mock cluster's broker addresses,
//! and blocks of free ports for a port-per-broker gateway.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};

use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::{Encodable, StrBytes};
use rdkafka::mocking::MockCluster;

use crate::STEP_TIMEOUT;

/// A bootstrap port `p` with `p + 1 + id` free for broker ids 1..=`brokers` (librdkafka's mock
/// numbers its brokers from 1); returns `p`.
///
/// Blocks are taken below Linux's ephemeral range (32768 and up by default): there, a test
/// that holds thousands of connections (the idle-session tests) leaves few consecutive free
/// ports, and no outgoing connection takes one of these between the check and the bind.
pub fn free_port_block(brokers: u16) -> u16 {
    const LOW: u32 = 10_000;
    const HIGH: u32 = 32_000;
    // A different walk per process and per call, so parallel tests rarely try the same block.
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut candidate = LOW
        + std::process::id()
            .wrapping_mul(7919)
            .wrapping_add(call.wrapping_mul(104_729))
            % (HIGH - LOW);
    for _ in 0..500 {
        candidate = LOW + (candidate - LOW + 37 + u32::from(brokers)) % (HIGH - LOW);
        let Ok(base) = u16::try_from(candidate) else {
            continue;
        };
        let free =
            (0..=brokers + 1).all(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, base + i)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no block of free ports on loopback");
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
