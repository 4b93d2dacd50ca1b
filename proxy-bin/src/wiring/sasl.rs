//! A Kafka listener's SASL handling; for termination, its users file read and checked (the
//! error names the file).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use proxy_core::sasl::{FailureThrottle, PasswordVerifier, PendingLimit, UserStore};
use proxy_kafka::sasl::{
    ListenerSasl, SaslMetrics, SaslServerConfig, SaslTerminate, SaslTermination,
};

use crate::config::KafkaSaslConfig;

/// The longest a (client, user) that keeps failing to authenticate is made to wait, unless
/// half the authentication timeout is shorter: the answer must come before the timeout does,
/// or the client sees a timeout instead of its error.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(5);
/// Failures older than this (counted from a (client, user)'s latest) are forgotten.
const FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// Every listener's PLAIN password checks share the process's: half the cores at most.
static VERIFIER: LazyLock<Arc<PasswordVerifier>> = LazyLock::new(Arc::default);

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
            max_unauthenticated,
            max_unauthenticated_per_source,
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
                        MAX_FAILURE_DELAY.min(*timeout / 2),
                        FAILURE_WINDOW,
                    )),
                    pending: Arc::new(PendingLimit::new(
                        *max_unauthenticated,
                        *max_unauthenticated_per_source,
                    )),
                    verifier: VERIFIER.clone(),
                },
                timeout: *timeout,
                accept_mtls_principal: *accept_mtls_principal,
            }))
        }
    }
}
