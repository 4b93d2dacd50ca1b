//! The PROXY-protocol header a load balancer sent in front of the client's bytes.
//!
//! The full header (raw bytes and every TLV) is kept only while routing may need it; once the
//! session is routed, [`SessionContext::release_proxy_header`](super::SessionContext::release_proxy_header)
//! drops it and the compact [`ProxiedAddrs`] stay.

use std::net::SocketAddr;

use bytes::Bytes;
use smallvec::SmallVec;

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
}
