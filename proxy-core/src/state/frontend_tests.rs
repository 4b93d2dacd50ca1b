//! The frontend machine driven through every phase on tokio's paused clock: which events each
//! state takes, the deadlines it computes from the listener's phases, and what an illegal
//! event leaves behind.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::{Duration, Instant, advance};

use super::*;
use crate::close::CloseReason;
use crate::context::{
    AuthMechanism, AuthState, LiveResources, ProxiedAddrs, ProxyHeader, Resource, SessionContext,
};
use crate::route::{ForwardPermit, ForwardingGate, Prerequisites};
use crate::test_support::cx;
use crate::upstream::BackendTarget;
use crate::value::RouteId;

const HEADER: Duration = Duration::from_secs(3);
const TLS: Duration = Duration::from_secs(5);
const NEGOTIATION: Duration = Duration::from_secs(7);
const DRAIN: Duration = Duration::from_secs(30);

/// A stand-in for a protocol's negotiation: a name, so tests can see which one is held.
type Negotiation = &'static str;

const EVERY_PHASE: Phases = Phases {
    proxy_header: Some(HEADER),
    tls: Some(TLS),
    negotiation: Some(NEGOTIATION),
};

fn every_phase() -> FrontendMachine<'static, Negotiation> {
    FrontendMachine::new(&EVERY_PHASE, Some("sasl"))
}

fn permit(cx: &mut SessionContext) -> ForwardPermit {
    cx.set_route(RouteId::new("local"));
    let ready = BackendState::Ready {
        target: BackendTarget::Addr("127.0.0.1:9".parse().unwrap()),
    };
    ForwardingGate::check(cx, &ready).unwrap()
}

fn authenticate(cx: &mut SessionContext) {
    cx.set_auth(AuthState::Authenticated {
        principal: "alice".into(),
        mechanism: AuthMechanism::Mtls,
    });
}

/// Every kind of event, built fresh, so illegal combinations can be enumerated.
fn events(cx: &mut SessionContext) -> Vec<FrontendEvent> {
    vec![
        FrontendEvent::Begin,
        FrontendEvent::PhaseDone,
        FrontendEvent::Authenticated,
        FrontendEvent::Forward(permit(cx)),
        FrontendEvent::Drain {
            deadline: Instant::now() + DRAIN,
        },
        FrontendEvent::Close(CloseReason::ClientClosed),
    ]
}

/// A machine with every phase, driven to the state named `name`.
fn machine_in(name: &str, cx: &mut SessionContext) -> FrontendMachine<'static, Negotiation> {
    let mut machine = every_phase();
    let path: &[fn(&mut SessionContext) -> FrontendEvent] = &[
        |_| FrontendEvent::Begin,
        |_| FrontendEvent::PhaseDone,
        |_| FrontendEvent::PhaseDone,
        |cx| {
            authenticate(cx);
            FrontendEvent::Authenticated
        },
        |cx| FrontendEvent::Forward(permit(cx)),
        |_| FrontendEvent::Drain {
            deadline: Instant::now() + DRAIN,
        },
        |_| FrontendEvent::Close(CloseReason::ClientClosed),
    ];
    let now = Instant::now();
    for step in path {
        if machine.state().name() == name {
            return machine;
        }
        let event = step(cx);
        machine.on(event, cx, now).unwrap();
    }
    assert_eq!(machine.state().name(), name);
    machine
}

const STATES: [&str; 8] = [
    "Accepted",
    "AwaitingProxyHeader",
    "TlsHandshaking",
    "Negotiating",
    "Routing",
    "Forwarding",
    "Draining",
    "Closed",
];

