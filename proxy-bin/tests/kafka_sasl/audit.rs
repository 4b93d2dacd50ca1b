//! The audit stream through the real binary: a librdkafka client behind a real HAProxy
//! (`send-proxy-v2`, standing for a client at 10.0.0.7) authenticates, produces through a
//! quota and fails a login; the file sink's lines all validate against docs/audit.schema.json,
//! and the connection and authentication events name the client HAProxy saw, not HAProxy.
//! librdkafka's admin client creates and deletes topics on tansu through Sluice, and the admin
//! events carry the broker's outcome per topic. The Kafka sink delivers to a topic, drops and
//! counts while its cluster is down, and resumes with an `audit_dropped` line.

use std::net::SocketAddr;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::FutureRecord;
use sluice_tests::audit_schema::assert_valid_file;
use sluice_tests::haproxy::{HaProxy, SendProxy};
use sluice_tests::process::temp_path;

use crate::clients::{produce, producer, wait_client_error};
use crate::{ALICE, Proxy, cluster_toml, sasl_client, terminate_with, users_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_behind_haproxy_leaves_a_valid_trail_that_names_it() {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("audited", 3, 1).unwrap();
    let users = users_file("audit-users.toml", &[ALICE]);
    let trail = temp_path("audit-trail.jsonl");
    let _ = std::fs::remove_file(&trail);
    // PROXY headers from HAProxy on the bootstrap port; the broker ports are dialled directly.
    let listener = format!(
        "proxy_protocol = \"optional\"\nproxy_protocol_trusted = [\"127.0.0.1\"]\n{}\n\n\
         [[listener.stage]]\nkind = \"quota\"\nper = \"principal\"\n\
         produce_bytes_per_second = \"1KiB\"\n",
        terminate_with(&users)
    );
    let tables = format!(
        "{}\n[audit]\nsink = \"file\"\npath = \"{}\"\n\n\
         [shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"2s\"\n",
        cluster_toml("main", &mock),
        trail.display()
    );
    let proxy = Proxy::start("audit.toml", &listener, &tables);
    let bootstrap = SocketAddr::from(([127, 0, 0, 1], proxy.bootstrap));
    let haproxy = HaProxy::start_with(
        bootstrap,
        SendProxy::V2,
        "tcp-request connection set-src ipv4(10.0.0.7)",
    );
    let through_haproxy = haproxy.addr().to_string();

    // Alice authenticates and produces past her quota.
    let (alice, _) = producer(&through_haproxy, &sasl_client("SCRAM-SHA-256", ALICE));
    produce(&alice, "audited", "k", 20).await;
    drop(alice);
    // A wrong password.
    let (mallory, errors) = producer(
        &through_haproxy,
        &sasl_client("SCRAM-SHA-256", ("alice", "not-her-password")),
    );
    let _ = mallory
        .send(
            FutureRecord::to("audited").key("x").payload("x"),
            Duration::from_secs(2),
        )
        .await;
    wait_client_error(&errors, "Authentication failed");
    drop(mallory);

    // SIGTERM: the queue is written out before the process exits.
    let status = proxy.sluice.terminate();
    assert!(status.success(), "{status:?}");
    let lines = assert_valid_file(&trail);
    let from_client = |line: &&serde_json::Value| {
        line["session"]["client_addr"]
            .as_str()
            .is_some_and(|addr| addr.starts_with("10.0.0.7:"))
            && line["session"]["peer_addr"]
                .as_str()
                .is_some_and(|addr| addr.starts_with("127.0.0.1:"))
    };
    let of = |event: &str, action: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|line| line["event"] == event && line["action"] == action)
            .collect()
    };
    let succeeded = of("authentication", "success");
    assert!(
        succeeded
            .iter()
            .any(|line| from_client(line) && line["authentication"]["principal"] == "alice"),
        "no success from 10.0.0.7 for alice: {succeeded:#?}"
    );
    let failed = of("authentication", "failure");
    assert!(
        failed.iter().any(from_client),
        "no failure from 10.0.0.7: {failed:#?}"
    );
    assert!(
        failed
            .iter()
            .all(|line| !line.to_string().contains("not-her-password")),
        "a password in the trail"
    );
    let opened = of("connection", "open");
    assert!(opened.iter().any(from_client), "{opened:#?}");
    let closed = of("connection", "close");
    let bootstrap_close = closed
        .iter()
        .find(|line| from_client(line) && line["session"]["principal"] == "alice")
        .unwrap_or_else(|| panic!("no close of alice's bootstrap session: {closed:#?}"));
    assert!(bootstrap_close["connection"]["bytes_from_client"].as_u64() > Some(0));
    // The sessions to the broker ports were dialled directly: their client is the peer.
    assert!(
        closed
            .iter()
            .any(|line| line["session"]["client_addr"] == line["session"]["peer_addr"]),
        "{closed:#?}"
    );
    let throttled = of("quota", "throttle");
    assert!(
        throttled
            .iter()
            .any(|line| line["quota"]["entity"] == "alice" && line["quota"]["quota"] == "produce"),
        "{throttled:#?}"
    );
}

