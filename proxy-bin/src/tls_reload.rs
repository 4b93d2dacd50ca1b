//! Reloading terminating listeners' certificates in place when their files change.

use std::sync::Arc;
use std::time::Duration;

use proxy_frontend::ReloadableServerConfig;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often certificate files are checked for changes.
const TLS_FILE_CHECK: Duration = Duration::from_secs(2);

/// Reloads terminating listeners' certificates when their files change, until `stop`. New
/// handshakes use the new certificates; established sessions are untouched. A reload that
/// fails keeps the previous certificates and is logged once per distinct error. (SIGHUP
/// reloads everything, certificates included, through a successor.)
pub(crate) async fn watch(
    configs: Vec<(String, Arc<ReloadableServerConfig>)>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(TLS_FILE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_error: Vec<Option<String>> = vec![None; configs.len()];
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        for ((listener, config), last_error) in configs.iter().zip(last_error.iter_mut()) {
            match config.reload_if_changed() {
                Ok(true) => {
                    info!(listener.name = %listener, trigger = "files changed", "tls certificates reloaded");
                    *last_error = None;
                }
                Ok(false) => {}
                Err(err) => {
                    let message = err.to_string();
                    if last_error.as_deref() != Some(message.as_str()) {
                        warn!(listener.name = %listener, error = %message, "tls reload failed; keeping the previous certificates");
                        *last_error = Some(message);
                    }
                }
            }
        }
    }
}
