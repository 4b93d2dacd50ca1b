//! The real binary under a low descriptor limit (`prlimit --nofile=200:200`, soft and hard):
//! without configured limits it derives a connection limit that fits and excess clients wait
//! in the backlog; with limits configured beyond the descriptors, accepting fails with EMFILE
//! and backs off while existing sessions and the admin endpoint keep working, and it recovers
//! by itself. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::footprint::open_fds;
use sluice_tests::process::{Running, echo_backend, http_get, write_config};

use crate::SLUICE;

/// The descriptor limit the proxy runs under in these tests.
const NOFILE: u32 = 200;

fn config(backend: SocketAddr, extra: &str) -> String {
    format!(
        r#"
{extra}

[admin]
bind = "127.0.0.1:0"
# The exhaustion test fills the table with a silent admin connection, which the header-read
# timeout must not close while the table is meant to be full.
header_read_timeout = "1h"

[shutdown]
accept_grace = "0s"

[[listener]]
name = "plain"
bind = "127.0.0.1:0"
protocol = "tcp"
cluster = "echo"

[cluster.echo]
backends = ["{backend}"]
"#
    )
}

/// `sluice ARGS...` under `prlimit --nofile=NOFILE:NOFILE`.
fn limited(args: &[&str]) -> Command {
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={NOFILE}:{NOFILE}"))
        .arg("--")
        .arg(SLUICE.path())
        .args(args);
    command
}

fn run_limited(config: &str, name: &str) -> Running {
    let path = write_config(name, config);
    let mut command = limited(&["run", "--log-format", "json", "--config"]);
    command
        .arg(&path)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    Running::spawn(command)
}

/// Sends `bytes`, reads the echo; false when the connection ended or timed out first.
fn echoes(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    if stream.write_all(bytes).is_err() {
        return false;
    }
    let mut got = vec![0; bytes.len()];
    stream.read_exact(&mut got).is_ok() && got == bytes
}

fn metric(admin: SocketAddr, name: &str) -> u64 {
    let (status, body) = http_get(admin, "/metrics");
    assert_eq!(status, 200);
    body.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Polls `check` (bounded by STEP_TIMEOUT) until it holds.
fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

// Without configured limits, the limit that fits the descriptors is enforced: clients beyond
// it wait in the backlog and are served once others leave, and /livez answers throughout.
#[test]
fn the_default_limit_fits_the_descriptors_and_clients_beyond_it_wait() {
    let backend = echo_backend();
    let sluice = run_limited(&config(backend, ""), "descriptors-default.toml");
    sluice.wait_for("sluice started");
    let line = sluice.find("connection limit for all listeners together");
    let max = line["max_connections"].as_u64().unwrap();
    assert_eq!(max, 36, "(200 - 128 reserved) / 2 per connection");
    let (addr, admin) = (sluice.listening_addr(), sluice.admin_addr());

    let mut served = Vec::new();
    for i in 0..max {
        let mut stream = TcpStream::connect(addr).unwrap();
        assert!(echoes(&mut stream, format!("client {i}").as_bytes()));
        served.push(stream);
    }
    // Beyond the limit: connected (the kernel's backlog) but not served yet.
    let mut waiting: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for stream in &mut waiting {
        stream.write_all(b"waiting").unwrap();
    }
    until("accepting paused", || {
        metric(
            admin,
            "sluice_listener_accept_paused_total{listener=\"plain\"}",
        ) >= 1
    });
    assert_eq!(metric(admin, "sluice_connections_open"), max);
    assert_eq!(http_get(admin, "/livez").0, 200);
    assert!(echoes(&mut served[0], b"still served"));
    // The served clients leave: every waiting one is served, none was dropped.
    served.clear();
    for stream in &mut waiting {
        stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
        let mut got = [0; 7];
        stream.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"waiting");
    }
    drop(waiting);
    assert_eq!(sluice.terminate().code(), Some(0));
}

// Limits configured beyond the descriptors: check warns; with every descriptor in use,
// accepting fails with EMFILE and backs off, the sessions already open and the admin endpoint
// (its spare descriptor) keep working, and once clients leave a waiting one is served without
// a restart.
#[test]
fn descriptor_exhaustion_backs_off_keeps_admin_and_open_sessions_and_recovers() {
    let backend = echo_backend();
    let text = config(backend, "[limits]\nmax_connections = 1000\n");
    let path = write_config("descriptors-exhausted.toml", &text);
    let check = limited(&["check", "--config"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{stderr}");
    assert!(
        stderr.contains("limits.max_connections is 1000") && stderr.contains("LimitNOFILE"),
        "check did not warn: {stderr}"
    );

    let sluice = run_limited(&text, "descriptors-exhausted-run.toml");
    sluice.wait_for("sluice started");
    let (addr, admin) = (sluice.listening_addr(), sluice.admin_addr());
    let mut first = TcpStream::connect(addr).unwrap();
    assert!(echoes(&mut first, b"first"));

    // Fill the descriptor table exactly: an idle admin connection takes an odd one, then each
    // session takes two (its client and its backend).
    let pid = sluice.pid();
    let mut held = Vec::new();
    let free = NOFILE as usize - open_fds(pid);
    if free % 2 == 1 {
        held.push(TcpStream::connect(admin).unwrap());
        until("the idle admin connection is accepted", || {
            open_fds(pid) == NOFILE as usize - free + 1
        });
    }
    for i in 0..free / 2 {
        let mut stream = TcpStream::connect(addr).unwrap();
        assert!(echoes(&mut stream, format!("filler {i}").as_bytes()));
        held.push(stream);
    }
    assert_eq!(open_fds(pid), NOFILE as usize, "the table is full");

    // One more client: connected by the kernel, but accepting fails with EMFILE and backs off.
    let mut waiting = TcpStream::connect(addr).unwrap();
    waiting.write_all(b"waiting").unwrap();
    sluice.wait_for("accept failed; pausing");
    for _ in 0..3 {
        assert_eq!(
            http_get(admin, "/livez").0,
            200,
            "/livez while out of descriptors"
        );
        assert!(echoes(&mut first, b"still here"), "an open session broke");
    }
    // Clients leave: the waiting one is accepted and served without a restart.
    drop(held);
    waiting.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    let mut got = [0; 7];
    waiting.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"waiting");
    assert_eq!(http_get(admin, "/readyz").0, 200);
    drop((first, waiting));
    assert_eq!(sluice.terminate().code(), Some(0));
}
