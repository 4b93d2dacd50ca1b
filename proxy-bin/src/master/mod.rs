//! The master of `sluice run` when it is PID 1 of its PID namespace (a container), or when run
//! with `--master`: a small supervisor that stays for the life of the container, in the spirit
//! of HAProxy's master-worker mode (see docs/operations.md, "Upgrade and reload").
//!
//! Without it, an upgrade or reload in a container ends badly: the old process hands over to its
//! successor and exits, and when the old process is PID 1 the kernel kills every process of the
//! namespace — the successor included.
//!
//! The master serves nothing itself. It starts the worker (this binary, same arguments, with
//! [`WORKER_ENV`] naming the PID file), forwards SIGTERM, SIGINT, SIGUSR2, SIGHUP and SIGUSR1 to the
//! current worker, and reaps every process that becomes its child: the worker, and orphans
//! reparented to it (as PID 1, or as a child subreaper otherwise). Upgrades and reloads stay
//! the workers' business: a worker starts its successor and, once that one took over, writes
//! its PID to the PID file and drains. When the old worker exits its successor is reparented
//! to the master, which learns of it from the PID file. The master exits once the last worker
//! has, with the exit status of the worker that was current.
//!
//! An upgrade with a new binary on disk runs the new code in the new worker (each worker starts
//! its successor from the binary's path); once that worker has taken over, the master
//! re-executes itself from the same file, keeping its PID and its children (see [`reexec`]).

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context as _;
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{debug, error, info, warn};

use self::reexec::{FileId, Resume};
use crate::upgrade::read_pid;

mod reexec;

pub(crate) use self::reexec::PROBE_ANSWER;

/// Set for a worker started by a master: the PID file the workers keep (the `--pid-file`
/// given, else one the master picked).
pub(crate) const WORKER_ENV: &str = "SLUICE_MASTER_PID_FILE";

/// How many generations apart a new worker may be from one the master knows.
const MAX_LINEAGE: usize = 64;

/// How often the master looks at its binary on disk: the file may be replaced at any time, and
/// a worker upgraded with `sluice upgrade` tells the master nothing.
const BINARY_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// What the master needs to start the first worker.
#[derive(Debug)]
pub(crate) struct MasterOptions {
    /// The executable to start, this one's path.
    pub(crate) binary: PathBuf,
    /// This process's arguments, passed to the worker unchanged.
    pub(crate) args: Vec<OsString>,
    /// `--pid-file`, if given.
    pub(crate) pid_file: Option<PathBuf>,
}

/// Whether `sluice run` should be a master: asked for, or PID 1, and not itself a worker.
pub(crate) fn wanted(flag: bool) -> bool {
    std::env::var_os(WORKER_ENV).is_none() && (flag || std::process::id() == 1)
}

/// The PID file a worker keeps: the one given, else the master's choice.
pub(crate) fn worker_pid_file(given: Option<PathBuf>) -> Option<PathBuf> {
    given.or_else(|| std::env::var_os(WORKER_ENV).map(PathBuf::from))
}

/// Runs the master until the last worker exits; returns that worker's exit status.
pub(crate) fn main(options: MasterOptions) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            error!(error = %err, "master: cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(supervise(options)) {
        Ok(code) => code,
        Err(err) => {
            error!(error = format!("{err:#}"), "master: stopped");
            ExitCode::FAILURE
        }
    }
}

/// The workers the master knows of.
#[derive(Debug)]
struct Workers {
    /// The worker signals go to: the one named by the PID file, once it took over.
    current: Pid,
    /// Every worker not yet reaped, the current one and those still draining.
    live: HashSet<Pid>,
    pid_file: PathBuf,
    /// How the last current worker to exit ended.
    last: Option<WaitStatus>,
}

