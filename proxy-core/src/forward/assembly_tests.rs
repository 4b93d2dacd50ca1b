//! Messages larger than one read under a frame budget, and the frame timeout, over in-memory
//! pipes with a length-prefixed test protocol. Paused time makes "stalled" exact.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

use super::*;
use crate::codec::CodecError;
use crate::context::SessionStats;
use crate::gate::PauseReason;
use crate::stop::StopSignal;
use crate::test_support::cx;

const PIPE: usize = 256 * 1024;
const PREFIX: usize = 4;

/// Messages are a big-endian u32 length and that many bytes.
struct Framed;

impl Protocol for Framed {
    type Request = Bytes;
    type Response = Bytes;
    type Head = ();
}

struct FramedCodec;

impl FramedCodec {
    fn take(buf: &mut BytesMut) -> Option<Bytes> {
        let len = Codec::<Framed>::message_len(&FramedCodec, buf)?;
        (buf.len() >= len).then(|| buf.split_to(len).freeze())
    }
}

impl Codec<Framed> for FramedCodec {
    fn decode_request(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        Ok(Self::take(buf))
    }

    fn decode_response(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        Ok(Self::take(buf))
    }

    fn message_len(&self, buf: &[u8]) -> Option<usize> {
        let prefix: [u8; PREFIX] = buf.get(..PREFIX)?.try_into().ok()?;
        Some(PREFIX + u32::from_be_bytes(prefix) as usize)
    }

    fn encode_request(&mut self, msg: Bytes, out: &mut WriteQueue) -> Result<(), CodecError> {
        out.push(msg);
        Ok(())
    }

    fn encode_response(&mut self, msg: Bytes, out: &mut WriteQueue) -> Result<(), CodecError> {
        out.push(msg);
        Ok(())
    }
}

struct Session {
    client: DuplexStream,
    backend: DuplexStream,
    stats: Arc<SessionStats>,
    ended: tokio::task::JoinHandle<CloseReason>,
}

fn limits() -> ForwardLimits {
    ForwardLimits {
        read_buffer: 16 * 1024,
        high_watermark: 1 << 20,
        low_watermark: 512 * 1024,
        frame_timeout: Duration::from_secs(10),
        ..ForwardLimits::default()
    }
}

fn start(budget: &FrameBudget) -> Session {
    let (client, proxy_client) = duplex(PIPE);
    let (backend, proxy_backend) = duplex(PIPE);
    let mut cx = cx();
    let stats = cx.stats().clone();
    let budget = budget.clone();
    let ended = tokio::spawn(async move {
        let mut chain = StageChain::<Framed>::new(vec![]);
        let mut forwarder = Forwarder::new(proxy_client, proxy_backend, FramedCodec, limits())
            .with_frame_budget(budget);
        let never = StopSignal::new();
        match forwarder.run(&mut chain, &mut cx, &never).await {
            Forwarded::Closed(reason) => reason,
            Forwarded::DrainRequested => CloseReason::DrainCompleted,
        }
    });
    Session {
        client,
        backend,
        stats,
        ended,
    }
}

/// A message of `body` bytes: its length prefix, then the body.
fn message(body: usize, seed: u8) -> Vec<u8> {
    let mut bytes = u32::try_from(body).unwrap().to_be_bytes().to_vec();
    bytes.extend((0..body).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)));
    bytes
}

/// Lets the sessions run until `done` holds; paused time advances only when all are blocked.
async fn settle(mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the sessions did not reach the expected state");
}

fn paused_for_budget(stats: &SessionStats) -> bool {
    stats
        .snapshot()
        .client_gate
        .is_paused_for(PauseReason::FrameBudget)
}

#[tokio::test(start_paused = true)]
async fn a_large_message_waits_for_budget_and_is_delivered_whole_once_another_completes() {
    const BODY: usize = 100 * 1024;
    let budget = FrameBudget::new(150 * 1024);
    let mut first = start(&budget);
    let mut second = start(&budget);
    let (one, two) = (message(BODY, 1), message(BODY, 2));
    let half = BODY / 2;
    first.client.write_all(&one[..half]).await.unwrap();
    second.client.write_all(&two[..half]).await.unwrap();
    settle(|| {
        budget.used() > 0 && (paused_for_budget(&first.stats) || paused_for_budget(&second.stats))
    })
    .await;
    // One message fits the budget, two do not: exactly one session reads on.
    assert_eq!(budget.used(), PREFIX + BODY);
    let (granted, waiting, granted_msg, waiting_msg) = if paused_for_budget(&second.stats) {
        (&mut first, &mut second, &one, &two)
    } else {
        (&mut second, &mut first, &two, &one)
    };
    assert!(!paused_for_budget(&granted.stats));
    // The waiting session holds no more than two reads of its message: it is charged once it
    // has a read's worth, and the read that crossed that may have been a whole one.
    let held = waiting.stats.snapshot().buffered_to_backend;
    assert!(held > 0 && held <= 2 * limits().read_buffer, "held {held}");

    granted
        .client
        .write_all(&granted_msg[half..])
        .await
        .unwrap();
    let mut got = vec![0; granted_msg.len()];
    granted.backend.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, granted_msg);

    // Its share given back, the waiting session is woken and completes too.
    waiting
        .client
        .write_all(&waiting_msg[half..])
        .await
        .unwrap();
    let mut got = vec![0; waiting_msg.len()];
    waiting.backend.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, waiting_msg);
    settle(|| budget.used() == 0).await;
    assert!(budget.waits() >= 1);
}

