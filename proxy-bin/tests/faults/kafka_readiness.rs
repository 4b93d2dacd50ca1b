//! A Kafka listener whose cluster is down at start: `/readyz` says so, naming the listener and
//! the cluster, instead of sending clients to a proxy that can only close on them; once the
//! cluster answers, the listener becomes ready and serves.

use std::net::{Ipv4Addr, SocketAddr};

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use sluice_tests::STEP_TIMEOUT;
use sluice_tests::faulty::broker::FaultyBroker;
use sluice_tests::kafka_wire::{frame, free_port_block};
use sluice_tests::process::http_get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::{block_in_place, spawn_blocking};
use tokio::time::timeout;

use crate::{SLUICE, wait_until};

fn config(bootstrap: u16, broker: SocketAddr) -> String {
    format!(
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
broker_port_start = {start}
max_brokers = 2

[cluster.main]
backends = ["{broker}"]
"#,
        start = bootstrap + 1
    )
}

async fn readyz(admin: SocketAddr) -> (u16, String) {
    spawn_blocking(move || http_get(admin, "/readyz"))
        .await
        .unwrap()
}

/// Users depend on `/readyz` telling the truth about a Kafka listener (issue 22): a load
/// balancer must not send clients to a proxy whose cluster has never answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_listener_is_not_ready_until_its_cluster_has_been_discovered() {
    let block = free_port_block(4);
    let (bootstrap, broker_port) = (block, block + 3);
    let broker_addr: SocketAddr = (Ipv4Addr::LOCALHOST, broker_port).into();
    let sluice = SLUICE.run(
        &config(bootstrap, broker_addr),
        "faults-kafka-readiness.toml",
    );
    let admin = block_in_place(|| {
        sluice.find("sluice started");
        sluice.admin_addr()
    });
    // Up and running, its cluster unreachable: not ready, and the body says why.
    block_in_place(|| sluice.find("cannot discover the cluster's brokers yet; retrying"));
    let (status, body) = readyz(admin).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("listener kafka: cluster main not discovered yet"),
        "{body}"
    );

    // The cluster comes up: discovery's next attempt finds it, and the listener is ready.
    let broker = FaultyBroker::start(broker_addr, None).await;
    let mut ready = false;
    wait_until("the listener is ready", || {
        ready = block_in_place(|| http_get(admin, "/readyz").0 == 200);
        ready
    })
    .await;
    assert!(ready);

    // And serves: an ApiVersions request through the bootstrap port is answered.
    let mut client = TcpStream::connect((Ipv4Addr::LOCALHOST, bootstrap))
        .await
        .unwrap();
    client
        .write_all(&frame(ApiKey::ApiVersions as i16, 0, 3, &[]))
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    timeout(STEP_TIMEOUT, async {
        while buf.len() < 8 {
            assert!(client.read_buf(&mut buf).await.unwrap() > 0, "closed");
        }
    })
    .await
    .expect("an answer in time");
    assert_eq!(i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]), 3);
    drop(broker);
}
