//! PROXY protocol on real loopback sockets: behind a real HAProxy, trust, rejection of bad
//! headers, deadlines, bytes that share a segment with the header, routing on the header's
//! facts, and explicit release of every parsed header.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers of this test file fail the test on bad setup"
)]

use std::net::SocketAddr;
use std::time::Duration;

use ppp::v2;
use proxy_core::close::CloseReason;
use proxy_core::context::Resource;
use proxy_core::proxy_protocol::{
    ProxyHeaderError, ProxyProtocolMode, ProxyProtocolPolicy, ProxyProtocolVersion, TLV_AUTHORITY,
    TLV_AWS, TLV_UNIQUE_ID, TrustedNetworks,
};
use proxy_core::route::{RouteId, RouteMatch, RouteRule};
use sluice_tests::haproxy::{HaProxy, SendProxy};
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use sluice_tests::{STEP_TIMEOUT, exchange, peers};
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

/// Sends a request and reads the reporter's answer (the client address its PROXY header named,
/// then the echoed request), as a real client would: request first, close after the answer.
/// Sends `header` and `payload` in one write, half-closes, and returns what came back.
async fn send_after_header(proxy: &TestProxy, header: &[u8], payload: &[u8]) -> Vec<u8> {
    let stream = TcpStream::connect(proxy.addr()).await.unwrap();
    timeout(STEP_TIMEOUT, exchange(stream, &[header, payload].concat()))
        .await
        .unwrap()
}

async fn reported_client(mut stream: TcpStream) -> String {
    stream.write_all(b"ping").await.unwrap();
    let mut reply = Vec::new();
    let read_answer = async {
        let mut chunk = [0u8; 128];
        while !reply.ends_with(b"\nping") {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "closed before answering: {:?}",
                String::from_utf8_lossy(&reply)
            );
            reply.extend_from_slice(&chunk[..n]);
        }
    };
    timeout(STEP_TIMEOUT, read_answer).await.unwrap();
    let text = String::from_utf8(reply).unwrap();
    text.trim_end_matches("\nping").to_owned()
}

