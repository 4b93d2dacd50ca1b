//! The frontend state machine: one per client connection.
//!
//! `Accepted → AwaitingProxyHeader? → TlsHandshaking? → Negotiating? → Routing → Forwarding →
//! Draining → Closed`. Optional phases are skipped when the listener does not ask for them, so
//! each phase may be entered from any earlier one, never from a later one. `Forwarding` can only
//! be entered with a [`ForwardPermit`], which only the [`ForwardingGate`](crate::route::ForwardingGate)
//! issues.

use tokio::time::Instant;
use tracing::trace;

use super::InvalidEvent;
use crate::close::CloseReason;
use crate::context::SessionContext;
use crate::route::{ForwardPermit, RouteId};

/// Where a client connection stands. Each variant holds only its own data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendState {
    /// The TCP connection was accepted; nothing read yet.
    Accepted,
    /// Waiting for a PROXY-protocol header until `deadline`.
    AwaitingProxyHeader {
        /// When an incomplete header closes the session.
        deadline: Instant,
    },
    /// Terminating TLS until `deadline`.
    TlsHandshaking {
        /// When an unfinished handshake closes the session.
        deadline: Instant,
    },
    /// The proxy answers the client itself (protocol version and SASL exchanges).
    Negotiating {
        /// When an unfinished negotiation closes the session.
        deadline: Instant,
    },
    /// Choosing a route and bringing its backend to `Ready`.
    Routing,
    /// Bytes flow between the client and the route's backend.
    Forwarding {
        /// The route the session forwards to.
        route: RouteId,
    },
    /// Finishing in-flight work before `deadline`; nothing new is read.
    Draining {
        /// When whatever remains is closed by force.
        deadline: Instant,
    },
    /// The session ended.
    Closed(CloseReason),
}

/// What happened to a client connection.
#[derive(Debug)]
pub enum FrontendEvent {
    /// The listener expects a PROXY header first.
    AwaitProxyHeader {
        /// When to give up on it.
        deadline: Instant,
    },
    /// The TLS handshake starts.
    StartTls {
        /// When to give up on it.
        deadline: Instant,
    },
    /// The proxy starts answering the client itself.
    StartNegotiation {
        /// When to give up on it.
        deadline: Instant,
    },
    /// Every handshake phase is done; the session needs a route.
    Route,
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
            Self::AwaitProxyHeader { .. } => "AwaitProxyHeader",
            Self::StartTls { .. } => "StartTls",
            Self::StartNegotiation { .. } => "StartNegotiation",
            Self::Route => "Route",
            Self::Forward(_) => "Forward",
            Self::Drain { .. } => "Drain",
            Self::Close(_) => "Close",
        }
    }
}

// === impl FrontendState ===

impl FrontendState {
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

    /// The position of a phase in the session's order; phases only move forward.
    fn phase(&self) -> u8 {
        match self {
            Self::Accepted => 0,
            Self::AwaitingProxyHeader { .. } => 1,
            Self::TlsHandshaking { .. } => 2,
            Self::Negotiating { .. } => 3,
            Self::Routing => 4,
            Self::Forwarding { .. } => 5,
            Self::Draining { .. } => 6,
            Self::Closed(_) => 7,
        }
    }

    /// The deadline of the current phase, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Self::AwaitingProxyHeader { deadline }
            | Self::TlsHandshaking { deadline }
            | Self::Negotiating { deadline }
            | Self::Draining { deadline } => Some(*deadline),
            _ => None,
        }
    }

    /// Applies `event`. Entering `Forwarding` releases the PROXY header: once routed, the
    /// session keeps only the addresses it carried.
    pub fn on(self, event: FrontendEvent, cx: &mut SessionContext) -> Result<Self, InvalidEvent> {
        let from = self.name();
        let event_name = event.name();
        let phase = self.phase();
        let next = match (self, event) {
            (Self::Closed(_), _) => None,
            (_, FrontendEvent::Close(reason)) => Some(Self::Closed(reason)),
            (_, FrontendEvent::AwaitProxyHeader { deadline }) if phase < 1 => {
                Some(Self::AwaitingProxyHeader { deadline })
            }
            (_, FrontendEvent::StartTls { deadline }) if phase < 2 => {
                Some(Self::TlsHandshaking { deadline })
            }
            (_, FrontendEvent::StartNegotiation { deadline }) if phase < 3 => {
                Some(Self::Negotiating { deadline })
            }
            (_, FrontendEvent::Route) if phase < 4 => Some(Self::Routing),
            (Self::Routing, FrontendEvent::Forward(permit)) => {
                cx.release_proxy_header();
                Some(Self::Forwarding {
                    route: permit.into_route(),
                })
            }
            (Self::Forwarding { .. }, FrontendEvent::Drain { deadline }) => {
                Some(Self::Draining { deadline })
            }
            _ => None,
        };
        match next {
            Some(next) => {
                trace!(session.id = %cx.id(), from, to = next.name(), event = event_name, "frontend transition");
                Ok(next)
            }
            None => Err(InvalidEvent {
                machine: "frontend",
                state: from,
                event: event_name,
            }),
        }
    }
}
