//! Reloading terminating listeners' certificates in place when their files change.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::{Outcome, TlsListener};

/// How often certificate files are checked for changes.
const TLS_FILE_CHECK: Duration = Duration::from_secs(2);

/// Reloads terminating listeners' certificates when their files change, until `stop`. New
/// handshakes use the new certificates; established sessions are untouched. A reload that
/// fails keeps the previous certificates and is logged, and counted, once per distinct error.
/// (SIGHUP reloads everything, certificates included, through a successor.)
pub(crate) async fn watch(listeners: Vec<Arc<TlsListener>>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(TLS_FILE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_error: Vec<Option<String>> = vec![None; listeners.len()];
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for (tls, last_error) in listeners.iter().zip(last_error.iter_mut()) {
            let listener = &tls.listener;
            match tls.config.reload_if_changed() {
                Ok(true) => {
                    info!(listener.name = %listener, trigger = "files changed", "tls certificates reloaded");
                    tls.reloads.record(Outcome::Succeeded);
                    *last_error = None;
                }
                Ok(false) => {}
                Err(err) => {
                    let message = err.to_string();
                    if last_error.as_deref() != Some(message.as_str()) {
                        warn!(listener.name = %listener, error = %message, "tls reload failed; keeping the previous certificates");
                        tls.reloads.record(Outcome::Failed);
                        *last_error = Some(message);
                    }
                }
            }
        }
    }
}
