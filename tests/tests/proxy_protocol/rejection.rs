//! Headers that are refused: a valid header from an untrusted peer, a missing or malformed
//! header, and a partial header then silence, closed at the deadline without stalling others.

use std::time::Duration;

use ppp::v2;
use proxy_core::close::CloseReason;
use proxy_core::proxy_protocol::{ProxyHeaderError, ProxyProtocolMode, ProxyProtocolPolicy};
use sluice_tests::STEP_TIMEOUT;
use sluice_tests::peers;
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::{expect_closed, policy, v2_header};

#[tokio::test]
async fn a_valid_header_from_an_untrusted_peer_is_rejected() {
    let backend = peers::echo().await;
    for mode in [ProxyProtocolMode::Required, ProxyProtocolMode::Optional] {
        let mut proxy = TestProxy::start(ProxyOptions {
            proxy_protocol: policy(mode, &["10.0.0.0/8"]),
            ..ProxyOptions::to([backend.addr()])
        })
        .await;
        expect_closed(&proxy, &v2_header("192.0.2.1:1000", "192.0.2.2:9192", &[])).await;
        let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
        assert_eq!(
            summary.reason,
            CloseReason::ProxyHeader(ProxyHeaderError::Untrusted),
            "{mode:?}"
        );
        assert_eq!(
            summary.client_addr.ip().to_string(),
            "127.0.0.1",
            "logged with the peer's address"
        );
        assert_eq!(summary.backend_addr, None, "no backend was contacted");
        assert_eq!(proxy.closes().get("proxy_header_untrusted"), 1);
    }
}

#[tokio::test]
async fn required_without_a_header_and_malformed_headers_are_rejected() {
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions {
        proxy_protocol: policy(ProxyProtocolMode::Required, &["127.0.0.0/8"]),
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    let mut oversized = v2::PROTOCOL_PREFIX.to_vec();
    oversized.extend_from_slice(&[0x21, 0x11, 0xEA, 0x60]);
    oversized.extend(std::iter::repeat_n(0u8, 8_000));
    let full = v2_header("192.0.2.1:1000", "192.0.2.2:9192", &[]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "no header",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            "proxy_header_missing",
        ),
        (
            "garbage",
            b"PROXY garbage here\r\n".to_vec(),
            "proxy_header_invalid",
        ),
        (
            "bad v1 address",
            b"PROXY TCP4 300.1.1.1 10.0.0.1 1 2\r\n".to_vec(),
            "proxy_header_invalid",
        ),
        (
            "wrong v2 version",
            [v2::PROTOCOL_PREFIX, &[0x31, 0x11, 0, 0]].concat(),
            "proxy_header_invalid",
        ),
        ("oversized", oversized, "proxy_header_too_large"),
        (
            "truncated",
            full[..full.len() - 3].to_vec(),
            "proxy_header_truncated",
        ),
    ];
    for (name, bytes, label) in cases {
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
        let mut buf = Vec::new();
        let read = timeout(STEP_TIMEOUT, stream.read_to_end(&mut buf))
            .await
            .expect(name);
        assert!(read.is_err() || buf.is_empty(), "{name}: answered {buf:?}");
        let summary = proxy.next_closed(STEP_TIMEOUT).await.expect(name);
        assert_eq!(summary.reason.label(), label, "{name}: {}", summary.reason);
    }
    assert_eq!(
        proxy.closes().get("client_closed") + proxy.closes().get("backend_closed"),
        0
    );
}

#[tokio::test]
async fn a_partial_header_then_silence_is_closed_at_the_deadline_without_stalling_others() {
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions {
        proxy_protocol: ProxyProtocolPolicy {
            timeout: Duration::from_millis(300),
            ..policy(ProxyProtocolMode::Required, &["127.0.0.1/32"])
        },
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    let header = v2_header("192.0.2.1:1000", "192.0.2.2:9192", &[]);
    let mut stalled = TcpStream::connect(proxy.addr()).await.unwrap();
    stalled.write_all(&header[..10]).await.unwrap();

    // Meanwhile another client is served at once.
    let mut other = TcpStream::connect(proxy.addr()).await.unwrap();
    other
        .write_all(&[header.as_slice(), b"ping"].concat())
        .await
        .unwrap();
    let mut pong = [0u8; 4];
    timeout(STEP_TIMEOUT, other.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"ping");

    let mut buf = [0u8; 8];
    let read = timeout(STEP_TIMEOUT, stalled.read(&mut buf))
        .await
        .expect("closed at the deadline");
    assert!(matches!(read, Ok(0) | Err(_)));
    let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
    assert_eq!(
        summary.reason,
        CloseReason::ProxyHeader(ProxyHeaderError::TimedOut)
    );
    assert!(
        summary.duration >= Duration::from_millis(300),
        "{:?}",
        summary.duration
    );
}
