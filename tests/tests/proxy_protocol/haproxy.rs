//! Behind a real HAProxy (`send-proxy` and `send-proxy-v2`), the backend sees the real
//! client's address.

use proxy_core::proxy_protocol::{ProxyProtocolMode, ProxyProtocolVersion};
use sluice_tests::STEP_TIMEOUT;
use sluice_tests::haproxy::{HaProxy, SendProxy};
use sluice_tests::peers;
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::policy;

/// Sends a request and reads the reporter's answer (the client address its PROXY header named,
/// then the echoed request), as a real client would: request first, close after the answer.
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
