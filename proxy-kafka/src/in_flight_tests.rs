//! The cap on a session's unanswered requests (`KafkaCodec::with_max_in_flight`): sans-IO, what
//! counts and what does not; then through the forwarding driver over duplex pipes, reads from
//! the client pause exactly at the cap and resume with the answer that brings it below.
//! Paused time makes "stalled" exact: the clock only advances when every task is blocked.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{ApiKey, ListGroupsRequest, ListGroupsResponse, ResponseKind};
use proxy_core::codec::Codec;
use proxy_core::forward::{ForwardLimits, forward};
use proxy_core::stage::StageChain;
use proxy_core::stop::StopSignal;
use proxy_core::{CloseReason, PauseReason};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
use tokio::time::timeout;

use crate::test_support::*;
use crate::*;

/// ListGroups v0: no fields, the smallest request a client can pipeline.
fn list_groups(correlation_id: i32) -> bytes::Bytes {
    request_frame(
        ApiKey::ListGroups,
        0,
        correlation_id,
        &ListGroupsRequest::default().into(),
    )
}

fn list_groups_answer(correlation_id: i32) -> bytes::Bytes {
    response_frame(
        ApiKey::ListGroups,
        0,
        correlation_id,
        &ResponseKind::ListGroups(ListGroupsResponse::default()),
    )
}

fn capped(limit: usize) -> Session {
    Session {
        codec: KafkaCodec::default().with_max_in_flight(limit),
        ..Session::default()
    }
}

// === sans-IO: what counts ===

#[test]
fn the_cap_is_reached_at_n_unanswered_requests_and_left_with_an_answer() {
    let mut session = capped(3);
    for id in 0..2 {
        session.forward(&list_groups(id));
    }
    assert_eq!(session.codec.awaiting_answer(), 2);
    assert!(!session.codec.in_flight_limit_reached());
    session.forward(&list_groups(2));
    assert!(session.codec.in_flight_limit_reached());
    // Read from the broker but not yet queued toward the client: still unanswered.
    let answer = session.read_response(&list_groups_answer(0)).unwrap();
    assert!(session.codec.in_flight_limit_reached());
    session
        .codec
        .encode_response(answer, &mut session.to_client)
        .unwrap();
    assert_eq!(session.codec.awaiting_answer(), 2);
    assert!(!session.codec.in_flight_limit_reached());
}

#[test]
fn produce_with_acks_0_never_counts() {
    let mut session = capped(2);
    session.forward(&list_groups(1));
    for id in 2..1000 {
        session.forward(&request_frame(
            ApiKey::Produce,
            9,
            id,
            &produce_request(0, 1),
        ));
    }
    assert_eq!(session.codec.awaiting_answer(), 1);
    assert!(!session.codec.in_flight_limit_reached());
    // With `acks = 1` a Produce is answered, so it counts.
    session.forward(&request_frame(
        ApiKey::Produce,
        9,
        1000,
        &produce_request(1, 1),
    ));
    assert!(session.codec.in_flight_limit_reached());
}

#[test]
fn answers_a_stage_gave_count_while_they_wait_behind_an_earlier_request() {
    let mut session = capped(3);
    session.forward(&list_groups(1));
    for id in 2..4 {
        let request = session.read_request(&list_groups(id));
        let answer = KafkaResponse::answer(
            &request,
            ResponseKind::ListGroups(ListGroupsResponse::default()),
        );
        session
            .codec
            .encode_response(answer, &mut session.to_client)
            .unwrap();
    }
    assert!(session.to_client.is_empty(), "answers overtook request 1");
    assert_eq!(session.codec.awaiting_answer(), 3);
    assert!(session.codec.in_flight_limit_reached());
    session.deliver(&list_groups_answer(1));
    assert_eq!(session.codec.awaiting_answer(), 0);
    assert_eq!(
        correlation_ids(&session.to_client.take_chunks(), false),
        [1, 2, 3]
    );
}

#[test]
fn a_cap_of_zero_is_taken_as_one() {
    let mut session = capped(0);
    assert!(!session.codec.in_flight_limit_reached());
    session.forward(&list_groups(1));
    assert!(session.codec.in_flight_limit_reached());
}

