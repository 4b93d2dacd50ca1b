//! Many tenants on one cluster through the real binary (`kind = "tenant"`, `prefix =
//! "{principal}."`): alice and bob (SCRAM-terminated) each use a topic `orders` and a group `g`
//! and see only their own, in both group protocols and with a regex subscription; transactions
//! with one transactional id commit and abort per tenant; an admin client creates, lists and
//! deletes its own topics on tansu and never sees the other's or the internal ones. The broker,
//! asked directly, holds the prefixed names.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureRecord, Producer};

use crate::clients::{Errors, produce, producer};
use crate::{ALICE, BOB, KAFKA_STEP, Proxy, cluster_toml, sasl_client, terminate_with, users_file};

const TENANT: &str = "\n[[listener.stage]]\nkind = \"tenant\"\nprefix = \"{principal}.\"\n\
                      tenants = [\"alice\", \"bob\"]\n";

/// A consumer of `who` in `group` with the given group protocol and isolation level.
fn tenant_consumer(
    bootstrap: &str,
    who: (&str, &str),
    group: &str,
    protocol: &str,
    isolation: &str,
) -> StreamConsumer<Errors> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("group.protocol", protocol)
        .set("isolation.level", isolation)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    if protocol == "classic" {
        config.set("session.timeout.ms", "6000");
    }
    for (key, value) in sasl_client("SCRAM-SHA-256", who) {
        config.set(key, value);
    }
    config.create_with_context(Errors::default()).unwrap()
}

/// Reads until `count` messages arrived or `quiet` passed without one (bounded by
/// [`KAFKA_STEP`]); returns the payloads.
async fn read(
    consumer: &StreamConsumer<Errors>,
    count: usize,
    quiet: Duration,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let deadline = std::time::Instant::now() + KAFKA_STEP;
    while seen.len() < count && std::time::Instant::now() < deadline {
        match tokio::time::timeout(quiet, consumer.recv()).await {
            Ok(Ok(message)) => {
                seen.insert(String::from_utf8(message.payload().unwrap().to_vec()).unwrap());
            }
            Ok(Err(err)) => panic!("consumer error: {err}"),
            Err(_) if seen.len() >= count => break,
            Err(_) => {}
        }
    }
    seen
}

fn payloads(prefix: &str, count: usize) -> BTreeSet<String> {
    (0..count).map(|n| format!("{prefix}{n}")).collect()
}