/// A Sluice with a port-per-broker listener in front of `tansu` (node 111) and an `[audit]`
/// file sink of admin events; returns it and the bootstrap address.
fn audited_gateway_to_tansu(
    name: &str,
    tansu: SocketAddr,
    trail: &std::path::Path,
) -> (sluice_tests::process::Running, u16) {
    let bootstrap = sluice_tests::kafka_wire::free_port_block(sluice_tests::tansu::NODE_ID + 1);
    let config = format!(
        "[[listener]]\nname = \"kafka\"\nbind = \"127.0.0.1:{bootstrap}\"\nprotocol = \"kafka\"\n\
         cluster = \"main\"\ngateway = \"port-per-broker\"\nadvertised_host = \"127.0.0.1\"\n\
         broker_port_start = {start}\nmax_brokers = {brokers}\n\n\
         [cluster.main]\nbackends = [\"{tansu}\"]\n\n\
         [audit]\nsink = \"file\"\npath = \"{trail}\"\nevents = [\"admin\"]\n\n\
         [shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"2s\"\n",
        start = bootstrap + 1,
        brokers = sluice_tests::tansu::NODE_ID + 1,
        trail = trail.display(),
    );
    let sluice = crate::SLUICE.run_with(&config, name, &[], "info");
    sluice.wait_for("sluice started");
    (sluice, bootstrap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_requests_of_a_real_admin_client_are_audited_with_the_brokers_outcome() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;

    let tansu = sluice_tests::tansu::Tansu::start();
    let trail = temp_path("audit-admin.jsonl");
    let _ = std::fs::remove_file(&trail);
    let (sluice, bootstrap) = audited_gateway_to_tansu("audit-admin.toml", tansu.addr(), &trail);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{bootstrap}"))
        .create()
        .unwrap();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(20)));
    let topic = |name| NewTopic::new(name, 1, TopicReplication::Fixed(1));
    let created = admin
        .create_topics(&[topic("audit-a"), topic("audit-b")], &options)
        .await
        .unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    // Again: the broker refuses the one that exists.
    let again = admin
        .create_topics(&[topic("audit-a")], &options)
        .await
        .unwrap();
    assert!(again[0].is_err(), "{again:?}");
    let deleted = admin.delete_topics(&["audit-b"], &options).await.unwrap();
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");
    drop(admin);

    let status = sluice.terminate();
    assert!(status.success(), "{status:?}");
    let lines = assert_valid_file(&trail);
    let admin_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["event"] == "admin")
        .collect();
    let outcome = |api: &str, topic: &str| -> Vec<i64> {
        admin_lines
            .iter()
            .filter(|line| line["admin"]["api"] == api)
            .flat_map(|line| line["admin"]["resources"].as_array().unwrap().iter())
            .filter(|resource| resource["type"] == "topic" && resource["name"] == topic)
            .map(|resource| resource["error_code"].as_i64().unwrap())
            .collect()
    };
    // audit-a created, then refused with TOPIC_ALREADY_EXISTS (36); audit-b created, deleted.
    assert_eq!(
        outcome("CreateTopics", "audit-a"),
        [0, 36],
        "{admin_lines:#?}"
    );
    assert_eq!(outcome("CreateTopics", "audit-b"), [0], "{admin_lines:#?}");
    assert_eq!(outcome("DeleteTopics", "audit-b"), [0], "{admin_lines:#?}");
    assert!(
        admin_lines
            .iter()
            .all(|line| line["admin"]["answered"] == true),
        "{admin_lines:#?}"
    );
}

/// One line through `addr` and back.
fn echo_round_trip(addr: SocketAddr, n: u32) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(sluice_tests::STEP_TIMEOUT))
        .unwrap();
    writeln!(stream, "line {n}").unwrap();
    let mut echoed = String::new();
    BufReader::new(&stream).read_line(&mut echoed).unwrap();
    assert_eq!(echoed, format!("line {n}\n"));
}

