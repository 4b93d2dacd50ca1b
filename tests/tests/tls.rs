//! TLS on real loopback sockets, with rustls and OpenSSL as clients: termination with SNI
//! certificates, mTLS principals, verified origination, SNI passthrough, reload, and handshakes
//! that fail or stall.
#![expect(
    clippy::unwrap_used,
    reason = "helpers of this test file fail the test on bad setup"
)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proxy_backend::{BackendTls, BackendTlsOptions};
use proxy_core::close::CloseReason;
use proxy_core::gate::Side;
use proxy_core::route::{RouteId, RouteMatch, RouteRule};
use proxy_frontend::{
    CertFiles, ClientAuth, ListenerTls, MinTlsVersion, PrincipalSource, ReloadableServerConfig,
    TlsServerOptions, TlsTermination,
};
use rustls_pki_types::ServerName;
use sluice_tests::certs::{TestCa, TestLeaf, rustls_client_config, temp_dir, tls_echo_server};
use sluice_tests::openssl::s_client;
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use sluice_tests::{STEP_TIMEOUT, pattern, peers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
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

fn backend_tls(ca: Option<&Path>, server_name: &str) -> BackendTls {
    BackendTls::from_files(&BackendTlsOptions {
        ca: ca.map(Path::to_path_buf),
        server_name: Some(server_name.into()),
        client_cert: None,
        client_key: None,
        insecure_skip_verify: false,
    })
    .unwrap()
}

#[tokio::test]
async fn origination_verifies_the_backend_and_says_why_when_it_cannot() {
    let pki = pki("originate");
    let backend_leaf = pki.ca.issue(&["backend.example"]);
    let (backend, _server) = tls_echo_server(&backend_leaf).await;
    let stranger = TestCa::new("Stranger CA");
    let stranger_file = stranger.write_to(&pki.dir, "stranger.pem");

    let cases = [
        (backend_tls(Some(&pki.ca_file), "backend.example"), None),
        (
            backend_tls(Some(&stranger_file), "backend.example"),
            Some("backend_tls_failed"),
        ),
        (
            backend_tls(Some(&pki.ca_file), "other.example"),
            Some("backend_tls_failed"),
        ),
    ];
    for (tls, failure) in cases {
        let mut proxy = TestProxy::start(ProxyOptions {
            backend_tls: Some(tls),
            ..ProxyOptions::to([backend])
        })
        .await;
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        // A refused session is closed with the request unread: a reset is as good as EOF.
        let reply = timeout(STEP_TIMEOUT, async {
            stream.write_all(b"ping").await?;
            stream.shutdown().await?;
            let mut got = Vec::new();
            stream.read_to_end(&mut got).await.map(|_| got)
        })
        .await
        .unwrap();
        let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
        match failure {
            None => assert_eq!(reply.unwrap(), b"ping"),
            Some(label) => {
                assert!(
                    reply.is_err() || reply.as_ref().is_ok_and(Vec::is_empty),
                    "{reply:?}"
                );
                assert_eq!(summary.reason.label(), label);
                let detail = summary.reason.to_string();
                assert!(
                    detail.contains("certificate")
                        || detail.contains("Unknown")
                        || detail.contains("name"),
                    "{detail}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_passthrough_reaches_the_backend_named_by_the_client_hello() {
    let pki = pki("passthrough");
    let (a, _a_server) = tls_echo_server(&pki.ca.issue(&["a.example"])).await;
    let (b, _b_server) = tls_echo_server(&pki.ca.issue(&["b.example"])).await;
    let sni = |name: &str| RouteMatch {
        sni: Some(name.into()),
        ..RouteMatch::default()
    };
    let proxy = TestProxy::start(ProxyOptions {
        tls: Some(ListenerTls::Passthrough {
            handshake_timeout: Duration::from_secs(10),
        }),
        other_clusters: vec![("a", vec![a]), ("b", vec![b])],
        rules: vec![
            RouteRule {
                when: sni("a.example"),
                route: RouteId::new("a"),
            },
            RouteRule {
                when: sni("b.example"),
                route: RouteId::new("b"),
            },
        ],
        ..ProxyOptions::to([a])
    })
    .await;
    let addr = proxy.addr();
    for name in ["a.example", "b.example"] {
        let ca_file = pki.ca_file.clone();
        let result = tokio::task::spawn_blocking(move || {
            s_client(addr, Some(name), Some(&ca_file), None, b"passthrough\n")
        })
        .await
        .unwrap();
        assert!(result.verify_ok, "{name}: {}", result.stderr);
        assert!(
            result
                .peer_cert_subject
                .as_deref()
                .unwrap_or("")
                .contains(name),
            "{name}: {result:?}"
        );
        assert!(
            String::from_utf8_lossy(&result.stdout).contains("passthrough"),
            "{name}: {result:?}"
        );
    }
}

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
