//! TLS origination toward a cluster's backends.
//!
//! Place in the pipeline: after the backend's TCP connect and the outbound PROXY header (which
//! stay the very first bytes on the wire), the [`Connector`](crate::Connector) runs a client
//! handshake with the cluster's [`BackendTls`], turning `TcpStream` into
//! `TlsStream<TcpStream>` ([`BackendIo::Tls`](crate::BackendIo::Tls)). The backend machine goes
//! `Connecting → TlsHandshaking → Ready`, or to `Failed` with `CloseReason::Tls`.

mod error;
mod verify;

#[cfg(test)]
mod connect_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::warn;

pub use self::error::BackendTlsError;
use self::verify::AcceptAnyCertificate;

/// Where a cluster's backend TLS settings come from: files and switches, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendTlsOptions {
    /// PEM bundle of the CAs trusted to issue backend certificates; `None` trusts the system's
    /// roots.
    pub ca: Option<PathBuf>,
    /// The name backend certificates must be valid for; `None` uses each backend's host as
    /// configured (a DNS name, or an IP address matched against IP SANs).
    pub server_name: Option<String>,
    /// PEM certificate chain presented to backends that ask for one (mTLS), leaf first.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Accept any backend certificate. Only for tests and migrations: it gives up the
    /// authentication of the backend entirely.
    pub insecure_skip_verify: bool,
}

/// How Sluice speaks TLS to a cluster's backends.
///
/// Cheap to clone (the client configuration is shared). Two values are equal when they were
/// built from equal [`BackendTlsOptions`]: what a cluster's configuration says, not whether the
/// files still hold the same bytes.
#[derive(Clone)]
pub struct BackendTls {
    connector: TlsConnector,
    /// Overrides the backend's host as the name to verify (and to send as SNI): backends
    /// reached by IP or by an internal name often present a certificate for a public name.
    server_name: Option<ServerName<'static>>,
    /// What this was built from, for `Debug` and equality (a `ClientConfig` has neither a
    /// meaningful equality nor a short debug form).
    options: BackendTlsOptions,
}

// === impl BackendTls ===

impl BackendTls {
    /// Builds the client side of TLS from files: see [`BackendTlsOptions`] for each setting.
    ///
    /// Uses the ring provider with its safe defaults: TLS 1.2 and 1.3 only. With
    /// `insecure_skip_verify`, `ca` is not read and a warning is logged.
    pub fn from_files(opts: &BackendTlsOptions) -> Result<Self, BackendTlsError> {
        let server_name = opts
            .server_name
            .as_deref()
            .map(|name| {
                ServerName::try_from(name.to_owned()).map_err(|cause| {
                    BackendTlsError::InvalidServerName {
                        name: name.to_owned(),
                        cause,
                    }
                })
            })
            .transpose()?;
        let client_auth = match (&opts.client_cert, &opts.client_key) {
            (Some(cert), Some(key)) => Some((cert, read_certs(cert)?, key, read_key(key)?)),
            (Some(cert), None) => {
                return Err(BackendTlsError::ClientCertWithoutKey { cert: cert.clone() });
            }
            (None, Some(key)) => {
                return Err(BackendTlsError::ClientKeyWithoutCert { key: key.clone() });
            }
            (None, None) => None,
        };

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|cause| BackendTlsError::Rustls { cause })?;
        let builder = if opts.insecure_skip_verify {
            warn!(
                server_name = opts.server_name.as_deref(),
                "backend TLS certificate verification is disabled (insecure_skip_verify): any certificate is accepted"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate::new(&provider)))
        } else {
            builder.with_root_certificates(roots(opts.ca.as_deref())?)
        };
        let config = match client_auth {
            Some((cert, chain, key, key_der)) => builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|cause| BackendTlsError::ClientAuth {
                    cert: cert.clone(),
                    key: key.clone(),
                    cause,
                })?,
            None => builder.with_no_client_auth(),
        };
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            options: opts.clone(),
        })
    }

    /// The options this was built from.
    pub fn options(&self) -> &BackendTlsOptions {
        &self.options
    }

    /// The name to verify a backend configured as `host` against: the override, or the host
    /// itself (not the address it resolved to).
    pub(crate) fn server_name_for(
        &self,
        host: &str,
    ) -> Result<ServerName<'static>, HandshakeError> {
        match &self.server_name {
            Some(name) => Ok(name.clone()),
            None => ServerName::try_from(host.to_owned()).map_err(|_| {
                HandshakeError::InvalidServerName {
                    host: host.to_owned(),
                }
            }),
        }
    }

    /// Runs the client handshake on `stream`, giving up at `deadline`.
    pub(crate) async fn handshake(
        &self,
        name: ServerName<'static>,
        stream: TcpStream,
        deadline: Instant,
    ) -> Result<TlsStream<TcpStream>, HandshakeError> {
        match timeout_at(deadline, self.connector.connect(name, stream)).await {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(err)) => Err(HandshakeError::from(err)),
            Err(_) => Err(HandshakeError::TimedOut),
        }
    }
}

