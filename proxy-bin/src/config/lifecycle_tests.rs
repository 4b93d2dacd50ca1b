//! Config tests for `[admin]`, `[shutdown]` and the clusters' lifecycle keys.

use std::time::Duration;

use super::tests::{assert_error, errors};
use super::{ReadyRequires, parse};

const LISTENER: &str = r#"
[[listener]]
name = "plain"
bind = "127.0.0.1:9192"
protocol = "tcp"
cluster = "local"
"#;

fn config(rest: &str) -> String {
    format!("{LISTENER}\n{rest}")
}

#[test]
fn defaults_fit_kubernetes_default_grace_period() {
    let parsed = parse(&config(
        "[cluster.local]\nbackends = [\"127.0.0.1:9092\"]\n",
    ))
    .unwrap();
    assert_eq!(parsed.shutdown.accept_grace, Duration::from_secs(5));
    assert_eq!(parsed.shutdown.drain_timeout, Duration::from_secs(20));
    assert_eq!(
        parsed.shutdown.termination_grace_period,
        Duration::from_secs(30)
    );
    assert_eq!(parsed.shutdown.upgrade_timeout, Duration::from_secs(30));
    assert_eq!(parsed.admin, None);
    let local = &parsed.clusters["local"];
    assert_eq!(local.ready_requires, ReadyRequires::None);
    assert_eq!(local.probe_interval, Duration::from_secs(5));
    assert_eq!(parsed.shutdown_warning(), None);
}

#[test]
fn lifecycle_keys_are_read() {
    let parsed = parse(&config(
        "[admin]\nbind = \"127.0.0.1:9190\"\n\n[shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"10s\"\ntermination_grace_period = \"15s\"\n\n\
         [cluster.local]\nbackends = [\"127.0.0.1:9092\"]\nready_requires = \"all\"\nprobe_interval = \"1s\"\n\n\
         [cluster.tool]\nexec = [\"/bin/cat\"]\nchild_stop_timeout = \"1s\"\n",
    ))
    .unwrap();
    let admin = parsed.admin.unwrap();
    assert_eq!(admin.bind, "127.0.0.1:9190".parse().unwrap());
    // The admin connection limits' defaults.
    assert_eq!(admin.header_read_timeout, Duration::from_secs(5));
    assert_eq!(admin.idle_timeout, Duration::from_secs(60));
    assert_eq!(admin.max_connections, 64);
    assert_eq!(parsed.shutdown.accept_grace, Duration::ZERO);
    assert_eq!(parsed.clusters["local"].ready_requires, ReadyRequires::All);
    let tool = &parsed.clusters["tool"];
    assert!(tool.backends.is_empty());
    let exec = tool.exec.as_ref().unwrap();
    assert_eq!(exec.argv, ["/bin/cat"]);
    assert_eq!(exec.stop_timeout, Duration::from_secs(1));
    // 0 + 10 + 2 × 1 ≤ 15: no warning.
    assert_eq!(parsed.shutdown_warning(), None);
}

#[test]
fn a_budget_that_does_not_fit_the_grace_period_is_a_warning_not_an_error() {
    let parsed = parse(&config(
        "[shutdown]\naccept_grace = \"5s\"\ndrain_timeout = \"25s\"\n\n[cluster.local]\nexec = [\"/bin/cat\"]\n",
    ))
    .unwrap();
    let warnings = parsed.warnings();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("= 34s exceeds termination_grace_period (30s)"),
        "{warnings:?}"
    );
}

#[test]
fn bad_lifecycle_values_name_their_keys() {
    let errors = errors(&config(
        "[admin]\nbind = \"localhost:x\"\n\n[shutdown]\naccept_grace = \"later\"\n\n\
         [cluster.local]\nbackends = [\"127.0.0.1:9092\"]\nexec = [\"/bin/cat\"]\nready_requires = \"most\"\n\n\
         [cluster.empty]\nexec = []\n\n[cluster.child]\nexec = [\"/bin/cat\"]\nready_requires = \"any\"\n",
    ));
    assert_error(
        &errors,
        "admin.bind",
        "invalid socket address \"localhost:x\"",
    );
    assert_error(
        &errors,
        "shutdown.accept_grace",
        "invalid duration \"later\"",
    );
    assert_error(&errors, "cluster.local.backends", "either backends or exec");
    assert_error(
        &errors,
        "cluster.local.ready_requires",
        "expected \"none\", \"any\" or \"all\"",
    );
    assert_error(&errors, "cluster.empty.exec", "exec needs a program");
    assert_error(
        &errors,
        "cluster.child.ready_requires",
        "no backends to probe",
    );
}

#[test]
fn upgrade_timeout_is_read_and_errors_name_its_key() {
    let parsed = parse(&config(
        "[shutdown]\nupgrade_timeout = \"2s\"\n\n[cluster.local]\nbackends = [\"127.0.0.1:9092\"]\n",
    ))
    .unwrap();
    assert_eq!(parsed.shutdown.upgrade_timeout, Duration::from_secs(2));

    for (value, message) in [
        ("\"soon\"", "invalid duration \"soon\""),
        ("\"0s\"", "is zero"),
    ] {
        let errors = errors(&config(&format!(
            "[shutdown]\nupgrade_timeout = {value}\n\n[cluster.local]\nbackends = [\"127.0.0.1:9092\"]\n"
        )));
        assert_error(&errors, "shutdown.upgrade_timeout", message);
    }
}

#[test]
fn admin_connection_limits_are_read_and_errors_name_their_keys() {
    let parsed = parse(&config(
        "[admin]\nbind = \"127.0.0.1:9190\"\nheader_read_timeout = \"2s\"\nidle_timeout = \"10s\"\n\
         max_connections = 8\n\n[cluster.local]\nbackends = [\"127.0.0.1:9092\"]\n",
    ))
    .unwrap();
    let admin = parsed.admin.unwrap();
    assert_eq!(admin.header_read_timeout, Duration::from_secs(2));
    assert_eq!(admin.idle_timeout, Duration::from_secs(10));
    assert_eq!(admin.max_connections, 8);

    let bad = errors(&config(
        "[admin]\nbind = \"127.0.0.1:9190\"\nheader_read_timeout = \"0s\"\nidle_timeout = \"soon\"\n\
         max_connections = 0\n\n[cluster.local]\nbackends = [\"127.0.0.1:9092\"]\n",
    ));
    assert_error(&bad, "admin.header_read_timeout", "is zero");
    assert_error(&bad, "admin.idle_timeout", "invalid duration \"soon\"");
    assert_error(
        &bad,
        "admin.max_connections",
        "0 is not a limit: expected a whole number from 1",
    );
    // A missing bind is reported beside the other keys' errors.
    let bad = errors(&config(
        "[admin]\nmax_connections = -1\n\n[cluster.local]\nbackends = [\"127.0.0.1:9092\"]\n",
    ));
    assert_error(&bad, "admin.bind", "missing required key");
    assert_error(&bad, "admin.max_connections", "-1 is not a limit");
}
