//! The Kafka pack's config as it ships: the port-per-broker overlay's embedded `sluice.toml`,
//! on the manifests' own ports (bootstrap 9092, broker node id N on 9100 + N, admin 9190), in
//! front of librdkafka's mock cluster, serves a real librdkafka producer and consumer through
//! the bootstrap and every broker port the mock's brokers get.
//!
//! Only what cannot be the same here changes: the backends (the mock's brokers instead of
//! `kafka-bootstrap.kafka.svc`), the advertised host (`sluice.kafka-gateway.svc` resolves only
//! inside the cluster; 127.0.0.1 unless it resolves to loopback here) and the bind addresses
//! (127.0.0.1 instead of 0.0.0.0; the ports stay). The mock numbers its brokers from 1, so its 7
//! brokers are node ids 1 to 7 on ports 9101 to 9107; 9100, node id 0's port, would need a
//! broker 0, which the mock cannot have.
//!
//! The ports are fixed, as the pack's are: the test fails, naming the port, when one is taken.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sluice_tests::kafka_wire::mock_addrs;
use sluice_tests::process::{Running, http_get};
use tokio::task::block_in_place;

use crate::SLUICE;
use crate::kubernetes::{KUBERNETES, embedded_config};

/// The mock's brokers: node ids 1 to 7, each with a port in the pack's range (0 to 7).
const BROKERS: i32 = 7;
const TOPIC: &str = "pack";
const PER_PARTITION: usize = 20;
/// How long any one Kafka step may take.
const KAFKA_STEP: Duration = Duration::from_secs(60);

/// The value of `key = "..."` or `key = N` in a TOML text (the first such line).
fn toml_value(toml: &str, key: &str) -> String {
    toml.lines()
        .find_map(|line| {
            let (name, value) = line.split_once('=')?;
            (name.trim() == key).then(|| {
                let value = value.split('#').next().unwrap_or("").trim();
                value.trim_matches('"').to_owned()
            })
        })
        .unwrap()
}

