//! A Kafka virtual cluster's broker map: which brokers each cluster behind a listener has (as
//! the cluster advertises them), and what address clients are told for each. Data only: it
//! opens no sockets. [`learn`](BrokerMap::learn) says which node ids were new, so whoever
//! serves brokers (the frontend's broker ports) can start serving them.
//!
//! Brokers are what a cluster says they are, so the map refuses what it cannot serve: a node id
//! the listener has no port for (negative, or past `max_brokers`) is not recorded, is left out
//! of what clients are told, and is logged once. A broker missing from its cluster's latest full
//! list of brokers is marked absent; whoever serves it closes its port once it has been absent
//! for the gateway's grace period, and [`forget_unreported`](BrokerMap::forget_unreported)s it.

mod gateway_mode;
mod on_demand;
mod refused;
mod rewrite_stage;
mod versions;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::RwLock;
use proxy_core::route::RouteId;
use proxy_core::upstream::BackendAddr;
use tokio::time::Instant;
use tracing::{info, warn};

pub use self::gateway_mode::{
    DEFAULT_BROKER_PORT_GRACE, DEFAULT_MAX_BROKERS, GatewayMode, HostPattern, NODE_ID_PLACEHOLDER,
    SNI_MAX_BROKERS,
};
pub use self::on_demand::{ON_DEMAND_INTERVAL, OnDemandDiscovery};
use self::refused::RefusedNodeIds;
pub use self::rewrite_stage::{BrokerAddressRewrite, BrokerListeners};
pub use self::versions::{BrokerVersions, offered_versions};
use crate::rewrite::{Listing, UpstreamBroker};

/// One virtual cluster's view of its brokers, shared by its listeners' sessions.
///
/// The [`BrokerAddressRewrite`] stage feeds it the brokers that responses reveal and tells
/// clients the addresses it advertises.
///
/// ```
/// use std::net::IpAddr;
/// use proxy_core::route::RouteId;
/// use proxy_kafka::broker_map::{BrokerMap, GatewayMode, DEFAULT_BROKER_PORT_GRACE};
/// use proxy_kafka::rewrite::{Listing, UpstreamBroker};
///
/// // Port per broker: node N is served on port 19100 + N, for N in 0..64.
/// let mode = GatewayMode::PortPerBroker {
///     broker_port_start: 19100,
///     max_brokers: 64,
///     bind_ip: IpAddr::from([0, 0, 0, 0]),
///     port_grace: DEFAULT_BROKER_PORT_GRACE,
/// };
/// let map = BrokerMap::new("kafka".into(), "proxy.example".into(), mode);
/// let route = RouteId::new("main");
/// let broker = |node_id| UpstreamBroker { node_id, host: "10.0.0.1".into(), port: 9092 };
/// let brokers = [broker(1), broker(-5), broker(64)];
///
/// // New brokers are returned, so their ports can be opened before a client is told of them;
/// // node ids without a port in the range are refused.
/// assert_eq!(map.learn(&route, &brokers, Listing::Full), [1]);
/// assert!(map.learn(&route, &brokers, Listing::Full).is_empty());
/// assert_eq!(map.advertised(1), Some(("proxy.example".to_owned(), 19101)));
/// assert_eq!(map.advertised(64), None);
/// let upstream = map.upstream(&route, 1).map(|addr| addr.to_string());
/// assert_eq!(upstream.as_deref(), Some("10.0.0.1:9092"));
/// ```
pub struct BrokerMap {
    /// The listener the map belongs to, for logs.
    listener: Arc<str>,
    advertised_host: String,
    mode: GatewayMode,
    /// Each broker's own address, as its cluster advertises it, per route: a listener that
    /// routes by principal fronts several clusters, whose node ids overlap. The port (or server
    /// name) gives the node id, the session's route the cluster. Only node ids the listener
    /// serves are kept, so a port-per-broker map holds at most `max_brokers` per route.
    upstream: RwLock<BTreeMap<RouteId, BTreeMap<i32, Known>>>,
    /// Node ids refused so far, each logged once.
    refused: RefusedNodeIds,
    /// The clusters' API versions, learnt by discovery.
    versions: BrokerVersions,
    /// Discoveries that sessions ask for, one at a time and at most once per interval.
    on_demand: OnDemandDiscovery,
}

