//! The audit file and stdout sinks through the real binary, on a plain TCP listener: the file
//! is reopened at its path after logrotate moved it, on SIGHUP (a reload in place) and on
//! SIGUSR1, each file holding whole, valid lines; the stdout sink writes audit lines only,
//! while logs stay on standard error.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test on bad setup"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::audit_schema::{assert_valid_file, validate};
use sluice_tests::kafka_wire::free_port_block;
use sluice_tests::process::{SluiceBinary, echo_backend, temp_path, write_config};

const SLUICE: SluiceBinary = SluiceBinary::new(env!("CARGO_BIN_EXE_sluice"));

fn config(bind: &str, backend: SocketAddr, audit: &str) -> String {
    format!(
        "[[listener]]\nname = \"plain\"\nbind = \"{bind}\"\nprotocol = \"tcp\"\n\
         cluster = \"echo\"\n\n[cluster.echo]\nbackends = [\"{backend}\"]\n\n\
         [shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"1s\"\n\n[audit]\n{audit}\
         events = [\"connection\"]\n"
    )
}

/// One session through `proxy`: a few bytes there and back, then closed.
fn round_trip(proxy: SocketAddr) {
    let mut stream = TcpStream::connect(proxy).unwrap();
    stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    stream.write_all(b"audit me").unwrap();
    let mut echoed = [0; 8];
    stream.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"audit me");
}

/// Connection events closed in the file at `path`, every line of it validated.
fn closes_in(path: &Path) -> usize {
    assert_valid_file(path)
        .iter()
        .filter(|line| line["event"] == "connection" && line["action"] == "close")
        .count()
}

/// Sessions through `proxy` until the file at `path` holds a closed one (the sink writes in
/// batches, and a signal's reopen is taken before the next write); bounded in count and time.
fn until_written(proxy: SocketAddr, path: &Path) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    for _ in 0..100 {
        round_trip(proxy);
        thread::sleep(Duration::from_millis(50));
        if path.exists() && closes_in(path) > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} was never written",
            path.display()
        );
    }
    panic!("{} was never written", path.display());
}

#[test]
fn the_audit_file_is_reopened_on_sighup_and_sigusr1_after_logrotate_moved_it() {
    let backend = echo_backend();
    let trail = temp_path("audit-rotate.jsonl");
    for stale in ["", ".1", ".2"] {
        let _ = std::fs::remove_file(format!("{}{stale}", trail.display()));
    }
    let sluice = SLUICE.run(
        &config(
            "127.0.0.1:0",
            backend,
            &format!("sink = \"file\"\npath = \"{}\"\n", trail.display()),
        ),
        "audit-rotate.toml",
    );
    let proxy = sluice.listening_addr();
    until_written(proxy, &trail);

    for (signal, rotated) in [("-HUP", ".1"), ("-USR1", ".2")] {
        let rotated = format!("{}{rotated}", trail.display());
        std::fs::rename(&trail, &rotated).unwrap();
        sluice.signal(signal);
        if signal == "-HUP" {
            // Nothing changed but the file's place: the reload is done in place.
            sluice.wait_for("reloaded in place");
        }
        until_written(proxy, &trail);
        assert!(
            closes_in(Path::new(&rotated)) > 0,
            "{signal}: the rotated file lost its lines"
        );
    }
    assert!(sluice.terminate().success());
}

#[test]
fn the_stdout_sink_writes_audit_lines_only_and_logs_stay_on_stderr() {
    let backend = echo_backend();
    let port = free_port_block(1);
    let proxy = SocketAddr::from(([127, 0, 0, 1], port));
    let path = write_config(
        "audit-stdout.toml",
        &config(&proxy.to_string(), backend, "sink = \"stdout\"\n"),
    );
    let mut child = Command::new(SLUICE)
        .args(["run", "--log-format", "json", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as written, so neither pipe fills and stalls the process.
    let read_all = |mut from: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            from.read_to_string(&mut text).unwrap();
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + STEP_TIMEOUT;
    while TcpStream::connect(proxy).is_err() {
        assert!(
            Instant::now() < deadline,
            "sluice never listened on {proxy}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..3 {
        round_trip(proxy);
    }
    // The probe connections above were sessions too; all end before the stop.
    thread::sleep(Duration::from_millis(200));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < STEP_TIMEOUT, "sluice did not stop");
        thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());

    validate(&stdout).unwrap_or_else(|err| panic!("{err}\n{stdout}"));
    let closes = stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|line| line["event"] == "connection" && line["action"] == "close")
        .count();
    assert!(closes >= 3, "{closes} closes on stdout:\n{stdout}");
    assert!(stderr.contains("sluice started"), "{stderr}");
    for line in stderr.lines() {
        assert!(
            !line.contains("sluice.audit/"),
            "an audit line reached the logs: {line}"
        );
        let log: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a whole log line: {line}"));
        assert!(log["level"].is_string(), "{line}");
    }
}
