//! The TLS server configuration of a terminating listener: certificates chosen by SNI with a
//! default, client authentication, minimum version, ALPN — rebuilt from its files on reload.
//!
//! Handshakes take the current `Arc<ServerConfig>` when they start, so a reload never disturbs
//! a handshake in progress or an established session; new handshakes use the new certificates.
//! A reload that fails (a half-written file, a key that does not match) keeps the old
//! configuration and reports why.
//!
//! Each served certificate's not-after is read when it is loaded, for the expiry metric.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use proxy_core::tls::{load_ca_bundle, load_cert_chain, load_private_key};
use rustls::crypto::ring;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedProtocolVersion};
use x509_cert::Certificate;
use x509_cert::der::Decode;

/// Whether clients must present a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// Not asked for.
    #[default]
    Off,
    /// Asked for; verified when presented.
    Optional,
    /// Required and verified.
    Required,
}

/// The oldest TLS version accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MinTlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// A certificate chain and its key, as files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// The chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The leaf's private key (PEM).
    pub key: PathBuf,
}

/// Everything a terminating listener's TLS is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsServerOptions {
    /// Served when the client's SNI matches no other certificate, or it sends none.
    pub default: CertFiles,
    /// Certificates served for the given server names (exact, case-insensitive, or `*.suffix`).
    pub by_name: Vec<(Vec<String>, CertFiles)>,
    /// The oldest version accepted.
    pub min_version: MinTlsVersion,
    /// Application protocols offered, in preference order.
    pub alpn: Vec<String>,
    /// Whether clients must present a certificate.
    pub client_auth: ClientAuth,
    /// The CAs client certificates must chain to (required unless `client_auth` is off).
    pub client_ca: Option<PathBuf>,
}

/// Why a TLS server configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A certificate or key file could not be used.
    #[error(transparent)]
    Pem(#[from] proxy_core::tls::PemError),
    /// The key does not fit the certificate, or rustls refused the combination.
    #[error("{context}: {source}")]
    Rustls {
        /// Which file or setting.
        context: String,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// Client authentication needs a CA bundle.
    #[error("client_auth is on but no client_ca is given")]
    MissingClientCa,
    /// rustls could not build the client verifier.
    #[error("client_ca: {0}")]
    ClientVerifier(String),
}

/// When one served certificate (the leaf of a chain) expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateExpiry {
    /// The server names it is served for; empty for the default certificate.
    pub server_names: Vec<String>,
    /// Its file.
    pub cert: PathBuf,
    /// Its not-after, in seconds since the Unix epoch; `None` if the leaf could not be parsed
    /// as X.509 (rustls accepted it, so it is served all the same).
    pub not_after: Option<u64>,
}

/// A listener's TLS configuration, reloadable.
pub struct ReloadableServerConfig {
    options: TlsServerOptions,
    current: Mutex<Arc<ServerConfig>>,
    /// The not-after of each certificate `current` serves.
    expiry: Mutex<Vec<CertificateExpiry>>,
    /// Modification times and sizes of the files the current config was built from.
    stamps: Mutex<Vec<Option<(SystemTime, u64)>>>,
}

impl fmt::Debug for ReloadableServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableServerConfig")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

// === impl ReloadableServerConfig ===

impl ReloadableServerConfig {
    /// Builds the configuration from `options`' files.
    pub fn load(options: TlsServerOptions) -> Result<Self, TlsConfigError> {
        let stamps = stamps(&options);
        let (config, expiry) = build(&options)?;
        Ok(Self {
            options,
            current: Mutex::new(config),
            expiry: Mutex::new(expiry),
            stamps: Mutex::new(stamps),
        })
    }

