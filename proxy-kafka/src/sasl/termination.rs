//! A SASL-terminating listener's shared state: who may authenticate (the server's config), the
//! outcome counters, and the per-address failure throttle, with the bookkeeping of an outcome.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::metrics::{SaslMetrics, SaslPhase};
use super::server::SaslServerConfig;
use proxy_core::sasl::{FailureThrottle, Mechanism};

/// What a SASL-terminating listener's negotiation and re-authentication stage share.
#[derive(Debug, Clone)]
pub struct SaslTermination {
    /// Mechanisms, users and session lifetime.
    pub config: Arc<SaslServerConfig>,
    /// Outcome counters.
    pub metrics: Arc<SaslMetrics>,
    /// Slows down addresses that keep failing.
    pub throttle: Arc<FailureThrottle>,
}

impl SaslTermination {
    /// Counts a success from `ip`; returns the delay its address's earlier failures owe
    /// before the answer.
    pub fn succeeded(&self, mechanism: Mechanism, phase: SaslPhase, ip: IpAddr) -> Duration {
        self.metrics.record(Some(mechanism), phase, true);
        self.throttle.delay(ip)
    }

    /// Counts a failure from `ip`; returns the delay owed before the answer (rejected
    /// credentials are slowed down, protocol mistakes are not).
    pub fn failed(
        &self,
        mechanism: Option<Mechanism>,
        phase: SaslPhase,
        ip: IpAddr,
        credentials_rejected: bool,
    ) -> Duration {
        self.metrics.record(mechanism, phase, false);
        if credentials_rejected {
            self.throttle.record_failure(ip)
        } else {
            Duration::ZERO
        }
    }
}
