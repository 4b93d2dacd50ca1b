//! TLS origination through `Connector::connect`, against loopback TLS backends.

use std::net::SocketAddr;
use std::time::Duration;

use proxy_core::Side;
use proxy_core::close::CloseReason;
use proxy_core::context::SessionContext;
use proxy_core::proxy_protocol::ProxyProtocolVersion;
use proxy_core::route::{Prerequisites, RouteId};
use proxy_core::state::BackendState;
use proxy_core::upstream::{BackendTarget, Connect, ConnectRequest, Connected};
use rustls::version::{TLS12, TLS13};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;

use super::test_support::{ScratchDir, Seen, TestCa, TlsBackend, server_config};
use super::*;
use crate::{BackendAddr, BackendIo, ChildReaper, ClusterSpec, Connector};

/// Every wait in these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(5);

fn cx() -> SessionContext {
    let client: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:9092".parse().unwrap();
    SessionContext::new(
        Arc::from("t"),
        client,
        local,
        Prerequisites::TCP,
        Arc::default(),
    )
}

struct Cluster {
    backends: Vec<SocketAddr>,
    tls: BackendTls,
    connect_timeout: Duration,
    send_proxy_protocol: Option<ProxyProtocolVersion>,
}

impl Cluster {
    fn new(backends: &[SocketAddr], tls: BackendTls) -> Self {
        Self {
            backends: backends.to_vec(),
            tls,
            connect_timeout: Duration::from_secs(2),
            send_proxy_protocol: None,
        }
    }

    async fn connect(self, cx: &SessionContext) -> Result<Connected<BackendIo>, CloseReason> {
        let connector = Connector::new(
            [ClusterSpec {
                route: RouteId::new("c"),
                backends: self
                    .backends
                    .iter()
                    .map(|addr| BackendAddr {
                        host: addr.ip().to_string(),
                        port: addr.port(),
                    })
                    .collect(),
                connect_timeout: self.connect_timeout,
                send_proxy_protocol: self.send_proxy_protocol,
                exec: None,
                tls: Some(self.tls),
                sasl: None,
            }],
            ChildReaper::new(),
        );
        timeout(
            BOUND,
            connector.connect(ConnectRequest::for_session(&RouteId::new("c"), cx)),
        )
        .await
        .unwrap()
    }
}

/// Client TLS trusting `ca`, verifying `server_name` (or the backend's IP when `None`).
fn client(dir: &ScratchDir, ca: &TestCa, server_name: Option<&str>) -> BackendTlsOptions {
    BackendTlsOptions {
        ca: Some(dir.write("ca.pem", &ca.pem())),
        server_name: server_name.map(str::to_owned),
        ..BackendTlsOptions::default()
    }
}

fn build(opts: &BackendTlsOptions) -> BackendTls {
    BackendTls::from_files(opts).unwrap()
}

async fn next_seen(backend: &mut TlsBackend) -> Seen {
    timeout(BOUND, backend.seen.recv()).await.unwrap().unwrap()
}

/// Sends `msg` through `io` and expects it back.
async fn assert_echoes(io: &mut BackendIo, msg: &[u8]) {
    timeout(BOUND, io.write_all(msg)).await.unwrap().unwrap();
    let mut back = vec![0; msg.len()];
    timeout(BOUND, io.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, msg);
}

