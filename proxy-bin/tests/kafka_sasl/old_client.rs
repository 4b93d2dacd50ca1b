//! An old client and a new one on the same SASL-terminating listener: Debian's `kcat`, which
//! links the system's librdkafka (2.0.2 on bookworm), and the vendored librdkafka of the
//! `rdkafka` crate produce and consume, each reading what the other wrote, with PLAIN,
//! SCRAM-SHA-256 and SCRAM-SHA-512.
//!
//! librdkafka 2.0.2 turns its SASL handshake on only when ApiVersions offers SaslHandshake v0
//! (it then sends v1); an answer of 1..1 made it fail every mechanism with "SASL Handshake not
//! supported by broker". `scripts/install-deps.sh` installs kcat; without it this test fails.

use std::collections::BTreeSet;
use std::process::Stdio;

use rdkafka::mocking::MockCluster;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::clients::{consume, consumer, keys, produce, producer};
use crate::{
    ALICE, KAFKA_STEP, Proxy, close_with, cluster_toml, sasl_client, terminate_with, users_file,
};

/// Debian's kcat: the path the `kcat` package installs, not one found on `PATH` (a kcat built
/// with a newer librdkafka would not test an old client).
const KCAT: &str = "/usr/bin/kcat";

/// How many messages each client produces per mechanism.
const COUNT: usize = 50;

/// The librdkafka version kcat runs with, from `kcat -V` run as every other kcat here.
async fn kcat_librdkafka_version() -> String {
    let (text, _) = kcat(&["-V".to_owned()], b"").await;
    text.split("librdkafka ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no librdkafka version in `{KCAT} -V`: {text}"))
        .to_owned()
}

/// kcat's arguments to reach the proxy as `user` with `mechanism`.
fn kcat_sasl(proxy: &Proxy, mechanism: &str, (user, password): (&str, &str)) -> Vec<String> {
    let mut args = vec!["-b".to_owned(), proxy.bootstrap_servers()];
    for setting in [
        "security.protocol=SASL_PLAINTEXT".to_owned(),
        format!("sasl.mechanism={mechanism}"),
        format!("sasl.username={user}"),
        format!("sasl.password={password}"),
    ] {
        args.push("-X".to_owned());
        args.push(setting);
    }
    args
}

/// Runs kcat with `args`, `input` on its standard input; its standard output and error once it
/// exited successfully, within one Kafka step (killed past it).
async fn kcat(args: &[String], input: &[u8]) -> (String, String) {
    let mut child = Command::new(KCAT)
        .args(args)
        // Cargo puts the build directory of the vendored librdkafka on the library path of
        // tests: kcat would load that one instead of the system's.
        .env_remove("LD_LIBRARY_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run {KCAT} ({err}): this test needs Debian's kcat package \
                 (scripts/install-deps.sh installs it; or `apt-get install kcat`)"
            )
        });
    let mut stdin = child.stdin.take().unwrap();
    let run = async move {
        stdin.write_all(input).await.unwrap();
        drop(stdin);
        child.wait_with_output().await.unwrap()
    };
    let out = tokio::time::timeout(KAFKA_STEP, run)
        .await
        .unwrap_or_else(|_| panic!("kcat {args:?} did not finish within {KAFKA_STEP:?}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "kcat {args:?} failed ({}):\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_kcat_and_the_vendored_librdkafka_produce_and_consume_through_a_terminating_proxy() {
    let version = kcat_librdkafka_version().await;
    assert!(
        version.starts_with("2.0."),
        "{KCAT} runs librdkafka {version}, not Debian bookworm's 2.0.x: it would not test an \
         old client"
    );
    let mock = MockCluster::new(3).unwrap();
    let users = users_file("sasl-users-old-client.toml", &[ALICE]);
    let proxy = Proxy::start(
        "sasl-old-client.toml",
        &terminate_with(&users),
        &cluster_toml("main", &mock),
    );
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let topic = format!("old-{}", mechanism.to_lowercase());
        mock.create_topic(&topic, 3, 1).unwrap();
        let sasl = kcat_sasl(&proxy, mechanism, ALICE);
        let successes = || proxy.sasl(mechanism, "initial", "success");

        // The old client produces; its own debug log says which handshake it sent.
        let before = successes();
        let mut produce_args = sasl.clone();
        produce_args.extend(
            ["-P", "-t", topic.as_str(), "-K", ":", "-d", "protocol"]
                .map(str::to_owned)
                .into_iter()
                .chain(["-X".to_owned(), "message.timeout.ms=30000".to_owned()]),
        );
        let input: String = keys("old", COUNT)
            .iter()
            .map(|key| format!("{key}:{key}\n"))
            .collect();
        let (_, log) = kcat(&produce_args, input.as_bytes()).await;
        assert!(
            log.contains("Sent SaslHandshakeRequest (v1"),
            "librdkafka {version} did not send a SaslHandshake v1:\n{log}"
        );
        assert!(!log.contains("Delivery failed"), "{log}");
        assert!(successes() > before, "kcat's producer did not authenticate");

        // The new client produces too.
        let settings = sasl_client(mechanism, ALICE);
        let (producer, _errors) = producer(&proxy.bootstrap_servers(), &settings);
        produce(&producer, &topic, "new", COUNT).await;
        drop(producer);
        let all: BTreeSet<String> = keys("old", COUNT)
            .into_iter()
            .chain(keys("new", COUNT))
            .collect();

        // Each consumes what both wrote.
        let before = successes();
        let count = all.len().to_string();
        let mut consume_args = sasl.clone();
        consume_args.extend(
            [
                "-C",
                "-t",
                topic.as_str(),
                "-o",
                "beginning",
                "-e",
                "-c",
                count.as_str(),
                "-f",
                "%k=%s\\n",
            ]
            .map(str::to_owned),
        );
        let (out, log) = kcat(&consume_args, b"").await;
        let mut seen = BTreeSet::new();
        for line in out.lines() {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("kcat printed {line:?}; stderr:\n{log}"));
            assert_eq!(key, value, "{line}");
            seen.insert(key.to_owned());
        }
        assert_eq!(seen, all, "kcat consumed other messages; stderr:\n{log}");
        assert!(successes() > before, "kcat's consumer did not authenticate");
        let consumer = consumer(&proxy.bootstrap_servers(), &format!("g-{topic}"), &settings);
        consume(&consumer, &topic, &all).await;
        drop(consumer);

        assert_eq!(
            proxy.sasl(mechanism, "initial", "failure"),
            0,
            "{mechanism} failures:\n{}",
            proxy.metrics()
        );
    }
    let line = close_with(&proxy.sluice, "client_closed");
    assert_eq!(line["auth.principal"], "alice", "{line}");
}