async fn supervise(options: MasterOptions) -> anyhow::Result<ExitCode> {
    let me = rustix::process::getpid();
    if std::process::id() != 1 {
        // Orphans of the workers (a successor whose predecessor exited) come to us, not to
        // PID 1.
        rustix::process::set_child_subreaper(Some(me))
            .context("cannot become a child subreaper")?;
    }
    let resumed = Resume::from_env()?;
    // Before the worker exists: none of its signals may be missed.
    let mut children = signal(SignalKind::child()).context("cannot listen for SIGCHLD")?;
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut upgrade = signal(SignalKind::user_defined2()).context("cannot listen for SIGUSR2")?;
    let mut reload = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let mut reopen = signal(SignalKind::user_defined1()).context("cannot listen for SIGUSR1")?;
    // Handled now: those that arrived while a predecessor image re-executed come in.
    reexec::unblock_handled_signals()?;

    let (mut workers, private) = match resumed {
        Some(state) => {
            info!(
                pid = std::process::id(),
                worker.pid = state.current.as_raw_nonzero().get(),
                "master: resumed on the new binary"
            );
            let private = state.private;
            (Workers::resumed(state), private)
        }
        None => {
            let private = options.pid_file.is_none();
            let pid_file = options.pid_file.clone().unwrap_or_else(|| {
                runtime_dir().join(format!("sluice-master-{}.pid", std::process::id()))
            });
            // One left by an earlier run would name a stranger until the worker writes its
            // own: in a fresh PID namespace, PIDs repeat.
            let _ = std::fs::remove_file(&pid_file);
            let first = spawn_worker(&options, &pid_file)?;
            info!(
                pid = std::process::id(),
                worker.pid = first.as_raw_nonzero().get(),
                "master: worker started"
            );
            let workers = Workers {
                current: first,
                live: HashSet::from([first]),
                pid_file,
                last: None,
            };
            (workers, private)
        }
    };
    let mut binary = Binary::new(&options.binary);
    let mut check = tokio::time::interval(BINARY_CHECK_INTERVAL);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Every wake, not only SIGCHLD: signals of one kind coalesce, so reap on each; and
        // children may have exited while a predecessor image re-executed.
        workers.reap(me);
        if workers.live.is_empty() {
            break;
        }
        if let Some(target) = binary.replaced_and_proven(&mut workers, me) {
            let state = Resume {
                current: workers.current,
                live: workers.live.clone(),
                private,
                pid_file: workers.pid_file.clone(),
            };
            // Returns only if the new image could not be started: keep supervising.
            let err = reexec::exec(&options.binary, &options.args, &state);
            warn!(
                error = format!("{err:#}"),
                "master: cannot re-execute; keeping the code it runs"
            );
            binary.refused = Some(target);
        }
        let forward = tokio::select! {
            _ = children.recv() => None,
            _ = check.tick() => None,
            _ = term.recv() => Some(Signal::TERM),
            _ = interrupt.recv() => Some(Signal::INT),
            _ = upgrade.recv() => Some(Signal::USR2),
            _ = reload.recv() => Some(Signal::HUP),
            _ = reopen.recv() => Some(Signal::USR1),
        };
        if let Some(signal) = forward {
            workers.forward(signal, me);
        }
    }
    if private {
        let _ = std::fs::remove_file(crate::upgrade::status_path(&workers.pid_file));
    }
    let code = workers.last.map_or(ExitCode::FAILURE, exit_code);
    info!("master: the last worker exited");
    Ok(code)
}

/// The master's binary: the file it runs, and the one at its path now.
#[derive(Debug)]
struct Binary {
    path: PathBuf,
    running: Option<FileId>,
    /// A file found unable to resume the master: not tried again.
    refused: Option<FileId>,
}

