//! A Kafka listener in front of a broker that fails: killed in the middle of a request, or
//! closing the proxy's connection in the middle of its SASL exchange with the cluster. The
//! proxy runs in process (a port-per-broker listener, whose bootstrap port the clients use);
//! the clients speak Kafka's wire format directly.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use proxy_backend::{BackendAddr, ChildReaper, ClusterSpec, Connector};
use proxy_core::close::{CloseReason, Fault};
use proxy_core::context::{LiveResources, Resource};
use proxy_core::route::{Prerequisites, RouteId, StaticRouter};
use proxy_core::sasl::Mechanism;
use proxy_frontend::{
    BoundListener, CloseCounts, Frontend, KafkaListener, Lifecycle, ListenerProtocol, ListenerSpec,
    SessionSummary,
};
use proxy_kafka::KafkaMetrics;
use proxy_kafka::broker_map::{BrokerMap, DEFAULT_BROKER_PORT_GRACE, GatewayMode};
use proxy_kafka::client::{ClusterSasl, Password};
use sluice_tests::STEP_TIMEOUT;
use sluice_tests::faulty::broker::{FaultyBroker, Plain};
use sluice_tests::kafka_wire::{frame, free_port_block};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::wait_until;

/// The credentials the cluster requires and the proxy authenticates with.
const PROXY_USER: Plain = Plain {
    username: "proxy",
    password: "proxy-secret",
};

/// An in-process Sluice with one Kafka listener (port-per-broker) in front of one broker;
/// stops when dropped.
struct KafkaProxy {
    bootstrap: SocketAddr,
    live: Arc<LiveResources>,
    closes: CloseCounts,
    closed: mpsc::UnboundedReceiver<SessionSummary>,
    lifecycle: Lifecycle,
}

impl KafkaProxy {
    /// Starts it in front of `broker`, authenticating to it with `sasl` when given.
    async fn start(broker: SocketAddr, sasl: Option<Plain>) -> Self {
        let route = RouteId::new("cluster");
        let cluster = ClusterSpec {
            route: route.clone(),
            backends: vec![BackendAddr {
                host: broker.ip().to_string(),
                port: broker.port(),
            }],
            connect_timeout: Duration::from_secs(2),
            send_proxy_protocol: None,
            exec: None,
            tls: None,
            sasl: sasl.map(|plain| {
                Arc::new(ClusterSasl {
                    mechanism: Mechanism::Plain,
                    username: plain.username.to_owned(),
                    password: Password::new(plain.password.to_owned()),
                })
            }),
        };
        let (tx, closed) = mpsc::unbounded_channel();
        let frontend = Frontend::new(
            StaticRouter::new().with_rules("kafka", Vec::new(), route.clone()),
            Connector::new([cluster], ChildReaper::new()),
        )
        .with_close_observer(Arc::new(move |summary: &SessionSummary| {
            let _ = tx.send(summary.clone());
        }));
        let frontend = Arc::new(frontend);
        // The bootstrap port, then the broker ports: node 1 (the broker) is served on base + 2.
        let base = free_port_block(1);
        let name: Arc<str> = Arc::from("kafka");
        let spec = ListenerSpec {
            name: name.clone(),
            bind: (Ipv4Addr::LOCALHOST, base).into(),
            requires: Prerequisites::TCP,
            proxy_protocol: Default::default(),
            tls: None,
            limits: Arc::default(),
            frame_budget: None,
            // No connection limits.
            admission: Arc::default(),
            protocol: ListenerProtocol::Kafka(KafkaListener {
                brokers: Arc::new(BrokerMap::new(
                    name,
                    "127.0.0.1".to_owned(),
                    GatewayMode::PortPerBroker {
                        broker_port_start: base + 1,
                        max_brokers: 2,
                        bind_ip: Ipv4Addr::LOCALHOST.into(),
                        port_grace: DEFAULT_BROKER_PORT_GRACE,
                    },
                )),
                max_frame_size: 1 << 20,
                max_request_size: 1 << 20,
                max_in_flight_requests: proxy_kafka::DEFAULT_MAX_IN_FLIGHT_REQUESTS,
                stages: Vec::new(),
                metrics: Arc::new(KafkaMetrics::default()),
                sasl: None,
                routes: vec![route],
            }),
        };
        let listener = BoundListener::bind(spec).await.unwrap();
        let bootstrap = listener.local_addr();
        let lifecycle = Lifecycle::default();
        tokio::spawn(listener.serve(frontend.clone(), lifecycle.clone()));
        Self {
            bootstrap,
            live: frontend.live_resources().clone(),
            closes: frontend.closes().clone(),
            closed,
            lifecycle,
        }
    }

