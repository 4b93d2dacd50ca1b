//! The backend state machine: one per route of a session.
//!
//! `Idle → Connecting → TlsHandshaking? → Authenticating? → Ready → Draining → Closed | Failed`.
//! `Connecting` counts attempts: a refused or timed-out address moves on to the next one by
//! another `Connect` event.

use tokio::time::Instant;
use tracing::trace;

use super::InvalidEvent;
use crate::close::CloseReason;
use crate::context::AuthMechanism;
use crate::upstream::BackendTarget;
use crate::value::SessionId;

/// Where the connection toward one route's backend stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendState {
    /// Nothing attempted yet.
    Idle,
    /// Connecting to `target` (a TCP connect, or a child being spawned) is in progress.
    Connecting {
        /// The address being tried.
        target: BackendTarget,
        /// 1 for the first address tried, 2 for the second, ...
        attempt: u32,
        /// When this attempt times out.
        deadline: Instant,
    },
    /// Originating TLS toward `target`.
    TlsHandshaking {
        /// The connected address.
        target: BackendTarget,
        /// When the handshake times out.
        deadline: Instant,
    },
    /// Authenticating to the backend with the cluster's own credentials.
    Authenticating {
        /// The connected address.
        target: BackendTarget,
        /// The mechanism in use.
        mechanism: AuthMechanism,
    },
    /// The backend can take the session's traffic.
    Ready {
        /// The connected address.
        target: BackendTarget,
    },
    /// Finishing in-flight work.
    Draining {
        /// The connected address.
        target: BackendTarget,
    },
    /// Closed in an orderly way.
    Closed,
    /// Could not be brought to `Ready`, or broke.
    Failed(CloseReason),
}

/// What happened on the way to, or on, the backend connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendEvent {
    /// A connect attempt to `target` starts.
    Connect {
        /// The address to try.
        target: BackendTarget,
        /// When the attempt times out.
        deadline: Instant,
    },
    /// TLS origination starts on the connected socket.
    StartTls {
        /// When the handshake times out.
        deadline: Instant,
    },
    /// SASL toward the backend starts.
    StartAuth {
        /// The mechanism to use.
        mechanism: AuthMechanism,
    },
    /// Every step toward the backend is done.
    Established,
    /// In-flight work finishes; nothing new is sent.
    Drain,
    /// The connection closed in an orderly way.
    Close,
    /// The connection failed or could not be made.
    Fail(CloseReason),
}

impl BackendEvent {
    /// The event's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "Connect",
            Self::StartTls { .. } => "StartTls",
            Self::StartAuth { .. } => "StartAuth",
            Self::Established => "Established",
            Self::Drain => "Drain",
            Self::Close => "Close",
            Self::Fail(_) => "Fail",
        }
    }
}

// === impl BackendState ===

impl BackendState {
    /// The state's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle => "Idle",
            Self::Connecting { .. } => "Connecting",
            Self::TlsHandshaking { .. } => "TlsHandshaking",
            Self::Authenticating { .. } => "Authenticating",
            Self::Ready { .. } => "Ready",
            Self::Draining { .. } => "Draining",
            Self::Closed => "Closed",
            Self::Failed(_) => "Failed",
        }
    }

    /// True when the backend may take traffic.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready { .. })
    }

    /// What the backend connects to (or is trying), if anything yet.
    pub fn target(&self) -> Option<&BackendTarget> {
        match self {
            Self::Connecting { target, .. }
            | Self::TlsHandshaking { target, .. }
            | Self::Authenticating { target, .. }
            | Self::Ready { target }
            | Self::Draining { target } => Some(target),
            Self::Idle | Self::Closed | Self::Failed(_) => None,
        }
    }

    /// Applies `event` to the connection of `session` (`None`: a connection of the proxy's
    /// own).
    pub fn on(self, event: BackendEvent, session: Option<SessionId>) -> Result<Self, InvalidEvent> {
        let from = self.name();
        let event_name = event.name();
        let next = match (self, event) {
            (Self::Closed | Self::Failed(_), _) => None,
            (_, BackendEvent::Fail(reason)) => Some(Self::Failed(reason)),
            (Self::Idle, BackendEvent::Connect { target, deadline }) => Some(Self::Connecting {
                target,
                attempt: 1,
                deadline,
            }),
            (Self::Connecting { attempt, .. }, BackendEvent::Connect { target, deadline }) => {
                Some(Self::Connecting {
                    target,
                    attempt: attempt.saturating_add(1),
                    deadline,
                })
            }
            (Self::Connecting { target, .. }, BackendEvent::StartTls { deadline }) => {
                Some(Self::TlsHandshaking { target, deadline })
            }
            (
                Self::Connecting { target, .. } | Self::TlsHandshaking { target, .. },
                BackendEvent::StartAuth { mechanism },
            ) => Some(Self::Authenticating { target, mechanism }),
            (
                Self::Connecting { target, .. }
                | Self::TlsHandshaking { target, .. }
                | Self::Authenticating { target, .. },
                BackendEvent::Established,
            ) => Some(Self::Ready { target }),
            (Self::Ready { target }, BackendEvent::Drain) => Some(Self::Draining { target }),
            (Self::Ready { .. } | Self::Draining { .. }, BackendEvent::Close) => Some(Self::Closed),
            _ => None,
        };
        match next {
            Some(next) => {
                trace!(
                    session.id = session.map(SessionId::get),
                    from,
                    to = next.name(),
                    event = event_name,
                    "backend transition"
                );
                Ok(next)
            }
            None => Err(InvalidEvent {
                machine: "backend",
                state: from,
                event: event_name,
            }),
        }
    }
}
