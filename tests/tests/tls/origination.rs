//! TLS origination: the proxy verifies the backend's certificate and name, and a session it
//! refuses says why.

use std::path::Path;

use proxy_backend::{BackendTls, BackendTlsOptions};
use sluice_tests::STEP_TIMEOUT;
use sluice_tests::certs::{TestCa, tls_echo_server};
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::pki;

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
