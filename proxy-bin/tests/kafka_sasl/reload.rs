//! The users file changes under a running proxy, without a signal: a user `sluice user add`
//! adds authenticates (with librdkafka), a user `sluice user remove` removes is refused while
//! their session already authenticated goes on, and a broken file keeps the previous users.
//! Each wait is for the proxy's own log line, bounded; no fixed sleep.

use std::io::Write as _;
use std::process::Command;

use kafka_protocol::messages::{ApiKey, MetadataRequest};
use kafka_protocol::protocol::Encodable;
use rdkafka::mocking::MockCluster;
use sluice_tests::kafka_wire::{frame, read_frame};

use crate::clients::{produce, producer};
use crate::hardening::RawSasl;
use crate::{
    ALICE, BOB, Proxy, SLUICE, add_user, cluster_toml, sasl_client, terminate_with, users_file,
};

/// Kafka's `SASL_AUTHENTICATION_FAILED`.
const AUTHENTICATION_FAILED: i16 = 58;

/// Waits for the proxy's next reload of `users` and checks what it logged.
fn reloaded(proxy: &Proxy, users: &std::path::Path, count: u64) {
    let line = proxy.sluice.wait_for("users file reloaded");
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["file"], users.display().to_string(), "{line}");
    assert_eq!(line["users"], count, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_added_and_removed_in_a_running_proxy_count_without_a_signal() {
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("reloaded", 1, 1).unwrap();
    let users = users_file("sasl-users-reload.toml", &[ALICE]);
    let proxy = Proxy::start(
        "sasl-reload.toml",
        &terminate_with(&users),
        &cluster_toml("main", &mock),
    );
    assert_eq!(
        RawSasl::plain(proxy.bootstrap, BOB.0, BOB.1).unwrap(),
        AUTHENTICATION_FAILED,
        "bob is not in the file yet"
    );
    // alice authenticates before anything changes, and keeps her session.
    let mut alice = RawSasl::connect(proxy.bootstrap);
    assert_eq!(alice.handshake("PLAIN"), 0);
    let token = format!("\0{}\0{}", ALICE.0, ALICE.1);
    assert_eq!(alice.authenticate(token.as_bytes()).unwrap().error_code, 0);

    // The listener knows the cluster's one broker.
    proxy.wait_discovered();
    assert_eq!(
        proxy.metric("sluice_kafka_brokers{listener=\"kafka\",cluster=\"main\"} "),
        1
    );
    let reloads = |outcome: &str| {
        proxy.metric(&format!(
            "sluice_users_reloads_total{{file=\"{}\",outcome=\"{outcome}\"}} ",
            users.display()
        ))
    };
    assert_eq!((reloads("succeeded"), reloads("failed")), (0, 0));

    // Added while running: a real client authenticates as bob and produces.
    add_user(&users, BOB, &[]);
    reloaded(&proxy, &users, 2);
    // (`sluice user add` writes the file once per mechanism: one reload or two.)
    assert!(reloads("succeeded") >= 1, "{}", proxy.metrics());
    assert_eq!(reloads("failed"), 0);
    let (bob, _errors) = producer(
        &proxy.bootstrap_servers(),
        &sasl_client("SCRAM-SHA-512", BOB),
    );
    produce(&bob, "reloaded", "bob", 10).await;
    drop(bob);

    // Removed while running: alice's next login is refused ...
    let out = Command::new(SLUICE)
        .args(["user", "remove", "--users"])
        .arg(&users)
        .arg(ALICE.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    reloaded(&proxy, &users, 1);
    assert_eq!(
        RawSasl::plain(proxy.bootstrap, ALICE.0, ALICE.1).unwrap(),
        AUTHENTICATION_FAILED,
        "a removed user logged in"
    );
    // ... while the session she authenticated before is still served.
    let mut metadata = bytes::BytesMut::new();
    MetadataRequest::default()
        .with_topics(None)
        .encode(&mut metadata, 4)
        .unwrap();
    alice
        .stream
        .write_all(&frame(ApiKey::Metadata as i16, 4, 77, &metadata))
        .unwrap();
    let answer = read_frame(&mut alice.stream).unwrap();
    assert_eq!(
        &answer[..4],
        &77i32.to_be_bytes(),
        "not the Metadata answer"
    );

    // Broken (an iteration count below Kafka's minimum): a WARN naming the file and the key,
    // and bob still authenticates.
    // Replaced whole, as `sluice user` does: a file written in place may be read half done.
    let broken = users.with_extension("broken");
    std::fs::write(
        &broken,
        "[users.bob.SCRAM-SHA-256]\nsalt = \"AA==\"\niterations = 10\n",
    )
    .unwrap();
    std::fs::rename(&broken, &users).unwrap();
    let line = proxy
        .sluice
        .wait_for("users file reload failed; keeping the previous users");
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["file"], users.display().to_string(), "{line}");
    let error = line["error"].as_str().unwrap();
    assert!(
        error.contains("users.bob.SCRAM-SHA-256.iterations"),
        "{line}"
    );
    assert_eq!(RawSasl::plain(proxy.bootstrap, BOB.0, BOB.1).unwrap(), 0);
}