/// A broker a cluster has advertised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    addr: BackendAddr,
    /// Since when the cluster's full lists of brokers have left it out; `None` while they name
    /// it.
    absent_since: Option<Instant>,
}

/// Whether the clusters behind a listener still report a broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// A cluster's latest full list of brokers names it (or a partial one did since).
    Reported,
    /// Every cluster that listed it has left it out of its full lists since this instant.
    AbsentSince(Instant),
    /// No cluster has named it (or it was forgotten).
    Unknown,
}

impl fmt::Debug for BrokerMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerMap")
            .field("listener", &self.listener)
            .field("advertised_host", &self.advertised_host)
            .field("mode", &self.mode)
            .field("clusters", &self.upstream.read().len())
            .finish_non_exhaustive()
    }
}

// === impl BrokerMap ===

impl BrokerMap {
    /// The map of listener `listener`, telling clients `advertised_host`.
    pub fn new(listener: Arc<str>, advertised_host: String, mode: GatewayMode) -> Self {
        Self {
            listener,
            advertised_host,
            mode,
            upstream: RwLock::default(),
            refused: RefusedNodeIds::default(),
            versions: BrokerVersions::default(),
            on_demand: OnDemandDiscovery::default(),
        }
    }

    /// The gate a session's discovery of a broker the map does not know goes through.
    pub fn on_demand(&self) -> &OnDemandDiscovery {
        &self.on_demand
    }

    /// How clients reach brokers.
    pub fn mode(&self) -> &GatewayMode {
        &self.mode
    }

    /// The API versions of the clusters behind this listener, per route.
    pub fn versions(&self) -> &BrokerVersions {
        &self.versions
    }

    /// Takes note of `route`'s brokers, as the cluster advertises them; returns the node ids
    /// that are new or whose address changed, in the order given.
    ///
    /// A node id the listener cannot serve ([`GatewayMode::serves`]) is refused: not recorded,
    /// and logged the first time. When `listing` is [`Listing::Full`], the brokers of `route`
    /// that `brokers` leaves out are marked absent from then on (an empty list says nothing:
    /// no cluster is without brokers).
    pub fn learn(&self, route: &RouteId, brokers: &[UpstreamBroker], listing: Listing) -> Vec<i32> {
        let (served, refused): (Vec<&UpstreamBroker>, Vec<&UpstreamBroker>) = brokers
            .iter()
            .partition(|broker| self.mode.serves(broker.node_id));
        if !refused.is_empty() {
            let node_ids = refused.iter().map(|broker| broker.node_id);
            self.refused
                .report(&self.listener, route, &self.mode, node_ids);
        }
        let now = Instant::now();
        let mut new = Vec::new();
        let mut over_cap = 0usize;
        let mut clusters = self.upstream.write();
        let known = clusters.entry(route.clone()).or_default();
        for broker in served {
            if known.len() >= self.mode.max_known() && !known.contains_key(&broker.node_id) {
                over_cap += 1;
                continue;
            }
            let addr = BackendAddr {
                host: broker.host.clone(),
                port: broker.port,
            };
            match known.get_mut(&broker.node_id) {
                Some(current) if current.addr == addr => current.absent_since = None,
                _ => {
                    // The host is the cluster's word: escaped (`?`), so it cannot forge a line.
                    info!(
                        listener.name = %self.listener,
                        route = %route,
                        broker.node_id = broker.node_id,
                        broker.host = ?addr.host,
                        broker.port = addr.port,
                        "learned broker address"
                    );
                    known.insert(
                        broker.node_id,
                        Known {
                            addr,
                            absent_since: None,
                        },
                    );
                    new.push(broker.node_id);
                }
            }
        }
        if over_cap > 0 {
            warn!(
                listener.name = %self.listener,
                route = %route,
                refused = over_cap,
                max_known = self.mode.max_known(),
                "the cluster names more brokers than the listener keeps; the rest are not \
                 advertised"
            );
        }
        if listing == Listing::Full && !brokers.is_empty() {
            let listed: BTreeSet<i32> = brokers.iter().map(|broker| broker.node_id).collect();
            for (node_id, broker) in known.iter_mut() {
                if listed.contains(node_id) || broker.absent_since.is_some() {
                    continue;
                }
                info!(
                    listener.name = %self.listener,
                    route = %route,
                    broker.node_id = *node_id,
                    "the cluster no longer reports this broker"
                );
                broker.absent_since = Some(now);
            }
        }
        new
    }

