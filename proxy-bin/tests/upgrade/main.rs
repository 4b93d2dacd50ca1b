//! Zero-downtime upgrade and reload of the real binary: sockets handed to successors under
//! load, failed successors rolled back, a reload that adds and removes listeners, and systemd
//! socket activation, and a master that stays PID 1 of a PID namespace across upgrades. Every
//! wait and loop is bounded.
//!
//! This file holds what the tests share: an echo backend, config blocks, `sluice upgrade` and
//! waits for generations to exit; the client load is in `load`.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers of this test file fail the test when the environment misbehaves"
)]

mod handover;
mod load;
mod pid1;
mod rollback;
mod systemd;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::process::{SluiceBinary, echo_backend};
use sluice_tests::procfs::{process_gone, process_state};

const SLUICE: SluiceBinary = SluiceBinary::new(env!("CARGO_BIN_EXE_sluice"));

/// Start-up, upgrade and shutdown lines, without one line per session.
const QUIET: &str = "warn,sluice=info,proxy_frontend::accept=info";

fn listener_block(name: &str, backend: SocketAddr) -> String {
    format!(
        "[[listener]]\nname = \"{name}\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\ncluster = \"local\"\n\n\
         [cluster.local]\nbackends = [\"{backend}\"]\n\n"
    )
}

/// The admin and shutdown tables every test here uses: a short drain, a short upgrade timeout.
fn lifecycle_block(drain: &str, upgrade_timeout: &str) -> String {
    format!(
        "[admin]\nbind = \"127.0.0.1:0\"\n\n[shutdown]\naccept_grace = \"0s\"\n\
         drain_timeout = \"{drain}\"\nupgrade_timeout = \"{upgrade_timeout}\"\n"
    )
}

/// `sluice upgrade --pid-file FILE` (`--reload` for SIGHUP).
fn upgrade(pid_file: &Path, reload: bool) -> Output {
    let mut command = Command::new(SLUICE);
    command
        .args(["upgrade", "--timeout", "20s", "--pid-file"])
        .arg(pid_file);
    if reload {
        command.arg("--reload");
    }
    command.output().unwrap()
}

fn read_pid(pid_file: &Path) -> u32 {
    std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Gone, or a zombie left to a parent that has exited (its reaper is not ours to control).
fn wait_exited(pid: u32) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !(process_gone(pid) || process_state(pid) == Some('Z')) {
        assert!(Instant::now() < deadline, "process {pid} still running");
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_reaped(pid: u32) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !process_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "process {pid} not reaped: state {:?}",
            process_state(pid)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn terminate(pid: u32) {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    wait_exited(pid);
}
