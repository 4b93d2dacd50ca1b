//! A Kafka virtual cluster's gateway: which broker each client connection is for, what address
//! clients are told for each broker, and (port-per-broker) the listening ports, opened as
//! responses reveal brokers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};
use proxy_core::route::RouteId;
use proxy_core::upstream::BackendAddr;
use proxy_kafka::rewrite::{BrokerAddressMap, UpstreamBroker};
use tracing::{error, info};

use super::versions::BrokerVersions;

/// How clients reach each broker through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayMode {
    /// A bootstrap port, and broker node id N on `broker_port_start + N`.
    PortPerBroker {
        /// The port of node id 0.
        broker_port_start: u16,
        /// The address broker ports are bound on.
        bind_ip: IpAddr,
    },
    /// One TLS port; the client's SNI names the broker through a host pattern.
    Sni {
        /// The broker host names, with `{node_id}` where the node id goes.
        broker_host_pattern: HostPattern,
        /// The port clients are told (the listener's port, unless it is behind a NAT).
        advertised_port: u16,
    },
}

/// A host name pattern with one `{node_id}` placeholder, as in `broker-{node_id}.kafka.example`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    prefix: String,
    suffix: String,
}

/// The placeholder a host pattern must contain exactly once.
pub const NODE_ID_PLACEHOLDER: &str = "{node_id}";

impl HostPattern {
    /// Parses a pattern; `None` unless `{node_id}` occurs exactly once.
    pub fn parse(pattern: &str) -> Option<Self> {
        let (prefix, suffix) = pattern.split_once(NODE_ID_PLACEHOLDER)?;
        if suffix.contains(NODE_ID_PLACEHOLDER) {
            return None;
        }
        Some(Self {
            prefix: prefix.to_ascii_lowercase(),
            suffix: suffix.to_ascii_lowercase(),
        })
    }

    /// The host name of `node_id`.
    pub fn render(&self, node_id: i32) -> String {
        format!("{}{node_id}{}", self.prefix, self.suffix)
    }

    /// The node id a server name stands for, if it matches.
    pub fn node_id(&self, server_name: &str) -> Option<i32> {
        let name = server_name.to_ascii_lowercase();
        let digits = name
            .strip_prefix(&self.prefix)?
            .strip_suffix(&self.suffix)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }
}

/// Starts serving a broker's port: given its node id, its address, and the listening socket
/// when one is already bound (handed over by the process this one replaced).
pub type BrokerListenerStarter =
    Box<dyn Fn(i32, SocketAddr, Option<StdTcpListener>) -> io::Result<()> + Send + Sync>;

/// The name a broker's listening socket goes by in an upgrade hand-off.
pub fn broker_socket_name(listener: &str, node_id: i32) -> String {
    format!("{listener}{BROKER_SOCKET_INFIX}{node_id}")
}

/// The listener and node id a hand-off socket name stands for, if it names a broker's port.
pub fn parse_broker_socket_name(name: &str) -> Option<(&str, i32)> {
    let (listener, node_id) = name.rsplit_once(BROKER_SOCKET_INFIX)?;
    Some((listener, node_id.parse().ok()?))
}

const BROKER_SOCKET_INFIX: &str = "/broker/";

/// One virtual cluster's view of its brokers, shared by its listeners' sessions.
pub struct KafkaGateway {
    listener: Arc<str>,
    advertised_host: String,
    mode: GatewayMode,
    /// Each broker's own address, as its cluster advertises it, per route: a listener that
    /// routes by principal fronts several clusters, whose node ids overlap. The port (or server
    /// name) gives the node id, the session's route the cluster.
    upstream: RwLock<BTreeMap<RouteId, BTreeMap<i32, BackendAddr>>>,
    /// Broker ports already being served (port-per-broker).
    serving: Mutex<BTreeSet<i32>>,
    starter: OnceLock<BrokerListenerStarter>,
    /// Broker sockets handed over by a predecessor, served once the starter is set.
    adopted: Mutex<Vec<(i32, StdTcpListener)>>,
    /// The clusters' API versions, learnt by discovery.
    versions: BrokerVersions,
}

impl fmt::Debug for KafkaGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaGateway")
            .field("listener", &self.listener)
            .field("advertised_host", &self.advertised_host)
            .field("mode", &self.mode)
            .field("clusters", &self.upstream.read().len())
            .finish_non_exhaustive()
    }
}

impl KafkaGateway {
    /// The gateway of listener `listener`, telling clients `advertised_host`.
    pub fn new(listener: Arc<str>, advertised_host: String, mode: GatewayMode) -> Self {
        Self {
            listener,
            advertised_host,
            mode,
            upstream: RwLock::default(),
            serving: Mutex::default(),
            starter: OnceLock::new(),
            adopted: Mutex::default(),
            versions: BrokerVersions::default(),
        }
    }

    /// The API versions of the clusters behind this gateway, per route.
    pub fn versions(&self) -> &BrokerVersions {
        &self.versions
    }

    /// How clients reach brokers.
    pub fn mode(&self) -> &GatewayMode {
        &self.mode
    }

    /// Sets how broker ports are opened (port-per-broker); until then, revealed brokers are
    /// only recorded. Only the first call counts.
    pub fn set_broker_listener_starter(&self, starter: BrokerListenerStarter) {
        if self.starter.set(starter).is_err() {
            error!(listener = %self.listener, "broker listener starter set twice; kept the first");
            return;
        }
        let adopted = std::mem::take(&mut *self.adopted.lock());
        for (node_id, socket) in adopted {
            self.start_serving(node_id, Some(socket));
        }
    }

    /// Serves a broker port handed over by a predecessor (once the starter is set), so clients
    /// that know the broker keep reaching it across an upgrade.
    pub fn adopt_broker_socket(&self, node_id: i32, socket: StdTcpListener) {
        self.adopted.lock().push((node_id, socket));
    }

