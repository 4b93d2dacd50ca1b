//! PROXY protocol v1 and v2, sans-IO: detecting a header, decoding it into a
//! [`ProxyHeader`], encoding one for a backend, the policy that
//! decides whose headers to believe, and [`HeaderReader`], which applies it to one connection.
//!
//! Parsing is done by the `ppp` crate; this module bounds it (a maximum header size, so a peer
//! cannot make us buffer without limit), keeps the raw bytes and TLVs as shared `Bytes`, and
//! turns every failure into a typed [`ProxyHeaderError`]. "Need more bytes" is `Ok(None)`.

mod decode;
mod encode;
mod header;
mod policy;
mod read;

#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz_checks;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod read_tests;
#[cfg(test)]
mod tests;

pub use self::decode::{Detection, decode, detect};
pub use self::encode::{ProxyProtocolVersion, encode, encode_local};
pub use self::header::{ProxiedAddrs, ProxyHeader, SslFacts, Tlv};
pub use self::policy::{ProxyProtocolMode, ProxyProtocolPolicy, TrustedNetworks};
pub use self::read::{HeaderRead, HeaderReader};

/// The largest header accepted by default: v1 is at most 107 bytes; v2 headers carrying the TLVs
/// load balancers send (authority, AWS/Azure ids, SSL facts) stay well under this.
pub const DEFAULT_MAX_HEADER_LEN: usize = 4096;

/// PP2_TYPE_ALPN: the application protocol the client negotiated with the load balancer.
pub const TLV_ALPN: u8 = 0x01;
/// PP2_TYPE_AUTHORITY: the host name the client asked for (SNI).
pub const TLV_AUTHORITY: u8 = 0x02;
/// PP2_TYPE_UNIQUE_ID: an opaque connection id from the load balancer.
pub const TLV_UNIQUE_ID: u8 = 0x05;
/// PP2_TYPE_SSL: whether and how the client used TLS with the load balancer.
pub const TLV_SSL: u8 = 0x20;
/// PP2_TYPE_AWS: AWS-specific; subtype 0x01 is the VPC endpoint id.
pub const TLV_AWS: u8 = 0xEA;
/// PP2_TYPE_AZURE: Azure-specific; subtype 0x01 is the private link id.
pub const TLV_AZURE: u8 = 0xEE;

/// Why a connection's PROXY header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyHeaderError {
    /// The listener requires a header and the connection did not start with one.
    #[error("no PROXY protocol header where one is required")]
    Missing,
    /// The peer is not in the listener's trusted networks, so its header cannot be believed.
    #[error("PROXY protocol header from an untrusted peer")]
    Untrusted,
    /// The bytes start like a header and are not a valid one.
    #[error("invalid PROXY protocol header: {0}")]
    Invalid(String),
    /// The header is longer than the listener allows.
    #[error("PROXY protocol header longer than {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// The header did not arrive whole before its deadline.
    #[error("PROXY protocol header not received before the deadline")]
    TimedOut,
    /// The connection ended in the middle of the header.
    #[error("connection closed in the middle of a PROXY protocol header")]
    Truncated,
}

impl ProxyHeaderError {
    /// A short, stable label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Missing => "proxy_header_missing",
            Self::Untrusted => "proxy_header_untrusted",
            Self::Invalid(_) => "proxy_header_invalid",
            Self::TooLarge { .. } => "proxy_header_too_large",
            Self::TimedOut => "proxy_header_timeout",
            Self::Truncated => "proxy_header_truncated",
        }
    }
}
