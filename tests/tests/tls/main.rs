//! TLS on real loopback sockets, with rustls and OpenSSL as clients: termination with SNI
//! certificates, mTLS principals, verified origination, SNI passthrough, reload, and handshakes
//! that fail or stall.
//!
//! This file holds what the tests share: a test PKI on disk, a terminating listener's options,
//! and a rustls client exchange.
#![expect(
    clippy::unwrap_used,
    reason = "helpers of this test file fail the test on bad setup"
)]

mod origination;
mod passthrough;
mod reload;
mod reset;
mod termination;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proxy_frontend::{
    CertFiles, ClientAuth, ListenerTls, MinTlsVersion, PrincipalSource, ReloadableServerConfig,
    TlsServerOptions, TlsTermination,
};
use rustls_pki_types::ServerName;
use sluice_tests::certs::{TestCa, TestLeaf, temp_dir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct Pki {
    dir: std::path::PathBuf,
    ca: TestCa,
    ca_file: std::path::PathBuf,
}

fn pki(tag: &str) -> Pki {
    let dir = temp_dir(tag);
    let ca = TestCa::new("Sluice Test CA");
    let ca_file = ca.write_to(&dir, "ca.pem");
    Pki { dir, ca, ca_file }
}

fn files(dir: &Path, leaf: &TestLeaf, name: &str) -> CertFiles {
    let (cert, key) = leaf.write_to(dir, name);
    CertFiles { cert, key }
}

fn terminate(options: TlsServerOptions, handshake_timeout: Duration) -> ListenerTls {
    ListenerTls::Terminate(TlsTermination {
        server: Arc::new(ReloadableServerConfig::load(options).unwrap()),
        handshake_timeout,
        principal: PrincipalSource::CommonName,
    })
}

fn server_options(default: CertFiles) -> TlsServerOptions {
    TlsServerOptions {
        default,
        by_name: Vec::new(),
        min_version: MinTlsVersion::Tls12,
        alpn: Vec::new(),
        client_auth: ClientAuth::Off,
        client_ca: None,
    }
}

/// A rustls client session through the proxy: sends `data`, half-closes, reads to the end.
async fn rustls_exchange(
    addr: SocketAddr,
    name: &str,
    config: Arc<rustls::ClientConfig>,
    data: &[u8],
) -> std::io::Result<Vec<u8>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut tls = TlsConnector::from(config).connect(name, tcp).await?;
    let (mut read, mut write) = tokio::io::split(&mut tls);
    let send = async {
        write.write_all(data).await?;
        write.shutdown().await
    };
    let receive = async {
        let mut got = Vec::new();
        read.read_to_end(&mut got).await.map(|_| got)
    };
    let (sent, got) = tokio::join!(send, receive);
    sent?;
    got
}