    /// The address of broker `node_id` of `route`'s cluster, if a response has revealed it.
    pub fn upstream(&self, route: &RouteId, node_id: i32) -> Option<BackendAddr> {
        self.upstream.read().get(route)?.get(&node_id).cloned()
    }

    /// The gateway as seen by sessions of `route`: what they learn is that cluster's.
    pub fn for_route<'a>(&'a self, route: &'a RouteId) -> RouteBrokers<'a> {
        RouteBrokers {
            gateway: self,
            route,
        }
    }

    /// The node ids whose ports are served, in order (port-per-broker).
    pub fn serving(&self) -> Vec<i32> {
        self.serving.lock().iter().copied().collect()
    }

    /// Where `node_id`'s port is bound (port-per-broker).
    pub fn broker_addr(&self, node_id: i32) -> Option<SocketAddr> {
        match self.mode {
            GatewayMode::PortPerBroker { bind_ip, .. } => {
                Some(SocketAddr::new(bind_ip, self.broker_port(node_id)?))
            }
            GatewayMode::Sni { .. } => None,
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

    fn start_serving(&self, node_id: i32, socket: Option<StdTcpListener>) {
        let GatewayMode::PortPerBroker { bind_ip, .. } = self.mode else {
            return;
        };
        let Some(port) = self.broker_port(node_id) else {
            error!(
                listener = %self.listener,
                broker.node_id = node_id,
                "broker node id does not fit a port above broker_port_start; its clients cannot reach it"
            );
            return;
        };
        let mut serving = self.serving.lock();
        if serving.contains(&node_id) {
            return;
        }
        let Some(starter) = self.starter.get() else {
            return;
        };
        let addr = SocketAddr::new(bind_ip, port);
        match starter(node_id, addr, socket) {
            Ok(()) => {
                serving.insert(node_id);
                info!(listener = %self.listener, broker.node_id = node_id, addr = %addr, "serving broker port");
            }
            Err(err) => error!(
                listener = %self.listener,
                broker.node_id = node_id,
                addr = %addr,
                error = %err,
                "cannot open the broker's port; clients cannot reach this broker"
            ),
        }
    }
}

/// A gateway's broker map for one route's cluster.
#[derive(Debug, Clone, Copy)]
pub struct RouteBrokers<'a> {
    gateway: &'a KafkaGateway,
    route: &'a RouteId,
}

impl BrokerAddressMap for RouteBrokers<'_> {
    fn learn(&self, brokers: &[UpstreamBroker]) {
        self.gateway.learn(self.route, brokers);
    }

    fn advertised(&self, node_id: i32) -> (String, u16) {
        self.gateway.advertised(node_id)
    }
}

impl KafkaGateway {
    /// Takes note of `route`'s brokers a response revealed, and opens the ports of new ones.
    fn learn(&self, route: &RouteId, brokers: &[UpstreamBroker]) {
        let mut new = Vec::new();
        {
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
        }
        for node_id in new {
            self.start_serving(node_id, None);
        }
    }

    /// The host and port clients are told for `node_id`.
    fn advertised(&self, node_id: i32) -> (String, u16) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns_find_node_ids() {
        let pattern = HostPattern::parse("broker-{node_id}.Kafka.test").unwrap();
        assert_eq!(pattern.render(7), "broker-7.kafka.test");
        assert_eq!(pattern.node_id("BROKER-12.kafka.test"), Some(12));
        assert_eq!(pattern.node_id("broker-.kafka.test"), None);
        assert_eq!(pattern.node_id("broker-1x.kafka.test"), None);
        assert_eq!(pattern.node_id("bootstrap.kafka.test"), None);
        assert!(HostPattern::parse("broker.kafka.test").is_none());
        assert!(HostPattern::parse("{node_id}-{node_id}.test").is_none());
    }

    #[test]
    fn port_per_broker_advertises_start_plus_node_id_and_opens_each_port_once() {
        let gateway = KafkaGateway::new(
            "kafka".into(),
            "proxy.example".into(),
            GatewayMode::PortPerBroker {
                broker_port_start: 19100,
                bind_ip: IpAddr::from([127, 0, 0, 1]),
            },
        );
        let started = Arc::new(Mutex::new(Vec::new()));
        let log = started.clone();
        gateway.set_broker_listener_starter(Box::new(move |node, addr, _| {
            log.lock().push((node, addr.port()));
            Ok(())
        }));
        let brokers = [
            UpstreamBroker {
                node_id: 1,
                host: "10.0.0.1".into(),
                port: 9092,
            },
            UpstreamBroker {
                node_id: 2,
                host: "10.0.0.2".into(),
                port: 9092,
            },
        ];
        let route = RouteId::new("main");
        gateway.for_route(&route).learn(&brokers);
        gateway.for_route(&route).learn(&brokers);
        // Another cluster behind the same listener: node 1 is a different broker there.
        let other = RouteId::new("other");
        gateway.for_route(&other).learn(&[UpstreamBroker {
            node_id: 1,
            host: "10.9.9.1".into(),
            port: 9092,
        }]);
        assert_eq!(*started.lock(), vec![(1, 19101), (2, 19102)]);
        assert_eq!(
            gateway.for_route(&route).advertised(2),
            ("proxy.example".into(), 19102)
        );
        assert_eq!(
            gateway.upstream(&route, 1).unwrap().to_string(),
            "10.0.0.1:9092"
        );
        assert_eq!(
            gateway.upstream(&other, 1).unwrap().to_string(),
            "10.9.9.1:9092"
        );
        assert!(gateway.upstream(&other, 2).is_none());
        assert_eq!(gateway.serving(), vec![1, 2]);
    }
}