async fn behind_haproxy(send: SendProxy) {
    let backend = peers::proxy_reporter().await;
    let proxy = TestProxy::start(ProxyOptions {
        proxy_protocol: policy(ProxyProtocolMode::Required, &["127.0.0.1/32"]),
        send_proxy_protocol: Some(ProxyProtocolVersion::V2),
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    let haproxy = HaProxy::start(proxy.addr(), send);
    for _ in 0..3 {
        let client = TcpStream::connect(haproxy.addr()).await.unwrap();
        let own = client.local_addr().unwrap().to_string();
        assert_eq!(
            reported_client(client).await,
            own,
            "the backend saw another address than the client's"
        );
    }
    assert_eq!(
        proxy.closes().get("proxy_header_missing") + proxy.closes().get("proxy_header_invalid"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_send_proxy_v2_the_backend_sees_the_real_client() {
    behind_haproxy(SendProxy::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_send_proxy_v1_the_backend_sees_the_real_client() {
    behind_haproxy(SendProxy::V1).await;
}

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

#[tokio::test]
async fn the_header_and_the_first_request_in_one_segment_both_get_through() {
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions {
        proxy_protocol: policy(ProxyProtocolMode::Required, &["127.0.0.1/32"]),
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    for header in [
        v2_header(
            "192.0.2.7:40000",
            "192.0.2.2:9192",
            &[(TLV_AUTHORITY, b"kafka.example")],
        ),
        b"PROXY TCP4 192.0.2.7 192.0.2.2 40000 9192\r\n".to_vec(),
    ] {
        let stream = TcpStream::connect(proxy.addr()).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let request = b"\x00\x00\x00\x10first request!!!";
        let reply = timeout(
            STEP_TIMEOUT,
            exchange(stream, &[header.as_slice(), request].concat()),
        )
        .await
        .unwrap();
        assert_eq!(
            reply, request,
            "the echo saw exactly the request, header stripped"
        );
        let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
        assert_eq!(summary.client_addr.to_string(), "192.0.2.7:40000");
        assert_eq!(summary.bytes_from_client, request.len() as u64);
    }
}

#[tokio::test]
async fn optional_mode_uses_a_header_when_sent_and_the_peer_otherwise() {
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions {
        proxy_protocol: policy(ProxyProtocolMode::Optional, &["127.0.0.1/32"]),
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    let stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let own = stream.local_addr().unwrap();
    assert_eq!(
        timeout(STEP_TIMEOUT, exchange(stream, b"plain"))
            .await
            .unwrap(),
        b"plain"
    );
    assert_eq!(
        proxy.next_closed(STEP_TIMEOUT).await.unwrap().client_addr,
        own
    );

    let stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let header = v2_header("198.51.100.4:5555", "192.0.2.2:9192", &[]);
    let reply = timeout(
        STEP_TIMEOUT,
        exchange(stream, &[header.as_slice(), b"x"].concat()),
    )
    .await
    .unwrap();
    assert_eq!(reply, b"x");
    assert_eq!(
        proxy
            .next_closed(STEP_TIMEOUT)
            .await
            .unwrap()
            .client_addr
            .to_string(),
        "198.51.100.4:5555"
    );

    // v2 LOCAL (a load balancer's health check): accepted, and the client is the peer.
    let local = v2::Builder::with_addresses(
        v2::Version::Two | v2::Command::Local,
        v2::Protocol::Unspecified,
        v2::Addresses::Unspecified,
    )
    .build()
    .unwrap();
    let stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let own = stream.local_addr().unwrap();
    let reply = timeout(
        STEP_TIMEOUT,
        exchange(stream, &[local.as_slice(), b"health"].concat()),
    )
    .await
    .unwrap();
    assert_eq!(reply, b"health");
    assert_eq!(
        proxy.next_closed(STEP_TIMEOUT).await.unwrap().client_addr,
        own
    );
}

#[tokio::test]
async fn the_router_picks_a_cluster_by_the_headers_authority() {
    let default = peers::proxy_reporter().await;
    let tenant = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions {
        proxy_protocol: policy(ProxyProtocolMode::Required, &["127.0.0.1/32"]),
        other_clusters: vec![("tenant-a", vec![tenant.addr()])],
        rules: vec![RouteRule {
            when: RouteMatch {
                authority: Some("tenant-a.example".into()),
                source: None,
                ..RouteMatch::default()
            },
            route: RouteId::new("tenant-a"),
        }],
        ..ProxyOptions::to([default.addr()])
    })
    .await;
    let header = v2_header(
        "192.0.2.7:40000",
        "192.0.2.2:9192",
        &[(TLV_AUTHORITY, b"tenant-a.example")],
    );
    let reply = send_after_header(&proxy, &header, b"hi").await;
    assert_eq!(reply, b"hi");
    let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
    assert_eq!(summary.route, Some(RouteId::new("tenant-a")));
    assert_eq!(summary.backend_addr, Some(tenant.addr()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_ten_thousand_sessions_with_tlvs_no_header_is_left_alive() {
    const SESSIONS: usize = 10_000;
    const CONCURRENCY: usize = 50;
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions {
        proxy_protocol: policy(ProxyProtocolMode::Required, &["127.0.0.1/32"]),
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    let addr = proxy.addr();
    let header = v2_header(
        "203.0.113.9:4242",
        "192.0.2.2:9192",
        &[
            (TLV_AUTHORITY, b"kafka.example.com"),
            (TLV_UNIQUE_ID, b"0123456789abcdef"),
            (TLV_AWS, b"\x01vpce-0abc"),
        ],
    );
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let header = header.clone();
            tokio::spawn(async move {
                for _ in 0..SESSIONS / CONCURRENCY {
                    let stream = TcpStream::connect(addr).await.unwrap();
                    let reply = exchange(stream, &[header.as_slice(), b"x"].concat()).await;
                    assert_eq!(reply, b"x");
                }
            })
        })
        .collect();
    for worker in workers {
        timeout(Duration::from_secs(120), worker)
            .await
            .unwrap()
            .unwrap();
    }
    for _ in 0..SESSIONS {
        let summary = proxy
            .next_closed(STEP_TIMEOUT)
            .await
            .expect("every session closes");
        assert_eq!(summary.client_addr.to_string(), "203.0.113.9:4242");
    }
    let live = proxy.live_resources();
    assert_eq!(live.sessions_total(), SESSIONS as u64);
    assert_eq!(
        live.live(Resource::ProxyHeader),
        0,
        "parsed headers outlived their sessions"
    );
    assert_eq!(live.live(Resource::Session), 0);
}

#[tokio::test]
async fn a_forwarding_session_holds_only_the_compact_facts_of_its_header() {
    let backend = peers::echo().await;
    let proxy = TestProxy::start(ProxyOptions {
        proxy_protocol: policy(ProxyProtocolMode::Required, &["127.0.0.1/32"]),
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    let header = v2_header(
        "203.0.113.9:4242",
        "192.0.2.2:9192",
        &[(TLV_AUTHORITY, b"kafka.example.com")],
    );
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream
        .write_all(&[header.as_slice(), b"ping"].concat())
        .await
        .unwrap();
    let mut pong = [0u8; 4];
    timeout(STEP_TIMEOUT, stream.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    // The session is open and forwarding; its parsed header is already gone.
    let live = proxy.live_resources();
    assert_eq!(live.live(Resource::Session), 1);
    assert_eq!(live.live(Resource::ProxyHeader), 0);
    let sessions = proxy.sessions().snapshot();
    assert_eq!(sessions[0].client_addr.to_string(), "203.0.113.9:4242");
}

/// Records the AWS VPC endpoint id each session's PROXY header carried.
struct RecordVpce(std::sync::mpsc::Sender<Option<String>>);

impl proxy_core::stage::NewStage<proxy_core::codec::RawTcp> for RecordVpce {
    fn new_stage(
        &self,
        cx: &proxy_core::SessionContext,
    ) -> Box<dyn proxy_core::stage::Stage<proxy_core::codec::RawTcp>> {
        let vpce = cx
            .proxy_header()
            .and_then(|h| h.aws_vpc_endpoint_id())
            .map(str::to_owned);
        self.0.send(vpce).unwrap();
        Box::new(PassThrough)
    }
}

struct PassThrough;

impl proxy_core::stage::Stage<proxy_core::codec::RawTcp> for PassThrough {
    fn kind(&self) -> &'static str {
        "pass"
    }
}

#[tokio::test]
async fn stage_factories_see_the_tlvs_before_the_header_is_released() {
    let backend = peers::echo().await;
    let (tx, rx) = std::sync::mpsc::channel();
    let proxy = TestProxy::start(ProxyOptions {
        proxy_protocol: policy(ProxyProtocolMode::Required, &["127.0.0.1/32"]),
        stages: vec![std::sync::Arc::new(RecordVpce(tx))],
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    let header = v2_header(
        "203.0.113.9:4242",
        "192.0.2.2:9192",
        &[(TLV_AWS, b"\x01vpce-0abc123")],
    );
    let reply = send_after_header(&proxy, &header, b"x").await;
    assert_eq!(reply, b"x");
    assert_eq!(
        rx.recv_timeout(STEP_TIMEOUT).unwrap().as_deref(),
        Some("vpce-0abc123")
    );
    assert_eq!(proxy.live_resources().live(Resource::ProxyHeader), 0);
}
