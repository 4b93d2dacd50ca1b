//! Sockets handed to successors: twenty upgrades under load refuse nothing and lose no bytes,
//! and a reload adds and removes listeners while the one that stays keeps its socket.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::process::{
    Generations, Running, http_get, temp_path, wait_for_pid_file, write_config,
};
use sluice_tests::procfs::{holds_socket, listening_inode, process_state};

use crate::load::{ConnectLoop, Streams, one_request};
use crate::{
    QUIET, SLUICE, echo_backend, lifecycle_block, listener_block, read_pid, terminate, upgrade,
    wait_exited,
};

#[test]
fn twenty_upgrades_under_load_refuse_nothing_and_lose_no_bytes() {
    let backend = echo_backend();
    let config = format!(
        "{}{}",
        listener_block("plain", backend),
        lifecycle_block("5s", "10s")
    );
    let pid_file = temp_path("twenty.pid");
    let _ = std::fs::remove_file(&pid_file);
    let sluice = SLUICE.run_with(
        &config,
        "twenty.toml",
        &["--pid-file", pid_file.to_str().unwrap()],
        QUIET,
    );
    let mut generations = Generations::new(sluice.pid(), &pid_file);
    let addr = sluice.listening_addr();
    let admin = sluice.admin_addr();
    assert_eq!(wait_for_pid_file(&pid_file), sluice.pid());
    let inode = listening_inode(addr);
    assert!(holds_socket(sluice.pid(), inode));

    let connects = ConnectLoop::start(addr, 1200);
    let streams = Streams::start(addr, 50);
    let started = Instant::now();
    let mut pids = BTreeSet::from([sluice.pid()]);
    let mut previous = sluice.pid();
    let mut upgraded_while_draining = 0;
    for round in 1..=20 {
        let before = connects.done();
        // Generations other than the serving one that are still draining.
        upgraded_while_draining += usize::from(
            pids.iter()
                .any(|pid| *pid != previous && !matches!(process_state(*pid), None | Some('Z'))),
        );
        let output = upgrade(&pid_file, false);
        assert!(
            output.status.success(),
            "upgrade {round}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pid = read_pid(&pid_file);
        generations.pids.push(pid);
        assert!(pids.insert(pid), "upgrade {round}: pid {pid} seen before");
        assert!(
            String::from_utf8_lossy(&output.stdout)
                .contains(&format!("process {previous} handed over to {pid}")),
            "{output:?}"
        );
        assert_eq!(
            listening_inode(addr),
            inode,
            "upgrade {round}: a new socket"
        );
        assert!(
            holds_socket(pid, inode),
            "upgrade {round}: {pid} lacks the socket"
        );
        assert_eq!(http_get(admin, "/readyz").0, 200, "upgrade {round}");
        previous = pid;
        // Let each generation carry traffic before the next upgrade.
        let deadline = Instant::now() + STEP_TIMEOUT;
        while connects.done() < before + 200 {
            assert!(Instant::now() < deadline, "the load stalled");
            thread::sleep(Duration::from_millis(10));
        }
    }
    let elapsed = started.elapsed();
    let connections = connects.finish();
    let (sessions, bytes) = streams.finish();
    eprintln!(
        "20 upgrades in {elapsed:?}: {connections} connections ({:.0}/s), {sessions} streamed sessions, {bytes} bytes echoed, {upgraded_while_draining} upgrades during a drain",
        connections as f64 / elapsed.as_secs_f64()
    );
    assert!(sessions >= 50, "{sessions} sessions");
    // Streams outlive a round, so upgrades overlapped earlier generations' drains.
    assert!(upgraded_while_draining > 0, "no upgrade ran during a drain");

    // Every earlier generation drains and exits on its own; the last one stops on SIGTERM.
    for pid in pids.iter().filter(|pid| **pid != previous) {
        wait_exited(*pid);
    }
    terminate(previous);
    assert!(
        !pid_file.exists(),
        "the last generation removes its PID file"
    );
}

#[test]
fn a_reload_adds_and_removes_listeners_without_refusing_on_the_one_that_stays() {
    let backend = echo_backend();
    let lifecycle = lifecycle_block("2s", "10s");
    // Port 0 on distinct loopback addresses: two listeners may not share a bind address.
    let listener = |name: &str, ip: &str| {
        format!(
            "[[listener]]\nname = \"{name}\"\nbind = \"{ip}:0\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n"
        )
    };
    let cluster = format!("[cluster.local]\nbackends = [\"{backend}\"]\n\n");
    let before = format!(
        "{}{}{cluster}{lifecycle}",
        listener("kept", "127.0.0.1"),
        listener("removed", "127.0.0.2")
    );
    let after = format!(
        "{}{}{cluster}{lifecycle}",
        listener("kept", "127.0.0.1"),
        listener("added", "127.0.0.3")
    );
    let config = write_config("reload.toml", &before);
    let pid_file = temp_path("reload.pid");
    let _ = std::fs::remove_file(&pid_file);
    let mut command = Command::new(SLUICE);
    command
        .args(["run", "--log-format", "json", "--config"])
        .arg(&config)
        .arg("--pid-file")
        .arg(&pid_file)
        .env("RUST_LOG", QUIET)
        .stdin(std::process::Stdio::null());
    let sluice = Running::spawn(command);
    let mut generations = Generations::new(sluice.pid(), &pid_file);
    let addr_of = |name: &str| -> SocketAddr {
        sluice.find_where("listening", "listener.name", name)["addr"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let kept = addr_of("kept");
    let removed = addr_of("removed");
    assert_eq!(wait_for_pid_file(&pid_file), sluice.pid());
    let inode = listening_inode(kept);
    one_request(removed, 1).unwrap();

    let connects = ConnectLoop::start(kept, 500);
    std::fs::write(&config, &after).unwrap();
    let output = upgrade(&pid_file, true);
    assert!(output.status.success(), "{output:?}");
    let successor = read_pid(&pid_file);
    generations.pids.push(successor);
    let adopted = sluice.find_where("adopted inherited socket", "listener.name", "kept");
    assert_eq!(adopted["addr"], kept.to_string());
    // Two generations write to one stream: each line says which.
    assert_eq!(
        (&adopted["pid"], &adopted["generation"]),
        (&serde_json::json!(successor), &serde_json::json!(2))
    );
    let first = sluice.find_where("listening", "listener.name", "kept");
    assert_eq!(
        (&first["pid"], &first["generation"]),
        (&serde_json::json!(sluice.pid()), &serde_json::json!(1))
    );
    sluice.find_where(
        "closed inherited socket no listener uses",
        "listener.name",
        "removed",
    );
    let added = addr_of("added");
    one_request(added, 2).unwrap();
    // The old process drops its copy as it hands over, so the removed listener's socket closes.
    let deadline = Instant::now() + STEP_TIMEOUT;
    while TcpStream::connect(removed).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the removed listener still accepts"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(listening_inode(kept), inode);
    assert!(holds_socket(successor, inode));
    // Keep the load on the kept listener a moment past the hand-off.
    let served = connects.done();
    let deadline = Instant::now() + STEP_TIMEOUT;
    while connects.done() < served + 100 {
        assert!(Instant::now() < deadline, "the load stalled");
        thread::sleep(Duration::from_millis(10));
    }
    connects.finish();
    wait_exited(sluice.pid());
    terminate(successor);
}
