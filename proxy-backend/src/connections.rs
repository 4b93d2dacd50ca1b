//! How many TCP connections the [`Connector`](crate::Connector) has opened to each cluster's
//! backends: sessions' and broker discovery's alike. The admin endpoint exports it as
//! `sluice_backend_connections_total{cluster="NAME"}`; a rate well above the session rate
//! means connections are opened and dropped (failing TLS or SASL, say).
//!
//! It also counts the attempts that failed, per backend (`sluice_backend_connect_failures_total`):
//! with ordered failover a dead first backend costs each session an attempt, and is visible
//! only here while the sessions themselves succeed on the next one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use proxy_core::route::RouteId;
use proxy_core::upstream::BackendAddr;

/// One counter per cluster, fixed when the connector is built: counting never allocates or
/// locks, and a cluster that was never connected to still reads 0.
#[derive(Debug, Default)]
pub struct BackendConnections {
    /// By route name; a `BTreeMap` so snapshots come in name order.
    by_route: BTreeMap<RouteId, AtomicU64>,
    /// Failed attempts by cluster and backend (`host:port` as configured, or as the cluster
    /// advertised a pinned broker): bounded by the config and the clusters' brokers. Locked
    /// only when an attempt fails.
    failures: Mutex<BTreeMap<(RouteId, String), u64>>,
}

// === impl BackendConnections ===

impl BackendConnections {
    /// A zero counter for each of `routes`.
    pub fn new(routes: impl IntoIterator<Item = RouteId>) -> Self {
        Self {
            by_route: routes
                .into_iter()
                .map(|route| (route, AtomicU64::new(0)))
                .collect(),
            failures: Mutex::default(),
        }
    }

    /// Counts one connection established to `route`'s cluster.
    pub(crate) fn record(&self, route: &RouteId) {
        if let Some(count) = self.by_route.get(route) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The connections opened to `route`'s cluster so far; `None` for a route the connector
    /// does not know.
    pub fn get(&self, route: &RouteId) -> Option<u64> {
        self.by_route
            .get(route)
            .map(|count| count.load(Ordering::Relaxed))
    }

    /// Every cluster's count, in name order.
    pub fn snapshot(&self) -> Vec<(RouteId, u64)> {
        self.by_route
            .iter()
            .map(|(route, count)| (route.clone(), count.load(Ordering::Relaxed)))
            .collect()
    }

    /// Lists `backends` of `route` among the failure counts, from 0.
    pub(crate) fn expect_backends<'a>(
        &self,
        route: &RouteId,
        backends: impl IntoIterator<Item = &'a BackendAddr>,
    ) {
        let mut failures = self.failures.lock();
        for backend in backends {
            failures
                .entry((route.clone(), backend.to_string()))
                .or_default();
        }
    }

    /// Counts one failed attempt (no name, refused, timed out) to `backend` of `route`.
    pub(crate) fn record_failure(&self, route: &RouteId, backend: &BackendAddr) {
        *self
            .failures
            .lock()
            .entry((route.clone(), backend.to_string()))
            .or_default() += 1;
    }

    /// Failed attempts per cluster and backend, in that order.
    pub fn failures(&self) -> Vec<((RouteId, String), u64)> {
        self.failures
            .lock()
            .iter()
            .map(|(key, count)| (key.clone(), *count))
            .collect()
    }
}
