//! The forwarding gate: a session forwards only when its listener's prerequisites hold and
//! its backend is `Ready`. [`ForwardingGate::check`] is the only way to obtain the
//! [`ForwardPermit`] the frontend state machine demands before it enters `Forwarding`.

use crate::context::SessionContext;
use crate::state::BackendState;

use crate::value::{Prerequisites, RouteId};

/// Why the forwarding gate stayed shut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GateClosed {
    /// The session has not been routed.
    #[error("the session has no route")]
    NotRouted,
    /// The listener requires TLS and the session has none.
    #[error("the listener requires TLS and the session has not completed a handshake")]
    TlsMissing,
    /// The listener requires authentication and the client is not authenticated.
    #[error("the listener requires authentication and the client is not authenticated")]
    NotAuthenticated,
    /// The route's backend is not `Ready`.
    #[error("the backend is {state}, not Ready")]
    BackendNotReady {
        /// The backend's state.
        state: &'static str,
    },
}

/// Proof that the forwarding gate was open for a route. Only [`ForwardingGate::check`] makes one.
#[derive(Debug)]
pub struct ForwardPermit {
    route: RouteId,
}

impl ForwardPermit {
    pub(crate) fn into_route(self) -> RouteId {
        self.route
    }
}

/// Decides whether a session may move to `Forwarding`.
#[derive(Debug, Clone, Copy)]
pub struct ForwardingGate;

impl ForwardingGate {
    /// Checks the listener's prerequisites against what the session has established, and that
    /// the backend is `Ready`.
    pub fn check(cx: &SessionContext, backend: &BackendState) -> Result<ForwardPermit, GateClosed> {
        let route = cx.route().ok_or(GateClosed::NotRouted)?;
        let requires = cx.requires();
        if requires.contains(Prerequisites::TLS) && cx.tls().is_none() {
            return Err(GateClosed::TlsMissing);
        }
        if requires.contains(Prerequisites::AUTHENTICATED) && cx.auth().principal().is_none() {
            return Err(GateClosed::NotAuthenticated);
        }
        if !backend.is_ready() {
            return Err(GateClosed::BackendNotReady {
                state: backend.name(),
            });
        }
        Ok(ForwardPermit {
            route: route.clone(),
        })
    }
}
