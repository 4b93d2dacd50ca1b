//! Certificate reload: new handshakes get the new certificate while an established session
//! keeps its own and keeps working.

use std::sync::Arc;
use std::time::Duration;

use proxy_frontend::{ListenerTls, PrincipalSource, ReloadableServerConfig, TlsTermination};
use rustls_pki_types::ServerName;
use sluice_tests::certs::rustls_client_config;
use sluice_tests::openssl::s_client;
use sluice_tests::peers;
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::{files, pki, server_options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_serves_new_certificates_to_new_handshakes_and_keeps_established_sessions() {
    let pki = pki("reload");
    let first = files(
        &pki.dir,
        &pki.ca.issue(&["proxy.example", "first.example"]),
        "live",
    );
    let server = Arc::new(ReloadableServerConfig::load(server_options(first.clone())).unwrap());
    let backend = peers::echo().await;
    let proxy = TestProxy::start(ProxyOptions {
        tls: Some(ListenerTls::Terminate(TlsTermination {
            server: server.clone(),
            handshake_timeout: Duration::from_secs(10),
            principal: PrincipalSource::CommonName,
        })),
        ..ProxyOptions::to([backend.addr()])
    })
    .await;

    let tcp = TcpStream::connect(proxy.addr()).await.unwrap();
    let name = ServerName::try_from("proxy.example".to_owned()).unwrap();
    let mut established = TlsConnector::from(rustls_client_config(&pki.ca, None))
        .connect(name, tcp)
        .await
        .unwrap();
    established.write_all(b"before").await.unwrap();
    let mut buf = [0u8; 6];
    established.read_exact(&mut buf).await.unwrap();

    // Replace the files in place and reload.
    let second = pki.ca.issue(&["proxy.example", "second.example"]);
    std::fs::write(&first.cert, &second.chain_pem).unwrap();
    std::fs::write(&first.key, &second.key_pem).unwrap();
    server.reload().unwrap();

    let addr = proxy.addr();
    let ca_file = pki.ca_file.clone();
    let result = tokio::task::spawn_blocking(move || {
        s_client(addr, Some("proxy.example"), Some(&ca_file), None, b"new\n")
    })
    .await
    .unwrap();
    let subject = result.peer_cert_subject.clone().unwrap_or_default();
    assert!(subject.contains("proxy.example"), "{result:?}");
    let new_leaf = established.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_ne!(
        new_leaf.as_ref(),
        second.cert_der().as_ref(),
        "the established session kept its certificate"
    );

    established.write_all(b"after!").await.unwrap();
    established.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"after!", "the established session still works");
    // The new handshake got the second certificate: check its DER through rustls.
    let tcp = TcpStream::connect(proxy.addr()).await.unwrap();
    let name = ServerName::try_from("proxy.example".to_owned()).unwrap();
    let fresh = TlsConnector::from(rustls_client_config(&pki.ca, None))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(
        fresh.get_ref().1.peer_certificates().unwrap()[0].as_ref(),
        second.cert_der().as_ref()
    );
}
