//! Zero-downtime upgrade and reload (see docs/architecture.md, "Upgrade and reload").
//!
//! SIGUSR2 (upgrade) and SIGHUP (reload) make the running process start its successor — the
//! binary at its path, with the same arguments — and hand it the listening sockets over a Unix
//! socket ([`handoff`]). The successor adopts the sockets its config still names, binds the new
//! ones, closes the rest, becomes ready and says so; only then does the old process tell it to
//! start accepting, stop accepting itself and drain. A successor that fails in any way is
//! killed, and the old process keeps serving ([`successor`]).
//!
//! At start-up, sockets also come from systemd socket activation ([`activation`]).

mod activation;
mod client;
mod handoff;
mod inherited;
mod pidfile;
mod predecessor;
mod successor;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use parking_lot::Mutex;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{info, warn};

pub(crate) use self::activation::sockets as systemd_sockets;
pub(crate) use self::client::upgrade as client;
pub(crate) use self::handoff::{Offered, SocketKind, is_sendable_name};
pub(crate) use self::inherited::{Inherited, Origin};
pub(crate) use self::pidfile::{read_pid, remove_pid_if_ours, status_path, write_pid};
pub(crate) use self::predecessor::Predecessor;
pub(crate) use self::successor::ReadySuccessor;

use self::pidfile::{Outcome, Status};
use self::successor::Request;
use crate::config_watch::ConfigWatch;
use crate::reload_in_place::Reloaded;

/// What asked for a successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// SIGUSR2: a new binary.
    Upgrade,
    /// SIGHUP: a changed config.
    Reload,
    /// `--reload-on-change`: the config file's contents changed.
    ConfigChanged,
}

impl Trigger {
    /// The name in the status file and the logs: the signal, or `config-file`.
    pub(crate) fn signal_name(self) -> &'static str {
        match self {
            Self::Upgrade => "SIGUSR2",
            Self::Reload => "SIGHUP",
            Self::ConfigChanged => "config-file",
        }
    }
}

/// SIGUSR2 and SIGHUP, and changes of the config file when watched.
#[derive(Debug)]
pub(crate) struct Triggers {
    upgrade: Signal,
    reload: Signal,
    watch: Option<ConfigWatch>,
}

impl Triggers {
    pub(crate) fn install(watch: Option<ConfigWatch>) -> anyhow::Result<Self> {
        Ok(Self {
            upgrade: signal(SignalKind::user_defined2()).context("cannot listen for SIGUSR2")?,
            reload: signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?,
            watch,
        })
    }

    /// Waits for the next one; cancel safe.
    pub(crate) async fn next(&mut self) -> Trigger {
        let watched = async {
            match self.watch.as_mut() {
                Some(watch) => watch.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.upgrade.recv() => Trigger::Upgrade,
            _ = self.reload.recv() => Trigger::Reload,
            () = watched => Trigger::ConfigChanged,
        }
    }
}

/// How this process was started, as far as upgrades care.
#[derive(Debug, Clone, Default)]
pub(crate) struct UpgradeOptions {
    /// `--pid-file`: written when ready, rewritten with the successor's PID on hand-off.
    pub(crate) pid_file: Option<PathBuf>,
    /// `--upgrade-binary`, else this executable's path as it was at start-up.
    pub(crate) binary: Option<PathBuf>,
    /// The arguments this process got, passed on to the successor unchanged.
    pub(crate) args: Vec<OsString>,
}

/// The sockets a successor would get: fixed at start-up, plus Kafka broker ports opened since.
#[derive(Debug, Clone, Default)]
pub(crate) struct OfferedSockets(Arc<Mutex<Vec<Offered>>>);

impl OfferedSockets {
    pub(crate) fn push(&self, offered: Offered) {
        self.0.lock().push(offered);
    }

    /// Stops offering the listening socket named `name` (a Kafka broker port that closed):
    /// its duplicate is closed here, so the socket stops listening once its listener is gone.
    pub(crate) fn withdraw(&self, name: &str) {
        self.0.lock().retain(|offered| {
            offered.entry.kind != SocketKind::Listener || offered.entry.name != name
        });
    }

    /// Duplicates of every socket on offer now, for one hand-off.
    fn snapshot(&self) -> std::io::Result<Vec<Offered>> {
        self.0.lock().iter().map(Offered::try_clone).collect()
    }

    fn clear(&self) {
        self.0.lock().clear();
    }
}

/// The old side's bookkeeping: one attempt at a time, each reported in the status file.
#[derive(Debug)]
pub(crate) struct Upgrades {
    options: UpgradeOptions,
    timeout: Duration,
    offered: OfferedSockets,
    /// Triggers seen so far, refused ones included.
    seq: u64,
    /// The attempt under way: its number and trigger.
    current: Option<(u64, Trigger)>,
    /// Every attempt's outcome, for `/metrics`.
    outcomes: Arc<crate::admin::Outcomes>,
}

// === impl Upgrades ===

impl Upgrades {
    pub(crate) fn new(
        options: UpgradeOptions,
        timeout: Duration,
        offered: OfferedSockets,
        outcomes: Arc<crate::admin::Outcomes>,
    ) -> Self {
        Self {
            options,
            timeout,
            offered,
            seq: 0,
            current: None,
            outcomes,
        }
    }

