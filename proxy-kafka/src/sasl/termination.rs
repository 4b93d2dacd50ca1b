//! A SASL-terminating listener's shared state: who may authenticate (the server's config), the
//! outcome counters, the failure throttle, the cap on sessions still authenticating, and the
//! process's password checks, with the bookkeeping of an outcome.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::metrics::{SaslMetrics, SaslPhase, SaslRefusal};
use super::server::SaslServerConfig;
use proxy_core::sasl::{
    FailureThrottle, Mechanism, PasswordCheck, PasswordVerifier, PendingLimit, VerifierError,
};

/// What a SASL-terminating listener's negotiation and re-authentication stage share.
#[derive(Debug, Clone)]
pub struct SaslTermination {
    /// Mechanisms, users and session lifetime.
    pub config: Arc<SaslServerConfig>,
    /// Outcome counters.
    pub metrics: Arc<SaslMetrics>,
    /// Holds back the answers to (client, user) pairs that keep failing.
    pub throttle: Arc<FailureThrottle>,
    /// Sessions still authenticating, per listener and per client.
    pub pending: Arc<PendingLimit>,
    /// PLAIN password checks, off the runtime (one for the whole process).
    pub verifier: Arc<PasswordVerifier>,
}

impl SaslTermination {
    /// Counts a success. Never delayed: a client that knows its password is not held back by
    /// anyone else's failures.
    pub fn succeeded(&self, mechanism: Mechanism, phase: SaslPhase) {
        self.metrics.record(Some(mechanism), phase, true);
    }

    /// Counts a failure of `username` from `ip`; returns how long to hold back the answer and
    /// the close (rejected credentials are slowed down, protocol mistakes are not).
    pub fn failed(
        &self,
        mechanism: Option<Mechanism>,
        phase: SaslPhase,
        ip: IpAddr,
        username: Option<&str>,
        credentials_rejected: bool,
    ) -> Duration {
        self.metrics.record(mechanism, phase, false);
        if !credentials_rejected {
            return Duration::ZERO;
        }
        self.metrics.record_delayed();
        self.throttle.record_failure(ip, username.unwrap_or(""))
    }

    /// Runs a PLAIN password check off the runtime, a bounded number at a time (a full queue
    /// is counted).
    pub async fn check_password(&self, check: PasswordCheck) -> Result<bool, VerifierError> {
        let checked = self.verifier.verify(check).await;
        if checked == Err(VerifierError::Busy) {
            self.metrics.record_refused(SaslRefusal::VerifierBusy);
        }
        checked
    }
}
