//! SASL on Kafka listeners, through the real binary with librdkafka clients (the `rdkafka`
//! crate) and librdkafka's mock cluster: Sluice terminating PLAIN and SCRAM, routing by
//! principal, authenticating to a cluster with its own credentials (against a terminating
//! Sluice standing in for a SASL broker, as the mock has none), inspecting an exchange that
//! passes through, and KIP-368 re-authentication. Every wait is bounded.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers of this test file fail the test when the environment misbehaves"
)]

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, MetadataRequest};
use kafka_protocol::protocol::{Decodable, Encodable};
use parking_lot::Mutex;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use support::kafka::{connect, frame, free_port_block, mock_addrs, read_frame};
use support::{Running, SLUICE, http_get, write_config};

/// How long any one Kafka step may take.
const KAFKA_STEP: Duration = Duration::from_secs(60);

const ALICE: (&str, &str) = ("alice", "alice-wonderland");
const BOB: (&str, &str) = ("bob", "bob-builder");
const PROXY: (&str, &str) = ("proxy", "proxy-secret");

/// A users file named `name` in the tests' config directory, written by `sluice user add` with
/// a SCRAM-SHA-256 and a SCRAM-SHA-512 credential for each user.
fn users_file(name: &str, users: &[(&str, &str)]) -> PathBuf {
    let path = write_config(name, "");
    std::fs::remove_file(&path).unwrap();
    for (user, password) in users {
        for mechanism in ["scram-sha-256", "scram-sha-512"] {
            let mut child = Command::new(SLUICE)
                .args(["user", "add", "--users"])
                .arg(&path)
                .args(["--mechanism", mechanism, user])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    path
}

/// A running Sluice with one port-per-broker Kafka listener named `kafka`.
struct Proxy {
    sluice: Running,
    bootstrap: u16,
}

impl Proxy {
    /// `listener` is appended to the `[[listener]]` table (SASL, routes); `clusters` is the
    /// clusters' TOML.
    fn start(name: &str, listener: &str, clusters: &str) -> Self {
        let bootstrap = free_port_block(3);
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
broker_port_start = {start}
{listener}

{clusters}
"#,
            start = bootstrap + 1
        );
        let sluice = Running::start_with(&config, name, &[], "info");
        sluice.wait_for("sluice started");
        Self { sluice, bootstrap }
    }

    fn bootstrap_servers(&self) -> String {
        format!("127.0.0.1:{}", self.bootstrap)
    }

    fn metrics(&self) -> String {
        http_get(self.sluice.admin_addr(), "/metrics").1
    }

    /// The value of the metric line starting with `series` (0 when absent).
    fn metric(&self, series: &str) -> u64 {
        self.metrics()
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    }

    fn sasl(&self, mechanism: &str, phase: &str, outcome: &str) -> u64 {
        self.metric(&format!(
            "sluice_sasl_authentications_total{{listener=\"kafka\",mechanism=\"{mechanism}\",\
             phase=\"{phase}\",outcome=\"{outcome}\"}}"
        ))
    }

    fn backend_connections(&self, cluster: &str) -> u64 {
        self.metric(&format!(
            "sluice_backend_connections_total{{cluster=\"{cluster}\"}}"
        ))
    }

    /// Waits until the start-up discovery (the proxy's own connection) is done, so later
    /// backend connections are the sessions'.
    fn wait_discovered(&self) {
        self.sluice.find("discovered the cluster's brokers");
    }
}

/// `[cluster.NAME]` tables pointing at mock clusters.
fn cluster_toml(name: &str, mock: &MockCluster<'_, impl ClientContext>) -> String {
    let backends: Vec<String> = mock_addrs(mock)
        .iter()
        .map(|addr| format!("\"{addr}\""))
        .collect();
    format!("[cluster.{name}]\nbackends = [{}]\n", backends.join(", "))
}

const TERMINATE_ALL: &str = r#"[listener.sasl]
mode = "terminate"
mechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
users = "USERS"
allow_plain_without_tls = true"#;

fn terminate_with(users: &Path) -> String {
    TERMINATE_ALL.replace("USERS", &users.display().to_string())
}

/// Client settings for SASL over plaintext.
fn sasl_client(mechanism: &str, (user, password): (&str, &str)) -> Vec<(String, String)> {
    [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", mechanism),
        ("sasl.username", user),
        ("sasl.password", password),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Remembers the errors librdkafka reports.
#[derive(Default, Clone)]
struct Errors(Arc<Mutex<Vec<String>>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.lock().push(format!("{error}: {reason}"));
    }
}

impl rdkafka::consumer::ConsumerContext for Errors {}

fn client_config(bootstrap: &str, settings: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "30000");
    for (key, value) in settings {
        config.set(key, value);
    }
    config
}

/// A producer, and the errors librdkafka reports for it.
fn producer(bootstrap: &str, settings: &[(String, String)]) -> (FutureProducer<Errors>, Errors) {
    let errors = Errors::default();
    let producer = client_config(bootstrap, settings)
        .create_with_context(errors.clone())
        .unwrap();
    (producer, errors)
}

fn consumer(bootstrap: &str, group: &str, settings: &[(String, String)]) -> StreamConsumer<Errors> {
    client_config(bootstrap, settings)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create_with_context(Errors::default())
        .unwrap()
}

async fn produce(producer: &FutureProducer<Errors>, topic: &str, prefix: &str, count: usize) {
    for i in 0..count {
        let key = format!("{prefix}{i}");
        producer
            .send(FutureRecord::to(topic).key(&key).payload(&key), KAFKA_STEP)
            .await
            .unwrap_or_else(|(err, _)| panic!("{key} not delivered: {err}"));
    }
}

/// Consumes until every key of `keys` was seen (payload equal to key), bounded.
async fn consume(consumer: &StreamConsumer<Errors>, topic: &str, keys: &BTreeSet<String>) {
    consumer.subscribe(&[topic]).unwrap();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + KAFKA_STEP;
    while !keys.is_subset(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, consumer.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "consumed {} of {} from {topic}; client errors: {:?}",
                    seen.len(),
                    keys.len(),
                    consumer.context().0.lock()
                )
            })
            .unwrap();
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        assert_eq!(message.payload(), Some(key.as_bytes()));
        seen.insert(key);
    }
}

fn keys(prefix: &str, count: usize) -> BTreeSet<String> {
    (0..count).map(|i| format!("{prefix}{i}")).collect()
}

/// Waits (bounded) until librdkafka reported an error containing `needle`.
fn wait_client_error(errors: &Errors, needle: &str) -> String {
    let deadline = Instant::now() + KAFKA_STEP;
    loop {
        if let Some(found) = errors.0.lock().iter().find(|e| e.contains(needle)) {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no client error with {needle:?}: {:?}",
            errors.0.lock()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The next close line (after the cursor) whose reason label is `label`, bounded.
fn close_with(sluice: &Running, label: &str) -> serde_json::Value {
    for _ in 0..50 {
        let line = sluice.wait_for("session closed");
        if line["reason.label"] == label {
            return line;
        }
    }
    panic!("no session closed with {label}");
}

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
    assert_eq!((handshake.min_version, handshake.max_version), (1, 1));
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

    // Before authenticating, a frame may not exceed 512 KiB (whatever max_frame_size says):
    // refused from its length prefix.
    let mut big = connect(proxy.bootstrap);
    big.write_all(&(1024 * 1024i32).to_be_bytes()).unwrap();
    assert!(read_frame(&mut big).is_err());
    let closed = close_with(&proxy.sluice, "protocol_error");
    assert!(
        closed["reason"]
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
