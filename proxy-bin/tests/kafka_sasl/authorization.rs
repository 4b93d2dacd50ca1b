//! ACLs at the proxy through the real binary (`[listener.authorization] rules = ...`), with
//! librdkafka clients (SCRAM-terminated, principal alice) on librdkafka's mock cluster and an
//! admin client on tansu: allowed topics work, denied ones fail at once with Kafka's own error
//! codes (topic, group, transactional id), a mixed Produce stores the allowed part, a source
//! rule follows the client address a real HAProxy sends, and an edited rules file decides the
//! next request of a session already open. Every wait is bounded.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureRecord, Producer};
use sluice_tests::haproxy::{HaProxy, SendProxy};
use sluice_tests::process::write_config;

use crate::clients::{Errors, consume, keys, produce, producer};
use crate::hardening::RawSasl;
use crate::{ALICE, KAFKA_STEP, Proxy, cluster_toml, sasl_client, terminate_with, users_file};

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;

/// Alice's rules: write and describe `orders`; describe (only) topics starting `audit-`; read
/// `orders` in groups starting `allowed-`; the transactional id `tx-allowed`.
const ALICE_RULES: &str = r#"
[[rule]]
principal = "alice"
resource = "topic"
name = "orders"
operations = ["write", "read"]

[[rule]]
principal = "alice"
resource = "topic"
name = "audit-"
pattern = "prefixed"
operations = ["describe"]

[[rule]]
principal = "alice"
resource = "group"
name = "allowed-"
pattern = "prefixed"
operations = ["read"]

[[rule]]
principal = "alice"
resource = "transactional_id"
name = "tx-allowed"
operations = ["write", "describe"]
"#;

