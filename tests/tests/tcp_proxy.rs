//! Raw TCP through Sluice on real loopback sockets: exact bytes, concurrency, half-close,
//! failover, and bounded buffering behind a client that stops reading.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proxy_core::close::{CloseReason, ConnectFailure};
use proxy_core::forward::ForwardLimits;
use proxy_core::gate::{PauseReason, Side};
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use sluice_tests::{STEP_TIMEOUT, exchange, pattern, peers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mebibyte_each_way_arrives_byte_exact() {
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions::to([backend.addr()])).await;
    let upload = pattern(1 << 20, 1);
    let stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let got = timeout(STEP_TIMEOUT, exchange(stream, &upload))
        .await
        .unwrap();
    assert!(got == upload, "echoed bytes differ from the upload");

    let summary = proxy
        .next_closed(STEP_TIMEOUT)
        .await
        .expect("a close summary");
    assert_eq!(summary.bytes_from_client, 1 << 20);
    assert_eq!(summary.bytes_from_backend, 1 << 20);
    assert_eq!(summary.backend_addr, Some(backend.addr()));
    assert!(
        matches!(
            summary.reason,
            CloseReason::ClientClosed | CloseReason::BackendClosed
        ),
        "{:?}",
        summary.reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_sessions_are_each_byte_exact() {
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions::to([backend.addr()])).await;
    let addr = proxy.addr();
    let clients: Vec<_> = (0..200u64)
        .map(|seed| {
            tokio::spawn(async move {
                let upload = pattern(64 * 1024 + seed as usize * 97, seed);
                let stream = TcpStream::connect(addr).await.unwrap();
                let got = exchange(stream, &upload).await;
                got == upload
            })
        })
        .collect();
    for (seed, client) in clients.into_iter().enumerate() {
        let exact = timeout(STEP_TIMEOUT, client).await.unwrap().unwrap();
        assert!(exact, "session {seed} got different bytes back");
    }
    for _ in 0..200 {
        let summary = proxy
            .next_closed(STEP_TIMEOUT)
            .await
            .expect("every session closes");
        assert_eq!(summary.bytes_from_client, summary.bytes_from_backend);
    }
    assert!(proxy.sessions().is_empty());
}

#[tokio::test]
async fn a_client_that_half_closes_still_receives_the_whole_reply() {
    let reply = pattern(1 << 20, 7);
    let backend = peers::reply_after_eof(reply.clone()).await;
    let mut proxy = TestProxy::start(ProxyOptions::to([backend.addr()])).await;
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream.write_all(b"the whole request").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut got = Vec::new();
    timeout(STEP_TIMEOUT, stream.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(
        got == reply,
        "reply differs: {} of {} bytes",
        got.len(),
        reply.len()
    );
    let summary = proxy
        .next_closed(STEP_TIMEOUT)
        .await
        .expect("a close summary");
    assert_eq!(summary.reason, CloseReason::ClientClosed);
    assert_eq!(summary.bytes_from_client, 17);
}

#[tokio::test]
async fn when_the_first_backend_refuses_the_next_one_serves() {
    let refused = peers::refused_addr().await;
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions::to([refused, backend.addr()])).await;
    let stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let got = timeout(STEP_TIMEOUT, exchange(stream, b"failover"))
        .await
        .unwrap();
    assert_eq!(got, b"failover");
    let summary = proxy
        .next_closed(STEP_TIMEOUT)
        .await
        .expect("a close summary");
    assert_eq!(summary.backend_addr, Some(backend.addr()));
}

#[tokio::test]
async fn when_every_backend_refuses_the_client_is_closed_with_the_reason() {
    let backends = [peers::refused_addr().await, peers::refused_addr().await];
    let mut proxy = TestProxy::start(ProxyOptions::to(backends)).await;
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut buf = [0u8; 16];
    // The proxy closes the connection: EOF (or a reset), never a hang.
    let read = timeout(STEP_TIMEOUT, stream.read(&mut buf))
        .await
        .expect("closed promptly");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let summary = proxy
        .next_closed(STEP_TIMEOUT)
        .await
        .expect("a close summary");
    assert_eq!(
        summary.reason,
        CloseReason::BackendUnavailable {
            attempts: 2,
            last: ConnectFailure::Io(std::io::ErrorKind::ConnectionRefused)
        }
    );
    assert_eq!(summary.backend_addr, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_holds_the_session_buffer_within_its_bound() {
    let limits = ForwardLimits {
        read_buffer: 16 * 1024,
        high_watermark: 128 * 1024,
        low_watermark: 64 * 1024,
        ..ForwardLimits::default()
    };
    let sent = Arc::new(AtomicU64::new(0));
    let chunk = pattern(16 * 1024, 3);
    let backend = peers::firehose(chunk.clone(), sent.clone()).await;
    let proxy = TestProxy::start(ProxyOptions {
        limits,
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();

    // Wait until the firehose is pushed back all the way: its count stops moving. Bounded in
    // count; each check is a short sleep, and the assertions below are on counters, not time.
    let mut last = u64::MAX;
    let mut unchanged = 0;
    for _ in 0..400 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let now = sent.load(Ordering::Relaxed);
        unchanged = if now == last { unchanged + 1 } else { 0 };
        last = now;
        if unchanged == 8 {
            break;
        }
    }
    assert_eq!(
        unchanged, 8,
        "the backend never stopped sending: {last} bytes"
    );

    let entries = proxy.sessions().snapshot();
    assert_eq!(entries.len(), 1);
    let stats = entries[0].stats.snapshot();
    assert!(
        stats.buffered_to_client <= limits.high_watermark + limits.read_buffer,
        "buffered {} bytes, bound {}",
        stats.buffered_to_client,
        limits.high_watermark + limits.read_buffer
    );
    assert!(
        stats
            .backend_gate
            .is_paused_for(PauseReason::Backpressure(Side::Client)),
        "{stats:?}"
    );
    assert!(
        stats.peak_buffered <= limits.high_watermark + limits.read_buffer,
        "{stats:?}"
    );

    // Everything the proxy read is still delivered intact, in order, once the client reads.
    let mut got = vec![0u8; 1 << 20];
    timeout(STEP_TIMEOUT, client.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(
        got.chunks(chunk.len()).all(|c| c == &chunk[..]),
        "bytes were lost or reordered"
    );
}

#[tokio::test]
async fn a_draining_raw_tcp_session_flows_on_and_closes_itself_at_its_deadline() {
    let backend = peers::echo().await;
    let mut options = ProxyOptions::to([backend.addr()]);
    options.drain_timeout = Duration::from_millis(400);
    let mut proxy = TestProxy::start(options).await;
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    client.write_all(b"before").await.unwrap();
    let mut got = [0u8; 6];
    timeout(STEP_TIMEOUT, client.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"before");

    proxy.drain();
    // Raw TCP has no request boundaries: the session keeps forwarding while it drains.
    client.write_all(b"during").await.unwrap();
    timeout(STEP_TIMEOUT, client.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"during");
    assert!(
        TcpStream::connect(proxy.addr()).await.is_err(),
        "still accepting while draining"
    );
    // Nobody force-closes it: the `Draining` state's own deadline ends it.
    let summary = proxy
        .next_closed(STEP_TIMEOUT)
        .await
        .expect("a close summary");
    assert_eq!(summary.reason, CloseReason::Shutdown);
    assert_eq!(summary.reason.label(), "drain_timeout");
    let mut rest = Vec::new();
    let read = timeout(STEP_TIMEOUT, client.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the client's connection was not closed");
}
