//! Node ids a listener refused (no port in its range, or negative), each logged once: a cluster
//! that keeps naming them does not fill the log, and one that invents new ones fills at most a
//! bounded set.

use std::collections::BTreeSet;

use parking_lot::Mutex;
use proxy_core::route::RouteId;
use tracing::error;

use super::GatewayMode;

/// The most refused node ids remembered (and so logged) per listener; past it, further ones
/// are refused without a word.
const REMEMBERED: usize = 1024;

/// The most node ids one log line lists.
const LISTED: usize = 16;

/// The refused node ids already logged.
#[derive(Debug, Default)]
pub(super) struct RefusedNodeIds(Mutex<BTreeSet<i32>>);

impl RefusedNodeIds {
    /// Logs the node ids of `refused` not logged before, in one line.
    pub(super) fn report(
        &self,
        listener: &str,
        route: &RouteId,
        mode: &GatewayMode,
        refused: impl Iterator<Item = i32>,
    ) {
        let fresh: Vec<i32> = {
            let mut logged = self.0.lock();
            refused
                .filter(|&node_id| logged.len() < REMEMBERED && logged.insert(node_id))
                .collect()
        };
        if fresh.is_empty() {
            return;
        }
        let listed = &fresh[..fresh.len().min(LISTED)];
        match mode {
            GatewayMode::PortPerBroker {
                broker_port_start,
                max_brokers,
                ..
            } => error!(
                listener.name = listener,
                route = %route,
                broker.node_ids = ?listed,
                refused = fresh.len(),
                broker_port_start,
                max_brokers,
                "brokers whose node id has no port in the listener's range (0 to max_brokers - 1): \
                 they get no port and clients are not told of them"
            ),
            GatewayMode::Sni { .. } => error!(
                listener.name = listener,
                route = %route,
                broker.node_ids = ?listed,
                refused = fresh.len(),
                "brokers with a negative node id: clients are not told of them"
            ),
        }
    }
}