    /// Whether `route`'s cluster has told this listener its brokers (a Metadata answer, at
    /// start-up discovery or since): until then the listener cannot send a client anywhere.
    pub fn is_discovered(&self, route: &RouteId) -> bool {
        self.upstream.read().contains_key(route)
    }

    /// How many brokers `route`'s cluster reports now (those its latest full list named, or
    /// a partial one did since); 0 before discovery.
    pub fn reported_brokers(&self, route: &RouteId) -> usize {
        self.upstream.read().get(route).map_or(0, |brokers| {
            brokers
                .values()
                .filter(|broker| broker.absent_since.is_none())
                .count()
        })
    }

    /// The address of broker `node_id` of `route`'s cluster, if it has been learnt.
    pub fn upstream(&self, route: &RouteId, node_id: i32) -> Option<BackendAddr> {
        let clusters = self.upstream.read();
        Some(clusters.get(route)?.get(&node_id)?.addr.clone())
    }

    /// Whether any cluster behind the listener still reports broker `node_id`.
    pub fn presence(&self, node_id: i32) -> Presence {
        let clusters = self.upstream.read();
        let mut presence = Presence::Unknown;
        for broker in clusters.values().filter_map(|known| known.get(&node_id)) {
            match (broker.absent_since, presence) {
                (None, _) => return Presence::Reported,
                // The latest departure counts: the broker is gone once every cluster let it go.
                (Some(since), Presence::AbsentSince(other)) if other >= since => {}
                (Some(since), _) => presence = Presence::AbsentSince(since),
            }
        }
        presence
    }

    /// Forgets broker `node_id` on every route, unless a cluster reports it again; returns
    /// whether it was forgotten. Whoever closes a broker's port does this under the same lock
    /// as its own bookkeeping, so a broker learnt again meanwhile is new again.
    pub fn forget_unreported(&self, node_id: i32) -> bool {
        let mut clusters = self.upstream.write();
        let reported = clusters
            .values()
            .filter_map(|known| known.get(&node_id))
            .any(|broker| broker.absent_since.is_none());
        if reported {
            return false;
        }
        for known in clusters.values_mut() {
            known.remove(&node_id);
        }
        true
    }

    /// The host and port clients are told for `node_id`; `None` when the listener cannot serve
    /// it (no port in its range, or a negative node id), and clients are not told of it at all.
    pub fn advertised(&self, node_id: i32) -> Option<(String, u16)> {
        match &self.mode {
            GatewayMode::PortPerBroker { .. } => Some((
                self.advertised_host.clone(),
                self.mode.broker_port(node_id)?,
            )),
            GatewayMode::Sni {
                broker_host_pattern,
                advertised_port,
            } => self
                .mode
                .serves(node_id)
                .then(|| (broker_host_pattern.render(node_id), *advertised_port)),
        }
    }

    /// Where `node_id`'s port is bound (port-per-broker), if it has one in the range.
    pub fn broker_addr(&self, node_id: i32) -> Option<SocketAddr> {
        match self.mode {
            GatewayMode::PortPerBroker { bind_ip, .. } => {
                Some(SocketAddr::new(bind_ip, self.mode.broker_port(node_id)?))
            }
            GatewayMode::Sni { .. } => None,
        }
    }

    /// The broker a server name stands for (SNI gateways).
    pub fn node_for_server_name(&self, server_name: &str) -> Option<i32> {
        match &self.mode {
            GatewayMode::Sni {
                broker_host_pattern,
                ..
            } => broker_host_pattern.node_id(server_name),
            GatewayMode::PortPerBroker { .. } => None,
        }
    }
}
