use std::net::SocketAddr;

use super::*;
use crate::context::{AuthMechanism, AuthState, TlsFacts};
use crate::state::BackendState;
use crate::upstream::BackendTarget;

fn cx(listener: &str, requires: Prerequisites) -> SessionContext {
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    SessionContext::new(Arc::from(listener), addr, addr, requires, Arc::default())
}

fn ready() -> BackendState {
    BackendState::Ready {
        target: BackendTarget::Addr("127.0.0.1:9092".parse().unwrap()),
    }
}

#[test]
fn static_router_maps_listener_to_cluster() {
    let router = StaticRouter::new().with_route("plain", RouteId::new("local"));
    assert_eq!(
        router.route(&cx("plain", Prerequisites::TCP)),
        Ok(RouteId::new("local"))
    );
    assert_eq!(
        router.route(&cx("other", Prerequisites::TCP)),
        Err(NoRoute {
            listener: "other".into()
        })
    );
}

#[test]
fn rules_route_on_the_proxied_authority_and_the_client_network() {
    use bytes::Bytes;

    use crate::context::{ProxiedAddrs, ProxyHeader, Tlv};
    use crate::proxy_protocol::TLV_AUTHORITY;

    let router = StaticRouter::new().with_rules(
        "lb",
        vec![
            RouteRule {
                when: RouteMatch {
                    authority: Some("tenant-a.example".into()),
                    source: None,
                    ..RouteMatch::default()
                },
                route: RouteId::new("a"),
            },
            RouteRule {
                when: RouteMatch {
                    authority: None,
                    source: Some("10.0.0.0/8".parse().unwrap()),
                    ..RouteMatch::default()
                },
                route: RouteId::new("internal"),
            },
        ],
        RouteId::new("default"),
    );
    let proxied = |source: &str, authority: Option<&'static [u8]>| {
        let mut cx = cx("lb", Prerequisites::TCP);
        let tlvs = authority.map(|a| Tlv {
            kind: TLV_AUTHORITY,
            value: Bytes::from_static(a),
        });
        cx.set_proxy_header(ProxyHeader::new(
            Bytes::new(),
            Some(ProxiedAddrs {
                source: source.parse().unwrap(),
                destination: "192.0.2.1:9192".parse().unwrap(),
            }),
            tlvs,
        ));
        cx
    };
    assert_eq!(
        router.route(&proxied("192.0.2.9:1", Some(b"TENANT-A.example"))),
        Ok(RouteId::new("a"))
    );
    assert_eq!(
        router.route(&proxied("10.1.1.1:1", Some(b"other.example"))),
        Ok(RouteId::new("internal"))
    );
    assert_eq!(
        router.route(&proxied("192.0.2.9:1", None)),
        Ok(RouteId::new("default"))
    );
    // The authority is kept after the header is released.
    let mut cx = proxied("192.0.2.9:1", Some(b"tenant-a.example"));
    cx.release_proxy_header();
    assert_eq!(router.route(&cx), Ok(RouteId::new("a")));
}

#[test]
fn rules_route_on_sni_and_on_the_authenticated_principal() {
    let router = StaticRouter::new().with_rules(
        "tls",
        vec![
            RouteRule {
                when: RouteMatch {
                    principal: Some("batch-jobs".into()),
                    ..RouteMatch::default()
                },
                route: RouteId::new("batch"),
            },
            RouteRule {
                when: RouteMatch {
                    sni: Some("A.example".into()),
                    ..RouteMatch::default()
                },
                route: RouteId::new("a"),
            },
        ],
        RouteId::new("default"),
    );
    let mut cx = cx("tls", Prerequisites::TLS);
    assert_eq!(router.route(&cx), Ok(RouteId::new("default")));
    cx.set_sni(Some("a.example".into()));
    assert_eq!(router.route(&cx), Ok(RouteId::new("a")));
    cx.set_auth(AuthState::Authenticated {
        principal: "batch-jobs".into(),
        mechanism: AuthMechanism::Mtls,
    });
    assert_eq!(
        router.route(&cx),
        Ok(RouteId::new("batch")),
        "the first matching rule wins"
    );
    cx.set_auth(AuthState::Authenticated {
        principal: "batch-jobs-2".into(),
        mechanism: AuthMechanism::Mtls,
    });
    assert_eq!(
        router.route(&cx),
        Ok(RouteId::new("a")),
        "principals match exactly"
    );
}

#[test]
fn gate_needs_a_route_and_a_ready_backend() {
    let mut cx = cx("plain", Prerequisites::TCP);
    assert_eq!(
        ForwardingGate::check(&cx, &ready()).err(),
        Some(GateClosed::NotRouted)
    );
    cx.set_route(RouteId::new("local"));
    assert_eq!(
        ForwardingGate::check(&cx, &BackendState::Idle).err(),
        Some(GateClosed::BackendNotReady { state: "Idle" })
    );
    assert!(ForwardingGate::check(&cx, &ready()).is_ok());
}

#[test]
fn gate_holds_until_tls_and_authentication_are_done() {
    let mut cx = cx(
        "secure",
        Prerequisites::TLS.and(Prerequisites::AUTHENTICATED),
    );
    cx.set_route(RouteId::new("local"));
    assert_eq!(
        ForwardingGate::check(&cx, &ready()).err(),
        Some(GateClosed::TlsMissing)
    );
    cx.set_tls(TlsFacts::default());
    assert_eq!(
        ForwardingGate::check(&cx, &ready()).err(),
        Some(GateClosed::NotAuthenticated)
    );
    cx.set_auth(AuthState::InProgress {
        mechanism: AuthMechanism::Plain,
    });
    assert_eq!(
        ForwardingGate::check(&cx, &ready()).err(),
        Some(GateClosed::NotAuthenticated)
    );
    cx.set_auth(AuthState::Authenticated {
        principal: "alice".into(),
        mechanism: AuthMechanism::Plain,
    });
    assert!(ForwardingGate::check(&cx, &ready()).is_ok());
}

#[test]
fn prerequisites_compose() {
    let both = Prerequisites::TLS.and(Prerequisites::AUTHENTICATED);
    assert!(both.contains(Prerequisites::TLS));
    assert!(both.contains(Prerequisites::TCP));
    assert!(!Prerequisites::TLS.contains(Prerequisites::AUTHENTICATED));
}
