//! A backend that answers and resets behind a TLS-terminating listener: the client decrypts the
//! whole answer every time, then sees the reset (no `close_notify`, as the server sent no end
//! either).

use std::io::ErrorKind;

use proxy_core::close::CloseReason;
use rustls_pki_types::ServerName;
use sluice_tests::certs::rustls_client_config;
use sluice_tests::proxy::{ProxyOptions, TestProxy};
use sluice_tests::{STEP_TIMEOUT, pattern, peers};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use crate::{files, pki, server_options, terminate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_answers_then_resets_gets_its_answer_through_tls_every_time() {
    let pki = pki("reset");
    let leaf = files(&pki.dir, &pki.ca.issue(&["proxy.example"]), "main");
    let answer = pattern(48 * 1024, 12);
    let backend = peers::answer_then_reset(answer.clone()).await;
    let mut proxy = TestProxy::start(ProxyOptions {
        tls: Some(terminate(server_options(leaf), Duration::from_secs(10))),
        ..ProxyOptions::to([backend.addr()])
    })
    .await;
    let connector = TlsConnector::from(rustls_client_config(&pki.ca, None));
    for attempt in 0..20 {
        let tcp = TcpStream::connect(proxy.addr()).await.unwrap();
        let name = ServerName::try_from("proxy.example").unwrap();
        let mut tls = timeout(STEP_TIMEOUT, connector.connect(name, tcp))
            .await
            .unwrap()
            .unwrap();
        tls.write_all(b"a request nobody reads").await.unwrap();
        tls.flush().await.unwrap();
        let mut got = Vec::new();
        let end = timeout(STEP_TIMEOUT, tls.read_to_end(&mut got))
            .await
            .unwrap();
        assert!(
            got == answer,
            "attempt {attempt}: the client got {} of the answer's {} bytes",
            got.len(),
            answer.len()
        );
        assert_eq!(
            end.err().map(|e| e.kind()),
            Some(ErrorKind::ConnectionReset),
            "attempt {attempt}: the reset was not passed on"
        );
        let summary = proxy.next_closed(STEP_TIMEOUT).await.unwrap();
        assert_eq!(
            summary.reason,
            CloseReason::BackendIo(ErrorKind::ConnectionReset)
        );
    }
}
