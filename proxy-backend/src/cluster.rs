//! What the proxy knows about a cluster: its backend addresses and how to reach them.

use std::sync::Arc;
use std::time::Duration;

use proxy_core::proxy_protocol::ProxyProtocolVersion;
use proxy_core::route::RouteId;
pub use proxy_core::upstream::BackendAddr;
use proxy_kafka::client::ClusterSasl;

use crate::child::ChildSpec;
use crate::tls::BackendTls;

/// A cluster: where a route's sessions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The route name that selects this cluster.
    pub route: RouteId,
    /// Tried in order; the first address that accepts serves the session.
    pub backends: Vec<BackendAddr>,
    /// The longest one connect attempt (name resolution included) may take.
    pub connect_timeout: Duration,
    /// When set, a PROXY header naming the real client goes to the backend before any other
    /// byte.
    pub send_proxy_protocol: Option<ProxyProtocolVersion>,
    /// When set, each session spawns this program instead of connecting to `backends` (which
    /// is then empty).
    pub exec: Option<ChildSpec>,
    /// When set, Sluice originates TLS to each backend after the connect (and after the PROXY
    /// header, which stays in the clear: the backend reads it before its TLS handshake).
    pub tls: Option<BackendTls>,
    /// When set, Sluice authenticates each backend connection with the cluster's own
    /// credentials (after TLS) before any of the session's bytes. Shared: every connection of
    /// the cluster uses the same credentials.
    pub sasl: Option<Arc<ClusterSasl>>,
}

/// A TLS-less cluster `c` of loopback `ports` with a 2 s connect timeout, for unit tests.
#[cfg(test)]
pub(crate) fn test_cluster(ports: &[u16]) -> ClusterSpec {
    ClusterSpec {
        route: RouteId::new("c"),
        backends: ports
            .iter()
            .map(|&port| BackendAddr {
                host: "127.0.0.1".into(),
                port,
            })
            .collect(),
        connect_timeout: std::time::Duration::from_secs(2),
        send_proxy_protocol: None,
        exec: None,
        tls: None,
        sasl: None,
    }
}
