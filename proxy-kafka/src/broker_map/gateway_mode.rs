//! How clients reach each broker through the proxy: a port per broker, or one TLS port where the
//! server name picks the broker.

use std::net::IpAddr;
use std::time::Duration;

/// The broker ports a port-per-broker listener opens at most, unless configured: node ids 0 to
/// 255. Each is a listening socket, opened for whatever node ids the cluster's responses name.
pub const DEFAULT_MAX_BROKERS: u16 = 256;

/// The brokers an SNI listener keeps per cluster at most. An SNI gateway opens no port per
/// broker, but it remembers every node id a cluster's responses name; past this many, new node
/// ids are refused (and logged) rather than letting a misbehaving broker grow the map without
/// bound. Kafka clusters run to hundreds of brokers, not thousands.
pub const SNI_MAX_BROKERS: usize = 1024;

/// How long a broker its cluster no longer reports keeps its port, unless configured: longer
/// than a broker's rolling restart takes, as a rule.
pub const DEFAULT_BROKER_PORT_GRACE: Duration = Duration::from_secs(10 * 60);

/// How clients reach each broker through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayMode {
    /// A bootstrap port, and broker node id N on `broker_port_start + N` for N in
    /// `0..max_brokers`. A node id outside that range gets no port: whatever a cluster's responses
    /// say, the listener never opens more than `max_brokers` ports, nor one outside its range.
    PortPerBroker {
        /// The port of node id 0.
        broker_port_start: u16,
        /// How many ports, from `broker_port_start` on: node ids `0..max_brokers`.
        max_brokers: u16,
        /// The address broker ports are bound on.
        bind_ip: IpAddr,
        /// How long the port of a broker its clusters stopped reporting stays open.
        port_grace: Duration,
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
///
/// ```
/// use proxy_kafka::broker_map::HostPattern;
///
/// let pattern = HostPattern::parse("broker-{node_id}.kafka.example").ok_or("no placeholder")?;
/// assert_eq!(pattern.render(3), "broker-3.kafka.example");
/// // Server names compare ignoring case.
/// assert_eq!(pattern.node_id("BROKER-3.kafka.example"), Some(3));
/// assert_eq!(pattern.node_id("bootstrap.kafka.example"), None);
/// assert!(HostPattern::parse("broker.kafka.example").is_none());
/// # Ok::<(), &str>(())
/// ```
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

// === impl GatewayMode ===

impl GatewayMode {
    /// The port of `node_id` (port-per-broker): `broker_port_start + node_id` when the node id is
    /// in `0..max_brokers` and the sum is a port number.
    pub fn broker_port(&self, node_id: i32) -> Option<u16> {
        match *self {
            Self::PortPerBroker {
                broker_port_start,
                max_brokers,
                ..
            } => {
                let offset = u16::try_from(node_id).ok().filter(|&n| n < max_brokers)?;
                broker_port_start.checked_add(offset)
            }
            Self::Sni { .. } => None,
        }
    }

    /// The most brokers a cluster may have in this listener's map: every port of the range
    /// for port-per-broker, [`SNI_MAX_BROKERS`] for SNI.
    pub fn max_known(&self) -> usize {
        match self {
            Self::PortPerBroker { max_brokers, .. } => usize::from(*max_brokers),
            Self::Sni { .. } => SNI_MAX_BROKERS,
        }
    }

    /// Whether clients can be told of broker `node_id`: it has a port in the listener's range
    /// (port-per-broker), or it is not negative (SNI: a host name pattern never names a negative
    /// node id).
    pub fn serves(&self, node_id: i32) -> bool {
        match self {
            Self::PortPerBroker { .. } => self.broker_port(node_id).is_some(),
            Self::Sni { .. } => node_id >= 0,
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
    fn only_node_ids_in_the_range_have_ports() {
        let mode = GatewayMode::PortPerBroker {
            broker_port_start: 19100,
            max_brokers: 8,
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            port_grace: DEFAULT_BROKER_PORT_GRACE,
        };
        assert_eq!(mode.broker_port(0), Some(19100));
        assert_eq!(mode.broker_port(7), Some(19107));
        for outside in [-5, -1, 8, 500, i32::MAX, i32::MIN] {
            assert_eq!(mode.broker_port(outside), None, "node id {outside}");
            assert!(!mode.serves(outside), "node id {outside}");
        }
        // A range that would run past the last port (config validation refuses it) stops there.
        let top = GatewayMode::PortPerBroker {
            broker_port_start: 65534,
            max_brokers: 8,
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            port_grace: DEFAULT_BROKER_PORT_GRACE,
        };
        assert_eq!(top.broker_port(1), Some(65535));
        assert_eq!(top.broker_port(2), None);
        let sni = GatewayMode::Sni {
            broker_host_pattern: HostPattern::parse("b-{node_id}.kafka.test").unwrap(),
            advertised_port: 9093,
        };
        assert!(sni.serves(0) && sni.serves(1000));
        assert!(!sni.serves(-5));
        assert_eq!(sni.broker_port(1), None);
    }
}