/// Whether `host` resolves to loopback here, asked with a bound wait (a resolver that does not
/// answer counts as no).
fn resolves_to_loopback(host: &str) -> bool {
    let (tx, rx) = mpsc::channel();
    let name = host.to_owned();
    std::thread::spawn(move || {
        let addrs: Vec<SocketAddr> = (name.as_str(), 9092)
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default();
        let _ = tx.send(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap_or(false)
}

/// The pack's config, in front of `backends` on this machine's loopback.
fn pack_config(backends: &[SocketAddr]) -> String {
    let yaml = std::fs::read_to_string(
        Path::new(KUBERNETES).join("overlays/kafka-port-per-broker/configmap.yaml"),
    )
    .unwrap();
    let config = embedded_config(&yaml).unwrap();
    let host = toml_value(&config, "advertised_host");
    let local_host = !resolves_to_loopback(&host);
    let backends: Vec<String> = backends.iter().map(|addr| format!("\"{addr}\"")).collect();
    let mut changed = BTreeMap::<&str, usize>::new();
    let mut out = String::new();
    for line in config.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        let line = if key == "backends" {
            *changed.entry("backends").or_default() += 1;
            format!("backends = [{}]", backends.join(", "))
        } else if key == "advertised_host" && local_host {
            *changed.entry("advertised_host").or_default() += 1;
            "advertised_host = \"127.0.0.1\"".to_owned()
        } else if key == "bind" {
            *changed.entry("bind").or_default() += 1;
            line.replace("\"0.0.0.0:", "\"127.0.0.1:")
        } else {
            line.to_owned()
        };
        out.push_str(&line);
        out.push('\n');
    }
    let mut expected = BTreeMap::from([("backends", 1), ("bind", 2)]);
    if local_host {
        expected.insert("advertised_host", 1);
    }
    assert_eq!(changed, expected, "the lines changed in:\n{config}");
    out
}

/// Fails, naming the port, unless every one of `ports` is free on loopback.
fn assert_free(ports: &BTreeMap<u16, String>) {
    for (port, what) in ports {
        let bound = TcpListener::bind(("127.0.0.1", *port));
        assert!(
            bound.is_ok(),
            "port {port} ({what}) is in use on 127.0.0.1: this test runs the Kafka pack's \
             config on the pack's own ports ({bound:?})"
        );
    }
}

/// Until `/readyz` answers 200: the brokers are discovered and their ports open.
fn wait_ready(sluice: &Running) -> SocketAddr {
    let admin = sluice.admin_addr();
    let deadline = Instant::now() + KAFKA_STEP;
    loop {
        let (status, body) = http_get(admin, "/readyz");
        if status == 200 {
            return admin;
        }
        assert!(Instant::now() < deadline, "/readyz: {status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "30000")
        .set("socket.timeout.ms", "10000");
    config
}

/// The mock's brokers by node id, as a client of the mock itself sees them.
fn mock_brokers(mock: &MockCluster<'_, impl rdkafka::ClientContext>) -> BTreeMap<i32, String> {
    let client: BaseConsumer = client_config(&mock.bootstrap_servers()).create().unwrap();
    let metadata = client
        .fetch_metadata(None, Duration::from_secs(20))
        .unwrap();
    metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), format!("{}:{}", b.host(), b.port())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_port_per_broker_pack_serves_a_real_client_through_every_broker_port() {
    let mock = MockCluster::new(BROKERS).unwrap();
    mock.create_topic(TOPIC, BROKERS, 1).unwrap();
    // Partition p is led by broker p + 1: producing to every partition uses every broker.
    for partition in 0..BROKERS {
        mock.partition_leader(TOPIC, partition, Some(partition + 1))
            .unwrap();
    }
    let upstream = block_in_place(|| mock_brokers(&mock));
    assert_eq!(
        upstream.keys().copied().collect::<Vec<_>>(),
        (1..=BROKERS).collect::<Vec<_>>()
    );

    let config = pack_config(&mock_addrs(&mock));
    let bootstrap: u16 = toml_value(&config, "bind")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let start: u16 = toml_value(&config, "broker_port_start").parse().unwrap();
    let max_brokers: u16 = toml_value(&config, "max_brokers").parse().unwrap();
    let admin_port: u16 = toml_value(config.split("[admin]").nth(1).unwrap(), "bind")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        (bootstrap, start, max_brokers, admin_port),
        (9092, 9100, 8, 9190)
    );
    assert!(
        i32::from(max_brokers) > BROKERS,
        "every mock broker has a port"
    );
    let mut ports = BTreeMap::from([
        (bootstrap, "the bootstrap".to_owned()),
        (admin_port, "the admin listener".to_owned()),
    ]);
    for id in 0..max_brokers {
        ports.insert(start + id, format!("broker node id {id}"));
    }
    assert_free(&ports);

    let sluice = SLUICE.run(&config, "kafka-pack.toml");
    let admin = block_in_place(|| {
        sluice.wait_for("sluice started");
        wait_ready(&sluice)
    });
    let metrics = block_in_place(|| http_get(admin, "/metrics").1);
    assert!(
        metrics.contains(&format!(
            "sluice_kafka_brokers{{listener=\"kafka\",cluster=\"kafka\"}} {BROKERS}"
        )),
        "{metrics}"
    );

    // The client sees only Sluice: broker N at 127.0.0.1:(9100 + N), each partition's leader.
    let bootstrap_servers = format!("127.0.0.1:{bootstrap}");
    let producer: FutureProducer = client_config(&bootstrap_servers)
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let metadata = block_in_place(|| {
        producer
            .client()
            .fetch_metadata(Some(TOPIC), Duration::from_secs(20))
            .unwrap()
    });
    let advertised: BTreeMap<i32, (String, i32)> = metadata
        .brokers()
        .iter()
        .map(|b| (b.id(), (b.host().to_owned(), b.port())))
        .collect();
    let expected: BTreeMap<i32, (String, i32)> = (1..=BROKERS)
        .map(|id| (id, ("127.0.0.1".to_owned(), i32::from(start) + id)))
        .collect();
    assert_eq!(advertised, expected);
    let leaders: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.leader())
        .collect();
    assert_eq!(leaders, (1..=BROKERS).collect::<Vec<_>>());

    // Produce to every partition, so through every broker's port.
    let mut deliveries = Vec::new();
    for partition in 0..BROKERS {
        for i in 0..PER_PARTITION {
            let key = format!("p{partition}-{i}");
            let record = FutureRecord::to(TOPIC)
                .partition(partition)
                .key(&key)
                .payload(&key);
            deliveries.push(
                producer
                    .send_result(record)
                    .map_err(|(err, _)| err)
                    .unwrap(),
            );
        }
    }
    let deadline = Instant::now() + KAFKA_STEP;
    for delivery in deliveries {
        let left = deadline.saturating_duration_since(Instant::now());
        let result = tokio::time::timeout(left, delivery).await;
        assert!(
            matches!(result, Ok(Ok(Ok(_)))),
            "a message was not delivered in time: {result:?}"
        );
    }

    // Consume every partition from the start, so fetch through every broker's port.
    let consumer: StreamConsumer = client_config(&bootstrap_servers)
        .set("group.id", "kafka-pack")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..BROKERS {
        assignment
            .add_partition_offset(TOPIC, partition, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let total = usize::try_from(BROKERS).unwrap() * PER_PARTITION;
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + KAFKA_STEP;
    while seen.len() < total {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, consumer.recv()).await;
        assert!(
            message.is_ok(),
            "consumed only {} of {total} messages",
            seen.len()
        );
        let message = message.unwrap().unwrap();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        assert_eq!(message.payload(), Some(key.as_bytes()));
        assert!(
            key.starts_with(&format!("p{}-", message.partition())),
            "{key} read from partition {}",
            message.partition()
        );
        seen.insert(key);
    }
    drop(consumer);
    drop(producer);

    // Every broker's port served sessions, each to that broker; the bootstrap served some.
    let mut served: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    let broker_ports: BTreeSet<u16> = (1..=BROKERS)
        .map(|id| start + u16::try_from(id).unwrap())
        .collect();
    let deadline = Instant::now() + KAFKA_STEP;
    for _ in 0..500 {
        if broker_ports.iter().all(|port| served.contains_key(port))
            && served.contains_key(&bootstrap)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ports that served sessions: {served:?}"
        );
        let line = block_in_place(|| sluice.wait_for("session closed"));
        let local: SocketAddr = line["listener.addr"].as_str().unwrap().parse().unwrap();
        served
            .entry(local.port())
            .or_default()
            .insert(line["backend.addr"].as_str().unwrap_or("").to_owned());
    }
    for id in 1..=BROKERS {
        let port = start + u16::try_from(id).unwrap();
        assert_eq!(
            served.get(&port),
            Some(&BTreeSet::from([upstream[&id].clone()])),
            "broker port {port} must serve broker {id} alone: {served:?}"
        );
    }
    assert!(served.contains_key(&bootstrap), "{served:?}");
}
