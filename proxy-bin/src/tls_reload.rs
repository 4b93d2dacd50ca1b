//! Reloading terminating listeners' certificates in place when their files change.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::{Outcome, TlsListener};
use crate::reload_in_place::{Reloaded, Requests, next_request};

/// How often certificate files are checked for changes.
const TLS_FILE_CHECK: Duration = Duration::from_secs(2);

/// Reloads terminating listeners' certificates when their files change, and every one at once
/// when `requests` asks (SIGHUP), until `stop`. New handshakes use the new certificates;
/// established sessions are untouched. A reload that fails keeps the previous certificates and
/// is logged, and counted, once per distinct error (every time, when asked).
pub(crate) async fn watch(
    listeners: Vec<Arc<TlsListener>>,
    stop: CancellationToken,
    mut requests: Requests,
) {
    let mut tick = tokio::time::interval(TLS_FILE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_error: Vec<Option<String>> = vec![None; listeners.len()];
    loop {
        let request = tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => None,
            request = next_request(&mut requests) => Some(request),
        };
        let trigger = if request.is_some() {
            "SIGHUP"
        } else {
            "files changed"
        };
        let mut reloaded = Vec::new();
        for (tls, last_error) in listeners.iter().zip(last_error.iter_mut()) {
            let listener = &tls.listener;
            let result = if request.is_some() {
                tls.config.reload().map(|()| true)
            } else {
                tls.config.reload_if_changed()
            };
            let file = format!("the certificates of listener {listener}");
            match result {
                Ok(true) => {
                    info!(listener.name = %listener, trigger, "tls certificates reloaded");
                    tls.reloads.record(Outcome::Succeeded);
                    *last_error = None;
                    reloaded.push(Reloaded { file, error: None });
                }
                Ok(false) => {}
                Err(err) => {
                    let message = err.to_string();
                    if request.is_some() || last_error.as_deref() != Some(message.as_str()) {
                        warn!(listener.name = %listener, error = %message, trigger, "tls reload failed; keeping the previous certificates");
                        tls.reloads.record(Outcome::Failed);
                    }
                    reloaded.push(Reloaded {
                        file,
                        error: Some(message.clone()),
                    });
                    *last_error = Some(message);
                }
            }
        }
        if let Some(request) = request {
            request.answer(reloaded);
        }
    }
}
