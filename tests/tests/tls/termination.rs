//! TLS termination: OpenSSL and rustls clients get exact bytes and the certificate for their
//! SNI, required client certificates are verified and name the principal, and garbage or
//! stalled handshakes are closed within the deadline.

use std::time::Duration;

use proxy_core::close::CloseReason;
use proxy_core::gate::Side;
use proxy_frontend::ClientAuth;
use rustls_pki_types::ServerName;
use sluice_tests::certs::{TestCa, rustls_client_config};
use sluice_tests::openssl::s_client;
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use sluice_tests::{STEP_TIMEOUT, pattern, peers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use crate::{files, pki, rustls_exchange, server_options, terminate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_and_rustls_clients_get_exact_bytes_and_the_certificate_for_their_sni() {
    let pki = pki("terminate");
    let main = files(&pki.dir, &pki.ca.issue(&["proxy.example"]), "main");
    let other = files(&pki.dir, &pki.ca.issue(&["other.example"]), "other");
    let mut options = server_options(main);
    options.by_name.push((vec!["other.example".into()], other));
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions {
        tls: Some(terminate(options, Duration::from_secs(10))),
        ..ProxyOptions::to([backend.addr()])
    })
    .await;

    let upload = pattern(256 * 1024, 11);
    let config = rustls_client_config(&pki.ca, None);
    let got = timeout(
        STEP_TIMEOUT,
        rustls_exchange(proxy.addr(), "proxy.example", config, &upload),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(got == upload, "rustls: echoed bytes differ");
    let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
    assert_eq!(summary.sni.as_deref(), Some("proxy.example"));

    let addr = proxy.addr();
    let ca_file = pki.ca_file.clone();
    let result = tokio::task::spawn_blocking(move || {
        s_client(
            addr,
            Some("proxy.example"),
            Some(&ca_file),
            None,
            b"hello openssl\n",
        )
    })
    .await
    .unwrap();
    assert!(
        result.verify_ok,
        "openssl could not verify: {}",
        result.stderr
    );
    assert!(
        String::from_utf8_lossy(&result.stdout).contains("hello openssl"),
        "{result:?}"
    );
    assert!(
        result
            .peer_cert_subject
            .as_deref()
            .unwrap_or("")
            .contains("proxy.example"),
        "{result:?}"
    );
    assert_eq!(
        proxy
            .next_closed(STEP_TIMEOUT)
            .await
            .unwrap()
            .sni
            .as_deref(),
        Some("proxy.example")
    );

    let ca_file = pki.ca_file.clone();
    let result = tokio::task::spawn_blocking(move || {
        s_client(addr, Some("other.example"), Some(&ca_file), None, b"x\n")
    })
    .await
    .unwrap();
    assert!(
        result
            .peer_cert_subject
            .as_deref()
            .unwrap_or("")
            .contains("other.example"),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates_are_verified_and_name_the_principal() {
    let pki = pki("mtls");
    let server = files(&pki.dir, &pki.ca.issue(&["proxy.example"]), "server");
    let client_ca = TestCa::new("Client CA");
    let client_ca_file = client_ca.write_to(&pki.dir, "client-ca.pem");
    let mut options = server_options(server);
    options.client_auth = ClientAuth::Required;
    options.client_ca = Some(client_ca_file);
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions {
        tls: Some(terminate(options, Duration::from_secs(10))),
        ..ProxyOptions::to([backend.addr()])
    })
    .await;

    // Without a certificate, and with one from another CA: refused.
    let stranger_ca = TestCa::new("Stranger CA");
    let stranger = stranger_ca.issue_client("mallory", &[]);
    for client in [None, Some(&stranger)] {
        let config = rustls_client_config(&pki.ca, client);
        let result = timeout(
            STEP_TIMEOUT,
            rustls_exchange(proxy.addr(), "proxy.example", config, b"let me in"),
        )
        .await
        .unwrap();
        assert!(
            result.is_err() || result.as_ref().is_ok_and(Vec::is_empty),
            "{result:?}"
        );
        let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
        assert!(
            matches!(
                summary.reason,
                CloseReason::Tls {
                    side: Side::Client,
                    ..
                }
            ),
            "{:?}",
            summary.reason
        );
        assert_eq!(
            summary.backend_addr, None,
            "no backend for an unauthenticated client"
        );
    }

    let alice = client_ca.issue_client("alice", &[]);
    // While a session is open, its certificate chain is already released.
    let tcp = TcpStream::connect(proxy.addr()).await.unwrap();
    let name = ServerName::try_from("proxy.example".to_owned()).unwrap();
    let mut open = TlsConnector::from(rustls_client_config(&pki.ca, Some(&alice)))
        .connect(name, tcp)
        .await
        .unwrap();
    open.write_all(b"ping").await.unwrap();
    let mut pong = [0u8; 4];
    timeout(STEP_TIMEOUT, open.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        proxy
            .live_resources()
            .live(proxy_core::context::Resource::Session),
        1
    );
    assert_eq!(
        proxy
            .live_resources()
            .live(proxy_core::context::Resource::PeerCertificates),
        0
    );
    drop(open);
    assert_eq!(
        proxy
            .next_closed(STEP_TIMEOUT)
            .await
            .unwrap()
            .principal
            .as_deref(),
        Some("alice")
    );

    let config = rustls_client_config(&pki.ca, Some(&alice));
    let got = timeout(
        STEP_TIMEOUT,
        rustls_exchange(proxy.addr(), "proxy.example", config, b"hi"),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(got, b"hi");
    let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
    assert_eq!(summary.principal.as_deref(), Some("alice"));
}

#[tokio::test]
async fn garbage_and_stalled_handshakes_are_closed_within_the_deadline() {
    let pki = pki("deadline");
    let server = files(&pki.dir, &pki.ca.issue(&["proxy.example"]), "server");
    let backend = peers::echo().await;
    let mut proxy = TestProxy::start(ProxyOptions {
        tls: Some(terminate(
            server_options(server),
            Duration::from_millis(300),
        )),
        ..ProxyOptions::to([backend.addr()])
    })
    .await;

    let mut plaintext = TcpStream::connect(proxy.addr()).await.unwrap();
    plaintext
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = timeout(STEP_TIMEOUT, plaintext.read(&mut buf))
        .await
        .expect("closed, not hanging");
    assert!(
        read.is_err() || read.as_ref().is_ok_and(|n| *n == 0 || buf[0] == 0x15),
        "{read:?}"
    );
    let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
    assert!(
        matches!(
            summary.reason,
            CloseReason::Tls {
                side: Side::Client,
                ..
            }
        ),
        "{:?}",
        summary.reason
    );

    let mut stalled = TcpStream::connect(proxy.addr()).await.unwrap();
    let read = timeout(STEP_TIMEOUT, stalled.read(&mut buf))
        .await
        .expect("closed at the deadline");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
    assert_eq!(
        summary.reason.to_string(),
        "TLS handshake with the client failed: handshake timed out"
    );
    assert!(
        summary.duration >= Duration::from_millis(300),
        "{:?}",
        summary.duration
    );
}
