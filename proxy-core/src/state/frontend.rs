//! The frontend state machine: one per client connection.
//!
//! `Accepted → AwaitingProxyHeader? → TlsHandshaking? → Negotiating? → Routing → Forwarding →
//! Draining? → Closed`. The listener's [`Phases`] say which optional phases a session goes
//! through and how long each may take; the machine walks them in order, computes each phase's
//! deadline, and the driver asks it which phase comes next and until when — the driver keeps
//! no copy of either. `Forwarding` can only be entered with a [`ForwardPermit`], which only the
//! [`ForwardingGate`](crate::route::ForwardingGate) issues.
//!
//! `N` is the protocol's negotiation (the sans-IO exchange in which the proxy answers the
//! client itself, such as Kafka's SASL termination); the `Negotiating` state owns it.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
use tracing::trace;

use super::InvalidEvent;
use crate::close::CloseReason;
use crate::context::SessionContext;
use crate::route::ForwardPermit;
use crate::value::RouteId;

/// The optional phases of a listener's sessions, and how long each may take. One value per
/// listener; each session's machine borrows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    /// Read a PROXY-protocol header first, within this long.
    pub proxy_header: Option<Duration>,
    /// Terminate TLS (or read the ClientHello of a passed-through handshake), within this long.
    pub tls: Option<Duration>,
    /// The proxy answers the client itself before any route exists (SASL termination), within
    /// this long, through the negotiation the session's machine is given.
    pub negotiation: Option<Duration>,
}

/// Where a client connection stands. Each variant holds only its own data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendState<N> {
    /// The TCP connection was accepted; nothing read yet.
    Accepted,
    /// Waiting for a PROXY-protocol header until `deadline`.
    AwaitingProxyHeader {
        /// When an incomplete header closes the session.
        deadline: Instant,
    },
    /// The TLS handshake runs until `deadline`.
    TlsHandshaking {
        /// When an unfinished handshake closes the session.
        deadline: Instant,
    },
    /// The proxy answers the client itself (protocol version and SASL exchanges).
    Negotiating {
        /// When an unfinished negotiation closes the session.
        deadline: Instant,
        /// The exchange's own state.
        negotiation: N,
    },
    /// Choosing a route and bringing its backend to `Ready`.
    Routing,
    /// Bytes flow between the client and the route's backend.
    Forwarding {
        /// The route the session forwards to.
        route: RouteId,
    },
    /// Finishing in-flight work before `deadline`; a protocol with request boundaries reads
    /// no new request.
    Draining {
        /// The route the session forwards to.
        route: RouteId,
        /// When whatever remains is closed by force.
        deadline: Instant,
    },
    /// The session ended.
    Closed(CloseReason),
}

/// What happened to a client connection.
#[derive(Debug)]
pub enum FrontendEvent {
    /// The session starts: enter the listener's first phase.
    Begin,
    /// The current handshake phase (PROXY header, TLS) finished: enter the next one.
    PhaseDone,
    /// The client authenticated: by its negotiation, or by a client certificate that stands in
    /// for it (the negotiation is then skipped). The context must hold the principal.
    Authenticated,
    /// The forwarding gate opened.
    Forward(ForwardPermit),
    /// The proxy is shutting down; finish in-flight work before `deadline`.
    Drain {
        /// When whatever remains is closed by force.
        deadline: Instant,
    },
    /// The session ends.
    Close(CloseReason),
}

impl FrontendEvent {
    /// The event's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Begin => "Begin",
            Self::PhaseDone => "PhaseDone",
            Self::Authenticated => "Authenticated",
            Self::Forward(_) => "Forward",
            Self::Drain { .. } => "Drain",
            Self::Close(_) => "Close",
        }
    }
}

// === impl FrontendState ===

impl<N> FrontendState<N> {
    /// The state's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Accepted => "Accepted",
            Self::AwaitingProxyHeader { .. } => "AwaitingProxyHeader",
            Self::TlsHandshaking { .. } => "TlsHandshaking",
            Self::Negotiating { .. } => "Negotiating",
            Self::Routing => "Routing",
            Self::Forwarding { .. } => "Forwarding",
            Self::Draining { .. } => "Draining",
            Self::Closed(_) => "Closed",
        }
    }

    /// The deadline of the current phase, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Self::AwaitingProxyHeader { deadline }
            | Self::TlsHandshaking { deadline }
            | Self::Negotiating { deadline, .. }
            | Self::Draining { deadline, .. } => Some(*deadline),
            Self::Accepted | Self::Routing | Self::Forwarding { .. } | Self::Closed(_) => None,
        }
    }
}