    /// The next session to close, within [`STEP_TIMEOUT`].
    async fn next_closed(&mut self) -> SessionSummary {
        timeout(STEP_TIMEOUT, self.closed.recv())
            .await
            .expect("a session closed in time")
            .expect("the proxy is running")
    }

    /// Waits until no session is open (the sessions gauge is back to 0).
    async fn wait_no_session(&self) {
        wait_until("no session is open", || {
            self.live.live(Resource::Session) == 0
        })
        .await;
    }
}

impl Drop for KafkaProxy {
    fn drop(&mut self) {
        self.lifecycle.stop_accepting.cancel();
        self.lifecycle.force_close.cancel();
    }
}

/// Sends an `api` request (v0, empty body: ApiVersions and ListGroups have no v0 fields) and
/// reads the response, checking it answers this request.
async fn ask(stream: &mut TcpStream, api: ApiKey, correlation_id: i32) -> io::Result<()> {
    stream
        .write_all(&frame(api as i16, 0, correlation_id, &[]))
        .await?;
    let response = timeout(STEP_TIMEOUT, read_frame(stream))
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    assert_eq!(
        response.get(..4),
        Some(&correlation_id.to_be_bytes()[..]),
        "the response answers another request"
    );
    Ok(())
}

/// Reads one frame, without its length prefix.
async fn read_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let len = stream.read_i32().await?;
    let mut body = vec![0; usize::try_from(len).unwrap_or(0)];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// Reads until the proxy ends the connection, within [`STEP_TIMEOUT`] (far below any timeout
/// of the listener or the cluster, so an end only a timeout would bring fails the test);
/// returns what arrived first.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = timeout(STEP_TIMEOUT, stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the client was not disconnected");
    got
}

/// A new client through the proxy gets ApiVersions and ListGroups answered.
async fn served(proxy: &KafkaProxy) {
    let mut client = TcpStream::connect(proxy.bootstrap).await.unwrap();
    ask(&mut client, ApiKey::ApiVersions, 11).await.unwrap();
    ask(&mut client, ApiKey::ListGroups, 12).await.unwrap();
}

/// Users depend on a dead broker disconnecting them at once, and a restarted one serving them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_mid_request_disconnects_the_client_and_a_restarted_broker_serves() {
    let mut broker = FaultyBroker::start((Ipv4Addr::LOCALHOST, 0).into(), None).await;
    let broker_addr = broker.addr();
    let mut proxy = KafkaProxy::start(broker_addr, None).await;
    let mut client = TcpStream::connect(proxy.bootstrap).await.unwrap();
    ask(&mut client, ApiKey::ApiVersions, 1).await.unwrap();

    broker.die_on(ApiKey::ListGroups);
    client
        .write_all(&frame(ApiKey::ListGroups as i16, 0, 2, &[]))
        .await
        .unwrap();
    let got = read_until_closed(&mut client).await;
    assert!(got.is_empty(), "a dead broker answered {} bytes", got.len());
    // A Kafka client closes a connection its broker ended.
    drop(client);
    broker.wait_dead().await;
    let summary = proxy.next_closed().await;
    assert_eq!(summary.backend_addr, Some(broker_addr));
    // The broker left a request unanswered: its fault, not an orderly close.
    assert_eq!(
        summary.reason,
        CloseReason::BackendIo(std::io::ErrorKind::UnexpectedEof)
    );
    assert_eq!(summary.reason.label(), "backend_error");
    assert_eq!(proxy.closes.get(summary.reason.label()), 1);
    proxy.wait_no_session().await;

    let _restarted = FaultyBroker::start(broker_addr, None).await;
    served(&proxy).await;
}

