//! A Kafka virtual cluster's broker map: which brokers each cluster behind a listener has (as
//! the cluster advertises them), and what address clients are told for each. Data only: it
//! opens no sockets. [`learn`](BrokerMap::learn) says which node ids were new, so whoever
//! serves brokers (the frontend's broker ports) can start serving them.

mod gateway_mode;
mod rewrite_stage;
mod versions;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::RwLock;
use proxy_core::route::RouteId;
use proxy_core::upstream::BackendAddr;
use tracing::info;

pub use self::gateway_mode::{GatewayMode, HostPattern, NODE_ID_PLACEHOLDER};
pub use self::rewrite_stage::{BrokerAddressRewrite, BrokerListeners};
pub use self::versions::{BrokerVersions, offered_versions};
use crate::rewrite::UpstreamBroker;

/// One virtual cluster's view of its brokers, shared by its listeners' sessions.
///
/// The [`BrokerAddressRewrite`] stage feeds it the brokers that responses reveal and tells
/// clients the addresses it advertises.
///
/// ```
/// use std::net::IpAddr;
/// use proxy_core::route::RouteId;
/// use proxy_kafka::broker_map::{BrokerMap, GatewayMode};
/// use proxy_kafka::rewrite::UpstreamBroker;
///
/// // Port per broker: node N is served on port 19100 + N.
/// let mode = GatewayMode::PortPerBroker {
///     broker_port_start: 19100,
///     bind_ip: IpAddr::from([0, 0, 0, 0]),
/// };
/// let map = BrokerMap::new("kafka".into(), "proxy.example".into(), mode);
/// let route = RouteId::new("main");
/// let brokers = [UpstreamBroker { node_id: 1, host: "10.0.0.1".into(), port: 9092 }];
///
/// // New brokers are returned, so their ports can be opened before a client is told of them.
/// assert_eq!(map.learn(&route, &brokers), [1]);
/// assert!(map.learn(&route, &brokers).is_empty());
/// assert_eq!(map.advertised(1), ("proxy.example".to_owned(), 19101));
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
    /// name) gives the node id, the session's route the cluster.
    upstream: RwLock<BTreeMap<RouteId, BTreeMap<i32, BackendAddr>>>,
    /// The clusters' API versions, learnt by discovery.
    versions: BrokerVersions,
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
            versions: BrokerVersions::default(),
        }
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
    pub fn learn(&self, route: &RouteId, brokers: &[UpstreamBroker]) -> Vec<i32> {
        let mut new = Vec::new();
        let mut clusters = self.upstream.write();
        let upstream = clusters.entry(route.clone()).or_default();
        for broker in brokers {
            let addr = BackendAddr {
                host: broker.host.clone(),
                port: broker.port,
            };
            if upstream.get(&broker.node_id) != Some(&addr) {
                info!(
                    listener = %self.listener,
                    route = %route,
                    broker.node_id = broker.node_id,
                    broker.addr = %addr,
                    "learned broker address"
                );
                upstream.insert(broker.node_id, addr);
                new.push(broker.node_id);
            }
        }
        new
    }

    /// The address of broker `node_id` of `route`'s cluster, if it has been learnt.
    pub fn upstream(&self, route: &RouteId, node_id: i32) -> Option<BackendAddr> {
        self.upstream.read().get(route)?.get(&node_id).cloned()
    }

    /// The host and port clients are told for `node_id`.
    pub fn advertised(&self, node_id: i32) -> (String, u16) {
        match &self.mode {
            GatewayMode::PortPerBroker { .. } => (
                self.advertised_host.clone(),
                self.broker_port(node_id).unwrap_or(0),
            ),
            GatewayMode::Sni {
                broker_host_pattern,
                advertised_port,
            } => (broker_host_pattern.render(node_id), *advertised_port),
        }
    }

    /// Where `node_id`'s port is bound (port-per-broker), if it fits in a port number.
    pub fn broker_addr(&self, node_id: i32) -> Option<SocketAddr> {
        match self.mode {
            GatewayMode::PortPerBroker { bind_ip, .. } => {
                Some(SocketAddr::new(bind_ip, self.broker_port(node_id)?))
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

    /// The port of `node_id` (port-per-broker), if it fits in a port number.
    fn broker_port(&self, node_id: i32) -> Option<u16> {
        match self.mode {
            GatewayMode::PortPerBroker {
                broker_port_start, ..
            } => u16::try_from(i32::from(broker_port_start).checked_add(node_id)?).ok(),
            GatewayMode::Sni { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn broker(node_id: i32, host: &str) -> UpstreamBroker {
        UpstreamBroker {
            node_id,
            host: host.into(),
            port: 9092,
        }
    }

    #[test]
    fn port_per_broker_advertises_start_plus_node_id_and_learns_per_route() {
        let map = BrokerMap::new(
            "kafka".into(),
            "proxy.example".into(),
            GatewayMode::PortPerBroker {
                broker_port_start: 19100,
                bind_ip: IpAddr::from([127, 0, 0, 1]),
            },
        );
        let route = RouteId::new("main");
        let brokers = [broker(1, "10.0.0.1"), broker(2, "10.0.0.2")];
        assert_eq!(map.learn(&route, &brokers), [1, 2]);
        assert!(map.learn(&route, &brokers).is_empty(), "nothing new");
        // Another cluster behind the same listener: node 1 is a different broker there.
        let other = RouteId::new("other");
        assert_eq!(map.learn(&other, &[broker(1, "10.9.9.1")]), [1]);
        // A broker that moved is new again.
        assert_eq!(map.learn(&route, &[broker(2, "10.0.0.22")]), [2]);
        assert_eq!(map.advertised(2), ("proxy.example".into(), 19102));
        assert_eq!(map.broker_addr(2), Some("127.0.0.1:19102".parse().unwrap()));
        assert_eq!(
            map.upstream(&route, 1).unwrap().to_string(),
            "10.0.0.1:9092"
        );
        assert_eq!(
            map.upstream(&other, 1).unwrap().to_string(),
            "10.9.9.1:9092"
        );
        assert!(map.upstream(&other, 2).is_none());
    }

    #[test]
    fn a_node_id_past_the_last_port_has_no_address() {
        let map = BrokerMap::new(
            "kafka".into(),
            "proxy.example".into(),
            GatewayMode::PortPerBroker {
                broker_port_start: 65530,
                bind_ip: IpAddr::from([127, 0, 0, 1]),
            },
        );
        assert!(map.broker_addr(6).is_none());
        assert!(map.broker_addr(-65531).is_none());
        assert_eq!(map.advertised(6).1, 0);
    }

    #[test]
    fn sni_gateways_name_brokers_by_pattern() {
        let map = BrokerMap::new(
            "kafka".into(),
            "unused".into(),
            GatewayMode::Sni {
                broker_host_pattern: HostPattern::parse("b-{node_id}.kafka.test").unwrap(),
                advertised_port: 9093,
            },
        );
        assert_eq!(map.advertised(3), ("b-3.kafka.test".into(), 9093));
        assert_eq!(map.node_for_server_name("B-3.kafka.test"), Some(3));
        assert!(map.broker_addr(3).is_none());
    }
}