#[tokio::test(start_paused = true)]
async fn clients_that_send_a_large_length_and_stall_hold_no_share_of_the_budget() {
    const BODY: usize = 100 * 1024;
    let budget = FrameBudget::new(150 * 1024);
    // Each announces a message the budget could hold, then sends nothing more.
    let mut stalled = Vec::new();
    for seed in 0..4 {
        let mut session = start(&budget);
        session
            .client
            .write_all(&message(BODY, seed)[..PREFIX + 16])
            .await
            .unwrap();
        stalled.push(session);
    }
    settle(|| {
        stalled
            .iter()
            .all(|s| s.stats.snapshot().bytes_from_client > 0)
    })
    .await;
    assert_eq!(budget.used(), 0, "a length alone was charged");
    // Another session's message of the same size goes through meanwhile.
    let mut honest = start(&budget);
    let msg = message(BODY, 9);
    honest.client.write_all(&msg).await.unwrap();
    let mut got = vec![0; msg.len()];
    tokio::time::timeout(Duration::from_secs(5), honest.backend.read_exact(&mut got))
        .await
        .expect("the honest message waited for the stalled sessions' shares")
        .unwrap();
    assert_eq!(got, msg);
}

#[tokio::test(start_paused = true)]
async fn messages_no_larger_than_a_read_are_never_charged() {
    let budget = FrameBudget::new(1);
    let mut session = start(&budget);
    for seed in 0..20 {
        let msg = message(8 * 1024, seed);
        session.client.write_all(&msg).await.unwrap();
        let mut got = vec![0; msg.len()];
        session.backend.read_exact(&mut got).await.unwrap();
        assert_eq!(got, msg);
    }
    assert_eq!((budget.used(), budget.waits()), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_message_larger_than_the_budget_closes_the_session_as_the_clients_fault() {
    let budget = FrameBudget::new(64 * 1024);
    let mut session = start(&budget);
    session
        .client
        .write_all(&message(100 * 1024, 3)[..20 * 1024])
        .await
        .unwrap();
    let reason = session.ended.await.unwrap();
    assert_eq!(reason.label(), "protocol_error", "{reason}");
    assert_eq!(reason.fault(), Some(crate::close::Fault::Downstream));
    assert_eq!(budget.used(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_trickles_a_message_is_closed_at_the_frame_timeout_and_its_share_returned() {
    let budget = FrameBudget::new(1 << 20);
    let mut session = start(&budget);
    let msg = message(64 * 1024, 4);
    let started = tokio::time::Instant::now();
    session.client.write_all(&msg[..32 * 1024]).await.unwrap();
    // A byte a second keeps the session active (no idle timeout) but never finishes.
    let mut sent = 32 * 1024;
    let ended = loop {
        if session.ended.is_finished() {
            break session.ended.await.unwrap();
        }
        assert!(sent < 32 * 1024 + 60, "no close after 60 s of trickling");
        session.client.write_all(&msg[sent..=sent]).await.unwrap();
        sent += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(ended, CloseReason::FrameTimeout);
    assert_eq!(ended.fault(), Some(crate::close::Fault::Downstream));
    let took = started.elapsed();
    assert!(
        (limits().frame_timeout..limits().frame_timeout + Duration::from_secs(2)).contains(&took),
        "closed after {took:?}"
    );
    assert_eq!(budget.used(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_client_between_messages_is_not_timed_by_the_frame_timeout() {
    let budget = FrameBudget::new(1 << 20);
    let mut session = start(&budget);
    let msg = message(1024, 5);
    session.client.write_all(&msg).await.unwrap();
    let mut got = vec![0; msg.len()];
    session.backend.read_exact(&mut got).await.unwrap();
    tokio::time::sleep(limits().frame_timeout * 3).await;
    assert!(!session.ended.is_finished());
    session.client.write_all(&msg).await.unwrap();
    session.backend.read_exact(&mut got).await.unwrap();
    assert_eq!(got, msg);
}

#[tokio::test(start_paused = true)]
async fn bytes_of_an_unfinished_message_are_counted_as_buffered() {
    let budget = FrameBudget::new(1 << 20);
    let mut session = start(&budget);
    session
        .client
        .write_all(&message(200 * 1024, 6)[..100 * 1024])
        .await
        .unwrap();
    settle(|| session.stats.snapshot().buffered_to_backend == 100 * 1024).await;
}