impl Binary {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            running: FileId::running(),
            refused: None,
        }
    }

    /// The file at the path, when it is a new one that the current worker runs (it has
    /// started and taken over) and that can resume a master.
    fn replaced_and_proven(&mut self, workers: &mut Workers, me: Pid) -> Option<FileId> {
        let on_disk = FileId::of(&self.path)?;
        if self.running.is_none() || Some(on_disk) == self.running || Some(on_disk) == self.refused
        {
            return None;
        }
        if !proc_is_ours() {
            // Worker PIDs would name other processes in that /proc.
            return None;
        }
        workers.refresh(me);
        if FileId::run_by(workers.current) != Some(on_disk) {
            return None;
        }
        if let Err(reason) = reexec::can_resume(&self.path) {
            warn!(
                binary = %self.path.display(),
                reason.detail = %reason,
                "master: the new binary serves in the workers, but the master keeps its code"
            );
            self.refused = Some(on_disk);
            return None;
        }
        Some(on_disk)
    }
}

fn spawn_worker(options: &MasterOptions, pid_file: &Path) -> anyhow::Result<Pid> {
    use std::os::unix::process::CommandExt as _;
    let child = Command::new(&options.binary)
        .args(&options.args)
        .env(WORKER_ENV, pid_file)
        .env_remove(reexec::RESUME_ENV)
        .env_remove(reexec::RESUME_PID_FILE_ENV)
        // Its own group: a terminal's Ctrl-C reaches the master only, which forwards it once.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start the worker {}", options.binary.display()))?;
    // Reaped by `wait` below, not through this handle.
    i32::try_from(child.id())
        .ok()
        .and_then(Pid::from_raw)
        .context("the worker has an invalid process id")
}

// === impl Workers ===

impl Workers {
    fn resumed(state: Resume) -> Self {
        Self {
            current: state.current,
            live: state.live,
            pid_file: state.pid_file,
            last: None,
        }
    }

    /// Adopts the worker the PID file names if it is a new one that descends from us, with
    /// the workers between (a worker upgraded twice while its predecessor drained).
    fn refresh(&mut self, me: Pid) {
        let Some(named) = read_pid(&self.pid_file)
            .ok()
            .and_then(|pid| i32::try_from(pid).ok())
            .and_then(Pid::from_raw)
        else {
            return;
        };
        if named == self.current || self.live.contains(&named) {
            return;
        }
        let Some(lineage) = self.lineage(named, me) else {
            return;
        };
        info!(
            worker.pid = named.as_raw_nonzero().get(),
            "master: a new worker took over"
        );
        self.live.extend(lineage);
        self.current = named;
    }

    /// `pid` and its ancestors up to (not including) the master or a known worker; None if
    /// it descends from neither.
    fn lineage(&self, pid: Pid, me: Pid) -> Option<Vec<Pid>> {
        if !proc_is_ours() {
            // No /proc of this PID namespace to tell: trust the PID file the workers keep, if
            // the process exists.
            return rustix::process::test_kill_process(pid)
                .is_ok()
                .then(|| vec![pid]);
        }
        let mut chain = vec![pid];
        let mut at = pid;
        // Bounded: a chain of workers no longer than the upgrades that can overlap.
        for _ in 0..MAX_LINEAGE {
            // Gone, or at the top of the tree (parent 0): not ours.
            let parent = parent_of(at)?;
            if parent == me || self.live.contains(&parent) {
                return Some(chain);
            }
            chain.push(parent);
            at = parent;
        }
        None
    }

    fn forward(&mut self, signal: Signal, me: Pid) {
        self.refresh(me);
        let pid = self.current;
        debug!(
            worker.pid = pid.as_raw_nonzero().get(),
            signal = ?signal,
            "master: forwarding a signal"
        );
        if let Err(err) = rustix::process::kill_process(pid, signal) {
            warn!(
                worker.pid = pid.as_raw_nonzero().get(),
                error = %err,
                "master: cannot forward a signal"
            );
        }
    }

