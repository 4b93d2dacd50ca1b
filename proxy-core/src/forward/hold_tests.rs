//! A stage holding the client's reads (a quota's throttle): requests wait until the deadline
//! with `Quota` on the client's gate, answers keep flowing, the gate reopens without any other
//! event, and the time held is counted per reason.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};
use tokio::time::{Instant, timeout};

use super::*;
use crate::codec::{RawCodec, RawTcp};
use crate::gate::PauseReason;
use crate::stage::{Flow, Stage, StageContext};
use crate::stop::StopSignal;
use crate::test_support::cx;

const HOLD: Duration = Duration::from_millis(500);

/// Holds the client's reads for [`HOLD`] after each answer that starts with `!`.
struct HoldAfterAnswer;

impl Stage<RawTcp> for HoldAfterAnswer {
    fn kind(&self) -> &'static str {
        "hold"
    }

    fn on_response(&mut self, msg: Bytes, cx: &mut StageContext<'_>) -> Flow<Bytes, Bytes> {
        if msg.starts_with(b"!") {
            cx.session_mut()
                .hold_client_reads_until(Instant::now() + HOLD);
        }
        Flow::Forward(msg)
    }
}

async fn read_some(stream: &mut tokio::io::DuplexStream) -> Vec<u8> {
    let mut buf = vec![0; 64];
    let n = stream.read(&mut buf).await.unwrap();
    buf.truncate(n);
    buf
}

#[tokio::test(start_paused = true)]
async fn a_hold_pauses_requests_until_its_deadline_while_answers_flow() {
    let (mut client, proxy_client) = duplex(4096);
    let (mut backend, proxy_backend) = duplex(4096);
    let mut cx = cx();
    let stats = cx.stats().clone();
    let live = cx.live_resources().clone();
    let force_close = StopSignal::new();
    let token = force_close.clone();
    let session = tokio::spawn(async move {
        let mut chain = StageChain::new(vec![Box::new(HoldAfterAnswer) as Box<dyn Stage<RawTcp>>]);
        forward(
            proxy_client,
            proxy_backend,
            RawCodec,
            &mut chain,
            &mut cx,
            ForwardLimits::default(),
            &token,
        )
        .await
    });

    client.write_all(b"first").await.unwrap();
    assert_eq!(read_some(&mut backend).await, b"first");
    backend.write_all(b"!throttled").await.unwrap();
    let held_at = Instant::now();
    assert_eq!(read_some(&mut client).await, b"!throttled");

    // The next request waits: nothing reaches the backend within most of the hold.
    client.write_all(b"second").await.unwrap();
    let early = timeout(HOLD - Duration::from_millis(100), read_some(&mut backend)).await;
    assert!(early.is_err(), "a request passed during the hold");
    let gate = stats.snapshot().client_gate;
    assert!(gate.is_paused_for(PauseReason::Quota), "{gate:?}");
    assert_eq!(
        gate.reasons().collect::<Vec<_>>(),
        [PauseReason::Quota],
        "nothing else pauses the client"
    );
    assert!(stats.snapshot().backend_gate.is_open());

    // Answers still reach the client during the hold.
    backend.write_all(b"late answer").await.unwrap();
    assert_eq!(read_some(&mut client).await, b"late answer");

    // At the deadline the request goes on, with no other event to wake the session.
    assert_eq!(read_some(&mut backend).await, b"second");
    assert!(Instant::now() >= held_at + HOLD, "released early");
    assert!(stats.snapshot().client_gate.is_open());

    force_close.force_close();
    drop(client);
    drop(backend);
    let _ = session.await.unwrap();
    let held = live.paused(PauseReason::Quota);
    assert!(
        held >= HOLD - Duration::from_millis(10) && held <= HOLD + Duration::from_millis(100),
        "time held counted as {held:?}"
    );
    assert_eq!(live.paused(PauseReason::Draining), Duration::ZERO);
}

#[test]
fn a_later_hold_extends_an_earlier_one_and_an_earlier_one_does_not_shorten_it() {
    let mut cx = cx();
    let now = Instant::now();
    cx.hold_client_reads_until(now + Duration::from_secs(2));
    cx.hold_client_reads_until(now + Duration::from_secs(1));
    assert_eq!(cx.take_client_hold(), Some(now + Duration::from_secs(2)));
    assert_eq!(cx.take_client_hold(), None);
}
