//! SASL on Kafka listeners, through the real binary with librdkafka clients (the `rdkafka`
//! crate) and librdkafka's mock cluster: Sluice terminating PLAIN and SCRAM, routing by
//! principal, authenticating to a cluster with its own credentials (against a terminating
//! Sluice standing in for a SASL broker, as the mock has none), inspecting an exchange that
//! passes through, and KIP-368 re-authentication; and an old client, Debian's kcat with
//! librdkafka 2.0.2, next to the vendored one (`old_client`). Every wait is bounded.
//!
//! This file holds what the tests share: users and the running proxy with its metrics; the
//! clients are in `clients`.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers of this test file fail the test when the environment misbehaves"
)]

mod audit;
mod authorization;
mod clients;
mod hardening;
mod old_client;
mod quota;
mod reload;
mod routing;
mod tenant;
mod termination;
mod upstream;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::mocking::MockCluster;
use sluice_tests::kafka_wire::{free_port_block, mock_addrs};
use sluice_tests::process::{Running, SluiceBinary, http_get, write_config};

const SLUICE: SluiceBinary = SluiceBinary::new(env!("CARGO_BIN_EXE_sluice"));

/// How long any one Kafka step may take.
const KAFKA_STEP: Duration = Duration::from_secs(60);

const ALICE: (&str, &str) = ("alice", "alice-wonderland");
const BOB: (&str, &str) = ("bob", "bob-builder");
const PROXY: (&str, &str) = ("proxy", "proxy-secret");

/// A users file named `name` in the tests' config directory, written by `sluice user add` with
/// a SCRAM-SHA-256 and a SCRAM-SHA-512 credential for each user.
fn users_file(name: &str, users: &[(&str, &str)]) -> PathBuf {
    users_file_with(name, users, &[])
}

/// [`users_file`], with `args` added to each `sluice user add`.
fn users_file_with(name: &str, users: &[(&str, &str)], args: &[&str]) -> PathBuf {
    let path = write_config(name, "");
    std::fs::remove_file(&path).unwrap();
    for user in users {
        add_user(&path, *user, args);
    }
    path
}

/// `sluice user add` of `user` to the users file at `path`, a SCRAM-SHA-256 and a
/// SCRAM-SHA-512 credential, with `args` added.
fn add_user(path: &Path, (user, password): (&str, &str), args: &[&str]) {
    for mechanism in ["scram-sha-256", "scram-sha-512"] {
        let mut child = Command::new(SLUICE)
            .args(["user", "add", "--users"])
            .arg(path)
            .args(args)
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

/// A running Sluice with one port-per-broker Kafka listener named `kafka`.
struct Proxy {
    sluice: Running,
    bootstrap: u16,
}

impl Proxy {
    /// `listener` is appended to the `[[listener]]` table (SASL, routes); `clusters` is the
    /// clusters' TOML.
    fn start(name: &str, listener: &str, clusters: &str) -> Self {
        Self::start_with(name, listener, clusters, &[])
    }

    /// [`Self::start`] with `args` added to `sluice run`.
    fn start_with(name: &str, listener: &str, clusters: &str, args: &[&str]) -> Self {
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
        let sluice = SLUICE.run_with(&config, name, args, "info");
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