/// Reads the audit lines in the topic, directly from the cluster, into `seen` until `until`
/// holds (at most 60 s); on a timeout, fails with the lines and Sluice's audit log lines.
fn audit_topic(
    consumer: &rdkafka::consumer::BaseConsumer,
    sluice: &sluice_tests::process::Running,
    seen: &mut Vec<String>,
    until: impl Fn(&[String]) -> bool,
) {
    use rdkafka::message::Message as _;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // Bounded by the deadline; each poll waits at most 200 ms.
    while !until(seen) {
        if std::time::Instant::now() >= deadline {
            let log: Vec<String> = sluice
                .text_lines()
                .into_iter()
                .filter(|line| {
                    line.contains("audit") || line.contains("session") || line.contains("WARN")
                })
                .collect();
            // What the broker holds: fewer records than events means the sink lost some.
            let marks = rdkafka::consumer::Consumer::fetch_watermarks(
                consumer,
                "sluice-audit",
                0,
                Duration::from_secs(5),
            );
            panic!(
                "the topic did not get the expected events: {seen:#?}\nwatermarks {marks:?}\nSluice's audit and session lines: {log:#?}"
            );
        }
        // Errors are the consumer's view of the cluster going down and up: it reconnects.
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let value = message.payload().unwrap();
            seen.push(String::from_utf8(value.to_vec()).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_sink_delivers_drops_while_its_cluster_is_down_and_resumes() {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

    let audit_cluster = MockCluster::new(1).unwrap();
    audit_cluster.create_topic("sluice-audit", 1, 1).unwrap();
    let echo = sluice_tests::process::echo_backend();
    let config = format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n\n\
         [[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"echo\"\n\n\
         [cluster.echo]\nbackends = [\"{echo}\"]\n\n{}\n\
         [audit]\nsink = \"kafka\"\ncluster = \"audit\"\ntopic = \"sluice-audit\"\n\
         events = [\"connection\"]\n\n\
         [shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"2s\"\n",
        cluster_toml("audit", &audit_cluster)
    );
    let sluice = crate::SLUICE.run_with(&config, "audit-kafka.toml", &[], "info");
    sluice.wait_for("sluice started");
    let addr = sluice.listening_addr();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", audit_cluster.bootstrap_servers())
        .set("group.id", "audit-reader")
        .create()
        .unwrap();
    let mut partition = TopicPartitionList::new();
    partition
        .add_partition_offset("sluice-audit", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&partition).unwrap();
    let closes = |lines: &[String]| {
        lines
            .iter()
            .filter(|line| line.contains("\"action\":\"close\""))
            .count()
    };

    // Delivered: three sessions, an open and a close each.
    let mut seen = Vec::new();
    tokio::task::block_in_place(|| {
        for n in 0..3 {
            echo_round_trip(addr, n);
        }
        audit_topic(&consumer, &sluice, &mut seen, |lines| closes(lines) >= 3);
    });
    sluice_tests::audit_schema::validate(&seen.join("\n"))
        .unwrap_or_else(|problems| panic!("{problems}"));

    // The cluster down: sessions go on; their events are dropped and counted.
    audit_cluster.broker_down(1).unwrap();
    let admin = sluice.admin_addr();
    let dropped = || {
        let metrics = sluice_tests::process::http_get(admin, "/metrics").1;
        metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix("sluice_audit_dropped_total ")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
    };
    tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut n = 10;
        // Bounded by the deadline: a session every 200 ms until a drop is counted.
        while dropped() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no drop counted while the cluster was down"
            );
            echo_round_trip(addr, n);
            n += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
    });

    // Back: events flow again, after one line that reports the drops.
    audit_cluster.broker_up(1).unwrap();
    let before = seen.len();
    tokio::task::block_in_place(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut n = 100;
        // Bounded by the deadline: a session every 500 ms until the report and a later close
        // arrived (the sink retries after a backoff of at most 10 s).
        loop {
            echo_round_trip(addr, n);
            n += 1;
            let later = &seen[before..];
            let reported = later
                .iter()
                .position(|line| line.contains("\"event\":\"audit_dropped\""));
            if let Some(at) = reported
                && later[at..]
                    .iter()
                    .any(|line| line.contains("\"action\":\"close\""))
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no events after the cluster returned: {later:#?}"
            );
            let now = seen.len();
            audit_topic(&consumer, &sluice, &mut seen, |lines| lines.len() > now);
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    sluice_tests::audit_schema::validate(&seen.join("\n"))
        .unwrap_or_else(|problems| panic!("{problems}"));
    let status = sluice.terminate();
    assert!(status.success(), "{status:?}");
}
