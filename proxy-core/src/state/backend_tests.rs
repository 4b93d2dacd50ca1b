use std::net::SocketAddr;

use tokio::time::{Duration, Instant};

use super::*;
use crate::close::{CloseReason, ConnectFailure};
use crate::context::{AuthMechanism, SessionId};
use crate::upstream::BackendTarget;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn tcp(port: u16) -> BackendTarget {
    BackendTarget::Addr(addr(port))
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn events() -> Vec<BackendEvent> {
    vec![
        BackendEvent::Connect {
            target: tcp(2),
            deadline: deadline(),
        },
        BackendEvent::StartTls {
            deadline: deadline(),
        },
        BackendEvent::StartAuth {
            mechanism: AuthMechanism::ScramSha256,
        },
        BackendEvent::Established,
        BackendEvent::Drain,
        BackendEvent::Close,
        BackendEvent::Fail(CloseReason::BackendIo(std::io::ErrorKind::ConnectionReset)),
    ]
}

fn states() -> Vec<BackendState> {
    vec![
        BackendState::Idle,
        BackendState::Connecting {
            target: tcp(1),
            attempt: 1,
            deadline: deadline(),
        },
        BackendState::TlsHandshaking {
            target: tcp(1),
            deadline: deadline(),
        },
        BackendState::Authenticating {
            target: tcp(1),
            mechanism: AuthMechanism::Plain,
        },
        BackendState::Ready {
            target: BackendTarget::Addr(addr(1)),
        },
        BackendState::Draining { target: tcp(1) },
        BackendState::Closed,
        BackendState::Failed(CloseReason::BackendClosed),
    ]
}

const LEGAL: &[(&str, &str, &str)] = &[
    ("Idle", "Connect", "Connecting"),
    ("Connecting", "Connect", "Connecting"),
    ("Connecting", "StartTls", "TlsHandshaking"),
    ("Connecting", "StartAuth", "Authenticating"),
    ("TlsHandshaking", "StartAuth", "Authenticating"),
    ("Connecting", "Established", "Ready"),
    ("TlsHandshaking", "Established", "Ready"),
    ("Authenticating", "Established", "Ready"),
    ("Ready", "Drain", "Draining"),
    ("Ready", "Close", "Closed"),
    ("Draining", "Close", "Closed"),
    ("Idle", "Fail", "Failed"),
    ("Connecting", "Fail", "Failed"),
    ("TlsHandshaking", "Fail", "Failed"),
    ("Authenticating", "Fail", "Failed"),
    ("Ready", "Fail", "Failed"),
    ("Draining", "Fail", "Failed"),
];

#[test]
fn every_state_event_pair_is_legal_exactly_when_listed() {
    let session = Some(SessionId::next());
    let mut checked = 0;
    for state in states() {
        for event in events() {
            let (state_name, event_name) = (state.name(), event.name());
            let expected = LEGAL
                .iter()
                .find(|(s, e, _)| *s == state_name && *e == event_name)
                .map(|(_, _, to)| *to);
            match (state.clone().on(event, session), expected) {
                (Ok(next), Some(to)) => assert_eq!(next.name(), to, "{state_name} + {event_name}"),
                (Err(err), None) => {
                    assert_eq!(
                        (err.machine, err.state, err.event),
                        ("backend", state_name, event_name)
                    );
                }
                (got, want) => panic!("{state_name} + {event_name}: got {got:?}, want {want:?}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 8 * 7);
}

#[test]
fn each_retry_counts_an_attempt_and_moves_to_the_new_address() {
    let session = Some(SessionId::next());
    let mut state = BackendState::Idle;
    for port in 1..=3 {
        state = state
            .on(
                BackendEvent::Connect {
                    target: tcp(port),
                    deadline: deadline(),
                },
                session,
            )
            .unwrap();
    }
    assert!(
        matches!(&state, BackendState::Connecting { attempt: 3, target, .. } if *target == tcp(3))
    );
    let state = state.on(BackendEvent::Established, session).unwrap();
    assert_eq!(
        state,
        BackendState::Ready {
            target: BackendTarget::Addr(addr(3))
        }
    );
    assert!(state.is_ready());
    assert_eq!(state.target(), Some(&tcp(3)));
}

#[test]
fn a_failed_connect_keeps_its_reason() {
    let reason = CloseReason::BackendUnavailable {
        attempts: 2,
        last: ConnectFailure::TimedOut,
    };
    let state = BackendState::Idle
        .on(
            BackendEvent::Connect {
                target: tcp(1),
                deadline: deadline(),
            },
            Some(SessionId::next()),
        )
        .unwrap()
        .on(BackendEvent::Fail(reason.clone()), Some(SessionId::next()))
        .unwrap();
    assert_eq!(state, BackendState::Failed(reason));
    assert!(!state.is_ready());
}