/// A session's frontend machine: its state, and the phases it has yet to enter.
///
/// The driver feeds it events as the I/O it does completes, and asks it for the current
/// state and deadline; it keeps no copy of either.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use proxy_core::route::{ForwardingGate, Prerequisites, RouteId};
/// use proxy_core::state::{BackendState, FrontendEvent, FrontendMachine, FrontendState, Phases};
/// use proxy_core::upstream::BackendTarget;
/// use proxy_core::{CloseReason, SessionContext};
/// use tokio::time::Instant;
///
/// let addr = "127.0.0.1:9092".parse()?;
/// let mut cx = SessionContext::new("kafka".into(), addr, addr, Prerequisites::TCP, Arc::default());
/// // This listener reads a PROXY header first, and has no negotiation (`N = ()`).
/// let phases = Phases {
///     proxy_header: Some(Duration::from_secs(5)),
///     ..Phases::default()
/// };
/// let mut machine = FrontendMachine::<()>::new(&phases, None);
/// let now = Instant::now();
///
/// machine.on(FrontendEvent::Begin, &mut cx, now)?;
/// assert_eq!(machine.state().name(), "AwaitingProxyHeader");
/// assert_eq!(machine.deadline(), Some(now + Duration::from_secs(5)));
/// // The driver read the header.
/// machine.on(FrontendEvent::PhaseDone, &mut cx, now)?;
/// assert_eq!(machine.state(), &FrontendState::Routing);
///
/// // `Forward` needs a permit, and only the forwarding gate issues one.
/// cx.set_route(RouteId::new("main"));
/// let backend = BackendState::Ready { target: BackendTarget::Addr(addr) };
/// let permit = ForwardingGate::check(&cx, &backend)?;
/// machine.on(FrontendEvent::Forward(permit), &mut cx, now)?;
/// assert_eq!(machine.state(), &FrontendState::Forwarding { route: RouteId::new("main") });
///
/// // An event the state does not allow is an error naming both; the state stays.
/// let err = machine.on(FrontendEvent::PhaseDone, &mut cx, now).unwrap_err();
/// assert_eq!((err.state, err.event), ("Forwarding", "PhaseDone"));
///
/// let deadline = now + Duration::from_secs(30);
/// machine.on(FrontendEvent::Drain { deadline }, &mut cx, now)?;
/// assert_eq!(machine.deadline(), Some(deadline));
/// let reason = machine.close(CloseReason::DrainCompleted, &mut cx);
/// assert_eq!(machine.close_reason(), Some(&reason));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FrontendMachine<'p, N> {
    state: FrontendState<N>,
    phases: &'p Phases,
    /// The first phase not yet considered, in order: PROXY header, TLS, negotiation.
    next: PhaseStep,
    /// The negotiation, until `Negotiating` takes it.
    negotiation: Option<N>,
}

/// How far along a listener's phases a machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PhaseStep {
    ProxyHeader,
    Tls,
    Negotiation,
    Done,
}

impl<N> fmt::Debug for FrontendMachine<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrontendMachine")
            .field("state", &self.state.name())
            .field("deadline", &self.state.deadline())
            .finish_non_exhaustive()
    }
}

// === impl FrontendMachine ===

impl<'p, N> FrontendMachine<'p, N> {
    /// A machine in `Accepted` for a session of a listener with `phases`; `negotiation` is what
    /// `Negotiating` will hold (a listener whose phases have a negotiation gives one; without
    /// it, that phase is skipped).
    pub fn new(phases: &'p Phases, negotiation: Option<N>) -> Self {
        Self {
            state: FrontendState::Accepted,
            phases,
            next: PhaseStep::ProxyHeader,
            negotiation,
        }
    }

    /// Where the session stands.
    pub fn state(&self) -> &FrontendState<N> {
        &self.state
    }

