//! How clients reach each broker through the proxy: a port per broker, or one TLS port where the
//! server name picks the broker.

use std::net::IpAddr;

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
}
