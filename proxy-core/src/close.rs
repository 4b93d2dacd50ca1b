//! Why a session ended, and whose fault that was.
//!
//! Every session ends with exactly one [`CloseReason`]; it is written on the session's close line,
//! and its [`Fault`] tag drives the log level and (later) metric labels and Kafka error codes.

use std::borrow::Cow;
use std::fmt;
use std::io;

use crate::codec::{ClientCaused, CodecError};
use crate::route::GateClosed;
use crate::state::InvalidEvent;
pub use crate::value::Fault;
use crate::value::Side;

/// How a connection attempt to a backend failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectFailure {
    /// The attempt did not finish within the cluster's connect timeout.
    TimedOut,
    /// The backend's name did not resolve to any address.
    Unresolved,
    /// The connect call failed with this kind of I/O error (refused, unreachable, ...).
    Io(io::ErrorKind),
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TimedOut => f.write_str("connect timed out"),
            Self::Unresolved => f.write_str("name did not resolve"),
            Self::Io(kind) => write!(f, "{kind}"),
        }
    }
}

/// A refusal by a protocol layer: the proxy understood the client and said no, for a reason
/// its protocol defines. It carries its own stable label (for metrics and the close line) and
/// whose fault it was, so [`CloseReason`] needs no variant per protocol.
///
/// ```
/// use proxy_core::{CloseReason, Fault, Refusal};
///
/// let reason = CloseReason::from(Refusal {
///     label: "unknown_tenant",
///     fault: Fault::Downstream,
///     detail: "no tenant named acme".into(),
/// });
/// assert_eq!(reason.label(), "unknown_tenant");
/// assert_eq!(reason.fault(), Some(Fault::Downstream));
/// assert_eq!(reason.to_string(), "no tenant named acme");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A short, stable label for metrics and structured logs (`unknown_broker`).
    pub label: &'static str,
    /// Whose fault the refusal was.
    pub fault: Fault,
    /// What happened, for the log.
    pub detail: Cow<'static, str>,
}

