//! Loading certificate chains, private keys and CA bundles from PEM files, for listeners that
//! terminate TLS and clusters that originate it.
//!
//! Parsing is `rustls-pki-types`' [`PemObject`]. These run while configuration is loaded, so
//! every error names the file it is about; the underlying cause is chained as its `source`.

use std::io;
use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a PEM file could not be loaded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PemError {
    /// The file could not be opened or read.
    #[error("cannot read {}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is not well-formed PEM (a section without its end, bad base64, ...).
    #[error("malformed PEM in {}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the PEM parser found.
        #[source]
        source: pem::Error,
    },
    /// The file holds no `CERTIFICATE` section.
    #[error("no certificate found in {}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no private key section (PKCS#8, PKCS#1 or SEC1).
    #[error("no private key found in {}", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// A certificate in a CA bundle cannot be used as a trust anchor.
    #[error("certificate #{index} in {} is not a usable trust anchor", path.display())]
    RejectedCertificate {
        /// The file.
        path: PathBuf,
        /// The certificate's position in the file, from 0.
        index: usize,
        /// Why rustls refused it.
        #[source]
        source: rustls::Error,
    },
}

impl PemError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Unreadable { path, .. }
            | Self::Malformed { path, .. }
            | Self::NoCertificate { path }
            | Self::NoPrivateKey { path }
            | Self::RejectedCertificate { path, .. } => path,
        }
    }

    /// Sorts a PEM parser error: I/O errors are `Unreadable`, "nothing found" is `missing`.
    fn classify(path: &Path, err: pem::Error, missing: fn(PathBuf) -> Self) -> Self {
        let path = path.to_path_buf();
        match err {
            pem::Error::Io(source) => Self::Unreadable { path, source },
            pem::Error::NoItemsFound => missing(path),
            source => Self::Malformed { path, source },
        }
    }
}

fn no_certificate(path: PathBuf) -> PemError {
    PemError::NoCertificate { path }
}

fn no_private_key(path: PathBuf) -> PemError {
    PemError::NoPrivateKey { path }
}

/// Loads every certificate in `path`, in file order (leaf first, for a chain).
///
/// # Errors
///
/// [`PemError`] when the file cannot be read, is malformed, or holds no certificate.
pub fn load_cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|err| PemError::classify(path, err, no_certificate))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| PemError::classify(path, err, no_certificate))?;
    if chain.is_empty() {
        return Err(no_certificate(path.to_path_buf()));
    }
    Ok(chain)
}

/// Loads the first private key in `path` (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
///
/// [`PemError`] when the file cannot be read, is malformed, or holds no private key.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_file(path).map_err(|err| PemError::classify(path, err, no_private_key))
}

/// Loads every certificate in `path` as a trust anchor.
///
/// # Errors
///
/// [`PemError`] when the file cannot be read, is malformed, holds no certificate, or holds a
/// certificate rustls cannot use as a trust anchor.
pub fn load_ca_bundle(path: &Path) -> Result<RootCertStore, PemError> {
    let mut roots = RootCertStore::empty();
    for (index, cert) in load_cert_chain(path)?.into_iter().enumerate() {
        roots
            .add(cert)
            .map_err(|source| PemError::RejectedCertificate {
                path: path.to_path_buf(),
                index,
                source,
            })?;
    }
    Ok(roots)
}
