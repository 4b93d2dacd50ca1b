//! A Kafka listener's SASL handling; for termination, its users file read and checked (the
//! error names the file).

use std::sync::Arc;
use std::time::Duration;

use proxy_core::sasl::{FailureThrottle, UserStore};
use proxy_kafka::sasl::{
    ListenerSasl, SaslMetrics, SaslServerConfig, SaslTerminate, SaslTermination,
};

use crate::config::KafkaSaslConfig;

/// The longest a client address that keeps failing to authenticate is made to wait.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(10);
/// Failures older than this (counted from an address's latest) are forgotten.
const FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// The listener's SASL handling, or why its users file cannot be used.
pub(super) fn listener_sasl(config: &KafkaSaslConfig) -> Result<ListenerSasl, String> {
    let metrics = Arc::new(SaslMetrics::default());
    match config {
        KafkaSaslConfig::Inspect { mechanisms } => Ok(ListenerSasl::Inspect {
            mechanisms: mechanisms.as_slice().into(),
            metrics,
        }),
        KafkaSaslConfig::Terminate {
            mechanisms,
            users,
            timeout,
            session_lifetime,
            accept_mtls_principal,
            failure_delay,
        } => {
            let text = std::fs::read_to_string(users)
                .map_err(|err| format!("cannot read the users file {}: {err}", users.display()))?;
            let store =
                UserStore::parse(&text).map_err(|err| format!("{}: {err}", users.display()))?;
            if store.is_empty() {
                tracing::warn!(
                    users = %users.display(),
                    "the users file lists no users: every client authentication will fail"
                );
            }
            Ok(ListenerSasl::Terminate(SaslTerminate {
                termination: SaslTermination {
                    config: Arc::new(SaslServerConfig {
                        mechanisms: mechanisms.clone(),
                        users: Arc::new(store),
                        session_lifetime: *session_lifetime,
                    }),
                    metrics,
                    throttle: Arc::new(FailureThrottle::new(
                        *failure_delay,
                        MAX_FAILURE_DELAY,
                        FAILURE_WINDOW,
                    )),
                },
                timeout: *timeout,
                accept_mtls_principal: *accept_mtls_principal,
            }))
        }
    }
}