    /// The deadline of the current phase, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.state.deadline()
    }

    /// The negotiation, while `Negotiating`.
    pub fn negotiation_mut(&mut self) -> Option<&mut N> {
        self.negotiating().map(|(_, negotiation)| negotiation)
    }

    /// The negotiation and its deadline, while `Negotiating`.
    pub fn negotiating(&mut self) -> Option<(Instant, &mut N)> {
        match &mut self.state {
            FrontendState::Negotiating {
                deadline,
                negotiation,
            } => Some((*deadline, negotiation)),
            _ => None,
        }
    }

    /// The reason the session closed, once `Closed`.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        match &self.state {
            FrontendState::Closed(reason) => Some(reason),
            _ => None,
        }
    }

    /// Applies `event` at `now`. An event the current state does not allow is an error naming
    /// both, and leaves the machine as it was. Entering `Forwarding` releases the PROXY header:
    /// once routed, the session keeps only the addresses it carried.
    pub fn on(
        &mut self,
        event: FrontendEvent,
        cx: &mut SessionContext,
        now: Instant,
    ) -> Result<(), InvalidEvent> {
        let from = self.state.name();
        let event_name = event.name();
        let invalid = InvalidEvent {
            machine: "frontend",
            state: from,
            event: event_name,
        };
        let next = match (&self.state, event) {
            (FrontendState::Closed(_), _) => return Err(invalid),
            (_, FrontendEvent::Close(reason)) => FrontendState::Closed(reason),
            (FrontendState::Accepted, FrontendEvent::Begin) => self.next_phase(now),
            (
                FrontendState::AwaitingProxyHeader { .. } | FrontendState::TlsHandshaking { .. },
                FrontendEvent::PhaseDone,
            ) => self.next_phase(now),
            (
                FrontendState::TlsHandshaking { .. } | FrontendState::Negotiating { .. },
                FrontendEvent::Authenticated,
            ) if cx.auth().principal().is_some() => {
                // A client certificate stood in for the negotiation: it is not entered.
                self.next = PhaseStep::Done;
                self.negotiation = None;
                FrontendState::Routing
            }
            (FrontendState::Routing, FrontendEvent::Forward(permit)) => {
                cx.release_proxy_header();
                FrontendState::Forwarding {
                    route: permit.into_route(),
                }
            }
            (FrontendState::Forwarding { route }, FrontendEvent::Drain { deadline }) => {
                FrontendState::Draining {
                    route: route.clone(),
                    deadline,
                }
            }
            _ => return Err(invalid),
        };
        trace!(session.id = %cx.id(), from, to = next.name(), event = event_name, "frontend transition");
        self.state = next;
        Ok(())
    }

    /// Ends the session with `reason` and returns the reason it ended with: `reason`, or the
    /// first one if it had already closed.
    pub fn close(&mut self, reason: CloseReason, cx: &mut SessionContext) -> CloseReason {
        if let Some(first) = self.close_reason() {
            return first.clone();
        }
        // Close is legal from every state but Closed, so this cannot fail.
        let now = Instant::now();
        match self.on(FrontendEvent::Close(reason.clone()), cx, now) {
            Ok(()) | Err(_) => reason,
        }
    }

    /// The next phase the listener has, with its deadline from `now`.
    fn next_phase(&mut self, now: Instant) -> FrontendState<N> {
        let phases = self.phases;
        if self.next <= PhaseStep::ProxyHeader {
            self.next = PhaseStep::Tls;
            if let Some(timeout) = phases.proxy_header {
                return FrontendState::AwaitingProxyHeader {
                    deadline: now + timeout,
                };
            }
        }
        if self.next <= PhaseStep::Tls {
            self.next = PhaseStep::Negotiation;
            if let Some(timeout) = phases.tls {
                return FrontendState::TlsHandshaking {
                    deadline: now + timeout,
                };
            }
        }
        self.next = PhaseStep::Done;
        if let (Some(timeout), Some(negotiation)) = (phases.negotiation, self.negotiation.take()) {
            return FrontendState::Negotiating {
                deadline: now + timeout,
                negotiation,
            };
        }
        FrontendState::Routing
    }
}
