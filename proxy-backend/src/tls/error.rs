//! What can go wrong building a cluster's [`BackendTls`](super::BackendTls) from its files.

use std::path::PathBuf;

use rustls_pki_types::InvalidDnsNameError;
use rustls_pki_types::pem;

/// Why a cluster's backend TLS settings could not be turned into a client configuration.
///
/// Each message is one self-contained line naming the file (or setting) and what was wrong with
/// it, because the binary's config checker reports errors with `to_string()`, one per line. For
/// that reason the cause is written into the message and kept as a typed `cause` field rather
/// than chained as `#[source]`: chaining it as well would print it twice under `{:#}`.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum BackendTlsError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {cause}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the read reported.
        cause: pem::Error,
    },
    /// The file is not well-formed PEM.
    #[error("{}: malformed PEM: {cause}", path.display())]
    InvalidPem {
        /// The file.
        path: PathBuf,
        /// What the PEM parser reported.
        cause: pem::Error,
    },
    /// The file holds no `CERTIFICATE` section.
    #[error("{}: no certificate (BEGIN CERTIFICATE) found in the PEM file", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no private key (PKCS#8, PKCS#1 or SEC1).
    #[error("{}: no private key found in the PEM file", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// A certificate in the CA bundle cannot serve as a trust anchor.
    #[error("{}: not a usable CA certificate: {cause}", path.display())]
    InvalidCaCertificate {
        /// The CA bundle.
        path: PathBuf,
        /// What rustls reported.
        cause: rustls::Error,
    },
    /// No CA bundle was configured and the system offers no trusted roots.
    #[error("no CA bundle configured and no trusted CA certificates found on this system{detail}")]
    NoSystemRoots {
        /// What loading the system roots reported, if anything (starts with `": "`).
        detail: String,
    },
    /// The configured server name is neither a DNS name nor an IP address.
    #[error("invalid server name {name:?}: {cause}")]
    InvalidServerName {
        /// The name as configured.
        name: String,
        /// What the parser reported.
        cause: InvalidDnsNameError,
    },
    /// A client certificate was given without its private key.
    #[error("client certificate {} given without a client key", cert.display())]
    ClientCertWithoutKey {
        /// The client certificate file.
        cert: PathBuf,
    },
    /// A client key was given without its certificate.
    #[error("client key {} given without a client certificate", key.display())]
    ClientKeyWithoutCert {
        /// The client key file.
        key: PathBuf,
    },
    /// The client certificate and key were read but rustls refused them (for example, the key
    /// does not belong to the certificate, or its algorithm is unsupported).
    #[error(
        "client certificate {} with key {} cannot be used: {cause}",
        cert.display(),
        key.display()
    )]
    ClientAuth {
        /// The client certificate file.
        cert: PathBuf,
        /// The client key file.
        key: PathBuf,
        /// What rustls reported.
        cause: rustls::Error,
    },
    /// rustls refused the configuration itself.
    #[error("TLS client configuration rejected: {cause}")]
    Rustls {
        /// What rustls reported.
        cause: rustls::Error,
    },
}
