//! `sluice run` with real signals: one close line per session, a reason when every backend
//! refuses, a bad config refused before binding, and SIGINT's drain and force-close.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::process::{refused_port, write_config};

use crate::{SLUICE, VALID};

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
    let sluice = SLUICE.run(&config, "run.toml");
    let addr = sluice.listening_addr();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    client.write_all(b"through sluice").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"through sluice");

    let close = sluice.wait_for("session closed");
    assert_eq!(close["listener.name"], "plain");
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
    let sluice = SLUICE.run(&config, "down.toml");
    let addr = sluice.listening_addr();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
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
        close["reason.detail"],
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
    let sluice = SLUICE.run(&config, "drain.toml");
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
