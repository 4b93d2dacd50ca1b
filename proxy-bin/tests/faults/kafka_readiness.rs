//! A Kafka listener whose cluster is down at start: `/readyz` says so, naming the listener and
//! the cluster, instead of sending clients to a proxy that can only close on them; once the
//! cluster answers, the listener becomes ready and serves.

use std::net::{Ipv4Addr, SocketAddr};

use sluice_tests::faulty::broker::FaultyBroker;
use sluice_tests::kafka_wire::free_port_block;
use sluice_tests::process::http_get;
use tokio::task::{block_in_place, spawn_blocking};

use crate::kafka_listener::{admin, api_versions_answered, config};
use crate::{SLUICE, wait_until};

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
        &config(bootstrap, broker_addr, "", ""),
        "faults-kafka-readiness.toml",
    );
    let admin = admin(&sluice);
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
    api_versions_answered((Ipv4Addr::LOCALHOST, bootstrap).into(), 3).await;
    drop(broker);
}
