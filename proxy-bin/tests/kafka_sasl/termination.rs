//! A terminating proxy: PLAIN and SCRAM clients produce and consume, wrong passwords and
//! unauthenticated requests open no backend connection, and clients re-authenticate within
//! their session lifetime.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, MetadataRequest};
use kafka_protocol::protocol::{Decodable, Encodable};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::Producer;
use sluice_tests::kafka_wire::{connect, frame, read_frame};

use crate::clients::{consume, consumer, keys, produce, producer, wait_client_error};
use crate::{ALICE, Proxy, close_with, cluster_toml, sasl_client, terminate_with, users_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_and_scram_clients_produce_and_consume_through_a_terminating_proxy() {
    let mock = MockCluster::new(3).unwrap();
    let users = users_file("sasl-users-roundtrip.toml", &[ALICE]);
    let proxy = Proxy::start(
        "sasl-roundtrip.toml",
        &terminate_with(&users),
        &cluster_toml("main", &mock),
    );
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let topic = format!("t-{}", mechanism.to_lowercase());
        mock.create_topic(&topic, 3, 1).unwrap();
        let settings = sasl_client(mechanism, ALICE);
        let (producer, _errors) = producer(&proxy.bootstrap_servers(), &settings);
        produce(&producer, &topic, "k", 200).await;
        let consumer = consumer(&proxy.bootstrap_servers(), &format!("g-{topic}"), &settings);
        consume(&consumer, &topic, &keys("k", 200)).await;
        assert!(
            proxy.sasl(mechanism, "initial", "success") >= 2,
            "{mechanism} successes not counted:\n{}",
            proxy.metrics()
        );
        assert_eq!(proxy.sasl(mechanism, "initial", "failure"), 0);
        drop(consumer);
        drop(producer);
    }
    let line = close_with(&proxy.sluice, "client_closed");
    assert_eq!(line["auth.principal"], "alice", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_and_unauthenticated_requests_open_no_backend_connection() {
    let mock = MockCluster::new(3).unwrap();
    let users = users_file("sasl-users-refused.toml", &[ALICE]);
    let listener = format!("{}\ntimeout = \"1s\"", terminate_with(&users));
    let proxy = Proxy::start("sasl-refused.toml", &listener, &cluster_toml("main", &mock));
    proxy.wait_discovered();
    let before = proxy.backend_connections("main");
    assert!(
        before >= 1,
        "the proxy's own discovery connection is counted"
    );

    // librdkafka with a wrong password: an authentication error, with the proxy's message.
    for mechanism in ["SCRAM-SHA-512", "PLAIN"] {
        let (producer, producer_errors) = producer(
            &proxy.bootstrap_servers(),
            &sasl_client(mechanism, ("alice", "not-her-password")),
        );
        let error = wait_client_error(&producer_errors, "Invalid username or password");
        assert!(error.to_lowercase().contains("authentication"), "{error}");
        drop(producer);
    }
    let refused = close_with(&proxy.sluice, "auth_failed");
    assert_eq!(refused["backend.addr"], "-", "{refused}");
    // Repeated failures from one address wait longer each time.
    let first = proxy.sluice.find("client authentication failed");
    let delay = first["delay_ms"].as_u64().unwrap();
    assert!(delay >= 100, "{first}");
    // The failure line names the user the client claimed, escaped (`?`: quoted), and never
    // the password.
    assert_eq!(first["auth.user"], "\"alice\"", "{first}");
    let plain = proxy
        .sluice
        .find_where("client authentication failed", "mechanism", "PLAIN");
    assert_eq!(plain["auth.user"], "\"alice\"", "{plain}");
    for line in [&first, &plain] {
        assert!(!line.to_string().contains("not-her-password"), "{line}");
    }

    // A raw client: ApiVersions is answered by the proxy (with its SASL versions), a Metadata
    // request before authenticating closes the connection without an answer.
    let mut raw = connect(proxy.bootstrap);
    raw.write_all(&frame(ApiKey::ApiVersions as i16, 0, 1, &[]))
        .unwrap();
    let answer = read_frame(&mut raw).unwrap();
    let mut body = bytes::Bytes::from(answer[4..].to_vec());
    let versions = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(versions.error_code, 0);
    let handshake = versions
        .api_keys
        .iter()
        .find(|v| v.api_key == ApiKey::SaslHandshake as i16)
        .unwrap();
    assert_eq!(
        (handshake.min_version, handshake.max_version),
        (0, 1),
        "what brokers offer (older librdkafka starts no handshake without v0)"
    );
    let mut metadata = bytes::BytesMut::new();
    MetadataRequest::default()
        .with_topics(None)
        .encode(&mut metadata, 4)
        .unwrap();
    raw.write_all(&frame(ApiKey::Metadata as i16, 4, 2, &metadata))
        .unwrap();
    assert!(
        read_frame(&mut raw).is_err(),
        "a Metadata request before SASL was answered"
    );
    let closed = close_with(&proxy.sluice, "not_authenticated");
    assert_eq!(closed["backend.addr"], "-", "{closed}");

    // A client that leaves before authenticating is not an orderly close.
    let mut leaving = connect(proxy.bootstrap);
    leaving
        .write_all(&frame(ApiKey::ApiVersions as i16, 0, 1, &[]))
        .unwrap();
    read_frame(&mut leaving).unwrap();
    let addr = leaving.local_addr().unwrap().to_string();
    drop(leaving);
    let closed = proxy
        .sluice
        .find_where("session closed", "client.addr", &addr);
    assert_eq!(
        closed["reason.label"], "client_closed_before_authentication",
        "{closed}"
    );
    assert_eq!(closed["fault"], "downstream", "{closed}");
    assert_eq!(closed["backend.addr"], "-", "{closed}");

    // Before authenticating, a frame may not exceed 512 KiB (whatever max_frame_size says):
    // refused from its length prefix.
    let mut big = connect(proxy.bootstrap);
    big.write_all(&(1024 * 1024i32).to_be_bytes()).unwrap();
    assert!(read_frame(&mut big).is_err());
    let closed = close_with(&proxy.sluice, "protocol_error");
    assert!(
        closed["reason.detail"]
            .as_str()
            .unwrap()
            .contains("max_frame_size"),
        "{closed}"
    );

    // A client that says nothing is closed at the SASL timeout.
    let _silent = TcpStream::connect((Ipv4Addr::LOCALHOST, proxy.bootstrap)).unwrap();
    close_with(&proxy.sluice, "auth_timeout");

    assert_eq!(
        proxy.backend_connections("main"),
        before,
        "an unauthenticated client caused a backend connection"
    );
    assert!(proxy.sasl("SCRAM-SHA-512", "initial", "failure") >= 1);
    assert!(proxy.sasl("PLAIN", "initial", "failure") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_re_authenticate_within_their_session_lifetime_and_keep_producing() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("long", 1, 1).unwrap();
    let users = users_file("sasl-users-reauth.toml", &[ALICE]);
    let listener = format!("{}\nsession_lifetime = \"2s\"", terminate_with(&users));
    let proxy = Proxy::start("sasl-reauth.toml", &listener, &cluster_toml("main", &mock));
    let (producer, producer_errors) = producer(
        &proxy.bootstrap_servers(),
        &sasl_client("SCRAM-SHA-512", ALICE),
    );
    // Six seconds of traffic: three lifetimes.
    for round in 0..30 {
        produce(&producer, "long", &format!("r{round}-"), 1).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    assert!(
        proxy.sasl("SCRAM-SHA-512", "reauthentication", "success") >= 1,
        "no re-authentication:\n{}",
        proxy.metrics()
    );
    assert!(
        producer_errors.0.lock().is_empty(),
        "client errors: {:?}",
        producer_errors.0.lock()
    );
    drop(producer);
    let consumer = consumer(
        &proxy.bootstrap_servers(),
        "g-long",
        &sasl_client("SCRAM-SHA-512", ALICE),
    );
    let all: BTreeSet<String> = (0..30).map(|round| format!("r{round}-0")).collect();
    consume(&consumer, "long", &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_authenticating_when_the_proxy_drains_is_closed_at_once() {
    let mock = MockCluster::new(3).unwrap();
    let users = users_file("sasl-users-drain.toml", &[ALICE]);
    // Authentication and drain both get far longer than a test step: the close must come from
    // the drain reaching a session with nothing in flight, not from either deadline.
    let listener = format!("{}\ntimeout = \"60s\"", terminate_with(&users));
    let clusters = format!(
        "{}\n[shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"60s\"\ntermination_grace_period = \"120s\"\n",
        cluster_toml("main", &mock)
    );
    let proxy = Proxy::start("sasl-drain.toml", &listener, &clusters);
    proxy.wait_discovered();
    let before = proxy.backend_connections("main");

    // In the middle of negotiating: ApiVersions answered, SASL not started.
    let mut raw = connect(proxy.bootstrap);
    raw.write_all(&frame(ApiKey::ApiVersions as i16, 0, 1, &[]))
        .unwrap();
    read_frame(&mut raw).unwrap();
    assert_eq!(proxy.backend_connections("main"), before, "no backend yet");

    proxy.sluice.signal("-TERM");
    let closed = close_with(&proxy.sluice, "drain_completed");
    assert_eq!(closed["fault"], "none", "{closed}");
    assert_eq!(closed["backend.addr"], "-", "{closed}");
    assert!(
        read_frame(&mut raw).is_err(),
        "the client's connection stayed open"
    );
    assert_eq!(proxy.sluice.wait_exit().code(), Some(0));
}
