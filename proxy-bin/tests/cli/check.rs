//! `sluice check`: the shipped examples pass, and every error names its key (and the file, for
//! users files and certificates), all of them in one run.

use std::process::Command;

use sluice_tests::process::write_config;

use crate::{SLUICE, VALID, check};

#[test]
fn check_accepts_the_contract_example_and_the_shipped_examples() {
    assert_eq!(check(VALID, "valid.toml"), (true, String::new()));
    for example in [
        concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/sluice.toml"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/kafka.toml"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/kafka-sasl.toml"),
    ] {
        let status = Command::new(SLUICE)
            .args(["check", "--config", example])
            .status()
            .unwrap();
        assert!(status.success(), "{example} does not pass sluice check");
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
        &example.replace("\"kafka-users.toml\"", "\"no-such-users.toml\""),
        "sasl-missing-users.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains("listener[0].sasl.users: cannot read the users file")
            && stderr.contains("no-such-users.toml"),
        "{stderr}"
    );
    let garbled = write_config("sasl-garbled-users.toml", "[users.alice]\nsalt = 3\n");
    let (ok, stderr) = check(
        &example.replace(
            "\"kafka-users.toml\"",
            &format!("{:?}", garbled.display().to_string()),
        ),
        "sasl-garbled.toml",
    );
    assert!(!ok);
    assert!(stderr.contains("listener[0].sasl.users"), "{stderr}");
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
        stderr.contains("listener[0].protocl: unknown key"),
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
        stderr.contains("listener[0].bind: invalid socket address \"127.0.0.1:port\""),
        "{stderr}"
    );
    let (ok, stderr) = check(
        &VALID.replace("\"127.0.0.1:9092\"", "\"127.0.0.1\""),
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
        stderr.contains("listener[0].cluster: no cluster named \"remote\""),
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
    assert!(
        stderr.contains("listener[0].tls") && stderr.contains("missing-chain.pem"),
        "{stderr}"
    );
}

#[test]
fn the_tls_example_checks_once_its_certificates_exist() {
    use sluice_tests::certs::{TestCa, temp_dir};
    let dir = temp_dir("tls-example");
    let ca = TestCa::new("Example CA");
    let server = ca.issue(&["proxy.example"]);
    std::fs::write(dir.join("server-chain.pem"), &server.chain_pem).unwrap();
    std::fs::write(dir.join("server-key.pem"), &server.key_pem).unwrap();
    let client = ca.issue_client("sluice", &[]);
    std::fs::write(dir.join("client-chain.pem"), &client.chain_pem).unwrap();
    std::fs::write(dir.join("client-key.pem"), &client.key_pem).unwrap();
    std::fs::write(dir.join("clients-ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(dir.join("backend-ca.pem"), ca.cert_pem()).unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tls.toml");
    std::fs::copy(example, dir.join("tls.toml")).unwrap();
    let out = Command::new(SLUICE)
        .arg("check")
        .arg("--config")
        .arg(dir.join("tls.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
            "listener[0].broker_port_start: the broker ports 19100-19107 (broker_port_start = \
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
            "listener[0].max_brokers: broker_port_start (65530) + max_brokers (8) - 1 = 65537 \
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
        stderr.contains("listener[0].max_brokers: 0 is not a number of broker ports"),
        "{stderr}"
    );
    let (ok, stderr) = check(&text.replace("19105", "19190"), "broker-ports-ok.toml");
    assert!(ok, "{stderr}");
}
