//! PROXY protocol on real loopback sockets: behind a real HAProxy, trust, rejection of bad
//! headers, deadlines, optional mode with clients whose bytes only look like a header, bytes
//! that share a segment with the header, routing on the header's facts, and explicit release of
//! every parsed header.
//!
//! This file holds what the tests share: a policy, v2 headers, and clients that send a header
//! and read what comes back.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers of this test file fail the test on bad setup"
)]

mod forwarding;
mod haproxy;
mod optional;
mod rejection;
mod release;

use std::net::SocketAddr;

use ppp::v2;
use proxy_core::proxy_protocol::{ProxyProtocolMode, ProxyProtocolPolicy, TrustedNetworks};
use sluice_tests::proxy::TestProxy;
use sluice_tests::{STEP_TIMEOUT, exchange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

fn policy(mode: ProxyProtocolMode, trusted: &[&str]) -> ProxyProtocolPolicy {
    ProxyProtocolPolicy {
        mode,
        trusted: TrustedNetworks::new(trusted.iter().map(|n| n.parse().unwrap())),
        ..ProxyProtocolPolicy::default()
    }
}

fn v2_header(source: &str, destination: &str, tlvs: &[(u8, &[u8])]) -> Vec<u8> {
    let source: SocketAddr = source.parse().unwrap();
    let destination: SocketAddr = destination.parse().unwrap();
    let mut builder = v2::Builder::with_addresses(
        v2::Version::Two | v2::Command::Proxy,
        v2::Protocol::Stream,
        (source, destination),
    );
    for (kind, value) in tlvs {
        builder = builder.write_tlv(*kind, value).unwrap();
    }
    builder.build().unwrap()
}

/// Sends `bytes` and expects the proxy to close the connection without answering.
async fn expect_closed(proxy: &TestProxy, bytes: &[u8]) {
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let mut buf = [0u8; 64];
    let read = timeout(STEP_TIMEOUT, stream.read(&mut buf))
        .await
        .expect("closed, not left hanging");
    assert!(matches!(read, Ok(0) | Err(_)), "answered: {read:?}");
}

/// Sends `header` and `payload` in one write, half-closes, and returns what came back.
async fn send_after_header(proxy: &TestProxy, header: &[u8], payload: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(proxy.addr()).await.unwrap();
    timeout(STEP_TIMEOUT, exchange(stream, &[header, payload].concat()))
        .await
        .unwrap()
}
