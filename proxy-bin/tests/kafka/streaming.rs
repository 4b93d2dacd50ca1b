//! Produce requests much larger than a read stream through a Kafka listener whose stages do
//! not need them (address rewriting reads only responses that carry addresses): a 50 MiB
//! message from librdkafka is acknowledged by the mock broker while Sluice's peak resident
//! memory grows by far less than the message, a 20 MiB one is read back unchanged (its Fetch
//! response streaming past the stages too), and a
//! client that resets halfway through a 40 MiB request ends only its own session, as its
//! fault.

use std::time::Instant;

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use sluice_tests::footprint::peak_rss_kib;
use sluice_tests::kafka_wire::frame;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{KAFKA_STEP, KafkaProxy, close_with, consumer, producer};

const MIB: usize = 1024 * 1024;
/// What Sluice's peak resident memory may grow by while a message many times larger passes:
/// its read buffers, write queues and allocator slack. Held whole, the message alone would be
/// more than twice this.
const GROWTH_KIB: u64 = 20 * 1024;
/// The same for a 20 MiB Fetch response, which held whole would grow it by 20 MiB.
const FETCH_GROWTH_KIB: u64 = 12 * 1024;

async fn deliver(producer: &FutureProducer, topic: &str, payload: &[u8]) {
    let delivery = producer
        .send_result(FutureRecord::to(topic).key("k").payload(payload))
        .map_err(|(err, _)| err)
        .unwrap();
    let delivered = tokio::time::timeout(KAFKA_STEP, delivery)
        .await
        .unwrap_or_else(|_| panic!("a {} byte message was not delivered in time", payload.len()))
        .unwrap();
    assert!(delivered.is_ok(), "not delivered: {delivered:?}");
}

fn large_producer(proxy: &KafkaProxy) -> FutureProducer {
    producer(
        proxy,
        &[
            ("message.max.bytes", "60000000"),
            ("batch.size", "60000000"),
            ("linger.ms", "0"),
        ],
    )
}

/// Every message of `topic` up to offset `last`, read through `proxy` by a consumer group.
async fn read_back(proxy: &KafkaProxy, topic: &str, last: i64) -> Vec<Vec<u8>> {
    let reader = consumer(
        proxy,
        "streaming-readers",
        &[
            ("fetch.max.bytes", "60000000"),
            ("max.partition.fetch.bytes", "60000000"),
            ("receive.message.max.bytes", "70000000"),
        ],
    );
    reader.subscribe(&[topic]).unwrap();
    let mut read = Vec::new();
    let deadline = Instant::now() + KAFKA_STEP;
    while read.len() as i64 <= last {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, reader.recv())
            .await
            .unwrap_or_else(|_| panic!("read {} messages of {topic}, not {}", read.len(), last + 1))
            .unwrap();
        read.push(message.payload().unwrap_or_default().to_vec());
    }
    read
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mib_produce_streams_through_without_being_held_whole() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("huge", 1, 1).unwrap();
    mock.create_topic("large", 1, 1).unwrap();
    let proxy = KafkaProxy::start(&mock, "kafka-streaming.toml", "max_frame_size = \"64MiB\"");
    let pid = proxy.sluice.pid();
    let producer = large_producer(&proxy);
    // Connections, metadata and buffers are set up by a small message first.
    deliver(&producer, "huge", b"warm-up").await;
    let peak_before = peak_rss_kib(pid);

    let payload: Vec<u8> = (0..50 * MIB).map(|i| (i % 251) as u8).collect();
    deliver(&producer, "huge", &payload).await;
    let growth = peak_rss_kib(pid).saturating_sub(peak_before);
    eprintln!("a 50 MiB Produce through Sluice: peak RSS grew by {growth} KiB");
    assert!(
        growth <= GROWTH_KIB,
        "Sluice's peak RSS grew by {growth} KiB while a 50 MiB message passed"
    );
    let metrics = proxy.metrics();
    let produce_bytes = metrics
        .lines()
        .find(|line| {
            line.starts_with("sluice_kafka_request_bytes_total{")
                && line.contains("api=\"Produce\"")
        })
        .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or_default();
    assert!(
        produce_bytes >= (50 * MIB) as f64,
        "the streamed Produce was not counted: {produce_bytes} bytes"
    );

    // The broker acknowledged the 50 MiB batch; that its bytes arrive unchanged is read back
    // with a 20 MiB one (streamed the same way), as librdkafka's consumer and mock broker
    // cannot between them fetch a 50 MiB batch, directly or through Sluice.
    let payload: Vec<u8> = (0..20 * MIB).map(|i| (i % 241) as u8).collect();
    deliver(&producer, "large", &payload).await;
    // The Fetch response that carries it streams too: clients are offered Fetch up to v15,
    // whose responses carry no broker endpoints for the rewrite to reach.
    let peak_before = peak_rss_kib(pid);
    let read = read_back(&proxy, "large", 0).await;
    assert!(read[0] == payload, "the 20 MiB message changed on the way");
    let growth = peak_rss_kib(pid).saturating_sub(peak_before);
    eprintln!("a 20 MiB Fetch response through Sluice: peak RSS grew by {growth} KiB");
    assert!(
        growth <= FETCH_GROWTH_KIB,
        "Sluice's peak RSS grew by {growth} KiB while a 20 MiB Fetch response passed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_resets_halfway_through_a_large_produce_ends_only_its_session() {
    const DECLARED: usize = 40 * MIB;
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("huge", 1, 1).unwrap();
    let proxy = KafkaProxy::start(
        &mock,
        "kafka-streaming-reset.toml",
        "max_frame_size = \"64MiB\"",
    );
    let pid = proxy.sluice.pid();
    let peak_before = peak_rss_kib(pid);

    // Produce v3: no transactional id, acks 1, a timeout; the rest of the declared size is
    // filler the client never finishes.
    let mut body = Vec::new();
    body.extend((-1_i16).to_be_bytes());
    body.extend(1_i16.to_be_bytes());
    body.extend(30_000_i32.to_be_bytes());
    let mut request = frame(0, 3, 7, &body);
    let declared = i32::try_from(DECLARED - 4).unwrap();
    request[..4].copy_from_slice(&declared.to_be_bytes());
    let mut client = TcpStream::connect(("127.0.0.1", proxy.bootstrap))
        .await
        .unwrap();
    client.write_all(&request).await.unwrap();
    let filler = vec![0x33_u8; MIB];
    let deadline = Instant::now() + KAFKA_STEP;
    for _ in 0..(DECLARED / MIB / 2) {
        tokio::time::timeout_at(deadline.into(), client.write_all(&filler))
            .await
            .expect("Sluice stopped reading a request it streams")
            .unwrap();
    }
    client.set_zero_linger().unwrap();
    drop(client);

    let line = close_with(&proxy, "client_error");
    assert_eq!(line["fault"], "downstream", "{line}");
    let growth = peak_rss_kib(pid).saturating_sub(peak_before);
    assert!(
        growth <= GROWTH_KIB,
        "Sluice's peak RSS grew by {growth} KiB for half a 40 MiB request"
    );

    // The proxy and the broker serve the next client.
    let producer = large_producer(&proxy);
    deliver(&producer, "huge", b"after the reset").await;
    assert_eq!(read_back(&proxy, "huge", 0).await, [b"after the reset"]);
}
