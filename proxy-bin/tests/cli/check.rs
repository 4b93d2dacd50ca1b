//! `sluice check`: the shipped examples pass (certificates made by the shipped openssl recipe),
//! and every error names its key and its line (and the file, with the system's reason, for
//! users files and certificates), all of them in one run; advice comes as warnings.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sluice_tests::certs::temp_dir;
use sluice_tests::process::write_config;

use crate::{SLUICE, VALID, check};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");

/// A copy of `examples/` in a temp directory, with the certificates `examples/tls.toml` names
/// made by the shipped recipe, `examples/certs/make.sh`.
fn examples_with_certificates() -> PathBuf {
    let dir = temp_dir("examples");
    copy_dir(Path::new(EXAMPLES), &dir);
    let out = Command::new("sh")
        .arg(dir.join("certs/make.sh"))
        .arg(dir.join("certs"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "examples/certs/make.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Git keeps no file modes but 0644 and 0755: an operator installs a users file 0600, as
    // `sluice check` advises.
    for entry in std::fs::read_dir(dir.join("users")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.path().extension() != Some(OsStr::new("pem")) {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The config files among the examples: every `.toml` outside `users/` (users files).
fn example_configs(dir: &Path) -> Vec<PathBuf> {
    let mut configs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension() == Some(OsStr::new("toml")))
        .collect();
    configs.sort();
    configs
}

#[test]
fn check_accepts_the_contract_example_and_every_shipped_example() {
    assert_eq!(check(VALID, "valid.toml"), (true, String::new()));
    let dir = examples_with_certificates();
    let configs = example_configs(&dir);
    let names: Vec<_> = configs.iter().filter_map(|p| p.file_name()).collect();
    for expected in ["kafka-sasl.toml", "kafka.toml", "sluice.toml", "tls.toml"] {
        assert!(
            names.contains(&OsStr::new(expected)),
            "{expected} not in {names:?}"
        );
    }
    // The examples teach what to write: none of them earns the config's own advice.
    for config in configs {
        assert_checks_clean(&config, &config);
    }
}

/// `sluice check` passes `file` (the config of `origin`) with no warning but the
/// descriptor-limit one, which depends on the machine, not the file.
pub(crate) fn assert_checks_clean(file: &std::path::Path, origin: &std::path::Path) {
    let out = Command::new(SLUICE)
        .arg("check")
        .arg("--config")
        .arg(file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} does not pass sluice check: {stderr}",
        origin.display()
    );
    for line in stderr.lines().filter(|line| line.contains("warning:")) {
        assert!(line.contains("descriptors"), "{}: {line}", origin.display());
    }
}

#[test]
fn every_toml_under_examples_is_a_config_or_a_users_file() {
    let users = std::fs::read_dir(Path::new(EXAMPLES).join("users")).unwrap();
    for entry in users {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(text.contains("[users."), "{text}");
    }
    // A users file at the top of examples/ would be taken for a config by the test above.
    for config in example_configs(Path::new(EXAMPLES)) {
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(
            text.contains("[[listener]]"),
            "{} is no config",
            config.display()
        );
    }
}

#[test]
fn check_names_the_users_file_a_sasl_listener_cannot_read() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/kafka-sasl.toml"
    ))
    .unwrap();
    let (ok, stderr) = check(
        &example.replace("\"users/kafka-users.toml\"", "\"no-such-users.toml\""),
        "sasl-missing-users.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains("listener[0].sasl.users (line 25): cannot read the users file")
            && stderr.contains("no-such-users.toml: No such file or directory (os error 2)"),
        "{stderr}"
    );
    let garbled = write_config("sasl-garbled-users.toml", "[users.alice]\nsalt = 3\n");
    let (ok, stderr) = check(
        &example.replace(
            "\"users/kafka-users.toml\"",
            &format!("{:?}", garbled.display().to_string()),
        ),
        "sasl-garbled.toml",
    );
    assert!(!ok);
    assert!(stderr.contains("listener[0].sasl.users"), "{stderr}");
}

