//! The TLS test peers themselves: the rcgen PKI, the rustls echo server and OpenSSL's
//! `s_client` talk to each other directly, with no proxy between them, so a failure in a proxy
//! test is not a failure of its peers.
#![expect(
    clippy::unwrap_used,
    reason = "helpers of this test file fail the test on bad setup"
)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use sluice_tests::certs::{
    TestCa, TestLeaf, rustls_client_config, rustls_server_config_mtls, temp_dir, tls_echo_server,
    tls_echo_server_with,
};
use sluice_tests::openssl::{SClientResult, peer_certificate_subject, s_client};
use sluice_tests::{STEP_TIMEOUT, pattern};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

/// Runs `s_client` off the runtime, so the server keeps running meanwhile.
async fn run_s_client(
    addr: SocketAddr,
    server_name: Option<&str>,
    ca_file: Option<PathBuf>,
    client: Option<(PathBuf, PathBuf)>,
    input: Vec<u8>,
) -> SClientResult {
    let server_name = server_name.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let client = client.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
        s_client(
            addr,
            server_name.as_deref(),
            ca_file.as_deref(),
            client,
            &input,
        )
    })
    .await
    .unwrap()
}

struct Pki {
    dir: PathBuf,
    ca: TestCa,
    ca_file: PathBuf,
    leaf: TestLeaf,
}

fn pki(tag: &str) -> Pki {
    let dir = temp_dir(tag);
    let ca = TestCa::new("Sluice Test CA");
    let ca_file = ca.write_to(&dir, "ca");
    let leaf = ca.issue(&["a.example", "b.example"]);
    Pki {
        dir,
        ca,
        ca_file,
        leaf,
    }
}

fn other_ca_file(dir: &Path) -> PathBuf {
    TestCa::new("Another CA").write_to(dir, "other-ca")
}

#[tokio::test]
async fn s_client_gets_its_bytes_back_and_verifies_the_server() {
    let pki = pki("s-client-echo");
    let (addr, _server) = tls_echo_server(&pki.leaf).await;
    // Starts with `Q`, which s_client would take as "quit" without -nocommands.
    let input = b"Quit? No: hello over TLS\n".to_vec();
    let run = run_s_client(
        addr,
        Some("a.example"),
        Some(pki.ca_file.clone()),
        None,
        input.clone(),
    )
    .await;
    assert!(run.status.success(), "{run:?}");
    assert!(!run.timed_out);
    assert_eq!(run.stdout, input, "{}", run.stderr);
    assert!(run.verify_ok, "{}", run.stderr);
    let subject = run.peer_cert_subject.expect("a subject line");
    assert!(subject.contains("a.example"), "{subject}");
}

#[tokio::test]
async fn s_client_echoes_a_large_upload() {
    let pki = pki("s-client-large");
    let (addr, _server) = tls_echo_server(&pki.leaf).await;
    let input = pattern(200 * 1024, 7);
    let run = run_s_client(
        addr,
        Some("b.example"),
        Some(pki.ca_file),
        None,
        input.clone(),
    )
    .await;
    assert!(run.status.success(), "{run:?}");
    assert_eq!(run.stdout.len(), input.len());
    assert!(run.stdout == input, "echoed bytes differ");
}

#[tokio::test]
async fn s_client_refuses_a_server_another_ca_issued() {
    let pki = pki("s-client-other-ca");
    let (addr, _server) = tls_echo_server(&pki.leaf).await;
    let run = run_s_client(
        addr,
        Some("a.example"),
        Some(other_ca_file(&pki.dir)),
        None,
        b"secret".to_vec(),
    )
    .await;
    assert!(!run.status.success(), "{run:?}");
    assert!(!run.verify_ok);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("verify"), "{}", run.stderr);
}

#[tokio::test]
async fn s_client_refuses_a_certificate_for_another_name() {
    let pki = pki("s-client-name");
    let (addr, _server) = tls_echo_server(&pki.leaf).await;
    let run = run_s_client(
        addr,
        Some("c.example"),
        Some(pki.ca_file),
        None,
        b"x".to_vec(),
    )
    .await;
    assert!(!run.status.success(), "{run:?}");
    assert!(!run.verify_ok);
}

