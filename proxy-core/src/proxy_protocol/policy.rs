//! Whose PROXY headers a listener believes, and whether it demands one.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

/// Whether a listener expects connections to start with a PROXY header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProxyProtocolMode {
    /// Headers are not looked for; bytes are the client's.
    #[default]
    Off,
    /// A header is used when present (from a trusted peer); without one, the peer is the client.
    Optional,
    /// Every connection must start with a valid header from a trusted peer.
    Required,
}

/// The networks whose peers may send PROXY headers. Empty by default: nothing is trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedNetworks(Vec<IpNet>);

impl TrustedNetworks {
    /// Trusts peers in `networks`.
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self(networks.into_iter().collect())
    }

    /// True when `peer` is inside one of the networks. An IPv4 peer seen on a dual-stack socket
    /// as `::ffff:a.b.c.d` is matched as IPv4.
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|net| net.contains(&peer))
    }

    /// True when no network is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A listener's PROXY-protocol settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyProtocolPolicy {
    /// Whether a header is expected.
    pub mode: ProxyProtocolMode,
    /// Whose headers are believed.
    pub trusted: TrustedNetworks,
    /// How long the header may take to arrive.
    pub timeout: Duration,
    /// The longest header accepted.
    pub max_header_len: usize,
}

impl Default for ProxyProtocolPolicy {
    fn default() -> Self {
        Self {
            mode: ProxyProtocolMode::Off,
            trusted: TrustedNetworks::default(),
            timeout: Duration::from_secs(3),
            max_header_len: super::DEFAULT_MAX_HEADER_LEN,
        }
    }
}