/// A client that leaves with a request unanswered (a consumer closing during a long-poll
/// Fetch) ended the session, even though the broker then hangs up on the proxy without
/// answering: the broker only followed the end the proxy passed on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_with_a_request_in_flight_closed_the_session() {
    let broker = FaultyBroker::start((Ipv4Addr::LOCALHOST, 0).into(), None).await;
    let mut proxy = KafkaProxy::start(broker.addr(), None).await;
    let mut client = TcpStream::connect(proxy.bootstrap).await.unwrap();
    ask(&mut client, ApiKey::ApiVersions, 1).await.unwrap();
    broker.hold(Some(ApiKey::ListGroups));
    client
        .write_all(&frame(ApiKey::ListGroups as i16, 0, 2, &[]))
        .await
        .unwrap();
    client.shutdown().await.unwrap();
    let got = read_until_closed(&mut client).await;
    assert!(got.is_empty(), "a held request was answered");
    let summary = proxy.next_closed().await;
    assert_eq!(summary.reason, CloseReason::ClientClosed);
    assert_eq!(summary.reason.fault(), None);
    assert_eq!(proxy.closes.get("backend_error"), 0);
    proxy.wait_no_session().await;
    broker.hold(None);
    served(&proxy).await;
}

/// Operators depend on a client sending an API key no Kafka knows being logged as the client's
/// fault: the proxy passes the key on, and the broker closes on it as brokers do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_closing_on_an_unknown_api_key_is_the_clients_fault() {
    let broker = FaultyBroker::start((Ipv4Addr::LOCALHOST, 0).into(), None).await;
    let mut proxy = KafkaProxy::start(broker.addr(), None).await;
    let mut client = TcpStream::connect(proxy.bootstrap).await.unwrap();
    ask(&mut client, ApiKey::ApiVersions, 1).await.unwrap();
    client.write_all(&frame(9999, 0, 2, &[])).await.unwrap();
    let got = read_until_closed(&mut client).await;
    assert!(got.is_empty(), "the unknown request was answered");
    let summary = proxy.next_closed().await;
    assert_eq!(
        summary.reason.label(),
        "unknown_api_key",
        "{}",
        summary.reason
    );
    assert_eq!(summary.reason.fault(), Some(Fault::Downstream));
    assert!(
        summary.reason.to_string().contains("9999"),
        "{}",
        summary.reason
    );
    assert_eq!(proxy.closes.get("backend_error"), 0);
    proxy.wait_no_session().await;
    served(&proxy).await;
}

/// Users depend on a broker failing the proxy's SASL ending their session, not hanging it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_closes_during_sasl_ends_the_session_on_the_backend_side() {
    let broker = FaultyBroker::start((Ipv4Addr::LOCALHOST, 0).into(), Some(PROXY_USER)).await;
    broker.close_during_sasl(true);
    let mut proxy = KafkaProxy::start(broker.addr(), Some(PROXY_USER)).await;
    let mut client = TcpStream::connect(proxy.bootstrap).await.unwrap();
    // The proxy may have closed the connection already; the request is then not written.
    let _ = client
        .write_all(&frame(ApiKey::ApiVersions as i16, 0, 1, &[]))
        .await;

    let got = read_until_closed(&mut client).await;
    assert!(
        got.is_empty(),
        "answered {} bytes without a broker",
        got.len()
    );
    let summary = proxy.next_closed().await;
    assert_eq!(
        summary.reason,
        CloseReason::BackendIo(io::ErrorKind::UnexpectedEof)
    );
    assert_eq!(summary.reason.label(), "backend_error");
    assert_eq!(summary.reason.fault(), Some(Fault::Upstream));
    assert_eq!(proxy.closes.get("backend_error"), 1);
    assert!(
        broker.sasl_closes() >= 1,
        "the broker never closed during SASL"
    );
    proxy.wait_no_session().await;

    broker.close_during_sasl(false);
    served(&proxy).await;
    assert!(broker.authenticated() >= 1, "the proxy never authenticated");
}