/// The topics the cluster holds, asked directly.
fn broker_topics(bootstrap: &str) -> BTreeSet<String> {
    tokio::task::block_in_place(|| {
        let direct: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
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

/// The topics a tenant's Metadata for every topic lists, through the proxy.
fn tenant_topics(bootstrap: &str, who: (&str, &str)) -> BTreeSet<String> {
    tokio::task::block_in_place(|| {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", bootstrap);
        for (key, value) in sasl_client("SCRAM-SHA-256", who) {
            config.set(key, value);
        }
        let client: BaseConsumer = config.create().unwrap();
        let metadata = client.fetch_metadata(None, KAFKA_STEP).unwrap();
        metadata
            .topics()
            .iter()
            .map(|topic| topic.name().to_owned())
            .collect()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_share_a_topic_name_and_a_group_and_see_only_their_own() {
    let mock = MockCluster::new(3).unwrap();
    for topic in [
        "alice.orders",
        "bob.orders",
        "alice.ordinals",
        "bob.ordnance",
    ] {
        mock.create_topic(topic, 3, 1).unwrap();
    }
    let users = users_file("tenant-users.toml", &[ALICE, BOB]);
    let listener = format!("{}\n{TENANT}", terminate_with(&users));
    let proxy = Proxy::start("tenant.toml", &listener, &cluster_toml("main", &mock));
    let bootstrap = proxy.bootstrap_servers();

    for who in [ALICE, BOB] {
        let (tenant_producer, _) = producer(&bootstrap, &sasl_client("SCRAM-SHA-256", who));
        produce(&tenant_producer, "orders", who.0, 5).await;
        produce(
            &tenant_producer,
            if who.0 == "alice" {
                "ordinals"
            } else {
                "ordnance"
            },
            &format!("{}-regex-", who.0),
            2,
        )
        .await;
    }
    for who in [ALICE, BOB] {
        for protocol in ["classic", "consumer"] {
            let consumer = tenant_consumer(
                &bootstrap,
                who,
                &format!("g-{protocol}"),
                protocol,
                "read_uncommitted",
            );
            consumer.subscribe(&["orders"]).unwrap();
            let seen = read(&consumer, 5, Duration::from_secs(3)).await;
            assert_eq!(seen, payloads(who.0, 5), "{} ({protocol})", who.0);
            consumer
                .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
                .unwrap();
        }
        // KIP-848 with a regex: matches the tenant's own ord* topics, never the other's.
        let regex = tenant_consumer(&bootstrap, who, "g-regex", "consumer", "read_uncommitted");
        regex.subscribe(&["^ord.*"]).unwrap();
        let seen = read(&regex, 7, Duration::from_secs(5)).await;
        let mut expected = payloads(who.0, 5);
        expected.extend(payloads(&format!("{}-regex-", who.0), 2));
        assert_eq!(seen, expected, "{} with a regex", who.0);
    }
    assert_eq!(
        tenant_topics(&bootstrap, ALICE),
        BTreeSet::from(["orders".to_owned(), "ordinals".to_owned()])
    );
    assert_eq!(
        tenant_topics(&bootstrap, BOB),
        BTreeSet::from(["orders".to_owned(), "ordnance".to_owned()])
    );
    let held = broker_topics(&mock.bootstrap_servers());
    assert!(
        held.contains("alice.orders") && held.contains("bob.orders") && !held.contains("orders"),
        "{held:?}"
    );
    // Two groups of one name on the broker, one per tenant, each with its own offsets (the
    // broker is asked directly: librdkafka's mock has no ListGroups).
    let committed = |group: &str, topic: &str| -> i64 {
        tokio::task::block_in_place(|| {
            let direct: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", mock.bootstrap_servers())
                .set("group.id", group)
                .create()
                .unwrap();
            let mut partitions = rdkafka::TopicPartitionList::new();
            for partition in 0..3 {
                partitions.add_partition(topic, partition);
            }
            let offsets = direct.committed_offsets(partitions, KAFKA_STEP).unwrap();
            offsets
                .elements()
                .iter()
                .filter_map(|element| element.offset().to_raw())
                .filter(|offset| *offset > 0)
                .sum()
        })
    };
    for group in ["g-classic", "g-consumer"] {
        assert_eq!(
            committed(&format!("alice.{group}"), "alice.orders"),
            5,
            "{group}"
        );
        assert_eq!(
            committed(&format!("bob.{group}"), "bob.orders"),
            5,
            "{group}"
        );
        assert_eq!(committed(group, "alice.orders"), 0, "{group} unprefixed");
    }
    // Per-tenant counters, labelled because the tenants are listed.
    assert!(
        proxy.metric("sluice_kafka_tenant_requests_total{listener=\"kafka\",tenant=\"alice\"}") > 0
    );
    assert!(
        proxy.metric("sluice_kafka_tenant_requests_total{listener=\"kafka\",tenant=\"bob\"}") > 0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_transactional_id_commits_and_aborts_per_tenant() {
    let mock = MockCluster::new(3).unwrap();
    for topic in ["alice.orders", "bob.orders"] {
        mock.create_topic(topic, 3, 1).unwrap();
    }
    let users = users_file("tenant-txn-users.toml", &[ALICE, BOB]);
    let listener = format!("{}\n{TENANT}", terminate_with(&users));
    let proxy = Proxy::start("tenant-txn.toml", &listener, &cluster_toml("main", &mock));
    let bootstrap = proxy.bootstrap_servers();
    let transactional = |who| {
        let mut settings = sasl_client("SCRAM-SHA-256", who);
        settings.push(("transactional.id".into(), "tx".into()));
        producer(&bootstrap, &settings).0
    };
    let alice = transactional(ALICE);
    let bob = transactional(BOB);
    tokio::task::block_in_place(|| {
        alice.init_transactions(KAFKA_STEP).unwrap();
        // Bob's "tx" is not alice's: his init does not fence her.
        bob.init_transactions(KAFKA_STEP).unwrap();
        alice.begin_transaction().unwrap();
        bob.begin_transaction().unwrap();
    });
    for (who, tx) in [("alice", &alice), ("bob", &bob)] {
        for n in 0..3 {
            let payload = format!("{who}-{n}");
            tx.send(
                FutureRecord::to("orders").key("k").payload(&payload),
                KAFKA_STEP,
            )
            .await
            .unwrap_or_else(|(err, _)| panic!("{payload}: {err}"));
        }
    }
    tokio::task::block_in_place(|| {
        alice.commit_transaction(KAFKA_STEP).unwrap();
        bob.abort_transaction(KAFKA_STEP).unwrap();
    });
    let committed =
        |who| tenant_consumer(&bootstrap, who, "g-committed", "classic", "read_committed");
    let alice_reads = committed(ALICE);
    alice_reads.subscribe(&["orders"]).unwrap();
    assert_eq!(
        read(&alice_reads, 3, Duration::from_secs(3)).await,
        payloads("alice-", 3)
    );
    let bob_reads = committed(BOB);
    bob_reads.subscribe(&["orders"]).unwrap();
    // librdkafka's mock neither fences a reused transactional id nor hides aborted records
    // from read_committed consumers, so what this cluster can show is that each tenant's
    // "tx" ran its own transaction to its end (the broker saw "alice.tx" and "bob.tx": one
    // "tx" would have refused bob's abort after alice's commit with an invalid state) and
    // that bob's consumer reads none of alice's records.
    let bob_seen = read(&bob_reads, 3, Duration::from_secs(3)).await;
    assert!(
        bob_seen.iter().all(|payload| payload.starts_with("bob-")),
        "{bob_seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_client_creates_lists_and_deletes_only_its_own_topics_on_tansu() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};

    let tansu = sluice_tests::tansu::Tansu::start();
    let users = users_file("tenant-admin-users.toml", &[ALICE, BOB]);
    let listener = format!("{}\n{TENANT}", terminate_with(&users));
    let (_sluice, bootstrap) =
        crate::authorization::gateway_to_tansu("tenant-admin.toml", tansu.addr(), &listener);
    let admin = |who: (&str, &str)| -> AdminClient<rdkafka::client::DefaultClientContext> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &bootstrap);
        for (key, value) in sasl_client("SCRAM-SHA-256", who) {
            config.set(key, value);
        }
        config.create().unwrap()
    };
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(20)));
    let topic = |name| NewTopic::new(name, 1, TopicReplication::Fixed(1));
    for who in [ALICE, BOB] {
        let created = admin(who)
            .create_topics(
                &[
                    topic("orders"),
                    topic(if who.0 == "alice" { "a-only" } else { "b-only" }),
                ],
                &options,
            )
            .await
            .unwrap();
        assert!(created.iter().all(Result::is_ok), "{}: {created:?}", who.0);
    }
    let held = broker_topics(&tansu.addr().to_string());
    for name in ["alice.orders", "bob.orders", "alice.a-only", "bob.b-only"] {
        assert!(held.contains(name), "{name} not in {held:?}");
    }
    assert_eq!(
        tenant_topics(&bootstrap, ALICE),
        BTreeSet::from(["orders".to_owned(), "a-only".to_owned()])
    );
    // Describe a topic's configs by its tenant name.
    let described = admin(ALICE)
        .describe_configs(
            &[rdkafka::admin::ResourceSpecifier::Topic("orders")],
            &options,
        )
        .await
        .unwrap();
    assert!(described[0].is_ok(), "{described:?}");
    // Alice deletes her orders; bob's stays, and bob cannot delete alice's a-only.
    let deleted = admin(ALICE)
        .delete_topics(&["orders"], &options)
        .await
        .unwrap();
    assert!(deleted[0].is_ok(), "{deleted:?}");
    let deleted = admin(BOB)
        .delete_topics(&["a-only"], &options)
        .await
        .unwrap();
    assert!(
        deleted[0].is_err(),
        "bob deleted alice's topic: {deleted:?}"
    );
    let held = broker_topics(&tansu.addr().to_string());
    assert!(
        !held.contains("alice.orders")
            && held.contains("bob.orders")
            && held.contains("alice.a-only"),
        "{held:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_rules_are_written_against_the_tenants_own_names() {
    let mock = MockCluster::new(3).unwrap();
    for topic in ["alice.orders", "alice.secrets"] {
        mock.create_topic(topic, 3, 1).unwrap();
    }
    let users = users_file("tenant-acl-users.toml", &[ALICE]);
    let rules = sluice_tests::process::write_config(
        "tenant-acl-rules.toml",
        "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"orders\"\n\
         operations = [\"write\"]\n",
    );
    let listener = format!(
        "{}\n\n[listener.authorization]\nrules = \"{}\"\n{TENANT}",
        terminate_with(&users),
        rules.display()
    );
    let trail = sluice_tests::process::temp_path("tenant-acl-audit.jsonl");
    let _ = std::fs::remove_file(&trail);
    let tables = format!(
        "{}\n[audit]\nsink = \"file\"\npath = \"{}\"\n",
        cluster_toml("main", &mock),
        trail.display()
    );
    let proxy = Proxy::start("tenant-acl.toml", &listener, &tables);
    let (alice, _) = producer(
        &proxy.bootstrap_servers(),
        &sasl_client("SCRAM-SHA-256", ALICE),
    );
    produce(&alice, "orders", "o", 2).await;
    let (err, _) = alice
        .send(
            FutureRecord::to("secrets").key("k").payload("v"),
            KAFKA_STEP,
        )
        .await
        .expect_err("secrets is not alice's to write");
    assert_eq!(
        err.rdkafka_error_code(),
        Some(rdkafka::error::RDKafkaErrorCode::TopicAuthorizationFailed),
        "{err}"
    );
    let denied = proxy
        .sluice
        .find_where("authorization denied", "acl.name", "secrets");
    assert_eq!(denied["auth.principal"], "alice", "{denied}");

    // The audit trail names the tenant of the denial and of the session's close.
    drop(alice);
    let status = proxy.sluice.terminate();
    assert!(status.success(), "{status:?}");
    let lines = sluice_tests::audit_schema::assert_valid_file(&trail);
    let of_alice = |event: &str| {
        lines
            .iter()
            .any(|line| line["event"] == event && line["session"]["tenant"] == "alice")
    };
    assert!(of_alice("authorization"), "{lines:#?}");
    assert!(of_alice("connection"), "{lines:#?}");
    // Alice authenticated before forwarding: every event of her sessions from the connection's
    // open on names her tenant, the first request's included.
    let untold: Vec<_> = lines
        .iter()
        .filter(|line| line["session"]["principal"] == "alice" && line["event"] != "authentication")
        .filter(|line| line["session"]["tenant"] != "alice")
        .collect();
    assert!(
        untold.is_empty(),
        "events of alice without her tenant: {untold:#?}"
    );
}