    /// The configuration new handshakes use.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.lock().clone()
    }

    /// Rebuilds from the files; on error the previous configuration stays in use.
    pub fn reload(&self) -> Result<(), TlsConfigError> {
        let stamps = stamps(&self.options);
        let (config, expiry) = build(&self.options)?;
        *self.current.lock() = config;
        *self.expiry.lock() = expiry;
        *self.stamps.lock() = stamps;
        Ok(())
    }

    /// Reloads when any file's modification time or size changed; `Ok(true)` when it did.
    pub fn reload_if_changed(&self) -> Result<bool, TlsConfigError> {
        if stamps(&self.options) == *self.stamps.lock() {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// When each certificate new handshakes are served expires: the default first.
    pub fn expiry(&self) -> Vec<CertificateExpiry> {
        self.expiry.lock().clone()
    }

    /// The files this configuration is built from.
    pub fn options(&self) -> &TlsServerOptions {
        &self.options
    }
}

fn files(options: &TlsServerOptions) -> Vec<&PathBuf> {
    let mut files = vec![&options.default.cert, &options.default.key];
    for (_, pair) in &options.by_name {
        files.push(&pair.cert);
        files.push(&pair.key);
    }
    files.extend(options.client_ca.iter());
    files
}

fn stamps(options: &TlsServerOptions) -> Vec<Option<(SystemTime, u64)>> {
    files(options)
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

/// The leaf of `certified`'s chain: when it expires.
fn expiry(certified: &CertifiedKey, files: &CertFiles, names: &[String]) -> CertificateExpiry {
    let not_after = certified
        .end_entity_cert()
        .ok()
        .and_then(|leaf| Certificate::from_der(leaf.as_ref()).ok())
        .map(|leaf| {
            leaf.tbs_certificate
                .validity
                .not_after
                .to_unix_duration()
                .as_secs()
        });
    CertificateExpiry {
        server_names: names.to_vec(),
        cert: files.cert.clone(),
        not_after,
    }
}

fn certified_key(files: &CertFiles) -> Result<Arc<CertifiedKey>, TlsConfigError> {
    let chain = load_cert_chain(&files.cert)?;
    let key = load_private_key(&files.key)?;
    let signing =
        ring::sign::any_supported_type(&key).map_err(|source| TlsConfigError::Rustls {
            context: files.key.display().to_string(),
            source,
        })?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|source| TlsConfigError::Rustls {
            context: format!(
                "{} does not match {}",
                files.key.display(),
                files.cert.display()
            ),
            source,
        })?;
    Ok(Arc::new(certified))
}

type Built = (Arc<ServerConfig>, Vec<CertificateExpiry>);

fn build(options: &TlsServerOptions) -> Result<Built, TlsConfigError> {
    let provider = Arc::new(ring::default_provider());
    let versions: &[&SupportedProtocolVersion] = match options.min_version {
        MinTlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinTlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|source| TlsConfigError::Rustls {
            context: "min_version".into(),
            source,
        })?;
    let builder = match options.client_auth {
        ClientAuth::Off => builder.with_no_client_auth(),
        ClientAuth::Optional | ClientAuth::Required => {
            let ca = options
                .client_ca
                .as_ref()
                .ok_or(TlsConfigError::MissingClientCa)?;
            let roots = Arc::new(load_ca_bundle(ca)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier = if options.client_auth == ClientAuth::Optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|err| TlsConfigError::ClientVerifier(err.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let resolver = SniResolver {
        default: certified_key(&options.default)?,
        by_name: options
            .by_name
            .iter()
            .map(|(names, files)| {
                Ok((
                    names.iter().map(|n| n.to_ascii_lowercase()).collect(),
                    certified_key(files)?,
                ))
            })
            .collect::<Result<_, TlsConfigError>>()?,
    };
    let expiries = std::iter::once(expiry(&resolver.default, &options.default, &[]))
        .chain(
            options
                .by_name
                .iter()
                .zip(&resolver.by_name)
                .map(|((names, files), (_, key))| expiry(key, files, names)),
        )
        .collect();
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = options.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok((Arc::new(config), expiries))
}

/// Picks the certificate for the client's SNI, falling back to the default.
#[derive(Debug)]
struct SniResolver {
    default: Arc<CertifiedKey>,
    by_name: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(sni) = hello.server_name() else {
            return Some(self.default.clone());
        };
        let sni = sni.to_ascii_lowercase();
        let chosen = self
            .by_name
            .iter()
            .find(|(names, _)| names.iter().any(|name| name_matches(name, &sni)));
        Some(chosen.map_or(&self.default, |(_, key)| key).clone())
    }
}

/// `name` is an exact host name or `*.suffix`, which matches exactly one more label.
fn name_matches(name: &str, sni: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(suffix) => sni
            .strip_suffix(suffix)
            .and_then(|head| head.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => name == sni,
    }
}

#[cfg(test)]
mod tests {
    use super::name_matches;

    #[test]
    fn wildcards_match_one_label() {
        assert!(name_matches("a.example", "a.example"));
        assert!(name_matches("*.example", "a.example"));
        assert!(!name_matches("*.example", "a.b.example"));
        assert!(!name_matches("*.example", "example"));
        assert!(!name_matches("a.example", "b.example"));
    }
}
