//! The connector authenticating to fake brokers on loopback sockets.

use std::sync::Arc;

use proxy_core::close::CloseReason;
use proxy_core::route::RouteId;
use proxy_core::sasl::{Mechanism, ScramHash};
use proxy_core::state::BackendState;
use proxy_core::upstream::{BackendTarget, Connect, ConnectRequest};
use tokio::net::TcpListener;

use crate::child::ChildReaper;
use crate::cluster::test_cluster;
use crate::connector::Connector;
use crate::connector_tests::cx;
use proxy_kafka::client::fake_broker::{FakeBroker, REJECTED};
use proxy_kafka::client::{ClusterSasl, Password};

/// A connector for cluster `c` on `ports`, authenticating as `proxy` with `password`.
fn connector(ports: &[u16], mechanism: Mechanism, password: &str) -> Connector {
    let mut cluster = test_cluster(ports);
    cluster.sasl = Some(Arc::new(ClusterSasl {
        mechanism,
        username: "proxy".into(),
        password: Password::new(password.into()),
    }));
    Connector::new([cluster], ChildReaper::new())
}

#[tokio::test]
async fn each_mechanism_makes_a_ready_backend_the_broker_knows_by_name() {
    for mechanism in Mechanism::ALL {
        let (port, broker) = FakeBroker::new("proxy", "s3cret").listen().await;
        let connector = connector(&[port], mechanism, "s3cret");
        let cx = cx();
        let connected = connector
            .connect(ConnectRequest::for_session(&RouteId::new("c"), &cx))
            .await
            .unwrap();
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        assert_eq!(
            connected.state,
            BackendState::Ready {
                target: BackendTarget::Addr(addr)
            },
            "{mechanism}"
        );
        assert_eq!(connected.target.addr(), Some(addr));
        let seen = broker.await.unwrap();
        assert_eq!(seen.asked.as_deref(), Some(mechanism.name()));
        assert_eq!(seen.authenticated.as_deref(), Some("proxy"));
        assert_eq!(
            connector.connections().get(&RouteId::new("c")),
            Some(1),
            "{mechanism}"
        );
    }
}

#[tokio::test]
async fn rejected_credentials_fail_the_session_without_trying_the_next_broker() {
    let (port, broker) = FakeBroker::new("proxy", "s3cret").listen().await;
    let next = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let next_port = next.local_addr().unwrap().port();
    let connector = connector(
        &[port, next_port],
        Mechanism::Scram(ScramHash::Sha512),
        "wrong",
    );
    let err = connector
        .connect(ConnectRequest::for_session(&RouteId::new("c"), &cx()))
        .await
        .unwrap_err();
    let CloseReason::BackendAuthFailed { detail } = &err else {
        panic!("{err:?}");
    };
    assert!(detail.contains(REJECTED), "{detail}");
    assert_eq!(err.label(), "backend_auth_failed");
    assert_eq!(broker.await.unwrap().authenticated, None);
    // One connection only: the second broker was never dialled.
    assert_eq!(connector.connections().get(&RouteId::new("c")), Some(1));
}

#[tokio::test]
async fn a_mechanism_the_broker_does_not_offer_names_those_it_does() {
    let mut broker = FakeBroker::new("proxy", "s3cret");
    broker.offered = vec![Mechanism::Scram(ScramHash::Sha512)];
    let (port, _broker) = broker.listen().await;
    let err = connector(&[port], Mechanism::Plain, "s3cret")
        .connect(ConnectRequest::for_session(&RouteId::new("c"), &cx()))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CloseReason::BackendAuthFailed {
            detail: "the broker does not offer PLAIN (it offers: SCRAM-SHA-512)".into()
        }
    );
}

#[tokio::test]
async fn a_forged_server_signature_fails_the_session() {
    let mut broker = FakeBroker::new("proxy", "s3cret");
    broker.forge_server_signature = true;
    let (port, _broker) = broker.listen().await;
    let err = connector(&[port], Mechanism::Scram(ScramHash::Sha256), "s3cret")
        .connect(ConnectRequest::for_session(&RouteId::new("c"), &cx()))
        .await
        .unwrap_err();
    let CloseReason::BackendAuthFailed { detail } = &err else {
        panic!("{err:?}");
    };
    assert!(detail.contains("could not prove"), "{detail}");
}

#[tokio::test]
async fn a_broker_hanging_up_mid_exchange_is_a_backend_io_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hang_up = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        drop(stream);
    });
    let err = connector(&[port], Mechanism::Plain, "s3cret")
        .connect(ConnectRequest::for_session(&RouteId::new("c"), &cx()))
        .await
        .unwrap_err();
    hang_up.await.unwrap();
    assert!(
        matches!(err, CloseReason::BackendIo(_)),
        "a broker going away is not an authentication failure: {err:?}"
    );
}
