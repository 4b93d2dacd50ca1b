//! How many TCP connections the [`Connector`](crate::Connector) has opened to each cluster's
//! backends: sessions' and broker discovery's alike. The admin endpoint exports it as
//! `sluice_backend_connections_total{cluster="NAME"}`; a rate well above the session rate
//! means connections are opened and dropped (failing TLS or SASL, say).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use proxy_core::route::RouteId;

/// One counter per cluster, fixed when the connector is built: counting never allocates or
/// locks, and a cluster that was never connected to still reads 0.
#[derive(Debug, Default)]
pub struct BackendConnections {
    /// By route name; a `BTreeMap` so snapshots come in name order.
    by_route: BTreeMap<RouteId, AtomicU64>,
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
}
