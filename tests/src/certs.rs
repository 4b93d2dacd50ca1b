//! A test PKI made with rcgen when the test runs (no key is ever committed): a CA, server and
//! client certificates it issues, rustls configurations built from them, and a TLS echo server.
//!
//! Certificates use ECDSA P-256, which rustls, OpenSSL and HAProxy all accept.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::peers::Server;

/// A certificate authority that issues server and client certificates.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    common_name: String,
}

/// A certificate issued by a [`TestCa`], with its private key, all PEM.
#[derive(Debug, Clone)]
pub struct TestLeaf {
    /// The certificate alone.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
    /// The certificate followed by the CA's: what a server or client presents.
    pub chain_pem: String,
}

// === impl TestCa ===

impl TestCa {
    /// A new self-signed CA named `common_name`.
    pub fn new(common_name: &str) -> Self {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("generate a CA key");
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign the test CA");
        Self {
            issuer,
            common_name: common_name.to_owned(),
        }
    }

    /// A server certificate for `names`: DNS names, or IP SANs for IP literals. Its common
    /// name is the first name.
    pub fn issue(&self, names: &[&str]) -> TestLeaf {
        let first = names.first().expect("a server certificate needs a name");
        self.sign(first, names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate (clientAuth) named `common_name`, with `dns_sans` as DNS SANs.
    pub fn issue_client(&self, common_name: &str, dns_sans: &[&str]) -> TestLeaf {
        self.sign(common_name, dns_sans, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn sign(&self, common_name: &str, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> TestLeaf {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .expect("valid subject alternative names");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("generate a leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign a leaf certificate");
        let cert_pem = cert.pem();
        TestLeaf {
            chain_pem: format!("{cert_pem}{}", self.cert_pem()),
            cert_pem,
            key_pem: key.serialize_pem(),
        }
    }

    /// The CA's certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA's certificate, DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A root store trusting only this CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.cert_der())
            .expect("the test CA is a trust anchor");
        roots
    }

    /// Writes the CA certificate to `dir/{name}.pem` and returns that path.
    pub fn write_to(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, self.cert_pem()).expect("write the CA certificate");
        path
    }
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa")
            .field("common_name", &self.common_name)
            .finish_non_exhaustive()
    }
}

// === impl TestLeaf ===

impl TestLeaf {
    /// Writes the chain to `dir/{name}.chain.pem` and the key to `dir/{name}.key.pem`, and
    /// returns (chain, key).
    pub fn write_to(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let chain = dir.join(format!("{name}.chain.pem"));
        let key = dir.join(format!("{name}.key.pem"));
        std::fs::write(&chain, &self.chain_pem).expect("write a certificate chain");
        std::fs::write(&key, &self.key_pem).expect("write a private key");
        (chain, key)
    }

    /// The certificate alone, DER.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).expect("a PEM certificate")
    }

    /// The certificate followed by the CA's, DER.
    pub fn chain_der(&self) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("a PEM certificate chain")
    }

    /// The private key, DER.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("a PEM private key")
    }
}

/// A fresh directory under the system's temporary directory, unique to this process, `tag`
/// and call.
pub fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sluice-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

// === rustls configurations ===

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration presenting `leaf`'s chain, without client authentication.
pub fn rustls_server_config(leaf: &TestLeaf) -> Arc<ServerConfig> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(leaf.chain_der(), leaf.key_der())
        .expect("a valid server certificate and key");
    Arc::new(config)
}

/// A server configuration presenting `leaf`'s chain and requiring a client certificate issued
/// by `client_ca` (mTLS).
pub fn rustls_server_config_mtls(leaf: &TestLeaf, client_ca: &TestCa) -> Arc<ServerConfig> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(client_ca.root_store()), provider())
            .build()
            .expect("a client certificate verifier");
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_client_cert_verifier(verifier)
        .with_single_cert(leaf.chain_der(), leaf.key_der())
        .expect("a valid server certificate and key");
    Arc::new(config)
}

/// A client configuration trusting only `ca`, presenting `client`'s chain when given.
pub fn rustls_client_config(ca: &TestCa, client: Option<&TestLeaf>) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(ca.root_store());
    let config = match client {
        Some(leaf) => builder
            .with_client_auth_cert(leaf.chain_der(), leaf.key_der())
            .expect("a valid client certificate and key"),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

// === TLS echo server ===

/// A TLS echo server presenting `leaf` on 127.0.0.1, port 0: echoes every byte; after the
/// client's close_notify, finishes echoing and closes too (close_notify, then FIN), like
/// [`peers::echo`](crate::peers::echo). A client that ends TCP without close_notify gets no
/// close_notify back.
pub async fn tls_echo_server(leaf: &TestLeaf) -> (SocketAddr, Server) {
    tls_echo_server_with(rustls_server_config(leaf)).await
}

/// [`tls_echo_server`] with any server configuration (e.g. [`rustls_server_config_mtls`]).
pub async fn tls_echo_server_with(config: Arc<ServerConfig>) -> (SocketAddr, Server) {
    let acceptor = TlsAcceptor::from(config);
    let server = Server::spawn(move |stream| echo(acceptor.clone(), stream)).await;
    (server.addr(), server)
}

async fn echo(acceptor: TlsAcceptor, stream: TcpStream) {
    let Ok(mut tls) = acceptor.accept(stream).await else {
        return;
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match tls.read(&mut buf).await {
            Ok(0) => {
                let _ = tls.shutdown().await;
                return;
            }
            Ok(n) => {
                if tls.write_all(&buf[..n]).await.is_err() || tls.flush().await.is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}
