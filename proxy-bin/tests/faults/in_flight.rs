//! A Kafka client that pipelines requests and reads no answer, through the real binary (its
//! own process, so its resident memory is its alone), in front of a broker that keeps reading
//! and holds its answers: the session's requests in flight stop at `max_in_flight_requests`,
//! the proxy's memory stays flat, and once the client reads, every request gets its answer, in
//! order.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::ApiKey;
use sluice_tests::STEP_TIMEOUT;
use sluice_tests::faulty::broker::FaultyBroker;
use sluice_tests::footprint::rss_kib;
use sluice_tests::kafka_wire::{frame, free_port_block};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::block_in_place;
use tokio::time::{sleep, timeout};

use crate::kafka_listener::{admin, config};
use crate::{SLUICE, metrics, sample, wait_until};

/// The listener's cap on one session's unanswered requests.
const LIMIT: u64 = 500;
/// Requests the client pipelines: 22 bytes each (ListGroups v0, client id `raw-test`). Without
/// the cap the proxy would keep about 80 bytes of bookkeeping for each, 16 MB in all.
const REQUESTS: i32 = 200_000;
/// The most the proxy's resident memory may grow: its buffers (one read buffer per side, the
/// queues up to the high watermark) and the capped bookkeeping, with slack for the allocator.
const GROWTH_KIB: u64 = 4 * 1024;

/// The series counting the ListGroups requests the proxy read from clients.
const LIST_GROUPS_READ: &str = "sluice_kafka_requests_total{listener=\"kafka\",api=\"ListGroups\"}";

/// ListGroups requests the proxy has read from clients, from `/metrics`.
async fn list_groups_read(admin: SocketAddr) -> u64 {
    sample(&metrics(admin).await, LIST_GROUPS_READ).unwrap_or(0)
}

/// Reads whole response frames from `stream` into `buf` until at least one is there; returns
/// the correlation id of each, in order.
async fn next_responses(stream: &mut (impl AsyncRead + Unpin), buf: &mut BytesMut) -> Vec<i32> {
    let mut ids = Vec::new();
    while ids.is_empty() {
        let n = timeout(STEP_TIMEOUT, stream.read_buf(buf))
            .await
            .expect("an answer arrived in time")
            .expect("the session is open");
        assert!(n > 0, "the proxy closed the session");
        while buf.len() >= 8 {
            let len = usize::try_from((&buf[..4]).get_i32()).expect("a length");
            if buf.len() < 4 + len {
                break;
            }
            let mut response = buf.split_to(4 + len);
            response.advance(4);
            ids.push(response.get_i32());
        }
    }
    ids
}

/// Users depend on a client that sends without reading costing the proxy bounded memory (issue
/// 23), and on backpressure never losing or reordering an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_pipelines_without_reading_is_paused_at_the_cap_and_loses_no_answer() {
    let broker = FaultyBroker::start((Ipv4Addr::LOCALHOST, 0).into(), None).await;
    let bootstrap = free_port_block(2);
    let sluice = SLUICE.run(
        &config(
            bootstrap,
            broker.addr(),
            &format!("max_in_flight_requests = {LIMIT}"),
            "",
        ),
        "faults-in-flight.toml",
    );
    let admin = admin(&sluice);
    let proxy: SocketAddr = (Ipv4Addr::LOCALHOST, bootstrap).into();

    // One request answered first, so the runtime's threads and first allocations exist before
    // the baseline.
    let mut client = TcpStream::connect(proxy).await.unwrap();
    client
        .write_all(&frame(ApiKey::ApiVersions as i16, 0, -1, &[]))
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    assert_eq!(next_responses(&mut client, &mut buf).await, [-1]);
    let rss_before = rss_kib(sluice.pid());

    // The broker reads everything and answers nothing; the client writes every request and
    // reads nothing.
    broker.hold(Some(ApiKey::ListGroups));
    let (mut reader, mut writer) = client.into_split();
    let writing = tokio::spawn(async move {
        let mut batch = Vec::new();
        for id in 0..REQUESTS {
            batch.extend(frame(ApiKey::ListGroups as i16, 0, id, &[]));
            if batch.len() >= 64 * 1024 || id == REQUESTS - 1 {
                writer.write_all(&batch).await.unwrap();
                batch.clear();
            }
        }
        writer
    });

    // The cap is reached: the broker holds that many requests.
    wait_until("the broker holds the cap's requests", || {
        broker.held() >= LIMIT
    })
    .await;
    // Then the proxy reads no more: nothing it reads or forwards moves for 8 samples in a row
    // (25 ms apart; a proxy still reading would forward thousands meanwhile).
    let (mut last, mut unchanged) = ((0, 0), 0);
    for _ in 0..400 {
        sleep(Duration::from_millis(25)).await;
        let now = (broker.held(), list_groups_read(admin).await);
        unchanged = if now == last { unchanged + 1 } else { 0 };
        last = now;
        if unchanged >= 8 {
            break;
        }
    }
    assert_eq!(
        last,
        (LIMIT, LIMIT),
        "(requests the broker holds, requests the proxy read) while the client reads nothing"
    );
    let paused_growth = rss_kib(sluice.pid()).saturating_sub(rss_before);
    assert_eq!(
        sample(
            &metrics(admin).await,
            "sluice_sessions_paused{reason=\"in_flight_limit\"}"
        ),
        Some(1),
        "the session's pause is visible, with its reason"
    );

    // The broker answers, and the client reads: every request's answer, in order.
    broker.hold(None);
    let (mut expected, mut peak_rss) = (0, 0);
    let mut next_sample = 0;
    while expected < REQUESTS {
        for id in next_responses(&mut reader, &mut buf).await {
            assert_eq!(id, expected, "an answer lost or out of order");
            expected += 1;
        }
        if expected >= next_sample {
            next_sample += 20_000;
            peak_rss = peak_rss.max(rss_kib(sluice.pid()));
        }
    }
    let mut writer = timeout(STEP_TIMEOUT, writing)
        .await
        .expect("every request was written")
        .unwrap();
    let reading_growth = peak_rss.saturating_sub(rss_before);
    eprintln!(
        "in flight: {REQUESTS} requests pipelined, cap {LIMIT}; RSS growth {paused_growth} KiB \
         paused, {reading_growth} KiB peak while reading"
    );
    assert!(
        paused_growth < GROWTH_KIB && reading_growth < GROWTH_KIB,
        "sluice's RSS grew by {paused_growth} KiB paused and {reading_growth} KiB reading"
    );
    // Every other request was answered as it came: none was held.
    assert_eq!(broker.held(), LIMIT);
    assert_eq!(list_groups_read(admin).await, REQUESTS as u64);

    // Backpressure never closed the session: the client ends it.
    writer.shutdown().await.unwrap();
    drop((reader, writer));
    wait_until("no session is open", || {
        block_in_place(|| {
            let text = sluice_tests::process::http_get(admin, "/metrics").1;
            sample(&text, "sluice_sessions_active") == Some(0)
        })
    })
    .await;
    let closes = metrics(admin).await;
    assert_eq!(
        sample(
            &closes,
            "sluice_session_closes_total{reason=\"client_closed\"}"
        ),
        Some(1),
        "{closes}"
    );
}
