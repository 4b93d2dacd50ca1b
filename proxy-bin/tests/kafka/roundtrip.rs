//! Clients through the proxy only: librdkafka producers and consumers see nothing but the
//! proxy's ports (Metadata rewritten, no direct connection to a mock broker), every message
//! arrives intact, acks=0 and a 5 MiB message pass, and per-API metrics count the traffic.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureRecord, Producer};
use sluice_tests::kafka_wire::mock_addrs;

use crate::{KAFKA_STEP, KafkaProxy, close_with, consumer, produce_all, producer};

/// Remote ports of this process's established TCP connections: a client of ours connected to
/// a mock broker directly would show one of the mock's ports here.
fn our_remote_ports() -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            link.strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(str::to_owned)
        })
        .collect();
    let mut ports = BTreeSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st ... inode (field 9)
            let (Some(remote), Some(state), Some(inode)) =
                (fields.get(2), fields.get(3), fields.get(9))
            else {
                continue;
            };
            if *state != "01" || !inodes.contains(*inode) {
                continue;
            }
            if let Some(port) = remote
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.insert(port);
            }
        }
    }
    ports
}

/// Fails if any client of this process is connected to a mock broker directly.
fn assert_no_direct_connections(mock_ports: &BTreeSet<u16>) {
    let direct: Vec<u16> = our_remote_ports()
        .intersection(mock_ports)
        .copied()
        .collect();
    assert!(
        direct.is_empty(),
        "a client connected to mock broker port(s) {direct:?} directly, bypassing the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_10000_messages_through_the_proxy_only() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("orders", 3, 1).unwrap();
    let mock_ports: BTreeSet<u16> = mock_addrs(&mock).iter().map(SocketAddr::port).collect();
    let proxy = KafkaProxy::start(&mock, "kafka-roundtrip.toml", "");

    let producer = producer(&proxy, &[("acks", "all"), ("linger.ms", "5")]);
    produce_all(&producer, "orders", "k", 10_000).await;
    assert_no_direct_connections(&mock_ports);

    // Every broker the client knows is one of the proxy's ports.
    let metadata = producer
        .client()
        .fetch_metadata(Some("orders"), Duration::from_secs(10))
        .unwrap();
    let brokers: BTreeMap<i32, (String, u16)> = metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), (b.host().to_owned(), b.port() as u16)))
        .collect();
    assert_eq!(brokers.len(), 3, "{brokers:?}");
    for (id, (host, port)) in &brokers {
        assert_eq!(host, "127.0.0.1");
        assert_eq!(
            i32::from(*port),
            i32::from(proxy.broker_port_start) + id,
            "broker {id} is not advertised on broker_port_start + {id}"
        );
    }
    assert_eq!(metadata.topics()[0].partitions().len(), 3);

    let consumer = consumer(&proxy, "orders-readers", &[]);
    consumer.subscribe(&["orders"]).unwrap();
    let mut seen = BTreeMap::new();
    let deadline = Instant::now() + KAFKA_STEP;
    while seen.len() < 10_000 {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("consumed only {} of 10000 messages", seen.len()))
            .unwrap();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        let payload = String::from_utf8(message.payload().unwrap().to_vec()).unwrap();
        seen.insert(key, payload);
    }
    for i in 0..10_000 {
        let key = format!("k{i}");
        assert_eq!(
            seen.get(&key),
            Some(&key),
            "message {key} is missing or changed"
        );
    }
    // A synchronous commit fails unless the group coordinator (reached through its broker
    // port) accepted it. (Reading the offsets back with `committed()` is left out: after it,
    // dropping a librdkafka consumer of the mock cluster hangs, through the proxy or not.)
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    assert_no_direct_connections(&mock_ports);

    // Per-API metrics counted the traffic.
    let metrics = proxy.metrics();
    for api in ["Produce", "Fetch", "Metadata", "JoinGroup", "OffsetCommit"] {
        let line = format!("sluice_kafka_requests_total{{listener=\"kafka\",api=\"{api}\"}}");
        assert!(
            metrics.contains(&line),
            "no {api} requests counted:\n{metrics}"
        );
    }
    assert!(metrics.contains("sluice_kafka_request_duration_seconds_bucket{listener=\"kafka\",api=\"Produce\",le=\"+Inf\"}"));

    drop(consumer);
    drop(producer);
    // Each broker's port served sessions, each pinned to that broker.
    let mut served: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    let deadline = Instant::now() + KAFKA_STEP;
    while served.keys().filter(|p| **p != proxy.bootstrap).count() < 3 {
        assert!(
            Instant::now() < deadline,
            "broker ports that served sessions: {served:?}"
        );
        let line = proxy.sluice.wait_for("session closed");
        let local: SocketAddr = line["listener.addr"].as_str().unwrap().parse().unwrap();
        assert!(proxy.ports().contains(&local.port()), "{line}");
        let reason = line["reason.label"].as_str().unwrap();
        assert_eq!(reason, "client_closed", "{line}");
        served
            .entry(local.port())
            .or_default()
            .insert(line["backend.addr"].as_str().unwrap().to_owned());
    }
    for (port, backends) in &served {
        if *port != proxy.bootstrap {
            assert_eq!(backends.len(), 1, "broker port {port} went to {backends:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_and_a_5_mib_message_go_through() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("fire", 1, 1).unwrap();
    mock.create_topic("big", 1, 1).unwrap();
    let proxy = KafkaProxy::start(&mock, "kafka-acks0.toml", "");

    let fire_and_forget = producer(&proxy, &[("acks", "0"), ("linger.ms", "0")]);
    for i in 0..200 {
        let key = format!("k{i}");
        let record = FutureRecord::to("fire").key(&key).payload("x");
        // Fire and forget: the delivery report of an acks=0 message says nothing.
        drop(
            fire_and_forget
                .send_result(record)
                .map_err(|(err, _)| err)
                .unwrap(),
        );
    }
    fire_and_forget.flush(Duration::from_secs(30)).unwrap();

    let big_payload: Vec<u8> = (0..5 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    let big = producer(&proxy, &[("message.max.bytes", "16000000")]);
    let delivery = big
        .send_result(FutureRecord::to("big").key("big").payload(&big_payload))
        .map_err(|(err, _)| err)
        .unwrap();
    let delivered = tokio::time::timeout(KAFKA_STEP, delivery)
        .await
        .unwrap()
        .unwrap();
    assert!(
        delivered.is_ok(),
        "the 5 MiB message was not delivered: {delivered:?}"
    );

    let reader = consumer(
        &proxy,
        "fire-readers",
        &[
            ("fetch.max.bytes", "16000000"),
            ("max.partition.fetch.bytes", "16000000"),
            ("receive.message.max.bytes", "20000000"),
        ],
    );
    reader.subscribe(&["fire", "big"]).unwrap();
    let mut fire = BTreeSet::new();
    let mut big_seen = None;
    let deadline = Instant::now() + KAFKA_STEP;
    while fire.len() < 200 || big_seen.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, reader.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "got {} acks=0 messages, big: {}",
                    fire.len(),
                    big_seen.is_some()
                )
            })
            .unwrap();
        match message.topic() {
            "fire" => {
                fire.insert(message.key().unwrap().to_vec());
            }
            _ => big_seen = Some(message.payload().unwrap().to_vec()),
        }
    }
    assert!(
        big_seen.unwrap() == big_payload,
        "the 5 MiB message changed on the way"
    );
    if proxy.metrics().contains("reason=\"protocol_error\"") {
        let line = close_with(&proxy, "protocol_error");
        panic!("a session ended in a protocol error: {line}");
    }
}
