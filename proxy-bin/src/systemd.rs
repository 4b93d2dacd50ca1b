//! Telling systemd about state changes when running under it (`Type=notify`,
//! `Type=notify-reload`); a no-op elsewhere.

use sd_notify::NotifyState;
use tracing::debug;

/// Tells systemd about a state change.
pub(crate) fn notify(state: NotifyState<'_>) {
    if let Err(err) = sd_notify::notify(false, &[state]) {
        debug!(error = %err, "could not notify systemd");
    }
}

/// Tells systemd a reload began (`RELOADING=1` with the time, as `Type=notify-reload` needs).
pub(crate) fn notify_reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => {
            if let Err(err) = sd_notify::notify(false, &[NotifyState::Reloading, now]) {
                debug!(error = %err, "could not notify systemd");
            }
        }
        Err(err) => debug!(error = %err, "cannot read the monotonic clock"),
    }
}
