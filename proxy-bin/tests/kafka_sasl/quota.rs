//! Kafka quotas through the real binary, with librdkafka producers and consumers that push as
//! fast as they can: a principal under a 1 MiB/s produce quota gets that rate, no delivery
//! error, and reports throttle time for the proxy's broker connections, while the read gate
//! shows `quota` and nothing else; a principal without a quota on the same listener is never
//! throttled, and produces beside the limited one as fast as beside an unlimited one; a consumer under a 2 MiB/s fetch quota gets that rate. Rates are averaged over
//! 10 s after a 3 s warm-up; every loop is bounded in count and time.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::{ALICE, BOB, Proxy, cluster_toml, sasl_client, terminate_with, users_file};

const MIB: f64 = 1024.0 * 1024.0;
/// How long each rate is averaged over.
const MEASURE: Duration = Duration::from_secs(10);
/// Before it: the first window's burst and the throttle that repays it.
const WARM_UP: Duration = Duration::from_secs(3);
const PAYLOAD: usize = 10_000;

/// What a client saw: bytes delivered (produced and acknowledged, or consumed), errors, and
/// the largest throttle time its statistics reported for a broker connection.
#[derive(Default)]
struct Seen {
    bytes: AtomicU64,
    errors: Mutex<Vec<String>>,
    broker_throttle_max_ms: AtomicI64,
}

#[derive(Clone, Default)]
struct Counting(Arc<Seen>);

impl ClientContext for Counting {
    fn stats(&self, statistics: Statistics) {
        // Broker connections only: the bootstrap connection has no node id.
        for broker in statistics.brokers.values().filter(|b| b.nodeid >= 0) {
            if let Some(throttle) = &broker.throttle {
                self.0
                    .broker_throttle_max_ms
                    .fetch_max(throttle.max, Ordering::Relaxed);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.errors.lock().push(format!("{error}: {reason}"));
    }
}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                self.0
                    .bytes
                    .fetch_add(message.payload_len() as u64, Ordering::Relaxed);
            }
            Err((err, _)) => self.0.errors.lock().push(format!("delivery: {err}")),
        }
    }
}

impl ConsumerContext for Counting {}

fn client(bootstrap: &str, settings: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("statistics.interval.ms", "500")
        .set("message.timeout.ms", "60000");
    for (key, value) in settings {
        config.set(key, value);
    }
    config
}

/// A producer with a small local queue (5 MB), so that "as fast as it can" is what the proxy
/// lets through, not what librdkafka can buffer; and batches of at most 128 KiB. A quota acts
/// per request (a request that puts the entity over its limit passes, then the connection is
/// held), so with librdkafka's default 1 MB batches over three broker connections a 10 s
/// average at 1 MiB/s moves by up to 30 % with where the window's ends fall; a broker's quota
/// has the same granularity.
fn flooding_producer(
    bootstrap: &str,
    settings: &[(String, String)],
) -> (BaseProducer<Counting>, Arc<Seen>) {
    let context = Counting::default();
    let seen = context.0.clone();
    let producer = client(bootstrap, settings)
        .set("queue.buffering.max.messages", "500")
        .set("batch.size", "131072")
        .set("linger.ms", "5")
        .create_with_context(context)
        .unwrap();
    (producer, seen)
}

/// Produces `PAYLOAD`-byte messages to `topic` as fast as the producer takes them for
/// [`WARM_UP`] and then [`MEASURE`]; returns the bytes acknowledged during the second, per
/// second, in MiB.
fn flood(producer: &BaseProducer<Counting>, seen: &Seen, topic: &str) -> f64 {
    let payload = vec![b'q'; PAYLOAD];
    let start = Instant::now();
    let mut warm = None;
    // Bounded by time; each round sends one message or waits 10 ms for room.
    while start.elapsed() < WARM_UP + MEASURE {
        if warm.is_none() && start.elapsed() >= WARM_UP {
            warm = Some(seen.bytes.load(Ordering::Relaxed));
        }
        match producer.send(BaseRecord::<(), [u8]>::to(topic).payload(&payload[..])) {
            Ok(()) => {
                producer.poll(Duration::ZERO);
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(10));
            }
            Err((err, _)) => panic!("produce: {err}"),
        }
    }
    let bytes = seen.bytes.load(Ordering::Relaxed) - warm.unwrap_or(0);
    bytes as f64 / MEASURE.as_secs_f64() / MIB
}

/// The series' value in a scrape (0 when absent).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

