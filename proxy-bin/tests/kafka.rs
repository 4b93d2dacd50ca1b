//! Kafka through the real binary: librdkafka clients (the `rdkafka` crate) producing and
//! consuming through Sluice in front of librdkafka's mock cluster of 3 brokers, and raw frames
//! that break the protocol. Every wait is bounded.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers of this test file fail the test when the environment misbehaves"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::{Decodable, Encodable};
use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use support::kafka::{connect, frame, free_port_block, mock_addrs, read_frame};
use support::{
    Generations, Running, holds_socket, http_get, listening_inode, temp_path, wait_for_pid_file,
};

/// How long any one Kafka step may take.
const KAFKA_STEP: Duration = Duration::from_secs(60);

/// A Sluice with one port-per-broker Kafka listener in front of `mock`.
struct KafkaProxy {
    sluice: Running,
    bootstrap: u16,
    broker_port_start: u16,
}

impl KafkaProxy {
    fn start(mock: &MockCluster<'_, impl rdkafka::ClientContext>, name: &str, extra: &str) -> Self {
        Self::start_with(mock, name, extra, &[])
    }

    fn start_with(
        mock: &MockCluster<'_, impl rdkafka::ClientContext>,
        name: &str,
        extra: &str,
        args: &[&str],
    ) -> Self {
        let bootstrap = free_port_block(3);
        let broker_port_start = bootstrap + 1;
        let backends: Vec<String> = mock_addrs(mock)
            .iter()
            .map(|addr| format!("\"{addr}\""))
            .collect();
        let config = format!(
            r#"
[admin]
bind = "127.0.0.1:0"

[[listener]]
name = "kafka"
bind = "127.0.0.1:{bootstrap}"
protocol = "kafka"
cluster = "main"
gateway = "port-per-broker"
advertised_host = "127.0.0.1"
broker_port_start = {broker_port_start}
{extra}

[cluster.main]
backends = [{backends}]
"#,
            backends = backends.join(", ")
        );
        let sluice = Running::start_with(&config, name, args, "info");
        sluice.wait_for("sluice started");
        Self {
            sluice,
            bootstrap,
            broker_port_start,
        }
    }

    fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.bootstrap)
    }

    /// Every port clients may use: the bootstrap and each broker's.
    fn ports(&self) -> BTreeSet<u16> {
        (0..=3)
            .map(|id| self.broker_port_start + id)
            .chain([self.bootstrap])
            .collect()
    }

    fn metrics(&self) -> String {
        http_get(self.sluice.admin_addr(), "/metrics").1
    }
}

fn producer(proxy: &KafkaProxy, extra: &[(&str, &str)]) -> FutureProducer {
    producer_via(&proxy.bootstrap_servers(), extra)
}

fn producer_via(bootstrap_servers: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("message.timeout.ms", "30000");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().unwrap()
}

fn consumer(proxy: &KafkaProxy, group: &str, extra: &[(&str, &str)]) -> StreamConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", proxy.bootstrap_servers())
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000");
    for (key, value) in extra {
        config.set(*key, *value);
    }
    config.create().unwrap()
}

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

/// The close line of the next session that ends with `label`.
fn close_with(proxy: &KafkaProxy, label: &str) -> serde_json::Value {
    for _ in 0..20 {
        let line = proxy.sluice.wait_for("session closed");
        if line["reason.label"] == label {
            return line;
        }
    }
    panic!("no session closed with {label}");
}

#[test]
fn bad_frames_close_the_session_with_a_reason_and_metadata_is_rewritten() {
    let mock = MockCluster::new(3).unwrap();
    let mock_ports: BTreeSet<u16> = mock_addrs(&mock).iter().map(SocketAddr::port).collect();
    let proxy = KafkaProxy::start(&mock, "kafka-frames.toml", "max_frame_size = \"1MiB\"");

    // A raw Metadata v4 exchange: the answer names only the proxy's ports.
    let mut stream = connect(proxy.bootstrap);
    let mut body = bytes::BytesMut::new();
    MetadataRequest::default()
        .with_topics(Some(Vec::new()))
        .encode(&mut body, 4)
        .unwrap();
    stream
        .write_all(&frame(ApiKey::Metadata as i16, 4, 41, &body))
        .unwrap();
    let response = read_frame(&mut stream).unwrap();
    assert_eq!(&response[..4], &41i32.to_be_bytes());
    let mut rest = bytes::Bytes::copy_from_slice(&response[4..]);
    let metadata = MetadataResponse::decode(&mut rest, 4).unwrap();
    assert_eq!(metadata.brokers.len(), 3);
    for broker in &metadata.brokers {
        assert_eq!(broker.host.as_str(), "127.0.0.1");
        assert_eq!(
            broker.port,
            i32::from(proxy.broker_port_start) + broker.node_id.0
        );
        assert!(!mock_ports.contains(&(broker.port as u16)));
    }
    drop(stream);

    // A declared size above max_frame_size: closed at once, without waiting for the bytes.
    let mut stream = connect(proxy.bootstrap);
    stream
        .write_all(&(64 * 1024 * 1024i32).to_be_bytes())
        .unwrap();
    let mut byte = [0; 1];
    assert!(
        matches!(stream.read(&mut byte), Ok(0) | Err(_)),
        "an oversized frame was not refused"
    );
    let line = close_with(&proxy, "protocol_error");
    assert!(
        line["reason"].as_str().unwrap().contains("max_frame_size"),
        "{line}"
    );

    // A frame too short to hold a request header.
    let mut stream = connect(proxy.bootstrap);
    stream.write_all(&[0, 0, 0, 3, 0, 3, 0]).unwrap();
    assert!(matches!(stream.read(&mut byte), Ok(0) | Err(_)));
    let line = close_with(&proxy, "protocol_error");
    assert!(
        line["reason"].as_str().unwrap().contains("truncated"),
        "{line}"
    );

    // An unknown API key passes to the broker, which closes the connection as brokers do;
    // the proxy logs it as the broker's close, and the listener keeps serving.
    let mut stream = connect(proxy.bootstrap);
    stream.write_all(&frame(9999, 0, 7, &[])).unwrap();
    assert!(matches!(stream.read(&mut byte), Ok(0) | Err(_)));
    let mut stream = connect(proxy.bootstrap);
    stream
        .write_all(&frame(ApiKey::Metadata as i16, 4, 42, &body))
        .unwrap();
    let response = read_frame(&mut stream).unwrap();
    assert_eq!(&response[..4], &42i32.to_be_bytes());
}

