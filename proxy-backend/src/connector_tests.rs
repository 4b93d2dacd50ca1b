//! The connector over loopback sockets: failover, and the connection counter.

use std::net::SocketAddr;
use std::sync::Arc;

use proxy_core::close::{CloseReason, ConnectFailure};
use proxy_core::context::SessionContext;
use proxy_core::route::{Prerequisites, RouteId};
use proxy_core::state::BackendState;
use proxy_core::upstream::{BackendTarget, Connect, ConnectRequest};
use tokio::net::TcpListener;

use crate::child::ChildReaper;
use crate::cluster::{BackendAddr, test_cluster};
use crate::connector::Connector;

/// A session context from a client at 127.0.0.1:1.
pub(crate) fn cx() -> SessionContext {
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    SessionContext::new(
        Arc::from("t"),
        addr,
        addr,
        Prerequisites::TCP,
        Arc::default(),
    )
}

/// A loopback port with nothing listening on it.
pub(crate) async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn cluster(ports: &[u16]) -> Connector {
    Connector::new([test_cluster(ports)], ChildReaper::new())
}

#[tokio::test]
async fn a_refusing_address_is_skipped_for_the_next_one() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let live = listener.local_addr().unwrap();
    let dead = closed_port().await;
    let connector = cluster(&[dead, live.port()]);
    // In name order, whatever the order of the backends.
    let failures = |connector: &Connector| {
        let mut failures = connector
            .connections()
            .failures()
            .into_iter()
            .map(|((route, backend), count)| (route.to_string(), backend, count))
            .collect::<Vec<_>>();
        let listed = failures.clone();
        failures.sort();
        assert_eq!(failures, listed);
        failures.sort_by_key(|(_, backend, _)| backend != &format!("127.0.0.1:{dead}"));
        failures
    };
    // Both backends are listed from 0.
    let port = |port: u16| format!("127.0.0.1:{port}");
    assert_eq!(
        failures(&connector),
        [
            ("c".to_owned(), port(dead), 0),
            ("c".to_owned(), port(live.port()), 0)
        ]
    );
    let cx = cx();
    for _ in 0..2 {
        let connected = connector
            .connect(ConnectRequest::for_session(&RouteId::new("c"), &cx))
            .await
            .unwrap();
        assert_eq!(
            connected.state,
            BackendState::Ready {
                target: BackendTarget::Addr(live)
            }
        );
        assert_eq!(connected.target.addr(), Some(live));
    }
    // The dead first backend is visible while sessions fail over to the live one.
    assert_eq!(
        failures(&connector),
        [
            ("c".to_owned(), port(dead), 2),
            ("c".to_owned(), port(live.port()), 0)
        ]
    );
}

#[tokio::test]
async fn when_every_address_refuses_the_reason_counts_the_attempts() {
    let connector = cluster(&[closed_port().await, closed_port().await]);
    let err = connector
        .connect(ConnectRequest::for_session(&RouteId::new("c"), &cx()))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CloseReason::BackendUnavailable {
            attempts: 2,
            last: ConnectFailure::Io(std::io::ErrorKind::ConnectionRefused)
        }
    );
}

#[tokio::test]
async fn an_unknown_route_is_no_route() {
    let err = cluster(&[])
        .connect(ConnectRequest::for_session(&RouteId::new("other"), &cx()))
        .await
        .unwrap_err();
    assert_eq!(err, CloseReason::NoRoute);
}

#[test]
fn ipv6_backends_display_in_brackets() {
    let addr = BackendAddr {
        host: "::1".into(),
        port: 9092,
    };
    assert_eq!(addr.to_string(), "[::1]:9092");
}

#[tokio::test]
async fn every_established_connection_is_counted_for_its_cluster_only() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let live = listener.local_addr().unwrap().port();
    let mut busy = test_cluster(&[closed_port().await, live]);
    busy.route = RouteId::new("busy");
    let mut idle = test_cluster(&[live]);
    idle.route = RouteId::new("idle");
    let connector = Connector::new([busy, idle], ChildReaper::new());
    let counts = connector.connections().clone();
    assert_eq!(
        counts.snapshot(),
        [(RouteId::new("busy"), 0), (RouteId::new("idle"), 0)]
    );
    for _ in 0..2 {
        connector
            .connect(ConnectRequest::for_session(&RouteId::new("busy"), &cx()))
            .await
            .unwrap();
    }
    // The refused first address is an attempt, not a connection.
    assert_eq!(counts.get(&RouteId::new("busy")), Some(2));
    assert_eq!(counts.get(&RouteId::new("idle")), Some(0));
    assert_eq!(counts.get(&RouteId::new("other")), None);
    // Clones share the counters.
    connector
        .clone()
        .connect(ConnectRequest::for_session(&RouteId::new("idle"), &cx()))
        .await
        .unwrap();
    assert_eq!(counts.get(&RouteId::new("idle")), Some(1));
}

/// Reads what the cluster's first (and only) connection sends before it closes.
async fn first_bytes(listener: TcpListener) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    got
}

#[tokio::test]
async fn a_session_names_its_client_in_the_proxy_header_and_the_proxy_itself_sends_local() {
    use proxy_core::proxy_protocol::{ProxyProtocolVersion, encode, encode_local};
    for version in [ProxyProtocolVersion::V1, ProxyProtocolVersion::V2] {
        // A cluster that expects PROXY headers, as behind HAProxy.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut cluster = test_cluster(&[listener.local_addr().unwrap().port()]);
        cluster.send_proxy_protocol = Some(version);
        let connector = Connector::new([cluster], ChildReaper::new());
        let route = RouteId::new("c");

        let seen = tokio::spawn(first_bytes(listener));
        let cx = cx();
        let connected = connector
            .connect(ConnectRequest::for_session(&route, &cx))
            .await
            .unwrap();
        drop(connected);
        let header = encode(version, cx.client_addr(), cx.destination_addr());
        assert_eq!(
            seen.await.unwrap(),
            header,
            "{version:?}: the session's client"
        );

        // Discovery: a connection of the proxy's own carries no client, so no client address
        // is made up for it.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut cluster = test_cluster(&[listener.local_addr().unwrap().port()]);
        cluster.send_proxy_protocol = Some(version);
        let connector = Connector::new([cluster], ChildReaper::new());
        let seen = tokio::spawn(first_bytes(listener));
        let connected = connector
            .connect(ConnectRequest::for_proxy(&route))
            .await
            .unwrap();
        drop(connected);
        assert_eq!(
            seen.await.unwrap(),
            encode_local(version),
            "{version:?}: LOCAL"
        );
    }
}

#[tokio::test]
async fn a_pinned_address_is_the_only_one_tried() {
    // The cluster's own list is reachable, the pinned broker is not: the session must not fall
    // back to another broker than the one it is for.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let connector = cluster(&[listener.local_addr().unwrap().port()]);
    let pinned = BackendAddr {
        host: "127.0.0.1".into(),
        port: closed_port().await,
    };
    let cx = cx();
    let route = RouteId::new("c");
    let err = connector
        .connect(ConnectRequest::for_session(&route, &cx).pinned_to(Some(&pinned)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CloseReason::BackendUnavailable { attempts: 1, .. }),
        "{err:?}"
    );
}
