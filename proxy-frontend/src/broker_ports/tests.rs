//! Broker ports on loopback: opened once per broker, never outside the listener's range, and
//! closed (and withdrawn from a successor's hand-off) once their broker goes unreported.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use parking_lot::Mutex;
use proxy_core::close::CloseReason;
use proxy_core::proxy_protocol::ProxyProtocolPolicy;
use proxy_core::route::{Prerequisites, RouteId, StaticRouter};
use proxy_core::upstream::{ConnectRequest, Connected};
use proxy_kafka::broker_map::GatewayMode;
use proxy_kafka::rewrite::{Listing, UpstreamBroker};

use super::*;
use crate::spec::{KafkaListener, ListenerProtocol};

/// A connector no session in this test reaches.
struct Unreachable;

impl Connect for Unreachable {
    type Io = tokio::net::TcpStream;

    async fn connect(&self, _: ConnectRequest<'_>) -> Result<Connected<Self::Io>, CloseReason> {
        Err(CloseReason::NoRoute)
    }
}

/// What a listener's broker ports did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Opened(String, i32, u16),
    Closed(String, i32),
}

#[derive(Default)]
struct Recording(Mutex<Vec<Seen>>);

impl BrokerPortObserver for Recording {
    fn opened(&self, listener: &str, node_id: i32, socket: &TcpListener) {
        let port = socket.local_addr().unwrap().port();
        self.0
            .lock()
            .push(Seen::Opened(listener.to_owned(), node_id, port));
    }

    fn closed(&self, listener: &str, node_id: i32) {
        self.0
            .lock()
            .push(Seen::Closed(listener.to_owned(), node_id));
    }
}

/// A port-per-broker listener's spec on loopback, broker ports from `start`.
fn spec(start: u16, max_brokers: u16, port_grace: Duration) -> (Arc<ListenerSpec>, Arc<BrokerMap>) {
    let brokers = Arc::new(BrokerMap::new(
        "kafka".into(),
        "127.0.0.1".into(),
        GatewayMode::PortPerBroker {
            broker_port_start: start,
            max_brokers,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_grace,
        },
    ));
    let spec = Arc::new(ListenerSpec {
        name: "kafka".into(),
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, start)),
        requires: Prerequisites::TCP,
        proxy_protocol: ProxyProtocolPolicy::default(),
        tls: None,
        limits: Arc::default(),
        frame_budget: None,
        admission: Arc::default(),
        protocol: ListenerProtocol::Kafka(KafkaListener {
            brokers: brokers.clone(),
            max_frame_size: 1024,
            max_request_size: 1024,
            max_in_flight_requests: proxy_kafka::DEFAULT_MAX_IN_FLIGHT_REQUESTS,
            stages: Vec::new(),
            metrics: Arc::default(),
            sasl: None,
            routes: vec![RouteId::new("main")],
        }),
    });
    (spec, brokers)
}

fn broker(node_id: i32) -> UpstreamBroker {
    UpstreamBroker {
        node_id,
        host: "10.0.0.1".into(),
        port: 9092,
    }
}

async fn accepts(port: u16) -> bool {
    tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .is_ok()
}

/// Polls every 10 ms, for at most 10 s, until `port` accepts (or refuses) as `wanted`.
async fn wait_accepting(port: u16, wanted: bool) {
    for _ in 0..1000 {
        if accepts(port).await == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "port {port} still does not {}",
        if wanted { "accept" } else { "refuse" }
    );
}

#[tokio::test]
async fn each_broker_port_is_opened_once_however_often_it_is_learnt() {
    let start = proxy_core::test_ports::free_block(2);
    let (spec, brokers) = spec(start, 64, Duration::from_secs(600));
    let frontend = Arc::new(Frontend::new(StaticRouter::new(), Unreachable));
    let lifecycle = Lifecycle::default();
    let seen = Arc::new(Recording::default());
    let ports = BrokerPorts::start(
        spec,
        brokers,
        frontend,
        lifecycle.clone(),
        Some(seen.clone()),
        Vec::new(),
    );
    ports.serve(&[1, 2]);
    ports.serve(&[2, 1]);
    // Node ids without a port in the range are refused, not wrapped around.
    ports.serve(&[64, -5, i32::from(u16::MAX)]);
    assert_eq!(
        *seen.0.lock(),
        [
            Seen::Opened("kafka".to_owned(), 1, start + 1),
            Seen::Opened("kafka".to_owned(), 2, start + 2),
        ]
    );
    for port in [start + 1, start + 2] {
        assert!(accepts(port).await, "{port} does not accept");
    }
    lifecycle.stop_accepting.cancel();
    lifecycle.tracker.close();
    lifecycle.tracker.wait().await;
    assert!(
        !accepts(start + 1).await,
        "a broker port still accepts after the listener stopped"
    );
}

#[tokio::test]
async fn ports_of_brokers_unreported_for_the_grace_period_close_and_reopen_when_named_again() {
    let start = proxy_core::test_ports::free_block(3);
    let (spec, brokers) = spec(start, 3, Duration::from_millis(100));
    let frontend = Arc::new(Frontend::new(StaticRouter::new(), Unreachable));
    let lifecycle = Lifecycle::default();
    let seen = Arc::new(Recording::default());
    // A predecessor handed over node 2's port; no cluster names node 2 any more.
    let adopted = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, start + 2)).unwrap();
    let ports = BrokerPorts::start(
        spec,
        brokers.clone(),
        frontend,
        lifecycle.clone(),
        Some(seen.clone()),
        vec![(2, adopted)],
    );
    let route = RouteId::new("main");
    ports.serve(&brokers.learn(&route, &[broker(0), broker(1)], Listing::Full));
    for port in [start, start + 1, start + 2] {
        assert!(accepts(port).await, "{port} does not accept");
    }

    // Node 0 leaves the cluster: its port closes after the grace period, as does the adopted
    // port nobody names; node 1's stays.
    brokers.learn(&route, &[broker(1)], Listing::Full);
    wait_accepting(start, false).await;
    wait_accepting(start + 2, false).await;
    assert!(accepts(start + 1).await, "node 1's port closed");
    // Each closed port was withdrawn from the observer (the adopted one may go first).
    let mut closed: Vec<Seen> = seen
        .0
        .lock()
        .iter()
        .filter(|s| matches!(s, Seen::Closed(..)))
        .cloned()
        .collect();
    closed.sort_by_key(|s| match s {
        Seen::Closed(_, node_id) | Seen::Opened(_, node_id, _) => *node_id,
    });
    assert_eq!(
        closed,
        [
            Seen::Closed("kafka".to_owned(), 0),
            Seen::Closed("kafka".to_owned(), 2)
        ]
    );

    // Named again, node 0 is new to the map and gets its port back.
    let new = brokers.learn(&route, &[broker(0), broker(1)], Listing::Full);
    assert_eq!(new, [0]);
    ports.serve(&new);
    wait_accepting(start, true).await;

    lifecycle.stop_accepting.cancel();
    lifecycle.tracker.close();
    lifecycle.tracker.wait().await;
}
