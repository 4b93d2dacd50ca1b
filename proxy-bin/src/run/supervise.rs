//! Serving until a stop: SIGINT or SIGTERM, or a successor that took over; upgrades (SIGUSR2,
//! SIGHUP) run one at a time meanwhile, and a SIGHUP with nothing for a successor to read
//! reloads in place ([`crate::reload_in_place`]).

use anyhow::Context as _;
use sd_notify::NotifyState;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{info, warn};

use super::Stop;
use crate::audit::AuditWriter;
use crate::reload_in_place::{InPlaceFiles, SuccessorInputs};
use crate::systemd::notify;
use crate::upgrade::{Attempt, Trigger, Triggers, Upgrades};

/// SIGINT and SIGTERM, either of which asks for shutdown.
pub(super) struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    pub(super) fn install() -> anyhow::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    /// Waits for the next one; cancel safe.
    pub(super) async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// What a SIGHUP needs to reload in place: the file watchers, the audit file (reopened, as
/// logrotate's `postrotate` expects), and what only a successor reads.
pub(super) struct InPlace<'a> {
    pub(super) files: &'a InPlaceFiles,
    pub(super) audit: Option<&'a AuditWriter>,
    pub(super) inputs: &'a SuccessorInputs,
}

/// Serves until a stop signal or a successful hand-off; runs upgrades one at a time meanwhile.
/// A SIGHUP that finds nothing but in-place files possibly changed reloads in place.
pub(super) async fn supervise(
    signals: &mut StopSignals,
    triggers: &mut Triggers,
    upgrades: &mut Upgrades,
    in_place: &InPlace<'_>,
) -> Stop {
    let mut attempt: Option<Attempt> = None;
    // A config file change seen during an attempt: started after it, unless the attempt
    // handed over (the successor read the file itself, and watches it from there).
    let mut config_changed = false;
    loop {
        tokio::select! {
            signal = signals.next() => {
                if attempt.take().is_some() {
                    // Dropping the attempt kills the successor.
                    upgrades.finish(Err(format!("{signal} arrived during the upgrade")));
                }
                return Stop::Signal(signal);
            }
            trigger = triggers.next() => {
                if trigger == Trigger::ConfigChanged && attempt.is_some() {
                    config_changed = true;
                    continue;
                }
                if trigger == Trigger::Reload && attempt.is_none() {
                    // In place either way: sessions that stay with this process while it
                    // drains follow the new files too.
                    let reloaded = in_place.files.reload().await;
                    if let Some(audit) = in_place.audit {
                        audit.reopen();
                    }
                    match in_place.inputs.changed() {
                        None => {
                            upgrades.reloaded_in_place(&reloaded);
                            continue;
                        }
                        Some(changed) => {
                            info!(reason.detail = %changed, "reload: through a successor");
                        }
                    }
                }
                if let Some(started) = upgrades.begin(trigger) {
                    attempt = Some(started);
                }
            }
            result = async {
                match attempt.as_mut() {
                    Some(attempt) => attempt.await,
                    None => std::future::pending().await,
                }
            } => {
                attempt = None;
                if handed_over(result, upgrades).await {
                    return Stop::HandedOver;
                }
                if std::mem::take(&mut config_changed) {
                    attempt = upgrades.begin(Trigger::ConfigChanged);
                }
            }
        }
    }
}

/// Finishes an attempt that ended: `go` to a ready successor (true once it has taken over), or
/// the failure recorded while this process keeps serving.
async fn handed_over(
    result: Result<crate::upgrade::ReadySuccessor, String>,
    upgrades: &mut Upgrades,
) -> bool {
    let handed = match result {
        Ok(ready) => {
            let pid = ready.pid();
            ready.go().await.map(|()| pid)
        }
        Err(reason) => Err(reason),
    };
    match handed {
        Ok(pid) => {
            info!(successor.pid = pid, "upgrade: handed over to the successor");
            upgrades.finish(Ok(pid));
            notify(NotifyState::MainPid(pid));
            true
        }
        Err(reason) => {
            warn!(reason.detail = %reason, "upgrade failed; still serving");
            upgrades.finish(Err(reason));
            notify(NotifyState::Ready);
            false
        }
    }
}
