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
use sluice_tests::process::{Generations, Running, temp_path, write_config};
use sluice_tests::procfs::{children_of, holds_socket, listening_inode, process_state};

use crate::load::ConnectLoop;
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
        Self::start_with_log(binary, config, pid_file, namespace, QUIET)
    }

    /// [`Self::start`] with `RUST_LOG` set to `log`.
    fn start_with_log(
        binary: &Path,
        config: &Path,
        pid_file: &Path,
        namespace: bool,
        log: &str,
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
        let pid = read_pid(&self.pid_file).to_string();
        let before: u64 = status(&self.pid_file)
            .filter(|s| s.get("pid") == Some(&pid))
            .and_then(|s| s.get("seq")?.parse().ok())
            .unwrap_or(0);
        Command::new("kill")
            .args([signal, &self.master.to_string()])
            .status()
            .unwrap();
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
                "no outcome for {signal}: {:?}",
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

#[test]
fn as_pid_1_three_upgrades_and_a_failed_reload_keep_pid_1_and_refuse_nothing() {
    let text = config_text("1s");
    let config = write_config("pid1.toml", &text);
    let pid_file = temp_path("pid1.pid");
    let sluice = Master::start(SLUICE.path(), &config, &pid_file, true);
    let addr = sluice.running.listening_addr();
    let inode = listening_inode(addr);
    let mut workers = vec![wait_for_pid(&pid_file)];
    assert_ne!(workers[0], 1, "the worker is not PID 1");

    let connects = ConnectLoop::start(addr, 500);
    for round in 1..=3 {
        let before = connects.done();
        // Rounds 1 and 3 signal PID 1, which forwards; round 2 runs `sluice upgrade` inside.
        let record = if round == 2 {
            let output = sluice.upgrade_inside();
            assert!(output.status.success(), "upgrade {round}: {output:?}");
            let said = String::from_utf8_lossy(&output.stdout).into_owned();
            let expected = format!("process {} handed over to", workers[round - 1]);
            assert!(said.contains(&expected), "{said}");
            status(&pid_file).unwrap()
        } else {
            sluice.trigger("-USR2")
        };
        assert_eq!(
            record["outcome"], "succeeded",
            "upgrade {round}: {record:?}"
        );
        let worker = read_pid(&pid_file);
        assert_eq!(record["successor"], worker.to_string(), "{record:?}");
        assert!(
            !workers.contains(&worker),
            "upgrade {round}: {worker} again"
        );
        workers.push(worker);
        // The successor took over and keeps serving: alive, holding the socket, after its
        // predecessor has drained and exited.
        let previous = outer_pid(sluice.master, workers[round - 1]);
        let deadline = Instant::now() + STEP_TIMEOUT;
        while outer_pid(sluice.master, workers[round - 1]).is_some() {
            assert!(
                Instant::now() < deadline,
                "upgrade {round}: {previous:?} still runs"
            );
            thread::sleep(Duration::from_millis(20));
        }
        assert!(sluice.alive(), "upgrade {round}: PID 1 exited");
        assert!(holds_socket(sluice.worker(), inode), "upgrade {round}");
        let deadline = Instant::now() + STEP_TIMEOUT;
        while connects.done() < before + 200 {
            assert!(Instant::now() < deadline, "the load stalled");
            thread::sleep(Duration::from_millis(10));
        }
    }

    // A reload whose config does not parse fails, says so, and the worker keeps serving.
    std::fs::write(&config, "this is = not [toml\n").unwrap();
    let before = connects.done();
    let record = sluice.trigger("-HUP");
    assert_eq!(record["outcome"], "failed", "{record:?}");
    assert!(!record.contains_key("successor"), "{record:?}");
    assert_eq!(read_pid(&pid_file), *workers.last().unwrap());
    let deadline = Instant::now() + STEP_TIMEOUT;
    while connects.done() < before + 200 {
        assert!(
            Instant::now() < deadline,
            "the load stalled after the failed reload"
        );
        thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(&config, &text).unwrap();
    let served = connects.finish();
    assert!(sluice.alive(), "PID 1 exited");
    assert_eq!(children_of(sluice.running.pid()), vec![sluice.master]);
    eprintln!("{served} connections, none refused, workers {workers:?}");

    // SIGTERM to PID 1 reaches the worker, which drains; then everything exits 0.
    let Master {
        running, master, ..
    } = sluice;
    Command::new("kill")
        .args(["-TERM", &master.to_string()])
        .status()
        .unwrap();
    running.wait_for("shutdown: complete");
    running.wait_for("master: the last worker exited");
    let exit = running.wait_exit();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
    assert!(!pid_file.exists(), "the last worker removes its PID file");
}

#[test]
fn as_pid_1_an_upgrade_to_a_new_binary_on_disk_keeps_pid_1() {
    // A directory of its own: `temp_path` makes a file.
    let dir = temp_path("pid1-binary.toml").with_file_name("pid1-binary");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("sluice");
    let replace = || {
        let aside = dir.join("sluice.new");
        std::fs::copy(SLUICE.path(), &aside).unwrap();
        std::fs::rename(&aside, &binary).unwrap();
    };
    replace();
    let config = write_config("pid1-binary.toml", &config_text("1s"));
    let pid_file = temp_path("pid1-binary.pid");
    let sluice = Master::start(&binary, &config, &pid_file, true);
    let addr = sluice.running.listening_addr();
    let first = sluice.worker();

    // A new file at the path (a new inode, as a package manager installs it).
    let old_inode = std::fs::metadata(&binary).unwrap().ino();
    replace();
    let new_inode = std::fs::metadata(&binary).unwrap().ino();
    assert_ne!(old_inode, new_inode);

    let connects = ConnectLoop::start(addr, 300);
    let record = sluice.trigger("-USR2");
    assert_eq!(record["outcome"], "succeeded", "{record:?}");
    let worker = sluice.worker();
    assert_ne!(worker, first);
    // The new worker runs the file now on disk; PID 1 stays, on the code it started with.
    let exe = |pid: u32| std::fs::metadata(format!("/proc/{pid}/exe")).unwrap().ino();
    assert_eq!(exe(worker), new_inode, "the new worker runs the new binary");
    assert_eq!(exe(sluice.master), old_inode);
    assert!(sluice.alive());
    assert_eq!(inner_pid(sluice.master), Some(1));
    let deadline = Instant::now() + STEP_TIMEOUT;
    while connects.done() < 100 {
        assert!(Instant::now() < deadline, "the load stalled");
        thread::sleep(Duration::from_millis(10));
    }
    connects.finish();
    assert!(holds_socket(worker, listening_inode(addr)));
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn as_pid_1_the_master_reaps_orphans() {
    let config = write_config("pid1-reap.toml", &config_text("1s"));
    let pid_file = temp_path("pid1-reap.pid");
    let sluice = Master::start(SLUICE.path(), &config, &pid_file, true);
    wait_for_pid(&pid_file);
    // A process in the namespace whose parent exits at once: its orphan goes to PID 1.
    let output = Command::new("nsenter")
        .args(["--target", &sluice.master.to_string(), "--pid", "--mount"])
        .args(["sh", "-c", "sleep 2 >/dev/null 2>&1 & echo $!"])
        .output()
        .unwrap();
    assert!(output.status.success(), "nsenter: {output:?}");
    let orphan: u32 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    let outer = outer_pid(sluice.master, orphan).expect("the orphan is the master's child");
    assert!(children_of(sluice.master).contains(&outer));
    // It exits after two seconds; a zombie would stay in state Z.
    let deadline = Instant::now() + STEP_TIMEOUT;
    while let Some(state) = process_state(outer) {
        assert!(
            Instant::now() < deadline,
            "orphan {outer} not reaped: state {state}"
        );
        thread::sleep(Duration::from_millis(20));
    }
    sluice.running.wait_for("master: reaped an orphan");
    assert!(sluice.alive());
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn with_master_an_upgrade_outlives_the_first_worker_and_sigterm_exits_0() {
    let config = write_config("master-flag.toml", &config_text("1s"));
    let pid_file = temp_path("master-flag.pid");
    let sluice = Master::start(SLUICE.path(), &config, &pid_file, false);
    let addr = sluice.running.listening_addr();
    let first = wait_for_pid(&pid_file);
    assert_ne!(first, sluice.master);
    // Outside a namespace, workers would outlive a master killed by a failing test.
    let mut generations = Generations::new(first, &pid_file);
    let connects = ConnectLoop::start(addr, 300);
    let record = sluice.trigger("-USR2");
    assert_eq!(record["outcome"], "succeeded", "{record:?}");
    let worker = read_pid(&pid_file);
    generations.pids.push(worker);
    // The successor's parent drains and exits; the master (a child subreaper) adopts it.
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !children_of(sluice.master).contains(&worker) {
        assert!(
            Instant::now() < deadline,
            "{worker} not adopted by the master"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(process_state(first), None, "the first worker was reaped");
    connects.finish();
    assert!(holds_socket(worker, listening_inode(addr)));
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn a_worker_that_is_pid_1_refuses_upgrades_instead_of_reporting_a_doomed_success() {
    require_unshare();
    let config = write_config("pid1-worker.toml", &config_text("1s"));
    let pid_file = temp_path("pid1-worker.pid");
    let _ = std::fs::remove_file(&pid_file);
    // The master's variable makes PID 1 a worker, as if someone had set it by hand.
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(SLUICE.path())
        .args(["run", "--log-format", "json", "--config"])
        .arg(&config)
        .env("SLUICE_MASTER_PID_FILE", &pid_file)
        .env("RUST_LOG", QUIET)
        .stdin(Stdio::null());
    let running = Running::spawn(command);
    let addr = running.listening_addr();
    assert_eq!(wait_for_pid(&pid_file), 1);
    let sluice = Master {
        master: *children_of(running.pid()).first().unwrap(),
        running,
        pid_file,
    };
    let record = sluice.trigger("-USR2");
    assert_eq!(record["outcome"], "refused", "{record:?}");
    assert!(record["reason"].contains("PID 1"), "{record:?}");
    // Still serving, on its own.
    crate::load::one_request(addr, 1).unwrap();
    assert!(sluice.alive());
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn as_pid_1_upgrades_while_earlier_workers_drain_keep_pid_1() {
    let config = write_config("pid1-overlap.toml", &config_text("3s"));
    let pid_file = temp_path("pid1-overlap.pid");
    let sluice = Master::start(SLUICE.path(), &config, &pid_file, true);
    let addr = sluice.running.listening_addr();
    // An open session keeps each worker draining until its drain_timeout.
    let hold = || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
        stream.write_all(b"hold\n").unwrap();
        let mut echo = [0; 5];
        stream.read_exact(&mut echo).unwrap();
        stream
    };
    let first = sluice.worker();
    let _first_session = hold();
    // Upgrades run by the workers themselves (`sluice upgrade` inside), not through PID 1:
    // the master learns of them from the PID file alone.
    let output = sluice.upgrade_inside();
    assert!(output.status.success(), "{output:?}");
    let second = sluice.worker();
    // Past the first worker's closing of its listeners: this session is the second's.
    thread::sleep(Duration::from_millis(300));
    let _second_session = hold();
    let output = sluice.upgrade_inside();
    assert!(output.status.success(), "{output:?}");
    let third = sluice.worker();
    assert!(process_state(first).is_some() && process_state(second).is_some());

    // The first worker exits while the second still drains and the third serves: PID 1
    // follows the chain to the third.
    let deadline = Instant::now() + STEP_TIMEOUT;
    while process_state(first).is_some() {
        assert!(Instant::now() < deadline, "the first worker did not exit");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(sluice.alive(), "PID 1 exited with the first worker");
    let deadline = Instant::now() + STEP_TIMEOUT;
    while process_state(second).is_some() {
        assert!(
            Instant::now() < deadline,
            "the second worker was not reaped"
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert!(sluice.alive(), "PID 1 exited with the second worker");
    crate::load::one_request(addr, 7).unwrap();
    assert!(holds_socket(third, listening_inode(addr)));
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}

#[test]
fn as_pid_1_child_backends_stay_the_workers_and_their_orphans_are_reaped() {
    // A child backend that answers, leaves a grandchild behind and exits 7.
    let config = "[[listener]]\nname = \"tool\"\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\n\
                  cluster = \"child\"\n\n[cluster.child]\n\
                  exec = [\"/bin/sh\", \"-c\", \"sleep 1 </dev/null >/dev/null 2>&1 & echo $!; exit 7\"]\n\n\
                  [shutdown]\naccept_grace = \"0s\"\ndrain_timeout = \"1s\"\n";
    let config = write_config("pid1-child.toml", config);
    let pid_file = temp_path("pid1-child.pid");
    let sluice = Master::start_with_log(
        SLUICE.path(),
        &config,
        &pid_file,
        true,
        "warn,sluice=info,proxy_frontend::accept=info,proxy_backend=debug",
    );
    let addr = sluice.running.listening_addr();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(STEP_TIMEOUT)).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    client.read_to_string(&mut got).unwrap();
    let grandchild: u32 = got.trim().parse().unwrap();
    // The worker, not the master, waited for its child and saw its status.
    let reaped = sluice.running.wait_for("child reaped");
    assert_eq!(reaped["status"], "exit status: 7", "{reaped}");
    assert_eq!(reaped["pid"], wait_for_pid(&pid_file), "{reaped}");
    // Its orphan went to PID 1, which reaped it when it exited: at the end of its sleep, or
    // at the SIGTERM the worker sends the child's process group as the session ends.
    let orphan = sluice.running.wait_for("master: reaped an orphan");
    assert_eq!(orphan["orphan.pid"], grandchild, "{orphan}");
    assert!(
        ["exit status: 0", "signal: 15"].contains(&orphan["status"].as_str().unwrap()),
        "{orphan}"
    );
    let exit = sluice.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");
}
