//! `sluice user add`: salted SCRAM credentials only, other users kept, and refusals (iterations
//! out of Kafka's bounds, a short password...) that name what was wrong and leave the users file
//! as it was.

use std::process::Command;

use sluice_tests::process::write_config;

use crate::SLUICE;

/// `sluice user add ...` with `stdin` as its standard input: (success, stdout + stderr).
fn user_add(users: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write as _;
    let mut child = Command::new(SLUICE)
        .args(["user", "add", "--users"])
        .arg(users)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn user_add_stores_salted_credentials_only_and_keeps_other_users() {
    use std::os::unix::fs::PermissionsExt as _;

    use proxy_core::sasl::{ScramHash, UserStore};

    let users = write_config("users-add.toml", "").with_file_name("users-added.toml");
    let _ = std::fs::remove_file(&users);
    let (ok, text) = user_add(
        &users,
        &["--mechanism", "scram-sha-512", "alice"],
        "wonderland\n",
    );
    assert!(ok, "{text}");
    let (ok, text) = user_add(
        &users,
        &["--mechanism", "SCRAM-SHA-256", "bob"],
        "the-builder\r\n",
    );
    assert!(ok, "{text}");
    let file = std::fs::read_to_string(&users).unwrap();
    assert!(
        !file.contains("wonderland") && !file.contains("the-builder"),
        "{file}"
    );
    let mode = std::fs::metadata(&users).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the users file is readable by others");
    let store = UserStore::parse(&file).unwrap();
    assert!(store.verify_plain("alice", "wonderland"));
    assert!(store.verify_plain("bob", "the-builder"));
    assert!(!store.verify_plain("bob", "the-builder\r"));
    assert!(store.credential("alice", ScramHash::Sha512).is_some());
    assert!(store.credential("bob", ScramHash::Sha256).is_some());

    // Refusals name what was wrong and leave the file as it was.
    for (args, stdin, needle) in [
        (
            &["--mechanism", "plain", "carol"][..],
            "pw\n",
            "--mechanism",
        ),
        (
            &["--mechanism", "gssapi", "carol"][..],
            "pw\n",
            "unknown SASL mechanism",
        ),
        (&["--iterations", "10", "carol"][..], "pw\n", "--iterations"),
        // Beyond Kafka's ceiling, each wrong PLAIN guess would cost the proxy more.
        (
            &["--iterations", "1000000", "carol"][..],
            "carol-password\n",
            "4096 to 16384",
        ),
        (&["carol"][..], "short\n", "at least 8"),
        (&["carol"][..], "\n", "no password"),
    ] {
        let (ok, text) = user_add(&users, args, stdin);
        assert!(!ok, "{args:?} was accepted");
        assert!(text.contains(needle), "{args:?}: {text}");
    }
    assert_eq!(std::fs::read_to_string(&users).unwrap(), file);
    std::fs::write(&users, "[users.x.SCRAM-SHA-256]\niterations = 1\n").unwrap();
    let (ok, text) = user_add(&users, &["carol"], "pw\n");
    assert!(!ok);
    assert!(text.contains("users.x.SCRAM-SHA-256"), "{text}");
}