/// The listener's SASL and authorization tables for `rules` (written to a file of its own).
fn authorized_listener(name: &str, users: &Path, rules: &str) -> (String, std::path::PathBuf) {
    let rules_file = write_config(&format!("{name}-acl.toml"), rules);
    let listener = format!(
        "{}\n\n[listener.authorization]\nrules = \"{}\"\n",
        terminate_with(users),
        rules_file.display()
    );
    (listener, rules_file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_writes_where_allowed_and_is_refused_at_once_elsewhere() {
    let mock = MockCluster::new(3).unwrap();
    for topic in ["orders", "audit-log", "secrets"] {
        mock.create_topic(topic, 3, 1).unwrap();
    }
    let users = users_file("acl-producer-users.toml", &[ALICE]);
    let (listener, _) = authorized_listener("acl-producer", &users, ALICE_RULES);
    let proxy = Proxy::start("acl-producer.toml", &listener, &cluster_toml("main", &mock));
    let (alice, _) = producer(
        &proxy.bootstrap_servers(),
        &sasl_client("SCRAM-SHA-256", ALICE),
    );

    produce(&alice, "orders", "o", 5).await;
    // audit-log: described (Metadata lists it), but the Produce is refused. secrets: no rule,
    // so even Metadata refuses it. Each fails with the broker's code, not a timeout after
    // retries (the producer would wait `message.timeout.ms`, 30 s, then say "timed out").
    for topic in ["audit-log", "secrets"] {
        let started = Instant::now();
        let (err, _) = alice
            .send(FutureRecord::to(topic).key("k").payload("v"), KAFKA_STEP)
            .await
            .expect_err(topic);
        assert_eq!(
            err.rdkafka_error_code(),
            Some(RDKafkaErrorCode::TopicAuthorizationFailed),
            "{topic}: {err}"
        );
        eprintln!("{topic}: refused after {:?}", started.elapsed());
    }
    // The session that was refused goes on: orders still works on it.
    produce(&alice, "orders", "after", 2).await;

    let denied = proxy.metric(
        "sluice_kafka_authorization_decisions_total{listener=\"kafka\",resource=\"topic\",\
         operation=\"write\",outcome=\"denied\"}",
    );
    let allowed = proxy.metric(
        "sluice_kafka_authorization_decisions_total{listener=\"kafka\",resource=\"topic\",\
         operation=\"write\",outcome=\"allowed\"}",
    );
    assert!(denied >= 1, "{}", proxy.metrics());
    assert!(allowed >= 1, "{}", proxy.metrics());
    let line = proxy
        .sluice
        .find_where("authorization denied", "acl.name", "audit-log");
    assert_eq!(line["auth.principal"], "alice", "{line}");
    assert_eq!(line["acl.operation"], "write", "{line}");
    assert!(
        line["client.addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{line}"
    );
    // Once per session and resource: the denial is not logged for every retry or request.
    let logged = proxy
        .sluice
        .text_lines()
        .iter()
        .filter(|line| line.contains("authorization denied") && line.contains("audit-log"))
        .count();
    assert!(logged <= 3, "logged {logged} times");
}

/// Alice's consumer in `group`, with the classic or the KIP-848 (`consumer`) group protocol.
fn group_consumer(bootstrap: &str, group: &str, protocol: &str) -> StreamConsumer<Errors> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("group.protocol", protocol)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    if protocol == "classic" {
        config.set("session.timeout.ms", "6000");
    }
    for (key, value) in sasl_client("SCRAM-SHA-256", ALICE) {
        config.set(key, value);
    }
    config.create_with_context(Errors::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_in_a_denied_group_is_refused_in_both_group_protocols() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("orders", 3, 1).unwrap();
    let users = users_file("acl-consumer-users.toml", &[ALICE]);
    let (listener, _) = authorized_listener("acl-consumer", &users, ALICE_RULES);
    let proxy = Proxy::start("acl-consumer.toml", &listener, &cluster_toml("main", &mock));
    let bootstrap = proxy.bootstrap_servers();
    let alice = sasl_client("SCRAM-SHA-256", ALICE);
    let (producer, _) = producer(&bootstrap, &alice);
    produce(&producer, "orders", "c", 10).await;

    for protocol in ["classic", "consumer"] {
        // Allowed: reads what was produced.
        let allowed = group_consumer(&bootstrap, &format!("allowed-{protocol}"), protocol);
        consume(&allowed, "orders", &keys("c", 10)).await;
        drop(allowed);
        // Denied: the group's error, not a hang.
        let denied = group_consumer(&bootstrap, &format!("forbidden-{protocol}"), protocol);
        denied.subscribe(&["orders"]).unwrap();
        let err = tokio::time::timeout(KAFKA_STEP, denied.recv())
            .await
            .unwrap_or_else(|_| panic!("{protocol}: no error within {KAFKA_STEP:?}"))
            .expect_err(protocol);
        assert_eq!(
            err.rdkafka_error_code(),
            Some(RDKafkaErrorCode::GroupAuthorizationFailed),
            "{protocol}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_producer_with_a_denied_id_fails_init_transactions() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("orders", 3, 1).unwrap();
    let users = users_file("acl-txn-users.toml", &[ALICE]);
    let (listener, _) = authorized_listener("acl-txn", &users, ALICE_RULES);
    let proxy = Proxy::start("acl-txn.toml", &listener, &cluster_toml("main", &mock));
    let bootstrap = proxy.bootstrap_servers();
    let transactional = |id: &str| {
        let mut settings = sasl_client("SCRAM-SHA-256", ALICE);
        settings.push(("transactional.id".into(), id.into()));
        producer(&bootstrap, &settings).0
    };
    let allowed = transactional("tx-allowed");
    tokio::task::block_in_place(|| {
        allowed.init_transactions(KAFKA_STEP).unwrap();
        allowed.begin_transaction().unwrap();
    });
    produce(&allowed, "orders", "t", 3).await;
    tokio::task::block_in_place(|| allowed.commit_transaction(KAFKA_STEP).unwrap());

    let denied = transactional("tx-denied");
    let err = tokio::task::block_in_place(|| denied.init_transactions(KAFKA_STEP))
        .expect_err("init_transactions of tx-denied");
    assert_eq!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::TransactionalIdAuthorizationFailed),
        "{err}"
    );
}

/// One record batch of `values`.
fn batch(values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .zip(0i64..)
        .map(|(value, offset)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: -1,
            timestamp: 0,
            key: None,
            value: Some(Bytes::from(value.as_bytes().to_vec())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// A raw client logged in with PLAIN as alice.
fn raw_alice(port: u16) -> RawSasl {
    let mut client = RawSasl::connect(port);
    assert_eq!(client.handshake("PLAIN"), 0);
    let answer = client
        .authenticate(format!("\0{}\0{}", ALICE.0, ALICE.1).as_bytes())
        .unwrap();
    assert_eq!(answer.error_code, 0, "{answer:?}");
    client
}

/// One Produce v8 (acks 1) to partition 0 of each topic, one record each: the error code for
/// each topic, in the answer's order.
fn produce_raw(
    client: &mut RawSasl,
    topics: &[&str],
    value: &str,
) -> std::io::Result<Vec<(String, i16)>> {
    let body = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(
            topics
                .iter()
                .map(|topic| {
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string((*topic).to_owned())))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(batch(&[value]))),
                        ])
                })
                .collect(),
        );
    let answer = client.request(ApiKey::Produce, 8, &body)?;
    // After the correlation id (response header v0).
    let mut answer = Bytes::from(answer[4..].to_vec());
    let response = ProduceResponse::decode(&mut answer, 8).unwrap();
    Ok(response
        .responses
        .iter()
        .map(|topic| {
            let codes: BTreeSet<i16> = topic
                .partition_responses
                .iter()
                .map(|partition| partition.error_code)
                .collect();
            assert_eq!(codes.len(), 1, "{topic:?}");
            (topic.name.0.to_string(), codes.into_iter().next().unwrap())
        })
        .collect())
}

/// The values in partition 0 of `topic`, read directly from the mock broker.
fn stored(mock: &MockCluster<'_, impl rdkafka::ClientContext>, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("group.id", "acl-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let (low, high) = consumer.fetch_watermarks(topic, 0, KAFKA_STEP).unwrap();
    let mut values = Vec::new();
    if high == low {
        return values;
    }
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + KAFKA_STEP;
    // Bounded by the deadline and by the high watermark.
    while (values.len() as i64) < high - low && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            use rdkafka::Message as _;
            values.push(String::from_utf8(message.payload().unwrap().to_vec()).unwrap());
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_produce_stores_the_allowed_part_and_an_edited_rule_counts_for_the_next_request() {
    // One broker: the bootstrap session's broker leads every partition.
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    mock.create_topic("secrets", 1, 1).unwrap();
    let users = users_file("acl-mixed-users.toml", &[ALICE]);
    let (listener, rules_file) = authorized_listener("acl-mixed", &users, ALICE_RULES);
    let proxy = Proxy::start("acl-mixed.toml", &listener, &cluster_toml("main", &mock));
    let mut alice = raw_alice(proxy.bootstrap);

    let answer = produce_raw(&mut alice, &["orders", "secrets", "orders-2"], "first").unwrap();
    assert_eq!(
        answer,
        [
            ("orders".to_owned(), 0),
            ("secrets".to_owned(), TOPIC_AUTHORIZATION_FAILED),
            ("orders-2".to_owned(), TOPIC_AUTHORIZATION_FAILED),
        ],
        "in request order"
    );
    assert_eq!(stored(&mock, "orders"), ["first"]);
    assert!(stored(&mock, "secrets").is_empty());

    // Alice loses write on orders: the same session's next Produce is refused.
    std::fs::write(
        &rules_file,
        ALICE_RULES.replace("[\"write\", \"read\"]", "[\"read\"]"),
    )
    .unwrap();
    let reloaded = proxy.sluice.wait_for("authorization rules reloaded");
    assert_eq!(reloaded["trigger"], "file changed", "{reloaded}");
    let answer = produce_raw(&mut alice, &["orders"], "second").unwrap();
    assert_eq!(answer, [("orders".to_owned(), TOPIC_AUTHORIZATION_FAILED)]);
    assert_eq!(stored(&mock, "orders"), ["first"]);

    // A broken file keeps the rules it replaces.
    std::fs::write(&rules_file, "[[rule]]\nprincipal = \"alice\"\n").unwrap();
    let failed = proxy
        .sluice
        .wait_for("authorization rules reload failed; keeping the previous rules");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("rule[0].resource"),
        "{failed}"
    );
    let answer = produce_raw(&mut alice, &["orders"], "third").unwrap();
    assert_eq!(answer, [("orders".to_owned(), TOPIC_AUTHORIZATION_FAILED)]);
    assert!(
        proxy.metric(&format!(
            "sluice_kafka_authorization_reloads_total{{file=\"{}\",outcome=\"failed\"}}",
            rules_file.display()
        )) >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_removed_on_sighup_counts_for_the_next_request_of_sessions_already_open() {
    // One broker: the raw session's broker leads the partition.
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    let users = users_file("acl-sighup-users.toml", &[ALICE]);
    let (listener, rules_file) = authorized_listener("acl-sighup", &users, ALICE_RULES);
    let pid_file = sluice_tests::process::temp_path("acl-sighup.pid");
    let _ = std::fs::remove_file(&pid_file);
    let pid_arg = pid_file.display().to_string();
    let proxy = Proxy::start_with(
        "acl-sighup.toml",
        &listener,
        &cluster_toml("main", &mock),
        &["--pid-file", &pid_arg],
    );
    let first = sluice_tests::process::wait_for_pid_file(&pid_file);
    let (alice, _) = producer(
        &proxy.bootstrap_servers(),
        &sasl_client("SCRAM-SHA-256", ALICE),
    );
    produce(&alice, "orders", "before", 3).await;
    let mut raw = raw_alice(proxy.bootstrap);
    assert_eq!(
        produce_raw(&mut raw, &["orders"], "raw-before").unwrap(),
        [("orders".to_owned(), 0)]
    );

    // Alice's write on orders becomes alter, in a rewrite the 2 s poll cannot see (same size,
    // same inode, the old modification time put back): only the SIGHUP reads it.
    let modified = std::fs::metadata(&rules_file).unwrap().modified().unwrap();
    let edited = ALICE_RULES.replace("[\"write\", \"read\"]", "[\"alter\", \"read\"]");
    assert_eq!(edited.len(), ALICE_RULES.len());
    std::fs::write(&rules_file, &edited).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&rules_file)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    proxy.sluice.signal("-HUP");
    let reloaded = proxy.sluice.wait_for("authorization rules reloaded");
    assert_eq!(reloaded["trigger"], "SIGHUP", "{reloaded}");
    proxy.sluice.wait_for("reloaded in place");

    // The raw session's next request is refused on the same connection, which stays open.
    for value in ["raw-after", "raw-again"] {
        assert_eq!(
            produce_raw(&mut raw, &["orders"], value).unwrap(),
            [("orders".to_owned(), TOPIC_AUTHORIZATION_FAILED)]
        );
    }
    // So is the producer's next send, by the same process: no successor took over.
    let (err, _) = alice
        .send(
            FutureRecord::to("orders").key("k").payload("after"),
            KAFKA_STEP,
        )
        .await
        .expect_err("a send after the rule was removed");
    assert_eq!(
        err.rdkafka_error_code(),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed),
        "{err}"
    );
    assert_eq!(sluice_tests::process::wait_for_pid_file(&pid_file), first);
    assert_eq!(
        proxy.metric("sluice_upgrades_total{outcome=\"succeeded\"}"),
        1
    );
    let stored = stored(&mock, "orders");
    assert!(stored.contains(&"raw-before".to_owned()), "{stored:?}");
    assert!(
        !stored
            .iter()
            .any(|value| value.contains("after") || value.contains("again")),
        "{stored:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_rule_follows_the_client_address_haproxy_sends() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("orders", 1, 1).unwrap();
    let users = users_file("acl-source-users.toml", &[ALICE]);
    let rules = "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"orders\"\n\
                 operations = [\"write\"]\nsource = \"10.0.0.0/24\"\n";
    let (listener, _) = authorized_listener("acl-source", &users, rules);
    let listener = format!(
        "proxy_protocol = \"optional\"\nproxy_protocol_trusted = [\"127.0.0.1\"]\n{listener}\n\
         audit_allows = true\n"
    );
    let trail = sluice_tests::process::temp_path("acl-source-audit.jsonl");
    let _ = std::fs::remove_file(&trail);
    let tables = format!(
        "{}\n[audit]\nsink = \"file\"\npath = \"{}\"\nevents = [\"authorization\"]\n",
        cluster_toml("main", &mock),
        trail.display()
    );
    let proxy = Proxy::start("acl-source.toml", &listener, &tables);
    let bootstrap = SocketAddr::from(([127, 0, 0, 1], proxy.bootstrap));
    let inside = HaProxy::start_with(
        bootstrap,
        SendProxy::V2,
        "tcp-request connection set-src ipv4(10.0.0.7)",
    );
    let outside = HaProxy::start_with(
        bootstrap,
        SendProxy::V2,
        "tcp-request connection set-src ipv4(10.9.9.9)",
    );
    let mut from_inside = raw_alice(inside.addr().port());
    let mut from_outside = raw_alice(outside.addr().port());
    assert_eq!(
        produce_raw(&mut from_inside, &["orders"], "inside").unwrap(),
        [("orders".to_owned(), 0)]
    );
    assert_eq!(
        produce_raw(&mut from_outside, &["orders"], "outside").unwrap(),
        [("orders".to_owned(), TOPIC_AUTHORIZATION_FAILED)]
    );
    assert_eq!(stored(&mock, "orders"), ["inside"]);
    let line = proxy
        .sluice
        .find_where("authorization denied", "acl.name", "orders");
    assert!(
        line["client.addr"]
            .as_str()
            .unwrap()
            .starts_with("10.9.9.9:"),
        "{line}"
    );
    // The audit trail: the allow (audit_allows) from 10.0.0.7 with its rule, the denial from
    // 10.9.9.9 with none, both valid against the schema.
    drop((from_inside, from_outside));
    let status = proxy.sluice.terminate();
    assert!(status.success(), "{status:?}");
    let lines = sluice_tests::audit_schema::assert_valid_file(&trail);
    let decided = |client: &str, outcome: &str| {
        lines.iter().find(|line| {
            line["event"] == "authorization"
                && line["authorization"]["outcome"] == outcome
                && line["authorization"]["name"] == "orders"
                && line["authorization"]["operation"] == "write"
                && line["session"]["principal"] == "alice"
                && line["session"]["client_addr"]
                    .as_str()
                    .is_some_and(|addr| addr.starts_with(client))
        })
    };
    let allowed = decided("10.0.0.7:", "allowed").unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(
        allowed["authorization"]["rule"]
            .as_str()
            .unwrap()
            .starts_with("rule[0]: allow alice topic"),
        "{allowed}"
    );
    assert_eq!(allowed["action"], "allow");
    let denied = decided("10.9.9.9:", "denied").unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(denied["authorization"]["rule"], serde_json::Value::Null);
    assert_eq!(denied["authorization"]["api"], "Produce");
}

/// A Sluice with a port-per-broker listener (with `listener` added) in front of `tansu`
/// (node 111); returns it and the bootstrap address.
pub(crate) fn gateway_to_tansu(
    name: &str,
    tansu: SocketAddr,
    listener: &str,
) -> (sluice_tests::process::Running, String) {
    let bootstrap = sluice_tests::kafka_wire::free_port_block(sluice_tests::tansu::NODE_ID + 1);
    let config = format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n\n\
         [[listener]]\nname = \"kafka\"\nbind = \"127.0.0.1:{bootstrap}\"\nprotocol = \"kafka\"\n\
         cluster = \"main\"\ngateway = \"port-per-broker\"\nadvertised_host = \"127.0.0.1\"\n\
         broker_port_start = {start}\nmax_brokers = {brokers}\n{listener}\n\n\
         [cluster.main]\nbackends = [\"{tansu}\"]\n",
        start = bootstrap + 1,
        brokers = sluice_tests::tansu::NODE_ID + 1,
    );
    let sluice = crate::SLUICE.run_with(&config, name, &[], "info");
    sluice.wait_for("sluice started");
    (sluice, format!("127.0.0.1:{bootstrap}"))
}

/// An admin client of `bootstrap`, as alice.
fn alice_admin(
    bootstrap: &str,
) -> rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> {
    let mut settings = ClientConfig::new();
    settings.set("bootstrap.servers", bootstrap);
    for (key, value) in sasl_client("SCRAM-SHA-256", ALICE) {
        settings.set(key, value);
    }
    settings.create().unwrap()
}

/// The topics tansu holds, asked directly.
fn tansu_topics(tansu: SocketAddr) -> BTreeSet<String> {
    tokio::task::block_in_place(|| {
        let direct: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", tansu.to_string())
            .create()
            .unwrap();
        let metadata = direct.fetch_metadata(None, KAFKA_STEP).unwrap();
        metadata
            .topics()
            .iter()
            .map(|topic| topic.name().to_owned())
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_client_is_refused_only_the_topics_it_may_not_create_or_delete() {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};

    let tansu = sluice_tests::tansu::Tansu::start();
    let users = users_file("acl-admin-users.toml", &[ALICE]);
    let rules = "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"team-\"\n\
                 pattern = \"prefixed\"\noperations = [\"create\", \"delete\", \"describe\"]\n";
    let (listener, _) = authorized_listener("acl-admin", &users, rules);
    let (_sluice, bootstrap) = gateway_to_tansu("acl-admin.toml", tansu.addr(), &listener);
    let admin = alice_admin(&bootstrap);
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(20)));
    let topic = |name| NewTopic::new(name, 1, TopicReplication::Fixed(1));
    let created = admin
        .create_topics(
            &[topic("team-a"), topic("other"), topic("team-b")],
            &options,
        )
        .await
        .unwrap();
    assert_eq!(
        created,
        [
            Ok("team-a".to_owned()),
            Err((
                "other".to_owned(),
                RDKafkaErrorCode::TopicAuthorizationFailed
            )),
            Ok("team-b".to_owned()),
        ]
    );
    let deleted = admin
        .delete_topics(&["other", "team-b"], &options)
        .await
        .unwrap();
    assert_eq!(
        deleted,
        [
            Err((
                "other".to_owned(),
                RDKafkaErrorCode::TopicAuthorizationFailed
            )),
            Ok("team-b".to_owned()),
        ]
    );
    // The broker holds what was allowed, and only that.
    let names = tansu_topics(tansu.addr());
    assert!(names.contains("team-a"), "{names:?}");
    assert!(
        !names.contains("other") && !names.contains("team-b"),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_api_answers_with_the_apis_error_and_keeps_the_session() {
    use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};

    let tansu = sluice_tests::tansu::Tansu::start();
    let users = users_file("deny-api-users.toml", &[ALICE]);
    let listener = format!(
        "{}\n\n[[listener.stage]]\nkind = \"deny_api\"\napis = [\"DeleteTopics\"]\n",
        terminate_with(&users)
    );
    let (sluice, bootstrap) = gateway_to_tansu("deny-api.toml", tansu.addr(), &listener);
    let admin = alice_admin(&bootstrap);
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(20)));
    let created = admin
        .create_topics(
            &[NewTopic::new("kept", 1, TopicReplication::Fixed(1))],
            &options,
        )
        .await
        .unwrap();
    assert_eq!(created, [Ok("kept".to_owned())]);
    // Twice on the same admin client: the first refusal left its connection open.
    for _ in 0..2 {
        let deleted = admin.delete_topics(&["kept"], &options).await.unwrap();
        assert_eq!(
            deleted,
            [Err((
                "kept".to_owned(),
                RDKafkaErrorCode::TopicAuthorizationFailed
            ))]
        );
    }
    let closed_by_stage = sluice
        .text_lines()
        .iter()
        .filter(|line| line.contains("stage_closed"))
        .count();
    assert_eq!(closed_by_stage, 0, "deny_api closed a session");
    assert!(tansu_topics(tansu.addr()).contains("kept"));
}