    /// Starts an attempt, or refuses with a message while one is under way. The returned
    /// future resolves once the successor is ready (or failed); pass it to [`Self::finish`].
    pub(crate) fn begin(&mut self, trigger: Trigger) -> Option<Attempt> {
        self.seq += 1;
        let seq = self.seq;
        if let Some((current, running)) = self.current {
            let reason = format!(
                "upgrade {current} ({}) is still in progress; try again when it has finished",
                running.signal_name()
            );
            warn!(trigger = trigger.signal_name(), reason.detail = %reason, "upgrade refused");
            self.record(
                seq,
                trigger,
                Outcome::Refused,
                None,
                Some(reason),
                Some(current),
            );
            return None;
        }
        if std::process::id() == 1 {
            // The kernel would kill the successor with us once we drain and exit.
            let reason = "this process is PID 1 of its PID namespace: its exit would kill the \
                          successor; run it under a master (see docs/operations.md)"
                .to_owned();
            warn!(trigger = trigger.signal_name(), reason.detail = %reason, "upgrade refused");
            self.record(seq, trigger, Outcome::Refused, None, Some(reason), None);
            return None;
        }
        self.current = Some((seq, trigger));
        self.record(seq, trigger, Outcome::Started, None, None, None);
        crate::systemd::notify_reloading();
        let binary = match &self.options.binary {
            Some(binary) => binary.clone(),
            None => {
                return Some(futures_ready(Err(
                    "cannot tell this executable's path; use --upgrade-binary".to_owned(),
                )));
            }
        };
        info!(
            trigger = trigger.signal_name(),
            binary = %binary.display(),
            upgrade_timeout = ?self.timeout,
            "upgrade: starting successor"
        );
        let offered = match self.offered.snapshot() {
            Ok(offered) => Arc::new(offered),
            Err(err) => {
                return Some(futures_ready(Err(format!(
                    "cannot duplicate the listening sockets: {err}"
                ))));
            }
        };
        let request = Request {
            binary,
            args: self.options.args.clone(),
            timeout: self.timeout,
            offered,
            seq,
        };
        Some(futures_boxed(successor::start(request)))
    }

    /// Records a SIGHUP that re-read the in-place files (`reloaded`) and needed no successor:
    /// succeeded when every file loaded, failed (previous versions kept) naming those that
    /// did not. Reported as a successor's outcome is: the status file, the log, `/metrics`.
    pub(crate) fn reloaded_in_place(&mut self, reloaded: &[Reloaded]) {
        self.seq += 1;
        let seq = self.seq;
        crate::systemd::notify_reloading();
        let kept: Vec<String> = reloaded
            .iter()
            .filter_map(|file| Some(format!("{}: {}", file.file, file.error.as_ref()?)))
            .collect();
        if kept.is_empty() {
            let detail = format!(
                "{} file(s) re-read in place by process {}; the config file and the cluster \
                 files are unchanged",
                reloaded.len(),
                std::process::id()
            );
            info!(
                trigger = Trigger::Reload.signal_name(),
                files = reloaded.len(),
                "reloaded in place"
            );
            self.record(
                seq,
                Trigger::Reload,
                Outcome::Succeeded,
                None,
                Some(detail),
                None,
            );
        } else {
            let reason = format!("kept the previous version of {}", kept.join("; "));
            warn!(trigger = Trigger::Reload.signal_name(), reason.detail = %reason, "reload failed; still serving");
            self.record(
                seq,
                Trigger::Reload,
                Outcome::Failed,
                None,
                Some(reason),
                None,
            );
        }
        crate::systemd::notify(sd_notify::NotifyState::Ready);
    }

    /// Records how the attempt under way ended: `Ok(pid)` handed over, `Err(reason)` rolled
    /// back. After a hand-off the PID file names the successor.
    pub(crate) fn finish(&mut self, outcome: Result<u32, String>) {
        let Some((seq, trigger)) = self.current.take() else {
            return;
        };
        match outcome {
            Ok(pid) => {
                if let Some(pid_file) = &self.options.pid_file
                    && let Err(err) = write_pid(pid_file, pid)
                {
                    warn!(error = %err, path = %pid_file.display(), "cannot write the PID file");
                }
                self.record(seq, trigger, Outcome::Succeeded, Some(pid), None, None);
            }
            Err(reason) => {
                self.record(seq, trigger, Outcome::Failed, None, Some(reason), None);
            }
        }
    }

    /// Drops this process's copies of the sockets (after a hand-off: the successor has them).
    pub(crate) fn release_sockets(&mut self) {
        self.offered.clear();
    }

    fn record(
        &self,
        seq: u64,
        trigger: Trigger,
        outcome: Outcome,
        successor: Option<u32>,
        reason: Option<String>,
        in_progress: Option<u64>,
    ) {
        let counted = match outcome {
            Outcome::Started => None,
            Outcome::Succeeded => Some(crate::admin::Outcome::Succeeded),
            Outcome::Failed => Some(crate::admin::Outcome::Failed),
            Outcome::Refused => Some(crate::admin::Outcome::Refused),
        };
        if let Some(counted) = counted {
            self.outcomes.record(counted);
        }
        let Some(pid_file) = &self.options.pid_file else {
            return;
        };
        let status = Status {
            pid: std::process::id(),
            seq,
            trigger: trigger.signal_name().to_owned(),
            outcome,
            successor,
            reason,
            in_progress,
        };
        if let Err(err) = pidfile::write_status(pid_file, &status) {
            warn!(error = %err, path = %pid_file.display(), "cannot write the upgrade status file");
        }
    }
}

/// An upgrade attempt under way: resolves once the successor is ready, or with the reason
/// it failed.
pub(crate) type Attempt =
    std::pin::Pin<Box<dyn Future<Output = Result<ReadySuccessor, String>> + Send>>;

fn futures_boxed(
    future: impl Future<Output = Result<ReadySuccessor, String>> + Send + 'static,
) -> Attempt {
    Box::pin(future)
}

fn futures_ready(result: Result<ReadySuccessor, String>) -> Attempt {
    Box::pin(std::future::ready(result))
}
