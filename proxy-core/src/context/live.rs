//! Live counts of the resources a session must release explicitly.
//!
//! One [`LiveResources`] is shared (behind an `Arc`) by every session of a proxy instance, so a
//! test or a metrics endpoint can check that parsed PROXY headers and peer certificate chains
//! do not outlive the facts extracted from them. Counts are per instance, not process-global,
//! so two proxies in one test binary never see each other's sessions.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Gauges of what live sessions currently hold.
#[derive(Debug, Default)]
pub struct LiveResources {
    sessions: AtomicUsize,
    sessions_total: AtomicU64,
    proxy_headers: AtomicUsize,
    peer_certificates: AtomicUsize,
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
