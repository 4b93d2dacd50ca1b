//! Broker ports across an upgrade: discovery opens every broker's port at start, and an
//! upgrade hands those sockets to the successor while producers and consumers lose nothing.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use sluice_tests::process::{Generations, temp_path, wait_for_pid_file};
use sluice_tests::procfs::{holds_socket, listening_inode};

use crate::{KAFKA_STEP, KafkaProxy, consumer, produce_all, producer, producer_via};

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
