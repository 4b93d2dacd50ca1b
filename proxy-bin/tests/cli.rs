//! The `sluice` binary as an operator runs it: `check`, `--version`, `--help`, and `run` with
//! real signals and real log lines.
#![expect(
    clippy::unwrap_used,
    reason = "helpers of this test file fail the test on bad setup"
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;

mod support;

use support::{Running, SLUICE, STEP, refused_port, write_config};

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
backends = ["127.0.0.1:9092"]
connect_timeout = "5s"
"#;

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
fn version_and_help_answer() {
    let out = Command::new(SLUICE).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sluice "));
    let out = Command::new(SLUICE).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("run") && help.contains("check"), "{help}");
}

#[test]
fn run_forwards_logs_one_close_line_and_exits_zero_on_sigterm() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = backend.accept() {
            let mut request = Vec::new();
            stream.read_to_end(&mut request).unwrap();
            stream.write_all(&request).unwrap();
        }
    });
    let config = format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n[cluster.local]\nbackends = [\"{backend_addr}\"]\n\n[shutdown]\naccept_grace = \"0s\"\n"
    );
    let sluice = Running::start(&config, "run.toml");
    let addr = sluice.listening_addr();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(STEP)).unwrap();
    client.write_all(b"through sluice").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"through sluice");

    let close = sluice.wait_for("session closed");
    assert_eq!(close["listener"], "plain");
    assert_eq!(
        close["client.addr"],
        client.local_addr().unwrap().to_string()
    );
    assert_eq!(close["backend.addr"], backend_addr.to_string());
    assert_eq!(close["bytes.from_client"], 14);
    assert_eq!(close["bytes.from_backend"], 14);
    assert_eq!(close["reason.label"], "client_closed");
    assert!(
        close["session.id"].is_u64() && close["duration_ms"].is_u64(),
        "{close}"
    );

    let status = sluice.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn run_closes_the_client_and_says_why_when_every_backend_refuses() {
    let config = format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"down\"\n\n[cluster.down]\nbackends = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]\nconnect_timeout = \"2s\"\n\n[shutdown]\naccept_grace = \"0s\"\n",
        refused_port(),
        refused_port()
    );
    let sluice = Running::start(&config, "down.toml");
    let addr = sluice.listening_addr();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(STEP)).unwrap();
    let mut buf = [0u8; 8];
    let read = client.read(&mut buf);
    assert!(
        matches!(read, Ok(0) | Err(_))
            && !matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "{read:?}"
    );

    let close = sluice.wait_for("session closed");
    assert_eq!(close["reason.label"], "backend_unavailable");
    assert_eq!(
        close["reason"],
        "no backend reachable after 2 attempt(s), last: connection refused"
    );
    assert_eq!(close["fault"], "upstream");
    assert_eq!(sluice.terminate().code(), Some(0));
}

#[test]
fn run_with_a_bad_config_exits_non_zero_before_binding() {
    let path = write_config(
        "bad-run.toml",
        &VALID.replace("cluster = \"local\"", "cluster = \"nowhere\""),
    );
    let out = Command::new(SLUICE)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listener[0].cluster"));
}

#[test]
fn sigint_stops_accepting_then_force_closes_sessions_at_the_drain_deadline() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    // Holds its connection open and silent: the session outlives the drain.
    let holder = std::thread::spawn(move || backend.accept().map(|(stream, _)| stream));
    let config = format!(
        "[[listener]]\nname = \"plain\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n[cluster.local]\nbackends = [\"{backend_addr}\"]\n\n[shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"1s\"\n"
    );
    let sluice = Running::start(&config, "drain.toml");
    let addr = sluice.listening_addr();
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"hold").unwrap();
    let _backend_side = holder.join().unwrap().unwrap();

    sluice.signal("-INT");
    sluice.wait_for("shutdown: stop accepting");
    sluice.wait_for("stopped accepting");
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after SIGINT"
    );
    let forced = sluice.wait_for("shutdown: force-closing sessions still open");
    assert_eq!(forced["sessions"], 1);
    let close = sluice.wait_for("session closed");
    assert_eq!(close["reason.label"], "drain_timeout");
    assert_eq!(sluice.wait_exit().code(), Some(0));
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
        "builder\r\n",
    );
    assert!(ok, "{text}");
    let file = std::fs::read_to_string(&users).unwrap();
    assert!(
        !file.contains("wonderland") && !file.contains("builder"),
        "{file}"
    );
    let mode = std::fs::metadata(&users).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the users file is readable by others");
    let store = UserStore::parse(&file).unwrap();
    assert!(store.verify_plain("alice", "wonderland"));
    assert!(store.verify_plain("bob", "builder"));
    assert!(!store.verify_plain("bob", "builder\r"));
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
