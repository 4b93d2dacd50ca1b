//! Headers that are used: the bytes after the header in the same segment get through, optional
//! mode takes a header (or v2 LOCAL) when sent and the peer otherwise, and the router picks a
//! cluster by the header's authority.

use ppp::v2;
use proxy_core::proxy_protocol::{ProxyProtocolMode, TLV_AUTHORITY};
use proxy_core::route::{RouteId, RouteMatch, RouteRule};
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use sluice_tests::{STEP_TIMEOUT, exchange, peers};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::{policy, send_after_header, v2_header};

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
