//! The shutdown phases, once serving stopped: readiness fails and listeners keep accepting for
//! the accept grace (after a signal), listeners close, sessions drain until `drain_timeout`,
//! what remains is force-closed, child backends are stopped.

use std::time::Duration;

use proxy_frontend::Lifecycle;
use sd_notify::NotifyState;
use tracing::{info, warn};

use super::supervise::StopSignals;
use super::{Running, Stop};
use crate::admin::Phase;
use crate::config::ShutdownConfig;
use crate::systemd::notify;
use crate::upgrade::Upgrades;

/// How long force-closed sessions get to write their close lines before the process exits.
pub(super) const FORCE_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Walks the phases after `stop`; a second signal skips to the force-close.
pub(super) async fn run(
    running: Running,
    stop: Stop,
    shutdown: &ShutdownConfig,
    signals: &mut StopSignals,
    upgrades: &mut Upgrades,
    lifecycle: Lifecycle,
) {
    let Running {
        started,
        listeners,
        stop_admin,
    } = running;
    let state = &started.state;
    let mut forced = match stop {
        Stop::Signal(signal_name) => {
            state.set_phase(Phase::AcceptGrace);
            notify(NotifyState::Stopping);
            info!(signal = signal_name, accept_grace = ?shutdown.accept_grace, "shutdown: readiness failing");
            tokio::select! {
                () = tokio::time::sleep(shutdown.accept_grace) => false,
                signal = signals.next() => {
                    info!(signal, "shutdown: second signal, skipping the drain");
                    true
                }
            }
        }
        Stop::HandedOver => {
            // The successor accepts on the same sockets, admin included: no grace needed.
            stop_admin.cancel();
            info!("shutdown: handed over to the successor");
            false
        }
    };

    info!("shutdown: stop accepting");
    // Our spare copies too, or the kernel would keep queueing connections nobody accepts.
    upgrades.release_sockets();
    lifecycle.stop_accepting.cancel();
    listeners.wait().await;
    lifecycle.tracker.close();

    let sessions = started.frontend.sessions();
    if !forced {
        state.set_phase(Phase::Draining);
        info!(sessions = sessions.len(), drain_timeout = ?shutdown.drain_timeout, "shutdown: draining");
        forced = tokio::select! {
            () = lifecycle.tracker.wait() => false,
            () = tokio::time::sleep(shutdown.drain_timeout) => true,
            signal = signals.next() => {
                info!(signal, "shutdown: second signal, ending the drain");
                true
            }
        };
    }
    if forced && !lifecycle.tracker.is_empty() {
        state.set_phase(Phase::ForceClosing);
        warn!(
            sessions = sessions.len(),
            "shutdown: force-closing sessions still open"
        );
        lifecycle.force_close.cancel();
        if tokio::time::timeout(FORCE_CLOSE_GRACE, lifecycle.tracker.wait())
            .await
            .is_err()
        {
            warn!("shutdown: sessions did not finish closing in time");
        }
    }

    state.set_phase(Phase::StoppingChildren);
    info!(
        children = started.reaper.live(),
        "shutdown: stopping child backends"
    );
    started.reaper.stop_all().await;

    started.stop_background.cancel();
    started.background.close();
    started.background.wait().await;
}
