//! Secret files under `sluice check` and `sluice run`: a users file or a password file that its
//! group or others can read is a warning naming the file, its mode and the fix; a password file
//! that is not one line of printable text, or links out of its directory, is an error naming the
//! file, at `check` and at `run` alike.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use sluice_tests::process::write_config;

use crate::{SLUICE, check};

/// A Kafka listener terminating SASL against `users`, its cluster authenticating with the
/// password in `password_file`.
fn config(users: &Path, password_file: &str) -> String {
    format!(
        r#"
[[listener]]
name = "kafka"
bind = "127.0.0.1:0"
protocol = "kafka"
cluster = "main"
gateway = "port-per-broker"
advertised_host = "127.0.0.1"
broker_port_start = 19300

[listener.sasl]
mode = "terminate"
mechanisms = ["SCRAM-SHA-512"]
users = {users:?}

[cluster.main]
backends = ["127.0.0.1:9092"]
ready_requires = "any"

[cluster.main.sasl]
mechanism = "SCRAM-SHA-512"
username = "proxy"
password_file = {password_file:?}
"#,
        users = users.display().to_string(),
    )
}

/// An empty users file (a valid one) named `name`, mode 0600.
fn users_file(name: &str) -> std::path::PathBuf {
    let path = write_config(name, "");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A password file named `name` holding `bytes`, mode 0600.
fn password_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = write_config(name, "");
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn check_warns_of_a_users_file_others_can_read() {
    let users = users_file("secrets-users-readable.users.toml");
    password_file("secrets-users-readable.secret", b"s3cret\n");
    let text = config(&users, "secrets-users-readable.secret");
    assert_eq!(
        check(&text, "secrets-users-readable.toml"),
        (true, String::new())
    );
    chmod(&users, 0o640);
    let (ok, stderr) = check(&text, "secrets-users-readable.toml");
    assert!(ok, "a warning failed the check: {stderr}");
    let shown = users.display();
    assert!(
        stderr.contains(&format!(
            "warning: listener[0].sasl.users: users file {shown} has mode 0640"
        )) && stderr.contains(&format!("run chmod 600 {shown}")),
        "{stderr}"
    );
}

#[test]
fn check_warns_of_a_password_file_others_can_read() {
    let users = users_file("secrets-password-readable.users.toml");
    let secret = password_file("secrets-password-readable.secret", b"s3cret\n");
    chmod(&secret, 0o604);
    let (ok, stderr) = check(
        &config(&users, "secrets-password-readable.secret"),
        "secrets-password-readable.toml",
    );
    assert!(ok, "a warning failed the check: {stderr}");
    let shown = secret.display();
    assert!(
        stderr.contains(&format!(
            "warning: cluster.main.sasl.password_file: password file {shown} has mode 0604"
        )) && stderr.contains(&format!("run chmod 600 {shown}")),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn check_refuses_a_password_file_of_two_lines() {
    let users = users_file("secrets-two-lines.users.toml");
    let secret = password_file("secrets-two-lines.secret", b"s3cret\nother\n");
    let (ok, stderr) = check(
        &config(&users, "secrets-two-lines.secret"),
        "secrets-two-lines.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "password file {} has 2 non-empty lines",
            secret.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn check_refuses_a_password_file_that_is_not_utf8_text() {
    let users = users_file("secrets-binary.users.toml");
    let secret = password_file("secrets-binary.secret", b"\xff\xfe\x00s\n");
    let (ok, stderr) = check(
        &config(&users, "secrets-binary.secret"),
        "secrets-binary.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "password file {} is not UTF-8 text",
            secret.display()
        )),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_password_file_with_a_control_character() {
    let users = users_file("secrets-control.users.toml");
    let secret = password_file("secrets-control.secret", b"s3\tcret\n");
    let (ok, stderr) = check(
        &config(&users, "secrets-control.secret"),
        "secrets-control.toml",
    );
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "password file {} contains a control character (U+0009)",
            secret.display()
        )),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_password_file_linked_outside_its_directory() {
    let users = users_file("secrets-link.users.toml");
    let elsewhere = sluice_tests::certs::temp_dir("secrets-link-target");
    let target = elsewhere.join("real.secret");
    std::fs::write(&target, "s3cret\n").unwrap();
    let link = users.with_file_name("secrets-link.secret");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (ok, stderr) = check(&config(&users, "secrets-link.secret"), "secrets-link.toml");
    assert!(!ok);
    assert!(
        stderr.contains(&format!(
            "password file {} is a symbolic link to {}, outside",
            link.display(),
            std::fs::canonicalize(&target).unwrap().display()
        )),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(elsewhere);
}

#[test]
fn run_refuses_what_check_refuses_and_logs_what_it_warns_of() {
    let users = users_file("secrets-run.users.toml");
    let secret = password_file("secrets-run.secret", b"s3cret\nother\n");
    let path = write_config("secrets-run.toml", &config(&users, "secrets-run.secret"));
    let out = Command::new(SLUICE)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "password file {} has 2 non-empty lines",
            secret.display()
        )),
        "{stderr}"
    );

    // Readable by others: `run` starts, with the warning in its log.
    std::fs::write(&secret, "s3cret\n").unwrap();
    chmod(&users, 0o644);
    let sluice = SLUICE.run_text(
        &config(&users, "secrets-run.secret"),
        "secrets-run.toml",
        "info",
    );
    let shown = users.display().to_string();
    let line = sluice.wait_for_text(&format!("users file {shown} has mode 0644"));
    assert!(
        line.contains("WARN") && line.contains("chmod 600"),
        "{line}"
    );
}