#[test]
fn check_names_the_rule_and_key_of_a_broken_acl_rules_file() {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/kafka-sasl.toml"
    ))
    .unwrap();
    let users = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/users/kafka-users.toml"
    );
    let rules = write_config(
        "acl-broken-rules.toml",
        "[[rule]]\nprincipal = \"alice\"\nresource = \"topic\"\nname = \"orders\"\n\
         operations = [\"wrte\"]\n",
    );
    let (ok, stderr) = check(
        &example
            .replace("\"users/kafka-users.toml\"", &format!("{users:?}"))
            .replace(
                "\"acl/kafka-acl.toml\"",
                &format!("{:?}", rules.display().to_string()),
            ),
        "acl-broken.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains("listener[0].authorization.rules")
            && stderr.contains("rule[0].operations: unknown operation \"wrte\""),
        "{stderr}"
    );
    let (ok, stderr) = check(
        &example
            .replace("\"users/kafka-users.toml\"", &format!("{users:?}"))
            .replace("\"acl/kafka-acl.toml\"", "\"no-such-acl.toml\""),
        "acl-missing.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains("listener[0].authorization.rules")
            && stderr.contains("cannot read the rules file"),
        "{stderr}"
    );
}

#[test]
fn check_names_the_key_of_an_unknown_key() {
    let (ok, stderr) = check(
        &VALID.replace(
            "protocol = \"tcp\"",
            "protocol = \"tcp\"\nprotocl = \"tcp\"",
        ),
        "unknown.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains("listener[0].protocl (line 6): unknown key; did you mean protocol?"),
        "{stderr}"
    );
}

#[test]
fn check_names_the_key_of_a_malformed_address() {
    let (ok, stderr) = check(
        &VALID.replace("127.0.0.1:9192", "127.0.0.1:port"),
        "address.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains("listener[0].bind (line 4): invalid socket address \"127.0.0.1:port\""),
        "{stderr}"
    );
    let (ok, stderr) = check(
        &VALID.replace("\"127.0.0.1:9000\"", "\"127.0.0.1\""),
        "backend.toml",
    );
    assert!(!ok);
    assert!(stderr.contains("cluster.local.backends[0]"), "{stderr}");
}

#[test]
fn check_names_the_key_of_a_listener_naming_a_missing_cluster() {
    let (ok, stderr) = check(
        &VALID.replace("cluster = \"local\"", "cluster = \"remote\""),
        "cluster.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains("listener[0].cluster (line 6): no cluster named \"remote\""),
        "{stderr}"
    );
}

#[test]
fn check_reports_every_error_in_one_run() {
    let text = VALID
        .replace(
            "protocol = \"tcp\"",
            "protocol = \"tcp\"\nprotocl = \"tcp\"",
        )
        .replace("127.0.0.1:9192", "127.0.0.1:port")
        .replace("cluster = \"local\"", "cluster = \"remote\"");
    let (ok, stderr) = check(&text, "all.toml");
    assert!(!ok);
    for key in [
        "listener[0].protocl",
        "listener[0].bind",
        "listener[0].cluster",
    ] {
        assert!(stderr.contains(key), "{key} missing from: {stderr}");
    }
    assert!(stderr.contains("3 configuration error(s)"), "{stderr}");
}

#[test]
fn check_of_a_missing_file_says_which_file() {
    let out = Command::new(SLUICE)
        .args(["check", "--config", "/nonexistent/sluice.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/sluice.toml"));
}

