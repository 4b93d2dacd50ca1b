//! What a Kafka listener does with SASL: nothing (passthrough), watch it (inspect), or be the
//! SASL server itself (terminate).

use std::sync::Arc;
use std::time::Duration;

use super::{SaslMetrics, SaslTermination};
use proxy_core::sasl::Mechanism;

/// A Kafka listener's SASL handling, when it is not passthrough.
#[derive(Debug, Clone)]
pub enum ListenerSasl {
    /// The exchange goes to the broker; the session learns the principal and the outcome.
    Inspect {
        /// Mechanisms let through; others are refused by the proxy.
        mechanisms: Arc<[Mechanism]>,
        /// Outcome counters.
        metrics: Arc<SaslMetrics>,
    },
    /// The proxy authenticates clients; no backend connection before it succeeds.
    Terminate(SaslTerminate),
}

/// A terminating listener's SASL server.
#[derive(Debug, Clone)]
pub struct SaslTerminate {
    /// Mechanisms, users, session lifetime, counters and the failure throttle.
    pub termination: SaslTermination,
    /// How long a client may take from connecting (after TLS) to authenticated.
    pub timeout: Duration,
    /// A client certificate's principal authenticates the session without SASL.
    pub accept_mtls_principal: bool,
}

impl ListenerSasl {
    /// The listener's outcome counters.
    pub fn metrics(&self) -> &Arc<SaslMetrics> {
        match self {
            Self::Inspect { metrics, .. } => metrics,
            Self::Terminate(terminate) => &terminate.termination.metrics,
        }
    }
}