    /// Reaps every child that has exited: workers and orphans alike.
    fn reap(&mut self, me: Pid) {
        // Bounded: each round reaps one child, and there are finitely many.
        loop {
            match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => self.exited(pid, status, me),
                Ok(None) | Err(rustix::io::Errno::CHILD) => return,
                Err(rustix::io::Errno::INTR) => {}
                Err(err) => {
                    warn!(error = %err, "master: cannot reap children");
                    return;
                }
            }
        }
    }

    fn exited(&mut self, pid: Pid, status: WaitStatus, me: Pid) {
        let raw = pid.as_raw_nonzero().get();
        if !self.live.remove(&pid) {
            info!(orphan.pid = raw, status = %describe(status), "master: reaped an orphan");
            return;
        }
        if pid != self.current {
            info!(worker.pid = raw, "master: a drained worker exited");
            return;
        }
        // Its successor, if it handed over, is ours now and named by the PID file.
        self.refresh(me);
        if self.current == pid {
            info!(worker.pid = raw, status = %describe(status), "master: the worker exited");
            self.last = Some(status);
        }
    }
}

/// Whether /proc is mounted and shows this PID namespace (it may show another's, as under
/// `unshare --pid` without `--mount-proc`).
fn proc_is_ours() -> bool {
    std::fs::read_to_string("/proc/self/stat").is_ok_and(|stat| {
        stat.split_whitespace().next() == Some(std::process::id().to_string().as_str())
    })
}

/// The parent of `pid`, from /proc (None when it is gone or has none).
fn parent_of(pid: Pid) -> Option<Pid> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let ppid = rest.split_whitespace().nth(1)?.parse::<i32>().ok()?;
    Pid::from_raw(ppid)
}

/// systemd's RuntimeDirectory= (the first), else $TMPDIR.
fn runtime_dir() -> PathBuf {
    std::env::var("RUNTIME_DIRECTORY")
        .ok()
        .and_then(|dirs| dirs.split(':').next().map(PathBuf::from))
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(std::env::temp_dir)
}

/// An exit status for a log line, as `ExitStatus` shows it.
fn describe(status: WaitStatus) -> String {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => format!("exit status: {code}"),
        (None, Some(signal)) => format!("signal: {signal}"),
        (None, None) => format!("{status:?}"),
    }
}

/// The worker's exit status as the master's: its code, or 128 + the signal that killed it.
fn exit_code(status: WaitStatus) -> ExitCode {
    let code = status
        .exit_status()
        .or_else(|| status.terminating_signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_come_from_this_namespaces_proc() {
        assert!(proc_is_ours());
        let me = rustix::process::getpid();
        assert_eq!(parent_of(me), rustix::process::getppid());
        // PID 1 has no parent in its namespace.
        assert_eq!(Pid::from_raw(1).and_then(parent_of), None);
    }

    #[test]
    fn a_worker_is_adopted_only_when_it_descends_from_the_master_or_a_worker() {
        let me = rustix::process::getpid();
        let dir = std::env::temp_dir().join(format!("sluice-master-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("sluice.pid");
        // A worker, and its successor (the `sleep`) that it started.
        let mut child = Command::new("sh")
            .args(["-c", "sleep 5 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let successor: u32 = line.trim().parse().unwrap();
        let child_pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        let mut workers = Workers {
            current: child_pid,
            live: HashSet::from([child_pid]),
            pid_file: pid_file.clone(),
            last: None,
        };
        // Our parent is no worker of ours: not adopted.
        crate::upgrade::write_pid(&pid_file, std::os::unix::process::parent_id()).unwrap();
        workers.refresh(me);
        assert_eq!(workers.current, child_pid);
        // Nor is a PID that does not exist.
        crate::upgrade::write_pid(&pid_file, u32::MAX >> 2).unwrap();
        workers.refresh(me);
        assert_eq!(workers.current, child_pid);
        // A process the worker started is.
        crate::upgrade::write_pid(&pid_file, successor).unwrap();
        workers.refresh(me);
        let successor = Pid::from_raw(i32::try_from(successor).unwrap()).unwrap();
        assert_eq!(workers.current, successor);
        assert!(workers.live.contains(&successor) && workers.live.contains(&child_pid));
        let _ = rustix::process::kill_process(successor, Signal::KILL);
        let _ = child.kill();
        let _ = child.wait();
    }
}