fn tls_detail(err: CloseReason) -> String {
    match err {
        CloseReason::Tls {
            side: Side::Backend,
            detail,
        } => detail.into_owned(),
        other => panic!("want a backend TLS failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_verified_backend_echoes() {
    let dir = ScratchDir::new();
    let ca = TestCa::new("backend CA");
    let config = server_config(&ca.server_cert("backend.example"), None, &[&TLS13]);
    let mut backend = TlsBackend::spawn(config, false).await;
    let tls = build(&client(&dir, &ca, Some("backend.example")));
    let cx = cx();
    let mut connected = Cluster::new(&[backend.addr], tls)
        .connect(&cx)
        .await
        .unwrap();
    assert_eq!(
        connected.state,
        BackendState::Ready {
            target: BackendTarget::Addr(backend.addr)
        }
    );
    assert_eq!(connected.target.addr(), Some(backend.addr));
    assert!(matches!(connected.io, BackendIo::Tls(_)));
    assert_echoes(&mut connected.io, b"ping through TLS").await;
    assert!(next_seen(&mut backend).await.handshake.is_ok());
}

#[tokio::test]
async fn without_an_override_the_backend_ip_is_verified_against_ip_sans() {
    let dir = ScratchDir::new();
    let ca = TestCa::new("backend CA");
    let config = server_config(&ca.server_cert("127.0.0.1"), None, &[&TLS12]);
    let backend = TlsBackend::spawn(config, false).await;
    let tls = build(&client(&dir, &ca, None));
    let mut connected = Cluster::new(&[backend.addr], tls)
        .connect(&cx())
        .await
        .unwrap();
    assert_echoes(&mut connected.io, b"over TLS 1.2").await;
}

#[tokio::test]
async fn an_unknown_issuer_fails_the_session_without_trying_the_next_address() {
    let dir = ScratchDir::new();
    let backend_ca = TestCa::new("backend CA");
    let config = server_config(&backend_ca.server_cert("backend.example"), None, &[&TLS13]);
    let backend = TlsBackend::spawn(config, false).await;
    let second = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_ca = TestCa::new("some other CA");
    let tls = build(&client(&dir, &other_ca, Some("backend.example")));
    let second_addr = second.local_addr().unwrap();
    let err = Cluster::new(&[backend.addr, second_addr], tls)
        .connect(&cx())
        .await
        .unwrap_err();
    let detail = tls_detail(err);
    assert!(detail.contains("UnknownIssuer"), "{detail}");
    // A connection made would wait in the backlog; none is there.
    assert!(
        timeout(Duration::from_millis(200), second.accept())
            .await
            .is_err(),
        "the second address was tried"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_fails_naming_the_name() {
    let dir = ScratchDir::new();
    let ca = TestCa::new("backend CA");
    let config = server_config(&ca.server_cert("backend.example"), None, &[&TLS13]);
    let backend = TlsBackend::spawn(config, false).await;
    let tls = build(&client(&dir, &ca, Some("other.example")));
    let err = Cluster::new(&[backend.addr], tls)
        .connect(&cx())
        .await
        .unwrap_err();
    let detail = tls_detail(err);
    assert!(
        detail.contains("not valid for name \"other.example\""),
        "{detail}"
    );
}

#[tokio::test]
async fn insecure_skip_verify_accepts_an_unknown_issuer() {
    let ca = TestCa::new("backend CA");
    let config = server_config(&ca.server_cert("backend.example"), None, &[&TLS13]);
    let backend = TlsBackend::spawn(config, false).await;
    let tls = build(&BackendTlsOptions {
        insecure_skip_verify: true,
        ..BackendTlsOptions::default()
    });
    let mut connected = Cluster::new(&[backend.addr], tls)
        .connect(&cx())
        .await
        .unwrap();
    assert_echoes(&mut connected.io, b"unverified").await;
}

/// A backend requiring client certificates issued by `client_ca`.
async fn mtls_backend(ca: &TestCa, client_ca: &TestCa, tls12_only: bool) -> TlsBackend {
    let versions: &[_] = if tls12_only { &[&TLS12] } else { &[&TLS13] };
    let config = server_config(
        &ca.server_cert("backend.example"),
        Some(client_ca),
        versions,
    );
    TlsBackend::spawn(config, false).await
}

#[tokio::test]
async fn mtls_presents_the_client_certificate() {
    let dir = ScratchDir::new();
    let (ca, client_ca) = (TestCa::new("backend CA"), TestCa::new("client CA"));
    let mut backend = mtls_backend(&ca, &client_ca, false).await;
    let leaf = client_ca.client_cert("sluice");
    let tls = build(&BackendTlsOptions {
        client_cert: Some(dir.write("client.pem", &leaf.cert_pem)),
        client_key: Some(dir.write("client-key.pem", &leaf.key_pem())),
        ..client(&dir, &ca, Some("backend.example"))
    });
    let mut connected = Cluster::new(&[backend.addr], tls)
        .connect(&cx())
        .await
        .unwrap();
    assert_echoes(&mut connected.io, b"mutual").await;
    let seen = next_seen(&mut backend).await.handshake.unwrap();
    assert_eq!(seen.first(), Some(&leaf.cert));
}

#[tokio::test]
async fn mtls_without_a_client_certificate_fails_the_tls12_handshake() {
    let dir = ScratchDir::new();
    let (ca, client_ca) = (TestCa::new("backend CA"), TestCa::new("client CA"));
    let mut backend = mtls_backend(&ca, &client_ca, true).await;
    let tls = build(&client(&dir, &ca, Some("backend.example")));
    let err = Cluster::new(&[backend.addr], tls)
        .connect(&cx())
        .await
        .unwrap_err();
    let detail = tls_detail(err);
    assert!(detail.contains("alert"), "{detail}");
    assert!(next_seen(&mut backend).await.handshake.is_err());
}

/// In TLS 1.3 the client's handshake is complete once it has sent its (empty) certificate and
/// Finished; the backend's refusal arrives after, as an alert on the first read. `connect` cannot
/// see it without waiting for data the backend may never send unprompted.
#[tokio::test]
async fn mtls_without_a_client_certificate_fails_the_first_read_in_tls13() {
    let dir = ScratchDir::new();
    let (ca, client_ca) = (TestCa::new("backend CA"), TestCa::new("client CA"));
    let mut backend = mtls_backend(&ca, &client_ca, false).await;
    let tls = build(&client(&dir, &ca, Some("backend.example")));
    let mut connected = Cluster::new(&[backend.addr], tls)
        .connect(&cx())
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let err = timeout(BOUND, connected.io.read(&mut buf))
        .await
        .unwrap()
        .unwrap_err();
    let alert = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    assert!(
        matches!(
            alert,
            Some(rustls::Error::AlertReceived(
                rustls::AlertDescription::CertificateRequired
            ))
        ),
        "{err:?}"
    );
    assert!(next_seen(&mut backend).await.handshake.is_err());
}

#[tokio::test]
async fn a_backend_that_never_answers_the_client_hello_times_out() {
    let dir = ScratchDir::new();
    let ca = TestCa::new("backend CA");
    // Connections complete in the backlog and nobody ever reads them.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = build(&client(&dir, &ca, Some("backend.example")));
    let cluster = Cluster {
        connect_timeout: Duration::from_millis(300),
        ..Cluster::new(&[silent.local_addr().unwrap()], tls)
    };
    let started = tokio::time::Instant::now();
    let err = cluster.connect(&cx()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(tls_detail(err), "handshake timed out");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn the_proxy_header_precedes_the_client_hello() {
    let dir = ScratchDir::new();
    let ca = TestCa::new("backend CA");
    let config = server_config(&ca.server_cert("backend.example"), None, &[&TLS13]);
    let mut backend = TlsBackend::spawn(config, true).await;
    let tls = build(&client(&dir, &ca, Some("backend.example")));
    let cluster = Cluster {
        send_proxy_protocol: Some(ProxyProtocolVersion::V2),
        ..Cluster::new(&[backend.addr], tls)
    };
    let mut connected = cluster.connect(&cx()).await.unwrap();
    assert_echoes(&mut connected.io, b"after the header").await;
    let seen = next_seen(&mut backend).await;
    assert!(seen.handshake.is_ok());
    let header = seen.proxy_header.unwrap();
    assert_eq!(&header[..12], b"\r\n\r\n\0\r\nQUIT\n");
    // PROXY command, TCP over IPv4: source 192.0.2.10:40000, destination 127.0.0.1:9092.
    assert_eq!(header[12], 0x21);
    assert_eq!(header[13], 0x11);
    assert_eq!(&header[16..20], &[192, 0, 2, 10]);
    assert_eq!(&header[20..24], &[127, 0, 0, 1]);
    assert_eq!(&header[24..26], &40000u16.to_be_bytes());
    assert_eq!(&header[26..28], &9092u16.to_be_bytes());
}
