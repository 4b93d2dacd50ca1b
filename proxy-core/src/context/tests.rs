use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn context(live: &Arc<LiveResources>) -> SessionContext {
    SessionContext::new(
        Arc::from("plain"),
        addr("10.0.0.1:5000"),
        addr("10.0.0.2:9192"),
        Prerequisites::TCP,
        live.clone(),
    )
}

fn header() -> ProxyHeader {
    ProxyHeader::new(
        Bytes::from_static(b"PROXY TCP4 192.0.2.7 198.51.100.1 40000 9192\r\n"),
        Some(ProxiedAddrs {
            source: addr("192.0.2.7:40000"),
            destination: addr("198.51.100.1:9192"),
        }),
        [Tlv {
            kind: 0x02,
            value: Bytes::from_static(b"broker.example"),
        }],
    )
}

#[test]
fn client_address_falls_back_to_the_peer() {
    let live = Arc::default();
    let cx = context(&live);
    assert_eq!(cx.client_addr(), addr("10.0.0.1:5000"));
    assert_eq!(cx.destination_addr(), addr("10.0.0.2:9192"));
}

#[test]
fn proxied_addresses_survive_the_release_of_the_header() {
    let live: Arc<LiveResources> = Arc::default();
    let mut cx = context(&live);
    cx.set_proxy_header(header());
    assert_eq!(live.live(Resource::ProxyHeader), 1);
    assert_eq!(
        cx.proxy_header()
            .and_then(|h| h.tlv(0x02))
            .map(|t| &t.value[..]),
        Some(&b"broker.example"[..])
    );

    cx.release_proxy_header();
    assert_eq!(live.live(Resource::ProxyHeader), 0);
    assert!(cx.proxy_header().is_none());
    assert!(cx.released().proxy_header);
    assert_eq!(cx.client_addr(), addr("192.0.2.7:40000"));
    assert_eq!(cx.destination_addr(), addr("198.51.100.1:9192"));
}

#[test]
fn releasing_twice_counts_once() {
    let live: Arc<LiveResources> = Arc::default();
    let mut cx = context(&live);
    cx.set_proxy_header(header());
    cx.set_proxy_header(header());
    assert_eq!(live.live(Resource::ProxyHeader), 1);
    cx.release_proxy_header();
    cx.release_proxy_header();
    assert_eq!(live.live(Resource::ProxyHeader), 0);
}

#[test]
fn dropping_the_context_releases_everything() {
    let live: Arc<LiveResources> = Arc::default();
    {
        let mut cx = context(&live);
        cx.set_proxy_header(header());
        cx.set_peer_certificates(PeerCertificates(vec![Bytes::from_static(b"der")]));
        assert_eq!(live.live(Resource::Session), 1);
        assert_eq!(live.live(Resource::PeerCertificates), 1);
    }
    assert_eq!(live.live(Resource::Session), 0);
    assert_eq!(live.live(Resource::ProxyHeader), 0);
    assert_eq!(live.live(Resource::PeerCertificates), 0);
    assert_eq!(live.sessions_total(), 1);
}

#[test]
fn session_ids_are_unique() {
    let live = Arc::default();
    let a = context(&live);
    let b = context(&live);
    assert_ne!(a.id(), b.id());
}

#[test]
fn auth_state_carries_the_principal_only_when_authenticated() {
    let live = Arc::default();
    let mut cx = context(&live);
    assert_eq!(cx.auth().principal(), None);
    cx.set_auth(AuthState::InProgress {
        mechanism: AuthMechanism::ScramSha512,
    });
    assert_eq!(cx.auth().principal(), None);
    cx.set_auth(AuthState::Authenticated {
        principal: "alice".into(),
        mechanism: AuthMechanism::ScramSha512,
    });
    assert_eq!(cx.auth().principal(), Some("alice"));
}

#[test]
fn sasl_mechanisms_keep_their_names_in_the_auth_state() {
    use crate::sasl::Mechanism;
    let names: Vec<_> = Mechanism::ALL
        .into_iter()
        .map(|m| super::AuthMechanism::from(m).to_string())
        .collect();
    let expected: Vec<_> = Mechanism::ALL.into_iter().map(Mechanism::name).collect();
    assert_eq!(names, expected);
}