/// Sends `count` keyed messages and waits for every delivery report.
async fn produce_all(producer: &FutureProducer, topic: &str, prefix: &str, count: usize) {
    let mut deliveries = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("{prefix}{i}");
        let record = FutureRecord::to(topic).key(&key).payload(&key);
        deliveries.push(
            producer
                .send_result(record)
                .map_err(|(err, _)| err)
                .unwrap(),
        );
    }
    let deadline = Instant::now() + KAFKA_STEP;
    for delivery in deliveries {
        let left = deadline.saturating_duration_since(Instant::now());
        let result = tokio::time::timeout(left, delivery)
            .await
            .unwrap_or_else(|_| panic!("deliveries did not finish in time"))
            .unwrap();
        assert!(result.is_ok(), "a message was not delivered: {result:?}");
    }
}

/// Waits until `port` on loopback accepts connections.
fn wait_listening(port: u16) {
    let deadline = Instant::now() + KAFKA_STEP;
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_ports_open_at_start_and_survive_an_upgrade() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("events", 3, 1).unwrap();
    let pid_file = temp_path("kafka-upgrade.pid");
    let _ = std::fs::remove_file(&pid_file);
    let proxy = KafkaProxy::start_with(
        &mock,
        "kafka-upgrade.toml",
        "",
        &["--pid-file", pid_file.to_str().unwrap()],
    );
    let first = wait_for_pid_file(&pid_file);
    let mut generations = Generations::new(first, &pid_file);

    // Discovery at start opens every broker's port before any client has asked for Metadata,
    // so a client that only knows a broker (from before a restart, say) gets in.
    let broker_ports: Vec<u16> = (1..=3).map(|id| proxy.broker_port_start + id).collect();
    for port in &broker_ports {
        wait_listening(*port);
    }
    let inodes: Vec<u64> = broker_ports
        .iter()
        .map(|port| listening_inode(SocketAddr::from((Ipv4Addr::LOCALHOST, *port))))
        .collect();
    let early = producer_via(&format!("127.0.0.1:{}", broker_ports[1]), &[]);
    produce_all(&early, "events", "before-", 300).await;

    // An upgrade hands the broker ports over with the bootstrap port: same sockets, new owner.
    proxy.sluice.signal("-USR2");
    let handed = proxy
        .sluice
        .wait_for("upgrade: handed over to the successor");
    let successor = u32::try_from(handed["successor.pid"].as_u64().unwrap()).unwrap();
    generations.pids.push(successor);
    assert_ne!(successor, first);
    for (port, inode) in broker_ports.iter().zip(&inodes) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, *port));
        assert_eq!(
            listening_inode(addr),
            *inode,
            "broker port {port} was bound anew"
        );
        assert!(
            holds_socket(successor, *inode),
            "the successor does not serve {port}"
        );
    }

    // Old sessions keep producing through the draining generation; new clients reach the new
    // one, through every broker port.
    produce_all(&early, "events", "during-", 300).await;
    // The old generation closes its Kafka sessions between requests, at once rather than at
    // its drain deadline; the client reconnects to the successor and loses nothing.
    let drained = proxy
        .sluice
        .find_where("session closed", "reason.label", "drain_completed");
    assert_eq!(drained["fault"], "none", "{drained}");
    let late = producer(&proxy, &[]);
    produce_all(&late, "events", "after-", 300).await;
    let consumer = consumer(&proxy, "events-readers", &[]);
    consumer.subscribe(&["events"]).unwrap();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + KAFKA_STEP;
    while seen.len() < 900 {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("consumed only {} of 900 messages", seen.len()))
            .unwrap();
        seen.insert(message.key().unwrap().to_vec());
    }
    assert_eq!(seen.len(), 900);
}