#[test]
fn check_names_the_key_and_the_file_of_an_unusable_certificate() {
    let text = VALID.replace(
        "cluster = \"local\"\n",
        "cluster = \"local\"\n[listener.tls]\ncert = \"missing-chain.pem\"\nkey = \"missing-key.pem\"\n",
    );
    let (ok, stderr) = check(&text, "tls-missing.toml");
    assert!(!ok);
    for (key, file) in [
        (
            "listener[0].tls.cert (line 8): cannot read ",
            "missing-chain.pem",
        ),
        (
            "listener[0].tls.key (line 9): cannot read ",
            "missing-key.pem",
        ),
    ] {
        assert!(
            stderr.lines().any(|line| line.contains(key)
                && line.ends_with(&format!("{file}: No such file or directory (os error 2)"))),
            "{key} {file}: {stderr}"
        );
    }
    let garbled = write_config(
        "garbled-chain.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    );
    let (ok, stderr) = check(
        &text.replace("missing-chain.pem", &garbled.display().to_string()),
        "tls-garbled.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains("listener[0].tls.cert (line 8): malformed PEM in")
            && stderr.contains("garbled-chain.pem"),
        "{stderr}"
    );
}

#[test]
fn the_tls_example_without_its_certificates_names_every_missing_file_in_one_run() {
    let dir = temp_dir("tls-no-certs");
    std::fs::copy(Path::new(EXAMPLES).join("tls.toml"), dir.join("tls.toml")).unwrap();
    let out = Command::new(SLUICE)
        .arg("check")
        .arg("--config")
        .arg(dir.join("tls.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (key, file) in [
        ("listener[0].tls.cert (line 11)", "server-chain.pem"),
        ("listener[0].tls.key (line 12)", "server-key.pem"),
        ("listener[0].tls.client_ca (line 14)", "clients-ca.pem"),
        (
            "listener[0].tls.certificate[0].cert (line 23)",
            "server-chain.pem",
        ),
        (
            "listener[0].tls.certificate[0].key (line 24)",
            "server-key.pem",
        ),
        ("cluster.secure.tls.ca (line 46)", "backend-ca.pem"),
        ("cluster.secure.tls.cert (line 48)", "client-chain.pem"),
        ("cluster.secure.tls.key (line 49)", "client-key.pem"),
    ] {
        let line = stderr
            .lines()
            .find(|line| line.contains(key))
            .unwrap_or_else(|| panic!("no error at {key}: {stderr}"));
        assert!(
            line.contains(file) && line.contains("No such file or directory (os error 2)"),
            "{line}"
        );
    }
    assert!(stderr.contains("8 configuration error(s)"), "{stderr}");
}

/// The issue's acceptance test: six different mistakes in one file, six errors from one run of
/// `sluice check`, each naming its key and its line.
#[test]
fn check_reports_six_different_mistakes_in_one_run_each_with_its_key_and_line() {
    let text = r#"[[listener]]
name = "first"
bind = 5
protocol = "tcp"
cluster = "main"
idle_timout = "1h"

[[listener]]
name = "second"
bind = "0.0.0.0:19400"
protocol = "tcp"
cluster = "main"

[[listener]]
name = "third"
bind = "127.0.0.1:19400"
protocol = "tcp"

[cluster.main]
backends = ["127.0.0.1"]
[cluster.main.tls]
ca = "no-such-ca.pem"
"#;
    let (ok, stderr) = check(text, "six-mistakes.toml");
    assert!(!ok);
    let errors: Vec<&str> = stderr.lines().skip(1).map(str::trim).collect();
    let expected = [
        "listener[0].bind (line 3): invalid type: integer `5`, expected a string",
        "listener[0].idle_timout (line 6): unknown key; did you mean idle_timeout?",
        "listener[2].cluster (line 14): missing required key",
        "listener[2].bind (line 16): \"127.0.0.1:19400\" takes port 19400 of listener[1]",
        "cluster.main.backends[0] (line 20): invalid backend address \"127.0.0.1\"",
        "cluster.main.tls.ca (line 22): cannot read ",
    ];
    assert_eq!(errors.len(), expected.len(), "{stderr}");
    for (error, expected) in errors.iter().zip(expected) {
        assert!(
            error.starts_with(expected),
            "want {expected:?}, got {error:?}\n{stderr}"
        );
    }
    assert!(errors[5].ends_with("no-such-ca.pem: No such file or directory (os error 2)"));
    assert!(stderr.starts_with("sluice: ") && stderr.contains("6 configuration error(s)"));
}

#[test]
fn check_reports_type_errors_all_at_once_with_the_rest() {
    let text = VALID
        .replace("bind = \"127.0.0.1:9192\"", "bind = 5")
        .replace("protocol = \"tcp\"", "protocol = [\"tcp\"]")
        .replace(
            "connect_timeout = \"5s\"",
            "connect_timeout = 5\nprobe_interval = {}",
        )
        .replace(
            "cluster = \"local\"",
            "cluster = \"local\"\nmax_connections = \"x\"\nidle_timeout = true",
        );
    let (ok, stderr) = check(&text, "types.toml");
    assert!(!ok);
    for key in [
        "listener[0].bind (line 4)",
        "listener[0].protocol (line 5)",
        "listener[0].max_connections (line 7)",
        "listener[0].idle_timeout (line 8)",
        "cluster.local.connect_timeout (line 12)",
        "cluster.local.probe_interval (line 13)",
    ] {
        assert!(stderr.contains(key), "{key} missing from: {stderr}");
    }
    // Taken out for their type, the required keys are not also reported missing.
    assert!(stderr.contains("6 configuration error(s)"), "{stderr}");
}

#[test]
fn check_refuses_sockets_that_take_one_anothers_port() {
    let text = format!(
        "{VALID}\n[[listener]]\nname = \"any\"\nbind = \"0.0.0.0:9192\"\nprotocol = \"tcp\"\n\
         cluster = \"local\"\n\n[admin]\nbind = \"127.0.0.1:9192\"\n"
    );
    let (ok, stderr) = check(&text, "ports.toml");
    assert!(!ok);
    assert!(
        stderr.contains(
            "listener[1].bind (line 14): \"0.0.0.0:9192\" takes port 9192 of listener[0]"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("admin.bind (line 19): 127.0.0.1:9192 takes the port of listener[0]"),
        "{stderr}"
    );
    assert!(stderr.contains("2 configuration error(s)"), "{stderr}");
}

#[test]
fn check_warns_of_a_tcp_listener_in_front_of_kafka_and_of_a_kafka_cluster_without_readiness() {
    let (ok, stderr) = check(
        &VALID.replace("127.0.0.1:9000", "127.0.0.1:9092"),
        "tcp-to-kafka.toml",
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(
            "warning: listener[0] (\"plain\") is protocol = \"tcp\" but forwards to port(s) 9092"
        ) && stderr.contains("use protocol = \"kafka\""),
        "{stderr}"
    );
    let kafka = r#"
[[listener]]
name = "kafka"
bind = "127.0.0.1:19092"
protocol = "kafka"
cluster = "main"
gateway = "port-per-broker"
broker_port_start = 19100
max_brokers = 4

[[listener]]
name = "raw"
bind = "127.0.0.1:19093"
protocol = "tcp"
cluster = "other"

[cluster.main]
backends = ["127.0.0.1:29092"]

[cluster.other]
backends = ["10.0.0.7:29092"]
"#;
    let (ok, stderr) = check(kafka, "kafka-readiness.toml");
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("warning: listener[0] (\"kafka\") is a Kafka listener but cluster \"main\" has no ready_requires"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "warning: listener[1] (\"raw\") is protocol = \"tcp\" but forwards to port(s) 29092"
        ),
        "{stderr}"
    );
    let (ok, stderr) = check(
        &kafka.replace(
            "[cluster.main]\n",
            "[cluster.main]\nready_requires = \"any\"\n",
        ),
        "kafka-ready.toml",
    );
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("ready_requires"), "{stderr}");
}

#[test]
fn check_names_both_keys_when_broker_ports_leave_their_range_or_collide() {
    let text = r#"
[admin]
bind = "127.0.0.1:19105"

[[listener]]
name = "kafka"
bind = "127.0.0.1:19092"
protocol = "kafka"
cluster = "main"
gateway = "port-per-broker"
broker_port_start = 19100
max_brokers = 8

[cluster.main]
backends = ["127.0.0.1:9092"]
"#;
    let (ok, stderr) = check(text, "broker-ports-admin.toml");
    assert!(!ok);
    assert!(
        stderr.contains(
            "listener[0].broker_port_start (line 11): the broker ports 19100-19107 (broker_port_start = \
             19100, max_brokers = 8) include admin.bind's port 19105"
        ),
        "{stderr}"
    );
    let (ok, stderr) = check(
        &text
            .replace("19105", "19190")
            .replace("broker_port_start = 19100", "broker_port_start = 65530"),
        "broker-ports-past-65535.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains(
            "listener[0].max_brokers (line 12): broker_port_start (65530) + max_brokers (8) - 1 = 65537 \
             is past the last port, 65535"
        ),
        "{stderr}"
    );
    let (ok, stderr) = check(
        &text
            .replace("19105", "19190")
            .replace("max_brokers = 8", "max_brokers = 0"),
        "broker-ports-none.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains("listener[0].max_brokers (line 12): 0 is not a number of broker ports"),
        "{stderr}"
    );
    let (ok, stderr) = check(&text.replace("19105", "19190"), "broker-ports-ok.toml");
    assert!(ok, "{stderr}");
}
