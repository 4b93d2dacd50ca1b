//! What a TLS handshake taught us about the client.
//!
//! [`TlsFacts`] are small and stay for the whole session; the client's certificate chain
//! ([`PeerCertificates`]) is large and is released once the principal has been derived from it.

use bytes::Bytes;

/// Facts from a completed TLS handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFacts {
    /// The server name the client asked for, if it sent SNI.
    pub sni: Option<Box<str>>,
    /// The negotiated application protocol.
    pub alpn: Option<Box<[u8]>>,
    /// The protocol version, e.g. `TLSv1.3`.
    pub version: Option<Box<str>>,
    /// The negotiated cipher suite's name.
    pub cipher: Option<Box<str>>,
    /// The principal mapped from the client certificate, when one was presented.
    pub principal: Option<Box<str>>,
}

/// The client's certificate chain, leaf first, each certificate in DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificates(pub Vec<Bytes>);
