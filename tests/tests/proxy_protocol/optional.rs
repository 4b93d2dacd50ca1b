//! Optional mode with clients that send no header but whose first bytes look like the start of
//! one: `\r\n` (the v2 signature's first bytes) or `PRO` (v1's). They are passed through with
//! every byte, at once when a byte ends the likeness and at the deadline when the client waits;
//! a whole signature followed by garbage is still refused.

use std::time::Duration;

use proxy_core::close::CloseReason;
use proxy_core::proxy_protocol::{ProxyHeaderError, ProxyProtocolMode, ProxyProtocolPolicy};
use sluice_tests::peers;
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use sluice_tests::{STEP_TIMEOUT, exchange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::{expect_closed, policy};

/// An optional-header proxy in front of an echo, trusting `trusted`, with `header_timeout`.
async fn optional_proxy(
    backend: &peers::Server,
    trusted: &str,
    header_timeout: Duration,
) -> TestProxy {
    TestProxy::start(ProxyOptions {
        proxy_protocol: ProxyProtocolPolicy {
            timeout: header_timeout,
            ..policy(ProxyProtocolMode::Optional, &[trusted])
        },
        ..ProxyOptions::to([backend.addr()])
    })
    .await
}

/// The session ended as an orderly client close, every byte of `sent` read from the client and
/// the peer logged as the client.
async fn expect_passed_through(proxy: &mut TestProxy, own: std::net::SocketAddr, sent: &[u8]) {
    let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
    assert_eq!(
        summary.reason,
        CloseReason::ClientClosed,
        "{}",
        summary.reason
    );
    assert_eq!(
        summary.client_addr, own,
        "no header: the peer is the client"
    );
    assert_eq!(summary.bytes_from_client, sent.len() as u64);
}

#[tokio::test]
async fn a_signature_prefix_then_other_bytes_is_passed_through_at_once() {
    let backend = peers::echo().await;
    // Trusted or not, the bytes are the client's. The header deadline is longer than a test
    // step: waiting for it would fail the test rather than pass late.
    for trusted in ["127.0.0.1/32", "10.0.0.0/8"] {
        let mut proxy = optional_proxy(&backend, trusted, 10 * STEP_TIMEOUT).await;
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let own = stream.local_addr().unwrap();
        stream.write_all(b"\r\n").await.unwrap();
        stream.write_all(b"payload").await.unwrap();
        let mut echoed = [0u8; 9];
        timeout(STEP_TIMEOUT, stream.read_exact(&mut echoed))
            .await
            .expect("passed through before the header deadline")
            .unwrap();
        assert_eq!(&echoed, b"\r\npayload", "{trusted}");
        let rest = timeout(STEP_TIMEOUT, exchange(stream, b" and more"))
            .await
            .unwrap();
        assert_eq!(rest, b" and more", "{trusted}");
        expect_passed_through(&mut proxy, own, b"\r\npayload and more").await;
    }
}

#[tokio::test]
async fn a_signature_prefix_then_silence_is_passed_through_at_the_deadline() {
    let backend = peers::echo().await;
    for trusted in ["127.0.0.1/32", "10.0.0.0/8"] {
        let mut proxy = optional_proxy(&backend, trusted, Duration::from_millis(200)).await;
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        let own = stream.local_addr().unwrap();
        stream.write_all(b"PRO").await.unwrap();
        // The echo can only answer once the proxy has given up on a header and forwarded the
        // bytes it kept: seeing them come back is the deadline having passed.
        let mut echoed = [0u8; 3];
        timeout(STEP_TIMEOUT, stream.read_exact(&mut echoed))
            .await
            .expect("passed through at the deadline, not dropped")
            .unwrap();
        assert_eq!(&echoed, b"PRO", "{trusted}");
        let rest = timeout(STEP_TIMEOUT, exchange(stream, b"DUCE request"))
            .await
            .unwrap();
        assert_eq!(rest, b"DUCE request", "{trusted}");
        expect_passed_through(&mut proxy, own, b"PRODUCE request").await;

        // A prefix then EOF: the bytes, then the EOF.
        let stream = TcpStream::connect(proxy.addr()).await.unwrap();
        let own = stream.local_addr().unwrap();
        let reply = timeout(STEP_TIMEOUT, exchange(stream, b"\r\n"))
            .await
            .unwrap();
        assert_eq!(reply, b"\r\n", "{trusted}");
        expect_passed_through(&mut proxy, own, b"\r\n").await;
    }
}

#[tokio::test]
async fn a_whole_signature_then_garbage_is_still_refused() {
    let backend = peers::echo().await;
    for (trusted, refusal) in [
        (
            "127.0.0.1/32",
            ProxyHeaderError::Invalid(String::new()).label(),
        ),
        ("10.0.0.0/8", ProxyHeaderError::Untrusted.label()),
    ] {
        let mut proxy = optional_proxy(&backend, trusted, Duration::from_millis(200)).await;
        expect_closed(&proxy, b"PROXY garbage\r\n").await;
        let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
        assert_eq!(summary.reason.label(), refusal, "{}", summary.reason);
        assert_eq!(summary.backend_addr, None, "no backend was contacted");
        assert_eq!(proxy.closes().get(refusal), 1);
    }
}
