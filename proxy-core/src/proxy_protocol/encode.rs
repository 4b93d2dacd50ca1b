//! Encoding the PROXY header Sluice sends to a backend before any other byte.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use ppp::{v1, v2};

/// Which PROXY protocol version to send to a cluster's backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocolVersion {
    /// The text format.
    V1,
    /// The binary format.
    V2,
}

/// A `PROXY` header naming `source` (the real client) and `destination` (the address it
/// connected to). A v4/v6 mix is sent as IPv6, with the IPv4 address mapped.
pub fn encode(version: ProxyProtocolVersion, source: SocketAddr, destination: SocketAddr) -> Bytes {
    let (source, destination) = same_family(source, destination);
    match version {
        ProxyProtocolVersion::V1 => {
            let addresses: v1::Addresses = (source, destination).into();
            Bytes::from(addresses.to_string())
        }
        ProxyProtocolVersion::V2 => {
            let header = v2::Builder::with_addresses(
                v2::Version::Two | v2::Command::Proxy,
                v2::Protocol::Stream,
                (source, destination),
            );
            // Building into a Vec cannot fail: the only error source is the Vec writer.
            Bytes::from(header.build().unwrap_or_default())
        }
    }
}

fn same_family(source: SocketAddr, destination: SocketAddr) -> (SocketAddr, SocketAddr) {
    if source.is_ipv4() == destination.is_ipv4() {
        return (source, destination);
    }
    (to_v6(source), to_v6(destination))
}

fn to_v6(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), addr.port()),
        IpAddr::V6(_) => addr,
    }
}

/// A header that carries no client: v2 `LOCAL`, or v1 `UNKNOWN`. Health probes send it, so a
/// backend that expects PROXY headers sees a well-formed connection from the proxy itself.
pub fn encode_local(version: ProxyProtocolVersion) -> Bytes {
    match version {
        ProxyProtocolVersion::V1 => Bytes::from_static(b"PROXY UNKNOWN\r\n"),
        ProxyProtocolVersion::V2 => {
            let header = v2::Builder::with_addresses(
                v2::Version::Two | v2::Command::Local,
                v2::Protocol::Unspecified,
                v2::Addresses::Unspecified,
            );
            Bytes::from(header.build().unwrap_or_default())
        }
    }
}
