//! The `sluice` binary as an operator runs it: `check` (secret files too), `acl test`,
//! `--version`, `--help`, `user add|list|remove`, `run` with real signals and real log lines,
//! and deploy/kubernetes/: its embedded configs, its manifests validated against Kubernetes'
//! schemas, the container image they run, and the Kafka pack's config serving a real client.
//!
//! This file holds the config the tests vary, `sluice check` on it, and `--version`/`--help`.
#![expect(
    clippy::unwrap_used,
    reason = "helpers of this test file fail the test on bad setup"
)]

mod acl;
mod check;
mod image;
mod kafka_pack;
mod kubernetes;
mod logs;
mod manifests;
mod run;
mod secrets;
mod user;

use std::process::Command;

use sluice_tests::process::{SluiceBinary, write_config};

const SLUICE: SluiceBinary = SluiceBinary::new(env!("CARGO_BIN_EXE_sluice"));

fn check(text: &str, name: &str) -> (bool, String) {
    let path = write_config(name, text);
    let out = Command::new(SLUICE)
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const VALID: &str = r#"
[[listener]]
name = "plain"
bind = "127.0.0.1:9192"
protocol = "tcp"
cluster = "local"

[cluster.local]
backends = ["127.0.0.1:9000"]
connect_timeout = "5s"
"#;

#[test]
fn version_and_help_answer() {
    let out = Command::new(SLUICE).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sluice "));
    let out = Command::new(SLUICE).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("run") && help.contains("check"), "{help}");
}
