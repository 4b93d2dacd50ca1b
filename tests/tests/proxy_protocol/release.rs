//! Every parsed header is released: none outlives ten thousand sessions, a forwarding session
//! keeps only its header's compact facts, and stage factories see the TLVs before the release.

use std::time::Duration;

use proxy_core::context::Resource;
use proxy_core::proxy_protocol::{ProxyProtocolMode, TLV_AUTHORITY, TLV_AWS, TLV_UNIQUE_ID};
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use sluice_tests::{STEP_TIMEOUT, exchange, peers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::{policy, send_after_header, v2_header};

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