impl fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendTls")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl PartialEq for BackendTls {
    fn eq(&self, other: &Self) -> bool {
        self.options == other.options
    }
}

impl Eq for BackendTls {}

// === impl HandshakeError ===

/// Why a handshake with a backend failed; its `Display` is the `detail` of the session's
/// `CloseReason::Tls`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    /// The backend's host cannot be verified as a TLS name and no `server_name` is configured.
    #[error("backend host {host:?} is not a valid TLS server name; configure server_name")]
    InvalidServerName { host: String },
    /// rustls refused the handshake: a certificate problem, an alert from the backend, a
    /// protocol mismatch.
    #[error("{0}")]
    Tls(rustls::Error),
    /// The backend closed the connection before the handshake finished.
    #[error("backend closed the connection during the handshake")]
    Closed,
    /// The socket failed during the handshake.
    #[error("I/O error during the handshake: {0}")]
    Io(io::Error),
    /// The deadline passed before the handshake finished.
    #[error("handshake timed out")]
    TimedOut,
}

impl From<io::Error> for HandshakeError {
    /// tokio-rustls reports rustls' own errors wrapped in an `io::Error`: unwrap them, so the
    /// detail names the certificate problem rather than "invalid data".
    fn from(err: io::Error) -> Self {
        if let Some(tls) = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Self::Tls(tls.clone());
        }
        match err.kind() {
            io::ErrorKind::UnexpectedEof => Self::Closed,
            _ => Self::Io(err),
        }
    }
}

// === reading files ===

/// The trust anchors: the CA bundle at `ca`, or the system's roots.
fn roots(ca: Option<&Path>) -> Result<RootCertStore, BackendTlsError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            for cert in read_certs(path)? {
                roots
                    .add(cert)
                    .map_err(|cause| BackendTlsError::InvalidCaCertificate {
                        path: path.to_owned(),
                        cause,
                    })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                let detail = native
                    .errors
                    .first()
                    .map(|err| format!(": {err}"))
                    .unwrap_or_default();
                return Err(BackendTlsError::NoSystemRoots { detail });
            }
        }
    }
    Ok(roots)
}

/// Every certificate in the PEM file at `path`; at least one.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, BackendTlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| pem_error(path, err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_error(path, err))?;
    if certs.is_empty() {
        return Err(BackendTlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in the PEM file at `path`.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, BackendTlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|err| match err {
        pem::Error::NoItemsFound => BackendTlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        other => pem_error(path, other),
    })
}

fn pem_error(path: &Path, cause: pem::Error) -> BackendTlsError {
    let path = path.to_owned();
    match cause {
        pem::Error::Io(_) => BackendTlsError::Unreadable { path, cause },
        _ => BackendTlsError::InvalidPem { path, cause },
    }
}