const OTHER_REASONS: [&str; 7] = [
    "backpressure_client",
    "backpressure_backend",
    "stage_deferred_request",
    "stage_deferred_response",
    "draining",
    "in_flight_limit",
    "frame_budget",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produce_quota_holds_a_flooding_producer_to_its_rate_and_leaves_others_alone() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("quota-alice", 3, 1).unwrap();
    mock.create_topic("quota-bob", 3, 1).unwrap();
    let users = users_file("quota-users.toml", &[ALICE, BOB]);
    let listener = format!(
        "{}\n\n[[listener.stage]]\nkind = \"quota\"\nper = \"principal\"\n\
         produce_bytes_per_second = \"1MiB\"\nentities = [\"alice\"]\n\
         metrics_entities = [\"alice\", \"bob\"]\n",
        terminate_with(&users)
    );
    let proxy = Proxy::start(
        "quota-produce.toml",
        &listener,
        &cluster_toml("main", &mock),
    );
    let bootstrap = proxy.bootstrap_servers();

    // Alice alone: the rate, the client's own view of throttling, and the read gate's.
    let alice_settings = sasl_client("SCRAM-SHA-256", ALICE);
    let (alice, alice_seen) = flooding_producer(&bootstrap, &alice_settings);
    let admin = proxy.sluice.admin_addr();
    let sampler = std::thread::spawn(move || {
        let mut quota_paused = 0.0_f64;
        let mut other_paused = Vec::new();
        let start = Instant::now();
        // Bounded: one scrape every 250 ms during the measurement.
        while start.elapsed() < WARM_UP + MEASURE {
            let metrics = sluice_tests::process::http_get(admin, "/metrics").1;
            quota_paused =
                quota_paused.max(sample(&metrics, "sluice_sessions_paused{reason=\"quota\"}"));
            for reason in OTHER_REASONS {
                let series = format!("sluice_sessions_paused{{reason=\"{reason}\"}}");
                if sample(&metrics, &series) > 0.0 {
                    other_paused.push(reason);
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        (quota_paused, other_paused)
    });
    let rate = tokio::task::block_in_place(|| flood(&alice, &alice_seen, "quota-alice"));
    let (quota_paused, other_paused) = sampler.join().unwrap();
    eprintln!("alice alone: {rate:.3} MiB/s");
    assert!(
        (0.85..=1.15).contains(&rate),
        "alice produced {rate:.3} MiB/s through a 1 MiB/s quota"
    );
    assert!(
        quota_paused >= 1.0,
        "no session was seen paused for the quota"
    );
    assert!(other_paused.is_empty(), "also paused for {other_paused:?}");
    tokio::task::block_in_place(|| alice.flush(Duration::from_secs(60))).unwrap();
    assert!(
        alice_seen.errors.lock().is_empty(),
        "alice's errors: {:?}",
        alice_seen.errors.lock()
    );
    // librdkafka reports the throttle time Sluice's answers carried, per broker connection.
    let throttle_ms = alice_seen.broker_throttle_max_ms.load(Ordering::Relaxed);
    assert!(throttle_ms > 0, "librdkafka saw no throttle time");
    let metrics = proxy.metrics();
    assert!(
        sample(
            &metrics,
            "sluice_read_paused_seconds_total{reason=\"quota\"}"
        ) > 1.0,
        "{metrics}"
    );
    let throttles = sample(
        &metrics,
        "sluice_kafka_quota_throttle_seconds_count{listener=\"kafka\",quota=\"produce\",per=\"principal\",entity=\"alice\"}",
    );
    assert!(
        throttles >= 1.0,
        "no throttle counted for alice:\n{metrics}"
    );

    drop(alice);
    // Alice and Bob together: Bob, without a quota, is never throttled and goes well past
    // Alice's limit; Alice stays at hers.
    let (alice_rate, bob_rate, bob_seen) =
        tokio::task::block_in_place(|| alice_and_bob(&bootstrap));
    eprintln!("together: alice {alice_rate:.3} MiB/s, bob {bob_rate:.3} MiB/s");
    assert!(
        (0.85..=1.15).contains(&alice_rate),
        "alice produced {alice_rate:.3} MiB/s beside bob"
    );
    assert!(
        bob_rate > 2.0,
        "bob, without a quota, produced only {bob_rate:.3} MiB/s"
    );
    assert_eq!(bob_seen.broker_throttle_max_ms.load(Ordering::Relaxed), 0);
    let metrics = proxy.metrics();
    assert_eq!(
        sample(
            &metrics,
            "sluice_kafka_quota_bytes_total{listener=\"kafka\",quota=\"produce\",per=\"principal\",entity=\"bob\"}"
        ),
        0.0,
        "bob was counted by a quota that does not name him"
    );

    // The same two through a listener without Alice's quota: Bob's rate beside a limited Alice
    // is within noise of (in practice above) his rate beside an unlimited one.
    let unlimited = Proxy::start(
        "quota-none.toml",
        &terminate_with(&users),
        &cluster_toml("main", &mock),
    );
    let (free_alice, bob_without, _) =
        tokio::task::block_in_place(|| alice_and_bob(&unlimited.bootstrap_servers()));
    eprintln!(
        "without the quota: alice {free_alice:.3} MiB/s, bob {bob_without:.3} MiB/s \
         (bob beside the limited alice: {bob_rate:.3})"
    );
    assert!(
        bob_rate >= 0.7 * bob_without,
        "bob beside a limited alice: {bob_rate:.3} MiB/s; beside an unlimited one: \
         {bob_without:.3} MiB/s"
    );
}

/// Alice and Bob flood together through `bootstrap` for the same time; their rates, and what
/// Bob's client saw. Neither may see a delivery error.
fn alice_and_bob(bootstrap: &str) -> (f64, f64, Arc<Seen>) {
    let (alice, alice_seen) = flooding_producer(bootstrap, &sasl_client("SCRAM-SHA-256", ALICE));
    let (bob, bob_seen) = flooding_producer(bootstrap, &sasl_client("SCRAM-SHA-256", BOB));
    let alice_thread = std::thread::spawn(move || {
        let rate = flood(&alice, &alice_seen, "quota-alice");
        alice.flush(Duration::from_secs(60)).unwrap();
        assert!(
            alice_seen.errors.lock().is_empty(),
            "{:?}",
            alice_seen.errors.lock()
        );
        rate
    });
    let bob_rate = flood(&bob, &bob_seen, "quota-bob");
    bob.flush(Duration::from_secs(60)).unwrap();
    assert!(
        bob_seen.errors.lock().is_empty(),
        "{:?}",
        bob_seen.errors.lock()
    );
    (alice_thread.join().unwrap(), bob_rate, bob_seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_quota_holds_a_consumer_to_its_rate() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("quota-fetch", 12, 1).unwrap();
    // Straight into the mock, ahead of the consumer: 10 MB first, then 5 MiB/s for as long as
    // the test consumes (the mock keeps a bounded log, so it is fed rather than pre-filled).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (direct, direct_seen) = flooding_producer(&mock.bootstrap_servers(), &[]);
    let feeder = {
        let stop = stop.clone();
        let direct_seen = direct_seen.clone();
        std::thread::spawn(move || {
            let payload = vec![b'f'; PAYLOAD];
            let start = Instant::now();
            let mut sent = 0u64;
            // Bounded by the stop flag and by 120 s.
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(120) {
                let due = 1000 + start.elapsed().as_millis() as u64 / 2;
                if sent >= due {
                    direct.poll(Duration::from_millis(10));
                    continue;
                }
                match direct.send(BaseRecord::<(), [u8]>::to("quota-fetch").payload(&payload[..])) {
                    Ok(()) => sent += 1,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        direct.poll(Duration::from_millis(10));
                    }
                    Err((err, _)) => panic!("produce to the mock: {err}"),
                }
            }
            direct.flush(Duration::from_secs(60)).unwrap();
            assert!(
                direct_seen.errors.lock().is_empty(),
                "{:?}",
                direct_seen.errors.lock()
            );
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    // Bounded: the 10 MB head start takes well under a second.
    while direct_seen.bytes.load(Ordering::Relaxed) < 10_000_000 {
        assert!(Instant::now() < deadline, "the mock was not filled");
        std::thread::sleep(Duration::from_millis(50));
    }

    let users = users_file("quota-fetch-users.toml", &[ALICE]);
    let listener = format!(
        "{}\n\n[[listener.stage]]\nkind = \"quota\"\nper = \"principal\"\n\
         fetch_bytes_per_second = \"2MiB\"\n",
        terminate_with(&users)
    );
    let proxy = Proxy::start("quota-fetch.toml", &listener, &cluster_toml("main", &mock));
    let context = Counting::default();
    let seen = context.0.clone();
    let consumer: BaseConsumer<Counting> = client(
        &proxy.bootstrap_servers(),
        &sasl_client("SCRAM-SHA-256", ALICE),
    )
    .set("group.id", "quota-fetch")
    .set("enable.auto.commit", "false")
    .create_with_context(context)
    .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..12 {
        assignment
            .add_partition_offset("quota-fetch", partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let rate = tokio::task::block_in_place(|| {
        let start = Instant::now();
        let mut bytes = 0u64;
        // Bounded by time; each poll waits at most 100 ms.
        while start.elapsed() < WARM_UP + MEASURE {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) if start.elapsed() >= WARM_UP => {
                    bytes += message.payload_len() as u64;
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => seen.errors.lock().push(format!("consume: {err}")),
                None => {}
            }
        }
        bytes as f64 / MEASURE.as_secs_f64() / MIB
    });
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    eprintln!("consumer: {rate:.3} MiB/s through a 2 MiB/s fetch quota");
    assert!(
        (1.7..=2.3).contains(&rate),
        "consumed {rate:.3} MiB/s through a 2 MiB/s fetch quota"
    );
    assert!(seen.errors.lock().is_empty(), "{:?}", seen.errors.lock());
    assert!(seen.broker_throttle_max_ms.load(Ordering::Relaxed) > 0);
}

/// A Produce v8 request (header v1, as `kafka_wire::frame` writes) of about `bytes` bytes.
fn raw_produce(correlation_id: i32, bytes: usize) -> Vec<u8> {
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::produce_request::{
        PartitionProduceData, ProduceRequest, TopicProduceData,
    };
    use kafka_protocol::protocol::{Encodable as _, StrBytes};
    let partition = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(bytes::Bytes::from(vec![0u8; bytes])));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("quota-source")))
        .with_partition_data(vec![partition]);
    let body = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![topic]);
    let mut buf = bytes::BytesMut::new();
    body.encode(&mut buf, 8).unwrap();
    sluice_tests::kafka_wire::frame(0, 8, correlation_id, &buf)
}

/// Sends one Produce of `bytes` through `addr` and returns the answer's `throttle_time_ms`.
fn produce_throttle(addr: std::net::SocketAddr, bytes: usize) -> i32 {
    use kafka_protocol::messages::ProduceResponse;
    use kafka_protocol::protocol::Decodable as _;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(sluice_tests::STEP_TIMEOUT))
        .unwrap();
    std::io::Write::write_all(&mut stream, &raw_produce(7, bytes)).unwrap();
    let answer = sluice_tests::kafka_wire::read_frame(&mut stream).unwrap();
    // Response header v0: the correlation id.
    assert_eq!(answer[..4], 7i32.to_be_bytes());
    let mut body = bytes::Bytes::from(answer).slice(4..);
    ProduceResponse::decode(&mut body, 8)
        .unwrap()
        .throttle_time_ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_source_quotas_use_the_client_address_from_haproxys_proxy_header() {
    use sluice_tests::haproxy::{HaProxy, SendProxy};
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("quota-source", 1, 1).unwrap();
    let listener = "proxy_protocol = \"required\"\nproxy_protocol_trusted = [\"127.0.0.1\"]\n\n\
                    [[listener.stage]]\nkind = \"quota\"\nper = \"source\"\n\
                    produce_bytes_per_second = \"1MiB\"\n\
                    metrics_entities = [\"10.0.0.1\", \"10.0.0.2\"]\n";
    let proxy = Proxy::start("quota-source.toml", listener, &cluster_toml("main", &mock));
    let bootstrap = std::net::SocketAddr::from(([127, 0, 0, 1], proxy.bootstrap));
    // Two HAProxy frontends standing for clients at two addresses; both reach Sluice from
    // 127.0.0.1, and only the PROXY header tells them apart.
    let first = HaProxy::start_with(
        bootstrap,
        SendProxy::V2,
        "tcp-request connection set-src ipv4(10.0.0.1)",
    );
    let second = HaProxy::start_with(
        bootstrap,
        SendProxy::V2,
        "tcp-request connection set-src ipv4(10.0.0.2)",
    );
    let (heavy, light) = tokio::task::block_in_place(|| {
        // 2 MB at once from 10.0.0.1 against 1 MiB/s: about a second of throttle.
        let heavy = produce_throttle(first.addr(), 2_000_000);
        // 10.0.0.2 is an entity of its own: a small Produce is not throttled.
        let light = produce_throttle(second.addr(), 1000);
        (heavy, light)
    });
    assert!(
        heavy > 500,
        "10.0.0.1's answer carried throttle_time_ms {heavy}"
    );
    assert_eq!(light, 0, "10.0.0.2 was throttled for 10.0.0.1's bytes");
    let metrics = proxy.metrics();
    let series = |quota: &str, entity: &str| {
        format!(
            "sluice_kafka_quota_{quota}{{listener=\"kafka\",quota=\"produce\",per=\"source\",entity=\"{entity}\"}}"
        )
    };
    assert!(
        sample(&metrics, &series("bytes_total", "10.0.0.1")) > 2_000_000.0,
        "{metrics}"
    );
    let light_bytes = sample(&metrics, &series("bytes_total", "10.0.0.2"));
    assert!(light_bytes > 1000.0 && light_bytes < 10_000.0, "{metrics}");
    assert_eq!(
        sample(&metrics, &series("throttle_seconds_count", "10.0.0.1")),
        1.0
    );
    assert_eq!(
        sample(&metrics, &series("throttle_seconds_count", "10.0.0.2")),
        0.0
    );
}
