//! Routing by principal: two SASL principals reach two clusters, and a client certificate
//! stands in for SASL (its CN the principal) when the listener accepts it.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::Producer;

use crate::clients::{consume, consumer, keys, produce, producer};
use crate::{ALICE, BOB, Proxy, cluster_toml, sasl_client, terminate_with, users_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_principals_are_routed_to_two_clusters() {
    let mock_a = MockCluster::new(3).unwrap();
    let mock_b = MockCluster::new(3).unwrap();
    mock_a.create_topic("only-a", 3, 1).unwrap();
    mock_b.create_topic("only-b", 3, 1).unwrap();
    let users = users_file("sasl-users-routing.toml", &[ALICE, BOB]);
    let listener = format!(
        "{}\n\n[[listener.route]]\nprincipal = \"bob\"\ncluster = \"b\"",
        terminate_with(&users)
    );
    let clusters = format!(
        "{}\n{}",
        cluster_toml("main", &mock_a),
        cluster_toml("b", &mock_b)
    );
    let proxy = Proxy::start("sasl-routing.toml", &listener, &clusters);
    for (who, own, other) in [(ALICE, "only-a", "only-b"), (BOB, "only-b", "only-a")] {
        let settings = sasl_client("SCRAM-SHA-512", who);
        let (producer, _errors) = producer(&proxy.bootstrap_servers(), &settings);
        let metadata = producer
            .client()
            .fetch_metadata(None, Duration::from_secs(20))
            .unwrap();
        let topics: BTreeSet<&str> = metadata.topics().iter().map(|t| t.name()).collect();
        assert!(topics.contains(own), "{} sees {topics:?}", who.0);
        assert!(!topics.contains(other), "{} sees {topics:?}", who.0);
        // Produce and consume through broker ports shared by both clusters' node ids.
        produce(&producer, own, who.0, 50).await;
        let consumer = consumer(&proxy.bootstrap_servers(), &format!("g-{own}"), &settings);
        consume(&consumer, own, &keys(who.0, 50)).await;
        drop(consumer);
        drop(producer);
    }
    let line = proxy
        .sluice
        .find_where("session closed", "auth.principal", "bob");
    assert_eq!(line["route"], "b", "{line}");
    let line = proxy
        .sluice
        .find_where("session closed", "auth.principal", "alice");
    assert_eq!(line["route"], "main", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_stands_in_for_sasl_when_the_listener_accepts_it() {
    use sluice_tests::certs::{TestCa, temp_dir};

    let mock_main = MockCluster::new(3).unwrap();
    let mock_b = MockCluster::new(3).unwrap();
    mock_main.create_topic("main-topic", 1, 1).unwrap();
    mock_b.create_topic("cert-topic", 1, 1).unwrap();
    let ca = TestCa::new("sluice sasl mtls test ca");
    let dir = temp_dir("kafka-sasl-mtls");
    let ca_pem = ca.write_to(&dir, "ca");
    let (cert, key) = ca.issue(&["127.0.0.1"]).write_to(&dir, "server");
    let (client_cert, client_key) = ca
        .issue_client("analytics-client", &[])
        .write_to(&dir, "client");
    let users = users_file("sasl-users-mtls.toml", &[ALICE]);
    let listener = format!(
        r#"[listener.tls]
cert = "{cert}"
key = "{key}"
client_auth = "optional"
client_ca = "{ca}"
principal = "cn"
[listener.sasl]
mode = "terminate"
mechanisms = ["SCRAM-SHA-512"]
users = "{users}"
accept_mtls_principal = true

[[listener.route]]
principal = "analytics-client"
cluster = "b""#,
        cert = cert.display(),
        key = key.display(),
        ca = ca_pem.display(),
        users = users.display(),
    );
    let clusters = format!(
        "{}\n{}",
        cluster_toml("main", &mock_main),
        cluster_toml("b", &mock_b)
    );
    let proxy = Proxy::start("sasl-mtls.toml", &listener, &clusters);
    let tls = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        [
            ("ssl.ca.location", ca_pem.to_str().unwrap()),
            ("ssl.endpoint.identification.algorithm", "none"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    };

    // A certificate and no SASL at all: authenticated as its CN, routed by it.
    let with_cert = tls(&[
        ("security.protocol", "SSL"),
        ("ssl.certificate.location", client_cert.to_str().unwrap()),
        ("ssl.key.location", client_key.to_str().unwrap()),
    ]);
    let (cert_producer, _errors) = producer(&proxy.bootstrap_servers(), &with_cert);
    produce(&cert_producer, "cert-topic", "c", 20).await;
    drop(cert_producer);
    let consumer = consumer(&proxy.bootstrap_servers(), "g-cert", &with_cert);
    consume(&consumer, "cert-topic", &keys("c", 20)).await;
    drop(consumer);

    // No certificate: SASL over TLS, as alice, to the default cluster.
    let mut with_sasl = tls(&[("security.protocol", "SASL_SSL")]);
    with_sasl.extend(sasl_client("SCRAM-SHA-512", ALICE).into_iter().skip(1));
    let (sasl_producer, _errors) = producer(&proxy.bootstrap_servers(), &with_sasl);
    produce(&sasl_producer, "main-topic", "s", 20).await;
    drop(sasl_producer);

    let line = proxy
        .sluice
        .find_where("session closed", "auth.principal", "analytics-client");
    assert_eq!(line["route"], "b", "{line}");
    let line = proxy
        .sluice
        .find_where("session closed", "auth.principal", "alice");
    assert_eq!(line["route"], "main", "{line}");
    assert!(proxy.sasl("SCRAM-SHA-512", "initial", "success") >= 1);
}
