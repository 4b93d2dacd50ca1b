//! Sans-IO tests of the per-API metrics the codec records: requests and bytes each way, and the
//! latency from a request's arrival to its response's delivery, read from the codec's clock
//! (tokio's, paused, or one of the test's own), so it is asserted exactly.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use bytes::BufMut;
use kafka_protocol::messages::{ApiKey, ResponseKind};
use tokio::time::Instant;

use crate::test_support::*;
use crate::*;

#[tokio::test(start_paused = true)]
async fn metrics_count_requests_bytes_and_latency_per_api_key() {
    let metrics = Arc::new(KafkaMetrics::default());
    let mut session = Session {
        codec: KafkaCodec::default().with_metrics(Arc::clone(&metrics)),
        ..Session::default()
    };
    let metadata = request_frame(ApiKey::Metadata, 12, 1, &metadata_request(&["orders"]));
    let produce = request_frame(ApiKey::Produce, 9, 2, &produce_request(1, 500));
    session.forward(&metadata);
    session.forward(&produce);
    let metadata_answer = response_frame(
        ApiKey::Metadata,
        12,
        1,
        &ResponseKind::Metadata(metadata_response()),
    );
    session.deliver(&metadata_answer);
    tokio::time::advance(Duration::from_millis(3)).await;
    let produce_answer = frame(|buf| {
        buf.put_i32(2);
        buf.put_u8(0);
        buf.put_slice(&[0; 9]);
    });
    session.deliver(&produce_answer);

    let snapshot = metrics.snapshot();
    let keys: Vec<_> = snapshot.iter().map(|s| s.api_key).collect();
    assert_eq!(
        keys,
        [Some(ApiKey::Produce as i16), Some(ApiKey::Metadata as i16)]
    );
    let (produce_stats, metadata_stats) = (&snapshot[0], &snapshot[1]);
    assert_eq!(metadata_stats.requests, 1);
    assert_eq!(metadata_stats.request_bytes, metadata.len() as u64);
    assert_eq!(metadata_stats.response_bytes, metadata_answer.len() as u64);
    assert_eq!(metadata_stats.latency_count, 1);
    // Answered before the clock moved.
    assert_eq!(metadata_stats.latency_sum_seconds, 0.0);
    assert_eq!(metadata_stats.latency_cumulative[0], 1);
    assert_eq!(produce_stats.requests, 1);
    assert_eq!(produce_stats.request_bytes, produce.len() as u64);
    assert_eq!(produce_stats.response_bytes, produce_answer.len() as u64);
    assert_eq!(produce_stats.latency_count, 1);
    assert_eq!(produce_stats.latency_sum_seconds, 0.003);
    // Exactly 3 ms: not in the buckets up to 2.5 ms, but in every one from 5 ms.
    let le_2_5ms = LATENCY_BUCKETS.iter().position(|&le| le == 0.0025).unwrap();
    assert_eq!(produce_stats.latency_cumulative[le_2_5ms], 0);
    assert_eq!(produce_stats.latency_cumulative[le_2_5ms + 1], 1);
    assert_eq!(produce_stats.latency_cumulative.last(), Some(&1));
    assert_eq!(
        produce_stats.latency_cumulative.len(),
        LATENCY_BUCKETS.len() + 1
    );
}

thread_local! {
    /// The test clock's origin and how many times it was read, per test thread.
    static TICKS: Cell<(Option<Instant>, u32)> = const { Cell::new((None, 0)) };
}

/// A clock 250 ms later at every reading.
fn ticking_clock() -> Instant {
    TICKS.with(|ticks| {
        let (origin, reads) = ticks.get();
        let origin = origin.unwrap_or_else(Instant::now);
        ticks.set((Some(origin), reads + 1));
        origin + Duration::from_millis(250) * reads
    })
}

#[test]
fn latency_is_read_from_the_clock_the_codec_is_given() {
    let metrics = Arc::new(KafkaMetrics::default());
    let mut session = Session {
        codec: KafkaCodec::default()
            .with_metrics(Arc::clone(&metrics))
            .with_clock(ticking_clock),
        ..Session::default()
    };
    // The request is read at the first reading, its response delivered at the second.
    session.forward(&request_frame(
        ApiKey::Metadata,
        12,
        1,
        &metadata_request(&[]),
    ));
    session.deliver(&response_frame(
        ApiKey::Metadata,
        12,
        1,
        &ResponseKind::Metadata(metadata_response()),
    ));
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.len(), 1);
    assert_eq!(snapshot[0].latency_sum_seconds, 0.25);
    let le_250ms = LATENCY_BUCKETS.iter().position(|&le| le == 0.25).unwrap();
    assert_eq!(snapshot[0].latency_cumulative[le_250ms - 1], 0);
    assert_eq!(snapshot[0].latency_cumulative[le_250ms], 1);
    assert_eq!(
        TICKS.with(Cell::get).1,
        2,
        "the clock was read other than twice"
    );
}
