//! A Kafka listener's SASL handling; for termination, its users file read and checked (the
//! error names the file), once per file however many listeners name it, and kept for reloading.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use proxy_core::sasl::{FailureThrottle, PasswordVerifier, PendingLimit};
use proxy_kafka::sasl::{
    ListenerSasl, SaslMetrics, SaslServerConfig, SaslTerminate, SaslTermination,
};

use crate::config::KafkaSaslConfig;
use crate::users_reload::UsersFile;

/// The longest a (client, user) that keeps failing to authenticate is made to wait, unless
/// half the authentication timeout is shorter: the answer must come before the timeout does,
/// or the client sees a timeout instead of its error.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(5);
/// Failures older than this (counted from a (client, user)'s latest) are forgotten.
const FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// Every listener's PLAIN password checks share the process's: half the cores at most.
static VERIFIER: LazyLock<Arc<PasswordVerifier>> = LazyLock::new(Arc::default);

/// The listener's SASL handling, or why its users file cannot be used. `users_files`: the
/// files loaded so far, to which a new one is added.
pub(super) fn listener_sasl(
    config: &KafkaSaslConfig,
    users_files: &mut Vec<UsersFile>,
) -> Result<ListenerSasl, String> {
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
            let users = match users_files.iter().find(|file| file.path() == users) {
                Some(file) => file.users().clone(),
                None => {
                    let file = UsersFile::load(users)?;
                    let shared = file.users().clone();
                    users_files.push(file);
                    shared
                }
            };
            Ok(ListenerSasl::Terminate(SaslTerminate {
                termination: SaslTermination {
                    config: Arc::new(SaslServerConfig {
                        mechanisms: mechanisms.clone(),
                        users,
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