/// A failure of Sluice's own, kept typed up to the close line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InternalError {
    /// A state machine refused an event its driver sent. Boxed: it is three names, and every
    /// close reason a session carries would otherwise be as large.
    #[error(transparent)]
    InvalidEvent(Box<InvalidEvent>),
    /// The forwarding gate stayed shut for a session its driver had brought to a ready backend.
    #[error("forwarding gate: {0}")]
    GateClosed(#[from] GateClosed),
    /// A message the proxy changed or made itself could not be encoded.
    #[error("cannot encode a message: {0}")]
    Encode(#[source] CodecError),
    /// The system's random source failed.
    #[error("the system has no random source")]
    NoRandomness,
    /// Work handed to a blocking thread never finished (it panicked, or the runtime is
    /// shutting down).
    #[error("a blocking task failed: {0}")]
    BlockingTask(Cow<'static, str>),
}

/// Why a session ended.
///
/// [`forward`](crate::forward::forward) returns one; a stage ends a session with
/// [`Flow::Close`](crate::stage::Flow::Close). Each reason has a stable
/// [`label`](Self::label) for metrics and logs, and a [`fault`](Self::fault) that says whose
/// it was.
///
/// ```
/// use proxy_core::{CloseReason, Fault};
///
/// let reason = CloseReason::Stage {
///     stage: "guard",
///     reason: "the client asked for SHUTDOWN".into(),
/// };
/// assert_eq!(reason.label(), "stage_closed");
/// assert_eq!(reason.fault(), Some(Fault::Internal));
/// assert_eq!(reason.to_string(), "closed by stage guard: the client asked for SHUTDOWN");
/// // Orderly closes are nobody's fault.
/// assert_eq!(CloseReason::ClientClosed.fault(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed its side first and everything was delivered.
    ClientClosed,
    /// The backend closed its side first and everything was delivered.
    BackendClosed,
    /// No byte moved in either direction for the listener's idle timeout.
    IdleTimeout,
    /// One side had sent EOF and no byte moved for the listener's half-close timeout.
    HalfCloseTimeout,
    /// The client began a message and did not finish it within the frame timeout
    /// ([`ForwardLimits::frame_timeout`](crate::forward::ForwardLimits::frame_timeout)).
    FrameTimeout,
    /// Reading from or writing to the client failed.
    ClientIo(io::ErrorKind),
    /// Reading from or writing to the backend failed.
    BackendIo(io::ErrorKind),
    /// The router found no route for the session.
    NoRoute,
    /// Every backend address of the route was tried and none accepted.
    BackendUnavailable {
        /// How many addresses were tried.
        attempts: u32,
        /// How the last attempt failed.
        last: ConnectFailure,
    },
    /// The peer sent bytes that do not follow the listener's protocol.
    Protocol {
        /// Which side sent them.
        side: Side,
        /// What was wrong, for the log.
        detail: Cow<'static, str>,
    },
    /// A stage closed the session.
    Stage {
        /// The stage's kind name.
        stage: &'static str,
        /// The stage's own reason, for the log.
        reason: Cow<'static, str>,
    },
    /// A stage answered toward a peer whose write side had already been shut down.
    AnswerAfterShutdown(Side),
    /// The proxy is shutting down and the session outlived its drain deadline.
    Shutdown,
    /// The proxy is draining and closed the session between requests (Kafka): nothing the
    /// client asked for was lost, and it reconnects elsewhere.
    DrainCompleted,
    /// A TLS handshake with `side` failed or did not finish before its deadline.
    Tls {
        /// Which side's handshake.
        side: Side,
        /// What went wrong (unknown CA, name mismatch, timeout...), for the log.
        detail: Cow<'static, str>,
    },
    /// The connection's PROXY-protocol header was missing, untrusted, invalid or late.
    ProxyHeader(crate::proxy_protocol::ProxyHeaderError),
    /// A protocol layer refused the client: the refusal names itself (`unknown_broker`, say),
    /// so the core need not know every protocol's reasons. Boxed: refusals are rare, and every
    /// close reason a session carries would otherwise be as large.
    Refused(Box<Refusal>),
    /// The client's SASL authentication failed (wrong credentials, unknown user, a mechanism
    /// not offered, or a malformed exchange).
    AuthenticationFailed {
        /// The mechanism the client used (`-` when it never chose one).
        mechanism: Cow<'static, str>,
    },
    /// The client did not finish authenticating before the listener's SASL timeout.
    AuthenticationTimeout,
    /// The client closed the connection while the listener waited for it to authenticate
    /// (before or during its SASL exchange): it gave up, often because it did not like an
    /// answer (the API versions offered, the mechanisms listed), or it was a port probe.
    ClientClosedBeforeAuthentication,
    /// The client's authenticated session lifetime (KIP-368) passed without re-authentication.
    SessionExpired,
    /// Sluice could not authenticate to the cluster with the cluster's own credentials.
    BackendAuthFailed {
        /// What went wrong (rejected credentials, unsupported mechanism, bad server proof).
        detail: Cow<'static, str>,
    },
    /// A failure of Sluice's own (a bug, or the machine it runs on).
    Internal(InternalError),
}

impl From<InvalidEvent> for InternalError {
    fn from(err: InvalidEvent) -> Self {
        Self::InvalidEvent(Box::new(err))
    }
}

// === impl CloseReason ===

impl From<InvalidEvent> for CloseReason {
    fn from(err: InvalidEvent) -> Self {
        Self::Internal(err.into())
    }
}

impl From<Refusal> for CloseReason {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(Box::new(refusal))
    }
}

impl From<ClientCaused> for CloseReason {
    fn from(cause: ClientCaused) -> Self {
        Refusal {
            label: cause.label,
            fault: Fault::Downstream,
            detail: cause.detail,
        }
        .into()
    }
}

impl From<InternalError> for CloseReason {
    fn from(err: InternalError) -> Self {
        Self::Internal(err)
    }
}

impl CloseReason {
    /// True when a peer reset its connection: the other peer is sent a reset in turn
    /// ([`Forwarder::close`](crate::forward::Forwarder::close)).
    pub fn is_reset(&self) -> bool {
        matches!(
            self,
            Self::ClientIo(io::ErrorKind::ConnectionReset)
                | Self::BackendIo(io::ErrorKind::ConnectionReset)
        )
    }