/// The legal transitions of a listener with every phase, as (state, event) name pairs with
/// the resulting state's name. `Authenticated` is legal only with a principal in the context.
const LEGAL: &[(&str, &str, &str)] = &[
    ("Accepted", "Begin", "AwaitingProxyHeader"),
    ("AwaitingProxyHeader", "PhaseDone", "TlsHandshaking"),
    ("TlsHandshaking", "PhaseDone", "Negotiating"),
    ("TlsHandshaking", "Authenticated", "Routing"),
    ("Negotiating", "Authenticated", "Routing"),
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

#[tokio::test(start_paused = true)]
async fn every_state_event_pair_is_legal_exactly_when_listed_and_an_illegal_one_changes_nothing() {
    let mut checked = 0;
    for state_name in STATES {
        for authenticated in [false, true] {
            let mut events_cx = cx();
            for event in events(&mut events_cx) {
                let mut cx = cx();
                let mut machine = machine_in(state_name, &mut cx);
                if authenticated {
                    authenticate(&mut cx);
                } else {
                    cx.set_auth(AuthState::Unauthenticated);
                }
                let event_name = event.name();
                let expected = LEGAL
                    .iter()
                    .find(|(s, e, _)| *s == state_name && *e == event_name)
                    .map(|(_, _, to)| *to)
                    .filter(|_| authenticated || event_name != "Authenticated");
                let before = machine.deadline();
                match (machine.on(event, &mut cx, Instant::now()), expected) {
                    (Ok(()), Some(to)) => {
                        assert_eq!(machine.state().name(), to, "{state_name} + {event_name}");
                    }
                    (Err(err), None) => {
                        assert_eq!(
                            (err.machine, err.state, err.event),
                            ("frontend", state_name, event_name)
                        );
                        assert_eq!(machine.state().name(), state_name, "left as it was");
                        assert_eq!(machine.deadline(), before, "with its deadline");
                    }
                    (got, want) => {
                        panic!("{state_name} + {event_name}: got {got:?}, want {want:?}")
                    }
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 8 * 2 * 6);
}

#[tokio::test(start_paused = true)]
async fn each_phase_gets_its_deadline_from_when_it_was_entered() {
    let mut cx = cx();
    let mut machine = every_phase();
    let start = Instant::now();
    assert_eq!(machine.deadline(), None, "Accepted has none");
    machine
        .on(FrontendEvent::Begin, &mut cx, Instant::now())
        .unwrap();
    assert_eq!(machine.deadline(), Some(start + HEADER));

    advance(Duration::from_secs(1)).await;
    machine
        .on(FrontendEvent::PhaseDone, &mut cx, Instant::now())
        .unwrap();
    assert_eq!(machine.state().name(), "TlsHandshaking");
    assert_eq!(
        machine.deadline(),
        Some(start + Duration::from_secs(1) + TLS)
    );

    advance(Duration::from_secs(2)).await;
    machine
        .on(FrontendEvent::PhaseDone, &mut cx, Instant::now())
        .unwrap();
    assert_eq!(
        machine.deadline(),
        Some(start + Duration::from_secs(3) + NEGOTIATION)
    );
    assert_eq!(machine.negotiation_mut().copied(), Some("sasl"));

    authenticate(&mut cx);
    machine
        .on(FrontendEvent::Authenticated, &mut cx, Instant::now())
        .unwrap();
    assert_eq!(machine.state(), &FrontendState::Routing);
    assert_eq!(
        machine.deadline(),
        None,
        "routing waits on the connector's timeouts"
    );
    assert_eq!(machine.negotiation_mut(), None);

    let permit = permit(&mut cx);
    machine
        .on(FrontendEvent::Forward(permit), &mut cx, Instant::now())
        .unwrap();
    assert_eq!(
        machine.state(),
        &FrontendState::Forwarding {
            route: RouteId::new("local")
        }
    );
    assert_eq!(
        machine.deadline(),
        None,
        "forwarding has idle timeouts, not a deadline"
    );

    let drain_at = Instant::now() + DRAIN;
    machine
        .on(
            FrontendEvent::Drain { deadline: drain_at },
            &mut cx,
            Instant::now(),
        )
        .unwrap();
    assert_eq!(
        machine.state(),
        &FrontendState::Draining {
            route: RouteId::new("local"),
            deadline: drain_at
        }
    );
    assert_eq!(machine.deadline(), Some(drain_at));

    let reason = machine.close(CloseReason::DrainCompleted, &mut cx);
    assert_eq!(reason, CloseReason::DrainCompleted);
    assert_eq!(machine.close_reason(), Some(&CloseReason::DrainCompleted));
    assert_eq!(machine.deadline(), None);
}

#[tokio::test(start_paused = true)]
async fn phases_a_listener_does_not_have_are_skipped() {
    let mut cx = cx();
    let tls_only = Phases {
        tls: Some(TLS),
        ..Phases::default()
    };
    let mut machine = FrontendMachine::<Negotiation>::new(&tls_only, None);
    machine
        .on(FrontendEvent::Begin, &mut cx, Instant::now())
        .unwrap();
    assert_eq!(machine.state().name(), "TlsHandshaking");
    machine
        .on(FrontendEvent::PhaseDone, &mut cx, Instant::now())
        .unwrap();
    assert_eq!(machine.state().name(), "Routing");

    let none = Phases::default();
    let mut plain = FrontendMachine::<Negotiation>::new(&none, None);
    plain
        .on(FrontendEvent::Begin, &mut cx, Instant::now())
        .unwrap();
    assert_eq!(plain.state().name(), "Routing");

    // A negotiation in the phases, but none given to the machine: nothing to negotiate with.
    let negotiates = Phases {
        negotiation: Some(NEGOTIATION),
        ..Phases::default()
    };
    let mut plain = FrontendMachine::<Negotiation>::new(&negotiates, None);
    plain
        .on(FrontendEvent::Begin, &mut cx, Instant::now())
        .unwrap();
    assert_eq!(plain.state().name(), "Routing");
}

#[tokio::test(start_paused = true)]
async fn a_client_certificate_skips_the_negotiation() {
    let mut cx = cx();
    let mut machine = every_phase();
    machine
        .on(FrontendEvent::Begin, &mut cx, Instant::now())
        .unwrap();
    machine
        .on(FrontendEvent::PhaseDone, &mut cx, Instant::now())
        .unwrap();
    assert!(
        machine
            .on(FrontendEvent::Authenticated, &mut cx, Instant::now())
            .is_err(),
        "no principal yet: the negotiation must run"
    );
    authenticate(&mut cx);
    machine
        .on(FrontendEvent::Authenticated, &mut cx, Instant::now())
        .unwrap();
    assert_eq!(machine.state().name(), "Routing");
}

#[tokio::test(start_paused = true)]
async fn closing_twice_keeps_the_first_reason() {
    let mut cx = cx();
    let mut machine = every_phase();
    machine
        .on(FrontendEvent::Begin, &mut cx, Instant::now())
        .unwrap();
    assert_eq!(
        machine.close(CloseReason::IdleTimeout, &mut cx),
        CloseReason::IdleTimeout
    );
    assert_eq!(
        machine.close(CloseReason::ClientClosed, &mut cx),
        CloseReason::IdleTimeout
    );
}

#[tokio::test(start_paused = true)]
async fn forwarding_releases_the_proxy_header_but_keeps_the_addresses() {
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
    let none = Phases::default();
    let mut machine = FrontendMachine::<Negotiation>::new(&none, None);
    machine
        .on(FrontendEvent::Begin, &mut cx, Instant::now())
        .unwrap();
    let permit = permit(&mut cx);
    machine
        .on(FrontendEvent::Forward(permit), &mut cx, Instant::now())
        .unwrap();
    assert_eq!(live.live(Resource::ProxyHeader), 0);
    assert_eq!(cx.client_addr(), source);
}

#[test]
fn an_illegal_event_names_state_and_event_in_its_message() {
    let mut cx = cx();
    let none = Phases::default();
    let mut machine = FrontendMachine::<Negotiation>::new(&none, None);
    let err = machine
        .on(
            FrontendEvent::Drain {
                deadline: Instant::now(),
            },
            &mut cx,
            Instant::now(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "frontend state machine: event Drain is not valid in state Accepted"
    );
}
