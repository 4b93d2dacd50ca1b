//! Backends that accept and then fail the client: one that never answers, one that stops
//! reading (a black hole after the TCP handshake), one that closes at once and one that resets
//! at once. Raw TCP through the in-process proxy; the backend then behaves again and a new
//! session must be served.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proxy_core::close::{CloseReason, Fault};
use proxy_core::forward::ForwardLimits;
use proxy_core::gate::{PauseReason, Side};
use sluice_tests::faulty::{Behavior, FaultyBackend};
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use sluice_tests::{STEP_TIMEOUT, pattern};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};

use crate::{echo_round_trip, wait_until};

/// A proxy in front of `backend` with `limits`.
async fn proxy_to(backend: &FaultyBackend, limits: ForwardLimits) -> TestProxy {
    TestProxy::start(ProxyOptions {
        limits,
        ..ProxyOptions::to([backend.addr()])
    })
    .await
}

/// Reads until the proxy ends the client's connection, within [`STEP_TIMEOUT`]: what arrived
/// before the end (an EOF, or a reset counts as the end too).
async fn read_until_closed(client: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = timeout(STEP_TIMEOUT, client.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the client's connection was never closed");
    got
}

/// Users depend on a backend that never answers not holding their connection forever.
#[tokio::test]
async fn a_backend_that_never_answers_is_closed_by_the_idle_timeout() {
    let mut backend = FaultyBackend::start(Behavior::Silent).await;
    let limits = ForwardLimits {
        idle_timeout: Duration::from_secs(1),
        ..ForwardLimits::default()
    };
    let mut proxy = proxy_to(&backend, limits).await;
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let request = pattern(1000, 1);
    client.write_all(&request).await.unwrap();

    let got = read_until_closed(&mut client).await;
    assert!(
        got.is_empty(),
        "a silent backend answered {} bytes",
        got.len()
    );
    let summary = proxy.next_closed(STEP_TIMEOUT).await.expect("a close");
    assert_eq!(summary.reason, CloseReason::IdleTimeout);
    assert_eq!(summary.reason.label(), "idle_timeout");
    // The idle timeout is tagged downstream whichever peer went quiet.
    assert_eq!(summary.reason.fault(), Some(Fault::Downstream));
    assert_eq!(summary.bytes_from_client, request.len() as u64);
    assert_eq!(summary.bytes_from_backend, 0);
    assert_eq!(proxy.closes().get("idle_timeout"), 1);

    // The request was forwarded: the backend's socket holds it, then the proxy's EOF.
    let mut held = backend.next_held().await;
    let mut forwarded = Vec::new();
    timeout(STEP_TIMEOUT, held.read_to_end(&mut forwarded))
        .await
        .unwrap()
        .unwrap();
    assert!(
        forwarded == request,
        "the backend got other bytes than the request"
    );

    backend.set(Behavior::Echo);
    echo_round_trip(proxy.addr()).await;
}

/// Users depend on a backend that stops reading pushing them back, not filling the proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_black_holes_pushes_the_client_back_and_the_idle_timeout_closes_it() {
    let limits = ForwardLimits {
        read_buffer: 16 * 1024,
        high_watermark: 128 * 1024,
        low_watermark: 64 * 1024,
        // Far longer than pushing the client back takes, so the push-back is seen first.
        idle_timeout: Duration::from_secs(3),
        ..ForwardLimits::default()
    };
    let bound = limits.high_watermark + limits.read_buffer;
    let backend = FaultyBackend::start(Behavior::Silent).await;
    let mut proxy = proxy_to(&backend, limits).await;
    let (mut read, mut write) = TcpStream::connect(proxy.addr()).await.unwrap().into_split();
    let written = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn({
        let written = written.clone();
        async move {
            let chunk = pattern(16 * 1024, 5);
            // Bounded: 256 MiB is far more than every buffer on the way holds.
            for _ in 0..16 * 1024 {
                if write.write_all(&chunk).await.is_err() {
                    return true;
                }
                written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            false
        }
    });
    wait_until("the session is registered", || !proxy.sessions().is_empty()).await;
    // The counters outlive the session: they are read again after it closes.
    let stats = proxy.sessions().snapshot()[0].stats.clone();

    // The client's writes stop completing (its count stops moving) because the proxy stopped
    // reading it: its queue toward the backend reached the high watermark.
    let pushed_back = PauseReason::Backpressure(Side::Backend);
    let mut last = u64::MAX;
    let mut unchanged = 0;
    for _ in 0..400 {
        sleep(Duration::from_millis(25)).await;
        let now = written.load(Ordering::Relaxed);
        unchanged = if now == last { unchanged + 1 } else { 0 };
        last = now;
        if unchanged >= 8 && stats.snapshot().client_gate.is_paused_for(pushed_back) {
            break;
        }
    }
    let paused = stats.snapshot();
    assert!(
        unchanged >= 8 && paused.client_gate.is_paused_for(pushed_back),
        "the client was never pushed back: {last} bytes written, {paused:?}"
    );
    assert!(!writer.is_finished(), "the client's writes failed instead");
    assert_eq!(
        proxy.sessions().len(),
        1,
        "the session closed before the push-back"
    );
    // Paused at the high watermark, it stays paused until the queue is back at the low one.
    assert!(
        paused.buffered_to_backend > limits.low_watermark,
        "{paused:?}"
    );
    assert!(paused.peak_buffered <= bound, "{paused:?}, bound {bound}");

    let summary = proxy.next_closed(STEP_TIMEOUT).await.expect("a close");
    assert_eq!(summary.reason, CloseReason::IdleTimeout);
    assert_eq!(summary.reason.fault(), Some(Fault::Downstream));
    assert!(summary.bytes_from_client <= written.load(Ordering::Relaxed));
    assert!(
        stats.snapshot().peak_buffered <= bound,
        "{:?}",
        stats.snapshot()
    );
    // The client sees the end: its pending write fails, and reading ends.
    let failed = timeout(STEP_TIMEOUT, writer).await.unwrap().unwrap();
    assert!(failed, "the client's pending write never failed");
    let mut rest = Vec::new();
    let ended = timeout(STEP_TIMEOUT, read.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the client's connection was never closed");
    assert!(rest.is_empty());

    backend.set(Behavior::Echo);
    echo_round_trip(proxy.addr()).await;
}

/// Users depend on a backend that hangs up at once ending their connection, not hanging it.
#[tokio::test]
async fn a_backend_that_closes_at_once_ends_the_session_on_the_backend_side() {
    let backend = FaultyBackend::start(Behavior::CloseAtOnce).await;
    let mut proxy = proxy_to(&backend, ForwardLimits::default()).await;
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();

    let got = read_until_closed(&mut client).await;
    assert!(got.is_empty());
    drop(client);
    let summary = proxy.next_closed(STEP_TIMEOUT).await.expect("a close");
    assert_eq!(summary.reason, CloseReason::BackendClosed);
    assert_eq!(summary.reason.label(), "backend_closed");
    assert_eq!(summary.reason.fault(), None);
    assert_eq!(summary.backend_addr, Some(backend.addr()));
    assert_eq!(proxy.closes().get("backend_closed"), 1);

    backend.set(Behavior::Echo);
    echo_round_trip(proxy.addr()).await;
}

/// Users depend on a backend that resets at once ending their connection, blamed on it.
#[tokio::test]
async fn a_backend_that_resets_at_once_ends_the_session_with_a_backend_error() {
    let backend = FaultyBackend::start(Behavior::ResetAtOnce).await;
    let mut proxy = proxy_to(&backend, ForwardLimits::default()).await;
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();

    let got = read_until_closed(&mut client).await;
    assert!(got.is_empty());
    let summary = proxy.next_closed(STEP_TIMEOUT).await.expect("a close");
    assert_eq!(
        summary.reason,
        CloseReason::BackendIo(std::io::ErrorKind::ConnectionReset)
    );
    assert_eq!(summary.reason.label(), "backend_error");
    assert_eq!(summary.reason.fault(), Some(Fault::Upstream));
    assert_eq!(proxy.closes().get("backend_error"), 1);

    backend.set(Behavior::Echo);
    echo_round_trip(proxy.addr()).await;
}