    /// Whose fault the close was; `None` for orderly closes.
    pub fn fault(&self) -> Option<Fault> {
        match self {
            Self::ClientClosed | Self::BackendClosed | Self::DrainCompleted => None,
            Self::IdleTimeout
            | Self::HalfCloseTimeout
            | Self::FrameTimeout
            | Self::ClientIo(_)
            | Self::ProxyHeader(_)
            | Self::AuthenticationFailed { .. }
            | Self::AuthenticationTimeout
            | Self::ClientClosedBeforeAuthentication
            | Self::SessionExpired => Some(Fault::Downstream),
            Self::Protocol { side, .. } | Self::Tls { side, .. } => Some(side.fault()),
            Self::Refused(refusal) => Some(refusal.fault),
            Self::BackendIo(_)
            | Self::BackendUnavailable { .. }
            | Self::BackendAuthFailed { .. } => Some(Fault::Upstream),
            Self::NoRoute
            | Self::Stage { .. }
            | Self::AnswerAfterShutdown(_)
            | Self::Shutdown
            | Self::Internal(_) => Some(Fault::Internal),
        }
    }

    /// A short, stable label for metrics and structured logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::BackendClosed => "backend_closed",
            Self::IdleTimeout => "idle_timeout",
            Self::HalfCloseTimeout => "half_close_timeout",
            Self::FrameTimeout => "frame_timeout",
            Self::ClientIo(_) => "client_error",
            Self::BackendIo(_) => "backend_error",
            Self::NoRoute => "no_route",
            Self::BackendUnavailable { .. } => "backend_unavailable",
            Self::Protocol { .. } => "protocol_error",
            Self::Stage { .. } => "stage_closed",
            Self::AnswerAfterShutdown(_) => "answer_after_shutdown",
            Self::Shutdown => "drain_timeout",
            Self::DrainCompleted => "drain_completed",
            Self::Tls {
                side: Side::Client, ..
            } => "tls_handshake_failed",
            Self::Tls {
                side: Side::Backend,
                ..
            } => "backend_tls_failed",
            Self::ProxyHeader(err) => err.label(),
            Self::Refused(refusal) => refusal.label,
            Self::AuthenticationFailed { .. } => "auth_failed",
            Self::AuthenticationTimeout => "auth_timeout",
            Self::ClientClosedBeforeAuthentication => "client_closed_before_authentication",
            Self::SessionExpired => "session_expired",
            Self::BackendAuthFailed { .. } => "backend_auth_failed",
            Self::Internal(_) => "internal_error",
        }
    }
}

/// A close reason is the error of a session that ended badly (and the outcome of one that did
/// not): `?` carries it into `Box<dyn Error>`.
impl std::error::Error for CloseReason {}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientClosed => f.write_str("client closed the connection"),
            Self::BackendClosed => f.write_str("backend closed the connection"),
            Self::IdleTimeout => f.write_str("idle timeout"),
            Self::HalfCloseTimeout => {
                f.write_str("half-closed and idle past the half-close timeout")
            }
            Self::FrameTimeout => f.write_str("the client did not finish a message in time"),
            Self::ClientIo(kind) => write!(f, "client i/o error: {kind}"),
            Self::BackendIo(kind) => write!(f, "backend i/o error: {kind}"),
            Self::NoRoute => f.write_str("no route for the session"),
            Self::BackendUnavailable { attempts, last } => write!(
                f,
                "no backend reachable after {attempts} attempt(s), last: {last}"
            ),
            Self::Protocol { side, detail } => write!(f, "protocol error from {side}: {detail}"),
            Self::Stage { stage, reason } => write!(f, "closed by stage {stage}: {reason}"),
            Self::AnswerAfterShutdown(side) => {
                write!(
                    f,
                    "a stage answered the {side} after its write side was shut down"
                )
            }
            Self::Shutdown => f.write_str("closed at the drain deadline"),
            Self::DrainCompleted => f.write_str("closed between requests while draining"),
            Self::Tls { side, detail } => {
                write!(f, "TLS handshake with the {side} failed: {detail}")
            }
            Self::ProxyHeader(err) => write!(f, "rejected: {err}"),
            Self::Refused(refusal) => f.write_str(&refusal.detail),
            Self::AuthenticationFailed { mechanism } => {
                write!(f, "SASL authentication failed ({mechanism})")
            }
            Self::AuthenticationTimeout => f.write_str("did not authenticate in time"),
            Self::ClientClosedBeforeAuthentication => {
                f.write_str("client closed the connection before authenticating")
            }
            Self::SessionExpired => {
                f.write_str("the authenticated session expired without re-authentication")
            }
            Self::BackendAuthFailed { detail } => {
                write!(f, "authenticating to the cluster failed: {detail}")
            }
            Self::Internal(detail) => write!(f, "internal error: {detail}"),
        }
    }
}
