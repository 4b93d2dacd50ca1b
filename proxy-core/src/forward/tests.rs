//! The forwarding driver over in-memory duplex pipes. Paused time makes "stalled" exact: the
//! clock only advances when every task is blocked.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
use tokio::time::{Instant, timeout};

use super::*;
use crate::codec::{RawCodec, RawTcp};
use crate::context::SessionStats;
use crate::gate::PauseReason;
use crate::stage::throttle::NewThrottle;
use crate::stage::{Flow, NewStage, Stage, StageContext};
use crate::stop::StopSignal;
use crate::test_support::cx;

const PIPE: usize = 64 * 1024;

struct Harness {
    client: DuplexStream,
    backend: DuplexStream,
    stats: Arc<SessionStats>,
    force_close: StopSignal,
    session: tokio::task::JoinHandle<CloseReason>,
}

fn start(stages: Vec<Box<dyn Stage<RawTcp>>>, limits: ForwardLimits) -> Harness {
    let (client, proxy_client) = duplex(PIPE);
    let (backend, proxy_backend) = duplex(PIPE);
    let mut cx = cx();
    let stats = cx.stats().clone();
    let force_close = StopSignal::new();
    let token = force_close.clone();
    let session = tokio::spawn(async move {
        let mut chain = StageChain::new(stages);
        forward(
            proxy_client,
            proxy_backend,
            RawCodec,
            &mut chain,
            &mut cx,
            limits,
            &token,
        )
        .await
    });
    Harness {
        client,
        backend,
        stats,
        force_close,
        session,
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn bytes_cross_both_ways_exactly_and_the_client_closing_first_is_named() {
    let Harness {
        client,
        mut backend,
        session,
        stats,
        ..
    } = start(vec![], ForwardLimits::default());
    let upload = pattern(1 << 20, 1);
    let download = pattern(1 << 20, 7);
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let expected_up = upload.clone();
    let backend_task = tokio::spawn(async move {
        let (mut r, mut w) = tokio::io::split(&mut backend);
        let writer = async {
            w.write_all(&download).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let reader = async {
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(writer, reader);
        assert_eq!(got, expected_up);
    });
    let writer = async {
        client_write.write_all(&upload).await.unwrap();
        client_write.shutdown().await.unwrap();
    };
    let reader = async {
        let mut got = Vec::new();
        client_read.read_to_end(&mut got).await.unwrap();
        got
    };
    let ((), got) = tokio::join!(writer, reader);
    assert_eq!(got, pattern(1 << 20, 7));
    backend_task.await.unwrap();
    let reason = session.await.unwrap();
    assert!(
        matches!(
            reason,
            CloseReason::ClientClosed | CloseReason::BackendClosed
        ),
        "{reason:?}"
    );
    let snapshot = stats.snapshot();
    assert_eq!(snapshot.bytes_from_client, 1 << 20);
    assert_eq!(snapshot.bytes_from_backend, 1 << 20);
    assert_eq!(
        snapshot.buffered_to_client + snapshot.buffered_to_backend,
        0
    );
}

#[tokio::test]
async fn a_half_closed_client_still_gets_the_whole_reply() {
    let Harness {
        mut client,
        mut backend,
        session,
        ..
    } = start(vec![], ForwardLimits::default());
    client.write_all(b"question").await.unwrap();
    client.shutdown().await.unwrap();
    let mut asked = Vec::new();
    backend.read_to_end(&mut asked).await.unwrap();
    assert_eq!(asked, b"question");
    let reply = pattern(300_000, 3);
    backend.write_all(&reply).await.unwrap();
    backend.shutdown().await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, reply);
    assert_eq!(session.await.unwrap(), CloseReason::ClientClosed);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_costs_bounded_memory() {
    let limits = ForwardLimits {
        read_buffer: 16 * 1024,
        high_watermark: 64 * 1024,
        low_watermark: 32 * 1024,
        ..ForwardLimits::default()
    };
    let Harness {
        mut client,
        mut backend,
        stats,
        session,
        ..
    } = start(vec![], limits);
    let chunk = pattern(8 * 1024, 5);
    let mut sent = 0usize;
    // Write until the backend is blocked; with paused time the timeout fires only once every
    // task is stuck, so this stops exactly when the proxy stops reading.
    for _ in 0..10_000 {
        match timeout(Duration::from_secs(1), backend.write_all(&chunk)).await {
            Ok(result) => {
                result.unwrap();
                sent += chunk.len();
            }
            Err(_) => break,
        }
    }
    let snapshot = stats.snapshot();
    assert!(
        snapshot.buffered_to_client <= limits.high_watermark + limits.read_buffer,
        "{snapshot:?}"
    );
    assert!(
        snapshot.buffered_to_client >= limits.high_watermark,
        "{snapshot:?}"
    );
    assert!(
        snapshot
            .backend_gate
            .is_paused_for(PauseReason::Backpressure(Side::Client)),
        "{snapshot:?}"
    );
    assert!(snapshot.client_gate.is_open(), "{snapshot:?}");
    assert!(
        sent < 2 * 1024 * 1024,
        "the backend was never pushed back: {sent} bytes"
    );

    // Once the client reads, everything arrives intact and the gate opens again.
    let mut got = vec![0u8; sent];
    client.read_exact(&mut got).await.unwrap();
    assert!(got.chunks(chunk.len()).all(|c| c == &chunk[..]));
    drop(backend);
    drop(client);
    let _ = session.await.unwrap();
    assert!(stats.snapshot().peak_buffered <= limits.high_watermark + limits.read_buffer);
}

#[tokio::test(start_paused = true)]
async fn a_throttle_defers_chunks_without_reordering_them() {
    let throttle = NewThrottle::new(10_000, 1_000).new_stage(&cx());
    let Harness {
        mut client,
        mut backend,
        session,
        ..
    } = start(vec![throttle], ForwardLimits::default());
    let upload = pattern(50_000, 9);
    let started = Instant::now();
    let send = async {
        for piece in upload.chunks(1_000) {
            client.write_all(piece).await.unwrap();
        }
        client.shutdown().await.unwrap();
        client
    };
    let receive = async {
        let mut got = Vec::new();
        backend.read_to_end(&mut got).await.unwrap();
        got
    };
    let (client, got) = tokio::join!(send, receive);
    assert_eq!(got, upload);
    // 49 000 bytes beyond the burst at 10 000 B/s: at least 4.9 s of (virtual) time.
    assert!(
        started.elapsed() >= Duration::from_millis(4_900),
        "{:?}",
        started.elapsed()
    );
    drop((client, backend));
    let _ = session.await.unwrap();
}

/// Answers `ping` itself; passes everything else on.
struct Pong;

impl Stage<RawTcp> for Pong {
    fn kind(&self) -> &'static str {
        "pong"
    }
    fn on_request(&mut self, msg: Bytes, _cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
        if &msg[..] == b"ping" {
            Flow::Respond(Bytes::from_static(b"pong"))
        } else {
            Flow::Forward(msg)
        }
    }
}

#[tokio::test]
async fn a_stage_can_answer_the_client_without_the_backend() {
    let Harness {
        mut client,
        mut backend,
        force_close,
        session,
        ..
    } = start(vec![Box::new(Pong)], ForwardLimits::default());
    client.write_all(b"ping").await.unwrap();
    let mut answer = [0u8; 4];
    client.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"pong");
    client.write_all(b"data").await.unwrap();
    let mut forwarded = [0u8; 4];
    backend.read_exact(&mut forwarded).await.unwrap();
    assert_eq!(&forwarded, b"data");
    force_close.force_close();
    assert_eq!(session.await.unwrap(), CloseReason::Shutdown);
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_closes_after_the_idle_timeout_and_activity_postpones_it() {
    let limits = ForwardLimits {
        idle_timeout: Duration::from_secs(10),
        ..ForwardLimits::default()
    };
    let Harness {
        mut client,
        mut backend,
        session,
        ..
    } = start(vec![], limits);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    client.write_all(b"still here").await.unwrap();
    let mut buf = [0u8; 10];
    backend.read_exact(&mut buf).await.unwrap();
    assert_eq!(session.await.unwrap(), CloseReason::IdleTimeout);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(16) && elapsed < Duration::from_secs(17),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_backend_eof_reaches_the_client_and_the_session_ends_when_the_client_closes() {
    let Harness {
        mut client,
        backend,
        session,
        ..
    } = start(vec![], ForwardLimits::default());
    drop(backend);
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    drop(client);
    assert_eq!(session.await.unwrap(), CloseReason::BackendClosed);
}

#[tokio::test(start_paused = true)]
async fn a_half_closed_session_that_goes_quiet_ends_at_the_half_close_timeout() {
    let limits = ForwardLimits {
        idle_timeout: Duration::from_secs(3600),
        half_close_timeout: Duration::from_secs(5),
        ..ForwardLimits::default()
    };
    let Harness {
        mut client,
        mut backend,
        session,
        ..
    } = start(vec![], limits);
    client.write_all(b"bye").await.unwrap();
    client.shutdown().await.unwrap();
    let mut got = Vec::new();
    backend.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"bye");
    let started = Instant::now();
    // The backend never answers and never closes.
    assert_eq!(session.await.unwrap(), CloseReason::HalfCloseTimeout);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5) && elapsed < Duration::from_secs(6),
        "{elapsed:?}"
    );
    drop((client, backend));
}
