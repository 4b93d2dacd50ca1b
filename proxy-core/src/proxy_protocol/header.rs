//! The PROXY-protocol header a load balancer sent in front of the client's bytes.
//!
//! The full header (raw bytes and every TLV) is kept only while routing may need it; once the
//! session is routed, [`SessionContext::release_proxy_header`](super::SessionContext::release_proxy_header)
//! drops it and the compact [`ProxiedAddrs`] stay.

use std::net::SocketAddr;

use bytes::Bytes;
use smallvec::SmallVec;

use super::{TLV_ALPN, TLV_AUTHORITY, TLV_AWS, TLV_AZURE, TLV_SSL, TLV_UNIQUE_ID};

/// The addresses a PROXY header carried: the real client and the address it connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxiedAddrs {
    /// The original client's address.
    pub source: SocketAddr,
    /// The address the original client connected to (the load balancer's front).
    pub destination: SocketAddr,
}

/// One type-length-value field of a PROXY v2 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    /// The PP2_TYPE_* code.
    pub kind: u8,
    /// The value, sharing the header's buffer.
    pub value: Bytes,
}

/// A parsed PROXY header with the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    raw: Bytes,
    addrs: Option<ProxiedAddrs>,
    tlvs: SmallVec<[Tlv; 4]>,
}

// === impl ProxyHeader ===

impl ProxyHeader {
    /// A header whose `raw` bytes carried `addrs` (none for `LOCAL` or `UNKNOWN`) and `tlvs`.
    pub fn new(
        raw: Bytes,
        addrs: Option<ProxiedAddrs>,
        tlvs: impl IntoIterator<Item = Tlv>,
    ) -> Self {
        Self {
            raw,
            addrs,
            tlvs: tlvs.into_iter().collect(),
        }
    }

    /// The addresses carried, if the header was a `PROXY` (not `LOCAL`) command.
    pub fn addrs(&self) -> Option<ProxiedAddrs> {
        self.addrs
    }

    /// The TLVs, in wire order.
    pub fn tlvs(&self) -> &[Tlv] {
        &self.tlvs
    }

    /// The first TLV of `kind`.
    pub fn tlv(&self, kind: u8) -> Option<&Tlv> {
        self.tlvs.iter().find(|t| t.kind == kind)
    }

    /// The header exactly as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// PP2_TYPE_AUTHORITY: the host name the client asked the load balancer for.
    pub fn authority(&self) -> Option<&str> {
        self.tlv(TLV_AUTHORITY)
            .and_then(|t| std::str::from_utf8(&t.value).ok())
    }

    /// PP2_TYPE_ALPN: the protocol the client negotiated with the load balancer.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tlv(TLV_ALPN).map(|t| &t.value[..])
    }

    /// PP2_TYPE_UNIQUE_ID: the load balancer's id for the connection.
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.tlv(TLV_UNIQUE_ID).map(|t| &t.value[..])
    }

    /// PP2_TYPE_SSL's client flags (PP2_CLIENT_SSL = 0x01, CERT_CONN = 0x02, CERT_SESS = 0x04)
    /// and whether the client certificate verified (`verify == 0`).
    pub fn ssl(&self) -> Option<SslFacts> {
        let value = &self.tlv(TLV_SSL)?.value;
        let client = *value.first()?;
        let verify = u32::from_be_bytes(value.get(1..5)?.try_into().ok()?);
        Some(SslFacts {
            client,
            verified: verify == 0,
        })
    }

    /// AWS PrivateLink: the VPC endpoint id (PP2_TYPE_AWS, subtype PP2_SUBTYPE_AWS_VPCE_ID).
    pub fn aws_vpc_endpoint_id(&self) -> Option<&str> {
        let value = &self
            .tlvs
            .iter()
            .find(|t| t.kind == TLV_AWS && t.value.first() == Some(&0x01))?
            .value;
        std::str::from_utf8(&value[1..]).ok()
    }

    /// Azure Private Link: the link id (PP2_TYPE_AZURE, subtype 0x01, a little-endian u32).
    pub fn azure_private_link_id(&self) -> Option<u32> {
        let value = &self
            .tlvs
            .iter()
            .find(|t| t.kind == TLV_AZURE && t.value.first() == Some(&0x01))?
            .value;
        Some(u32::from_le_bytes(value.get(1..5)?.try_into().ok()?))
    }
}

/// What PP2_TYPE_SSL says about the client's TLS session with the load balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SslFacts {
    /// The PP2_CLIENT_* bit field.
    pub client: u8,
    /// The client certificate was verified by the load balancer.
    pub verified: bool,
}
