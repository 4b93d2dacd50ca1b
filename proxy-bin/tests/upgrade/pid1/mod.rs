//! Sluice as PID 1 of a PID namespace (as in a container), under `unshare --pid --fork
//! --mount-proc`: the master stays PID 1 across upgrades and a failed reload while a connect
//! loop refuses nothing, the status file tells the truth, a new binary on disk serves after an
//! upgrade, orphans are reaped, and SIGTERM drains and exits 0. Also `--master` outside a
//! namespace, and a worker that is PID 1 without a master refusing upgrades.
//!
//! PIDs in the PID file and the status file are the namespace's; the test maps them to its own
//! through the `NSpid` line of `/proc/PID/status`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use sluice_tests::STEP_TIMEOUT;
use sluice_tests::process::{Generations, Running, ScratchDir, temp_path, write_config};
use sluice_tests::procfs::{children_of, holds_socket, listening_inode, process_state};

use crate::{QUIET, SLUICE, echo_backend, lifecycle_block, listener_block, read_pid};

/// A `sluice run` under a master: the process the test spawned (`unshare`, or sluice itself
/// with `--master`) and the master's PID as the test sees it.
struct Master {
    running: Running,
    master: u32,
    pid_file: PathBuf,
}

/// Fails clearly when this machine cannot make a PID namespace.
fn require_unshare() {
    let output = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .output();
    match output {
        Ok(output) if output.status.success() => {}
        other => panic!(
            "these tests need `unshare --pid --fork --mount-proc` (util-linux, run as root): {other:?}"
        ),
    }
}

impl Master {
    /// Runs `binary` as PID 1 of a new PID namespace (or, with `namespace` false, with
    /// `--master` as a child of the test).
    fn start(binary: &Path, config: &Path, pid_file: &Path, namespace: bool) -> Self {
        Self::start_with(binary, config, pid_file, namespace, QUIET, &[])
    }

    /// [`Self::start`] with `RUST_LOG` set to `log` and `extra` arguments to `sluice run`.
    fn start_with(
        binary: &Path,
        config: &Path,
        pid_file: &Path,
        namespace: bool,
        log: &str,
        extra: &[&str],
    ) -> Self {
        let _ = std::fs::remove_file(pid_file);
        let mut command = if namespace {
            require_unshare();
            let mut command = Command::new("unshare");
            // --kill-child: if the test dies, the namespace dies with it.
            command
                .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
                .arg(binary);
            command
        } else {
            Command::new(binary)
        };
        command
            .args(["run", "--log-format", "json", "--config"])
            .arg(config)
            .arg("--pid-file")
            .arg(pid_file)
            .args(extra)
            .env("RUST_LOG", log)
            .stdin(Stdio::null());
        if !namespace {
            command.arg("--master");
        }
        let running = Running::spawn(command);
        let master = if namespace {
            let deadline = Instant::now() + STEP_TIMEOUT;
            loop {
                if let Some(child) = children_of(running.pid()).first() {
                    break *child;
                }
                assert!(Instant::now() < deadline, "unshare started no child");
                thread::sleep(Duration::from_millis(10));
            }
        } else {
            running.pid()
        };
        if namespace {
            assert_eq!(inner_pid(master), Some(1), "the master is not PID 1");
        }
        running.wait_for("master: worker started");
        Self {
            running,
            master,
            pid_file: pid_file.to_path_buf(),
        }
    }

    /// `sluice upgrade --pid-file FILE` inside the namespace, as `kubectl exec` would run it:
    /// it signals the worker the PID file names, by its namespace PID.
    fn upgrade_inside(&self) -> std::process::Output {
        Command::new("nsenter")
            .args(["--target", &self.master.to_string(), "--pid", "--mount"])
            .arg(SLUICE.path())
            .args(["upgrade", "--timeout", "20s", "--pid-file"])
            .arg(&self.pid_file)
            .output()
            .unwrap()
    }

    /// SIGTERM to the master (not to `unshare`, which does not forward it); the exit status.
    fn terminate(self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.master.to_string()])
            .status()
            .unwrap();
        self.running.wait_exit()
    }

    fn alive(&self) -> bool {
        !matches!(process_state(self.master), None | Some('Z'))
    }

    /// The worker the PID file names, as the test sees it: a descendant of the master.
    fn worker(&self) -> u32 {
        let named = wait_for_pid(&self.pid_file);
        outer_pid(self.master, named)
            .unwrap_or_else(|| panic!("no process of the master has (namespace) pid {named}"))
    }

    /// Sends `signal` (`-USR2`, `-HUP`) to the master and returns the status record the
    /// current worker writes for it once final.
    fn trigger(&self, signal: &str) -> BTreeMap<String, String> {
        self.outcome_of(signal, || {
            Command::new("kill")
                .args([signal, &self.master.to_string()])
                .status()
                .unwrap();
        })
    }

    /// Runs `act`, then returns the first final status record the current worker writes
    /// after it (`what` names the act in a failure).
    fn outcome_of(&self, what: &str, act: impl FnOnce()) -> BTreeMap<String, String> {
        let pid = read_pid(&self.pid_file).to_string();
        let before: u64 = status(&self.pid_file)
            .filter(|s| s.get("pid") == Some(&pid))
            .and_then(|s| s.get("seq")?.parse().ok())
            .unwrap_or(0);
        act();
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Some(record) = status(&self.pid_file)
                && record.get("pid") == Some(&pid)
                && record
                    .get("seq")
                    .and_then(|seq| seq.parse::<u64>().ok())
                    .is_some_and(|seq| seq > before)
                && record.get("outcome").map(String::as_str) != Some("started")
            {
                return record;
            }
            assert!(
                Instant::now() < deadline,
                "no outcome for {what}: {:?}",
                status(&self.pid_file)
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn wait_for_pid(pid_file: &Path) -> u32 {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while std::fs::read_to_string(pid_file).is_err() {
        assert!(Instant::now() < deadline, "no PID file");
        thread::sleep(Duration::from_millis(10));
    }
    read_pid(pid_file)
}

/// The status file's `key=value` lines.
fn status(pid_file: &Path) -> Option<BTreeMap<String, String>> {
    let mut name = pid_file.as_os_str().to_owned();
    name.push(".status");
    let text = std::fs::read_to_string(PathBuf::from(name)).ok()?;
    Some(
        text.lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect(),
    )
}

/// A process's PID in its own (innermost) namespace, from the `NSpid` line.
fn inner_pid(outer: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{outer}/status")).ok()?;
    let line = text.lines().find_map(|line| line.strip_prefix("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// The test's PID of the descendant of `master` whose namespace PID is `inner`.
fn outer_pid(master: u32, inner: u32) -> Option<u32> {
    let mut queue = vec![master];
    let mut seen = BTreeSet::new();
    // Bounded: a process tree of a few generations.
    while let Some(pid) = queue.pop() {
        if !seen.insert(pid) || seen.len() > 1000 {
            continue;
        }
        if pid != master && inner_pid(pid) == Some(inner) {
            return Some(pid);
        }
        queue.extend(children_of(pid));
    }
    None
}

fn config_text(drain: &str) -> String {
    format!(
        "{}{}",
        listener_block("plain", echo_backend()),
        lifecycle_block(drain, "10s")
    )
}

mod configmap;
mod reaping;
mod upgrades;
