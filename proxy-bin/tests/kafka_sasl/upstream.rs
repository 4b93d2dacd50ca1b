//! SASL between Sluice and a SASL broker (a terminating Sluice in front of the mock): Sluice
//! authenticating with the cluster's own credentials, and inspecting a client's exchange that
//! it passes on.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, Producer};
use sluice_tests::process::write_config;

use crate::clients::{Errors, consume, consumer, keys, produce, producer, wait_client_error};
use crate::{
    ALICE, KAFKA_STEP, PROXY, Proxy, close_with, cluster_toml, sasl_client, terminate_with,
    users_file,
};

/// A terminating Sluice in front of `mock`, standing in for a SASL broker.
fn sasl_broker(name: &str, mock: &MockCluster<'_, impl ClientContext>) -> Proxy {
    let users = users_file(&format!("{name}-users.toml"), &[ALICE, PROXY]);
    Proxy::start(name, &terminate_with(&users), &cluster_toml("main", mock))
}

fn password_file(name: &str, password: &str) -> PathBuf {
    write_config(name, &format!("{password}\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sluice_authenticates_to_a_cluster_with_the_clusters_own_credentials() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("initiated", 3, 1).unwrap();
    let broker = sasl_broker("sasl-initiation-broker.toml", &mock);
    for (mechanism, series) in [("SCRAM-SHA-512", "SCRAM-SHA-512"), ("PLAIN", "PLAIN")] {
        let secret = password_file("sasl-initiation.secret", PROXY.1);
        let cluster = format!(
            "[cluster.main]\nbackends = [\"127.0.0.1:{}\"]\n[cluster.main.sasl]\nmechanism = \
             \"{mechanism}\"\nusername = \"proxy\"\npassword_file = \"{}\"\nallow_plain_without_tls = true\n",
            broker.bootstrap,
            secret.display()
        );
        let front = Proxy::start("sasl-initiation-front.toml", "", &cluster);
        let before = broker.sasl(series, "initial", "success");
        // The client speaks no SASL at all: the front proxy authenticates for it.
        let (producer, _errors) = producer(&front.bootstrap_servers(), &[]);
        produce(&producer, "initiated", mechanism, 100).await;
        let consumer = consumer(&front.bootstrap_servers(), &format!("g-{mechanism}"), &[]);
        consume(&consumer, "initiated", &keys(mechanism, 100)).await;
        drop(consumer);
        drop(producer);
        assert!(
            broker.sasl(series, "initial", "success") > before,
            "the broker saw no {mechanism} authentication:\n{}",
            broker.metrics()
        );
        let line = broker
            .sluice
            .find_where("session closed", "auth.principal", "proxy");
        assert_eq!(line["reason.label"], "client_closed", "{line}");
    }

    // Wrong cluster credentials: the session fails with a reason naming the cluster side.
    let secret = password_file("sasl-initiation-wrong.secret", "not-the-password");
    let cluster = format!(
        "[cluster.main]\nbackends = [\"127.0.0.1:{}\"]\n[cluster.main.sasl]\nmechanism = \
         \"SCRAM-SHA-256\"\nusername = \"proxy\"\npassword_file = \"{}\"\n",
        broker.bootstrap,
        secret.display()
    );
    let front = Proxy::start("sasl-initiation-wrong.toml", "", &cluster);
    let (producer, _errors) = producer(&front.bootstrap_servers(), &[]);
    let _ = producer
        .client()
        .fetch_metadata(None, Duration::from_secs(2));
    let line = close_with(&front.sluice, "backend_auth_failed");
    assert_eq!(line["fault"], "upstream", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspection_records_principal_and_outcome_of_an_exchange_it_passes_on() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("watched", 3, 1).unwrap();
    let broker = sasl_broker("sasl-inspect-broker.toml", &mock);
    let inspect = r#"[listener.sasl]
mode = "inspect"
mechanisms = ["SCRAM-SHA-512", "SCRAM-SHA-256"]"#;
    let cluster = format!(
        "[cluster.main]\nbackends = [\"127.0.0.1:{}\"]\n",
        broker.bootstrap
    );
    let front = Proxy::start("sasl-inspect-front.toml", inspect, &cluster);

    let settings = sasl_client("SCRAM-SHA-256", ALICE);
    let (producer, _errors) = producer(&front.bootstrap_servers(), &settings);
    produce(&producer, "watched", "w", 100).await;
    drop(producer);
    assert!(
        front.sasl("SCRAM-SHA-256", "initial", "success") >= 1,
        "{}",
        front.metrics()
    );
    assert!(
        broker.sasl("SCRAM-SHA-256", "initial", "success") >= 1,
        "{}",
        broker.metrics()
    );
    let line = front
        .sluice
        .find_where("session closed", "auth.principal", "alice");
    assert_eq!(line["reason.label"], "client_closed", "{line}");

    let (wrong, errors) = producer_with_wrong_password(&front);
    wait_client_error(&errors, "Invalid username or password");
    drop(wrong);
    let deadline = Instant::now() + KAFKA_STEP;
    while front.sasl("SCRAM-SHA-512", "initial", "failure") == 0 {
        assert!(
            Instant::now() < deadline,
            "no failure recorded:\n{}",
            front.metrics()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn producer_with_wrong_password(proxy: &Proxy) -> (FutureProducer<Errors>, Errors) {
    producer(
        &proxy.bootstrap_servers(),
        &sasl_client("SCRAM-SHA-512", ("alice", "guess")),
    )
}
