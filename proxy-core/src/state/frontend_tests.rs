use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::{Duration, Instant};

use super::*;
use crate::close::CloseReason;
use crate::context::{LiveResources, ProxiedAddrs, ProxyHeader, Resource, SessionContext};
use crate::route::{ForwardingGate, Prerequisites, RouteId};
use crate::test_support::cx;
use crate::upstream::BackendTarget;

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(3)
}

fn permit(cx: &mut SessionContext) -> crate::route::ForwardPermit {
    cx.set_route(RouteId::new("local"));
    let ready = BackendState::Ready {
        target: BackendTarget::Addr("127.0.0.1:9".parse().unwrap()),
    };
    ForwardingGate::check(cx, &ready).unwrap()
}

/// Every kind of event, built fresh, so illegal combinations can be enumerated.
fn events(cx: &mut SessionContext) -> Vec<FrontendEvent> {
    vec![
        FrontendEvent::AwaitProxyHeader {
            deadline: deadline(),
        },
        FrontendEvent::StartTls {
            deadline: deadline(),
        },
        FrontendEvent::StartNegotiation {
            deadline: deadline(),
        },
        FrontendEvent::Route,
        FrontendEvent::Forward(permit(cx)),
        FrontendEvent::Drain {
            deadline: deadline(),
        },
        FrontendEvent::Close(CloseReason::ClientClosed),
    ]
}

fn states() -> Vec<FrontendState> {
    vec![
        FrontendState::Accepted,
        FrontendState::AwaitingProxyHeader {
            deadline: deadline(),
        },
        FrontendState::TlsHandshaking {
            deadline: deadline(),
        },
        FrontendState::Negotiating {
            deadline: deadline(),
        },
        FrontendState::Routing,
        FrontendState::Forwarding {
            route: RouteId::new("local"),
        },
        FrontendState::Draining {
            deadline: deadline(),
        },
        FrontendState::Closed(CloseReason::ClientClosed),
    ]
}

/// The legal transitions, as (state, event) name pairs with the resulting state's name.
const LEGAL: &[(&str, &str, &str)] = &[
    ("Accepted", "AwaitProxyHeader", "AwaitingProxyHeader"),
    ("Accepted", "StartTls", "TlsHandshaking"),
    ("Accepted", "StartNegotiation", "Negotiating"),
    ("Accepted", "Route", "Routing"),
    ("AwaitingProxyHeader", "StartTls", "TlsHandshaking"),
    ("AwaitingProxyHeader", "StartNegotiation", "Negotiating"),
    ("AwaitingProxyHeader", "Route", "Routing"),
    ("TlsHandshaking", "StartNegotiation", "Negotiating"),
    ("TlsHandshaking", "Route", "Routing"),
    ("Negotiating", "Route", "Routing"),
    ("Routing", "Forward", "Forwarding"),
    ("Forwarding", "Drain", "Draining"),
    ("Accepted", "Close", "Closed"),
    ("AwaitingProxyHeader", "Close", "Closed"),
    ("TlsHandshaking", "Close", "Closed"),
    ("Negotiating", "Close", "Closed"),
    ("Routing", "Close", "Closed"),
    ("Forwarding", "Close", "Closed"),
    ("Draining", "Close", "Closed"),
];

#[test]
fn every_state_event_pair_is_legal_exactly_when_listed() {
    let mut checked = 0;
    for state_index in 0..states().len() {
        let mut cx = cx();
        for event in events(&mut cx) {
            let state = states().swap_remove(state_index);
            let (state_name, event_name) = (state.name(), event.name());
            let expected = LEGAL
                .iter()
                .find(|(s, e, _)| *s == state_name && *e == event_name)
                .map(|(_, _, to)| *to);
            match (state.on(event, &mut cx), expected) {
                (Ok(next), Some(to)) => assert_eq!(next.name(), to, "{state_name} + {event_name}"),
                (Err(err), None) => {
                    assert_eq!(err.state, state_name);
                    assert_eq!(err.event, event_name);
                    assert_eq!(err.machine, "frontend");
                }
                (got, want) => panic!("{state_name} + {event_name}: got {got:?}, want {want:?}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 8 * 7);
}

#[test]
fn a_full_session_walks_every_phase_in_order() {
    let mut cx = cx();
    let mut state = FrontendState::Accepted;
    state = state
        .on(
            FrontendEvent::AwaitProxyHeader {
                deadline: deadline(),
            },
            &mut cx,
        )
        .unwrap();
    state = state
        .on(
            FrontendEvent::StartTls {
                deadline: deadline(),
            },
            &mut cx,
        )
        .unwrap();
    state = state
        .on(
            FrontendEvent::StartNegotiation {
                deadline: deadline(),
            },
            &mut cx,
        )
        .unwrap();
    state = state.on(FrontendEvent::Route, &mut cx).unwrap();
    let permit = permit(&mut cx);
    state = state.on(FrontendEvent::Forward(permit), &mut cx).unwrap();
    assert_eq!(
        state,
        FrontendState::Forwarding {
            route: RouteId::new("local")
        }
    );
    let at = deadline();
    state = state
        .on(FrontendEvent::Drain { deadline: at }, &mut cx)
        .unwrap();
    assert_eq!(state.deadline(), Some(at));
    state = state
        .on(FrontendEvent::Close(CloseReason::Shutdown), &mut cx)
        .unwrap();
    assert_eq!(state, FrontendState::Closed(CloseReason::Shutdown));
}

#[test]
fn forwarding_releases_the_proxy_header_but_keeps_the_addresses() {
    let live: Arc<LiveResources> = Arc::default();
    let peer: SocketAddr = "10.0.0.9:1000".parse().unwrap();
    let mut cx = SessionContext::new(Arc::from("l"), peer, peer, Prerequisites::TCP, live.clone());
    let source: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    cx.set_proxy_header(ProxyHeader::new(
        Bytes::from_static(b"raw"),
        Some(ProxiedAddrs {
            source,
            destination: peer,
        }),
        [],
    ));
    let state = FrontendState::Routing;
    let permit = permit(&mut cx);
    state.on(FrontendEvent::Forward(permit), &mut cx).unwrap();
    assert_eq!(live.live(Resource::ProxyHeader), 0);
    assert_eq!(cx.client_addr(), source);
}

#[test]
fn an_illegal_event_names_state_and_event_in_its_message() {
    let mut cx = cx();
    let err = FrontendState::Accepted
        .on(
            FrontendEvent::Drain {
                deadline: deadline(),
            },
            &mut cx,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "frontend state machine: event Drain is not valid in state Accepted"
    );
}
