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
    let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    // A refusal of the arguments may come before the password is read: the child has exited
    // and its end of the pipe is closed.
    if let Err(err) = written {
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe, "{err}");
    }
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

/// `sluice user ARGS...`: (success, stdout, stderr).
fn user(args: &[&str], users: &std::path::Path) -> (bool, String, String) {
    let output = Command::new(SLUICE)
        .arg("user")
        .args(&args[..1])
        .arg("--users")
        .arg(users)
        .args(&args[1..])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn user_list_shows_names_and_mechanisms_only() {
    let users = sluice_tests::process::temp_path("users-list.toml");
    let _ = std::fs::remove_file(&users);
    let (ok, _, stderr) = user(&["list"], &users);
    assert!(!ok);
    assert!(
        stderr.contains(&users.display().to_string()) && stderr.contains("no such file"),
        "{stderr}"
    );
    for (mechanism, name) in [
        ("scram-sha-512", "alice"),
        ("scram-sha-256", "alice"),
        ("scram-sha-256", "odd name"),
    ] {
        let (ok, text) = user_add(&users, &["--mechanism", mechanism, name], "a-password\n");
        assert!(ok, "{text}");
    }
    let (ok, stdout, stderr) = user(&["list"], &users);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout,
        "alice\tSCRAM-SHA-256 SCRAM-SHA-512\nodd name\tSCRAM-SHA-256\n"
    );
    let file = std::fs::read_to_string(&users).unwrap();
    for secret in file.lines().filter_map(|line| line.split_once(" = \"")) {
        let value = secret.1.trim_end_matches('"');
        assert!(!stdout.contains(value), "{} printed", secret.0);
    }
    // A broken file is an error naming the key, not an empty list.
    std::fs::write(&users, "[people]\n").unwrap();
    let (ok, stdout, stderr) = user(&["list"], &users);
    assert!(!ok && stdout.is_empty());
    assert!(stderr.contains("people"), "{stderr}");
}

#[test]
fn user_remove_takes_a_user_or_one_mechanism_and_keeps_the_file_mode() {
    use std::os::unix::fs::PermissionsExt as _;

    let users = sluice_tests::process::temp_path("users-remove.toml");
    let _ = std::fs::remove_file(&users);
    for (mechanism, name) in [
        ("scram-sha-512", "alice"),
        ("scram-sha-256", "alice"),
        ("scram-sha-512", "bob"),
    ] {
        let (ok, text) = user_add(&users, &["--mechanism", mechanism, name], "a-password\n");
        assert!(ok, "{text}");
    }
    // The operator chose a group-readable file: a change keeps that.
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o640)).unwrap();

    let before = std::fs::read_to_string(&users).unwrap();
    for (args, needle) in [
        (&["remove", "carol"][..], "no user \"carol\""),
        (
            &["remove", "--mechanism", "scram-sha-256", "bob"][..],
            "user \"bob\" has no SCRAM-SHA-256 credential (it has SCRAM-SHA-512)",
        ),
        (
            &["remove", "--mechanism", "plain", "bob"][..],
            "--mechanism",
        ),
        (
            &["remove", "--mechanism", "gssapi", "bob"][..],
            "unknown SASL mechanism",
        ),
    ] {
        let (ok, _, stderr) = user(args, &users);
        assert!(!ok, "{args:?} succeeded");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    assert_eq!(std::fs::read_to_string(&users).unwrap(), before);

    let (ok, stdout, stderr) = user(&["remove", "--mechanism", "SCRAM-SHA-256", "alice"], &users);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("user \"alice\" keeps SCRAM-SHA-512 (removed SCRAM-SHA-256)"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = user(&["remove", "bob"], &users);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("user \"bob\" removed (1 user(s) in the file)"),
        "{stdout}"
    );
    let (_, listed, _) = user(&["list"], &users);
    assert_eq!(listed, "alice\tSCRAM-SHA-512\n");
    let mode = std::fs::metadata(&users).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "the file's mode was not kept");
    // No temporary file is left beside it.
    let dir = users.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("users-remove.toml."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let missing = users.with_file_name("users-remove-missing.toml");
    let (ok, _, stderr) = user(&["remove", "alice"], &missing);
    assert!(!ok);
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
}
