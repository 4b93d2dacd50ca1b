//! Live counts of the resources a session must release explicitly.
//!
//! One [`LiveResources`] is shared (behind an `Arc`) by every session of a proxy instance, so a
//! test or a metrics endpoint can check that parsed PROXY headers and peer certificate chains
//! do not outlive the facts extracted from them. Counts are per instance, not process-global,
//! so two proxies in one test binary never see each other's sessions.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::gate::PauseReason;

/// Gauges of what live sessions currently hold.
#[derive(Debug, Default)]
pub struct LiveResources {
    sessions: AtomicUsize,
    sessions_total: AtomicU64,
    proxy_headers: AtomicUsize,
    peer_certificates: AtomicUsize,
    /// Time sessions' sides spent paused, per reason (indexed as [`PauseReason::ALL`]).
    paused_nanos: [AtomicU64; PauseReason::ALL.len()],
}

/// A kind of resource counted by [`LiveResources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A session context that has not been dropped.
    Session,
    /// A parsed PROXY-protocol header with its TLVs and raw bytes.
    ProxyHeader,
    /// A client's TLS certificate chain.
    PeerCertificates,
}

// === impl LiveResources ===

impl LiveResources {
    fn gauge(&self, resource: Resource) -> &AtomicUsize {
        match resource {
            Resource::Session => &self.sessions,
            Resource::ProxyHeader => &self.proxy_headers,
            Resource::PeerCertificates => &self.peer_certificates,
        }
    }

    /// How many of `resource` are held right now.
    pub fn live(&self, resource: Resource) -> usize {
        self.gauge(resource).load(Ordering::Relaxed)
    }

    /// How many sessions have ever been created by this instance.
    pub fn sessions_total(&self) -> u64 {
        self.sessions_total.load(Ordering::Relaxed)
    }

    /// Time a side of a session spent paused for `reason`, summed over every session and side
    /// since start (a session's share is added when its gate changes, and when it ends).
    pub fn paused(&self, reason: PauseReason) -> Duration {
        Duration::from_nanos(self.paused_slot(reason).load(Ordering::Relaxed))
    }

    pub(crate) fn add_paused(&self, reason: PauseReason, time: Duration) {
        let nanos = u64::try_from(time.as_nanos()).unwrap_or(u64::MAX);
        self.paused_slot(reason).fetch_add(nanos, Ordering::Relaxed);
    }

    fn paused_slot(&self, reason: PauseReason) -> &AtomicU64 {
        let index = PauseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        &self.paused_nanos[index]
    }

    pub(crate) fn acquire(&self, resource: Resource) {
        if resource == Resource::Session {
            self.sessions_total.fetch_add(1, Ordering::Relaxed);
        }
        self.gauge(resource).fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn release(&self, resource: Resource) {
        self.gauge(resource).fetch_sub(1, Ordering::Relaxed);
    }
}