// === through the forwarding driver ===

const LIMIT: usize = 3;
const PIPELINED: i32 = 10;
/// Far below the session's idle timeout: on paused time, a wait that lasts this long means
/// every task is blocked.
const STALL: Duration = Duration::from_secs(1);

/// Reads whole frames until `count` have arrived; the correlation id of each (after the length
/// prefix and, for requests, the API key and version).
async fn read_ids(
    side: &mut DuplexStream,
    buf: &mut BytesMut,
    count: usize,
    request: bool,
) -> Vec<i32> {
    let mut ids = Vec::new();
    while ids.len() < count {
        while buf.len() >= 4 {
            let len = usize::try_from((&buf[..4]).get_i32()).unwrap();
            if buf.len() < 4 + len {
                break;
            }
            let mut frame = buf.split_to(4 + len);
            frame.advance(if request { 8 } else { 4 });
            ids.push(frame.get_i32());
        }
        if ids.len() < count {
            assert!(side.read_buf(buf).await.unwrap() > 0, "the session ended");
        }
    }
    ids
}

/// True when `side` receives nothing more until every task is blocked.
async fn stalls(side: &mut DuplexStream) -> bool {
    let mut byte = [0u8; 1];
    timeout(STALL, side.read(&mut byte)).await.is_err()
}

#[tokio::test(start_paused = true)]
async fn reads_pause_exactly_at_the_cap_and_resume_below_it() {
    let (mut client, proxy_client) = duplex(64 * 1024);
    let (mut backend, proxy_backend) = duplex(64 * 1024);
    let mut cx = cx();
    let stats = cx.stats().clone();
    let force_close = StopSignal::new();
    let token = force_close.clone();
    let session = tokio::spawn(async move {
        let mut chain = StageChain::<Kafka>::new(Vec::new());
        forward(
            proxy_client,
            proxy_backend,
            KafkaCodec::default().with_max_in_flight(LIMIT),
            &mut chain,
            &mut cx,
            ForwardLimits::default(),
            &token,
        )
        .await
    });

    // Ten requests in one write: the proxy reads them all, and forwards three.
    let mut pipelined = Vec::new();
    for id in 0..PIPELINED {
        pipelined.extend_from_slice(&list_groups(id));
    }
    client.write_all(&pipelined).await.unwrap();
    let mut at_backend = BytesMut::new();
    assert_eq!(
        read_ids(&mut backend, &mut at_backend, LIMIT, true).await,
        [0, 1, 2]
    );
    assert!(
        stalls(&mut backend).await,
        "a request past the cap was sent"
    );
    let gate = stats.snapshot().client_gate;
    assert_eq!(
        gate.reasons().collect::<Vec<_>>(),
        [PauseReason::InFlightLimit]
    );

    // One answer: one more request, and the cap holds again.
    backend.write_all(&list_groups_answer(0)).await.unwrap();
    assert_eq!(read_ids(&mut backend, &mut at_backend, 1, true).await, [3]);
    assert!(
        stalls(&mut backend).await,
        "a request past the cap was sent"
    );
    assert!(
        stats
            .snapshot()
            .client_gate
            .is_paused_for(PauseReason::InFlightLimit)
    );

    // Every answer as its request arrives: the rest is forwarded, and the client gets every
    // answer in order.
    for id in 1..PIPELINED {
        backend.write_all(&list_groups_answer(id)).await.unwrap();
        let next = id + LIMIT as i32;
        if next < PIPELINED {
            assert_eq!(
                read_ids(&mut backend, &mut at_backend, 1, true).await,
                [next]
            );
        }
    }
    let mut at_client = BytesMut::new();
    assert_eq!(
        read_ids(&mut client, &mut at_client, PIPELINED as usize, false).await,
        (0..PIPELINED).collect::<Vec<_>>()
    );
    assert!(stats.snapshot().client_gate.is_open());

    // Backpressure never closed the session: the client ends it.
    client.shutdown().await.unwrap();
    backend.shutdown().await.unwrap();
    let reason = session.await.unwrap();
    assert!(
        matches!(
            reason,
            CloseReason::ClientClosed | CloseReason::BackendClosed
        ),
        "{reason:?}"
    );
}