#[tokio::test]
async fn peer_certificate_subject_needs_no_ca() {
    let pki = pki("subject");
    let (addr, _server) = tls_echo_server(&pki.leaf).await;
    let subject =
        tokio::task::spawn_blocking(move || peer_certificate_subject(addr, Some("b.example")))
            .await
            .unwrap();
    // The CN is the first name, whatever name was asked for.
    assert_eq!(subject.as_deref(), Some("CN = a.example"));

    // Not a TLS server: no subject.
    let plain = sluice_tests::peers::echo().await;
    let plain_addr = plain.addr();
    let subject = tokio::task::spawn_blocking(move || peer_certificate_subject(plain_addr, None))
        .await
        .unwrap();
    assert_eq!(subject, None);
}

#[tokio::test]
async fn s_client_presents_a_client_certificate_for_mtls() {
    let pki = pki("s-client-mtls");
    let client_ca = TestCa::new("Client CA");
    let client = client_ca.issue_client("alice", &[]);
    let (addr, _server) =
        tls_echo_server_with(rustls_server_config_mtls(&pki.leaf, &client_ca)).await;

    let (chain, key) = client.write_to(&pki.dir, "alice");
    let run = run_s_client(
        addr,
        Some("a.example"),
        Some(pki.ca_file.clone()),
        Some((chain, key)),
        b"with a certificate".to_vec(),
    )
    .await;
    assert!(run.status.success(), "{run:?}");
    assert_eq!(run.stdout, b"with a certificate", "{}", run.stderr);

    // Without one, TLS 1.3 lets the handshake finish on the client's side; the server's
    // alert then ends the connection before any data comes back.
    let run = run_s_client(
        addr,
        Some("a.example"),
        Some(pki.ca_file),
        None,
        b"without".to_vec(),
    )
    .await;
    assert!(run.stdout.is_empty(), "{run:?}");
}

/// The rustls side of the helpers: a client configuration from the same CA, half-close echo.
#[tokio::test]
async fn rustls_client_talks_to_the_echo_server() {
    let pki = pki("rustls-client");
    let (addr, _server) = tls_echo_server(&pki.leaf).await;
    let connector = TlsConnector::from(rustls_client_config(&pki.ca, None));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("b.example").unwrap();
    let mut tls = timeout(STEP_TIMEOUT, connector.connect(name, tcp))
        .await
        .unwrap()
        .unwrap();
    tls.write_all(b"ping").await.unwrap();
    // close_notify: the echo server answers what is left and closes in turn.
    tls.shutdown().await.unwrap();
    let mut got = Vec::new();
    timeout(STEP_TIMEOUT, tls.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"ping");
}

#[tokio::test]
async fn an_ip_literal_becomes_an_ip_san() {
    let ca = TestCa::new("IP CA");
    let leaf = ca.issue(&["127.0.0.1"]);
    let (addr, _server) = tls_echo_server(&leaf).await;
    let connector = TlsConnector::from(rustls_client_config(&ca, None));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    let tls = timeout(STEP_TIMEOUT, connector.connect(name, tcp))
        .await
        .unwrap();
    assert!(tls.is_ok(), "{tls:?}");
}

#[test]
fn leaves_round_trip_through_der_and_files() {
    let ca = TestCa::new("Files CA");
    let leaf = ca.issue(&["a.example"]);
    let dir = temp_dir("files");
    let (chain, key) = leaf.write_to(&dir, "leaf");
    assert_eq!(
        std::fs::read_to_string(&chain).unwrap(),
        leaf.chain_pem.clone()
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), leaf.key_pem);
    assert!(leaf.chain_pem.starts_with(&leaf.cert_pem));
    assert!(leaf.chain_pem.ends_with(&ca.cert_pem()));
    assert!(!leaf.cert_der().is_empty());
    let _ = leaf.key_der();
    // The same files load through proxy-core's loaders.
    assert_eq!(proxy_core::tls::load_cert_chain(&chain).unwrap().len(), 2);
    proxy_core::tls::load_private_key(&key).unwrap();
    let roots = proxy_core::tls::load_ca_bundle(&ca.write_to(&dir, "ca")).unwrap();
    assert_eq!(roots.len(), 1);
    let _ = Arc::new(roots);
    assert_ne!(temp_dir("files"), dir, "each call gets its own directory");
}
