//! The seam between the frontend and the backend crates: how a session (or the proxy itself)
//! obtains a connection to a route's backend. `proxy-backend` implements [`Connect`];
//! `proxy-frontend` drives it. Neither crate depends on the other.

use std::future::Future;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::close::CloseReason;
use crate::context::SessionContext;
use crate::io::IntoTcp;
use crate::state::BackendState;
pub use crate::value::{BackendAddr, BackendTarget};
use crate::value::{RouteId, SessionId};

/// A connection to a backend, and the backend state machine that produced it (`Ready`).
#[derive(Debug)]
pub struct Connected<Io> {
    /// The connected transport.
    pub io: Io,
    /// The backend state machine's state; `Ready` on success.
    pub state: BackendState,
    /// What the connection reached: the session records it for its close line.
    pub target: BackendTarget,
}

/// Whose connection a backend connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// A client's session: an outbound PROXY header names its client and the address the
    /// client connected to.
    Session {
        /// The session, for logs.
        id: SessionId,
        /// The real client's address.
        client: SocketAddr,
        /// The address the client connected to.
        destination: SocketAddr,
    },
    /// The proxy itself (asking a cluster for its brokers, say): an outbound PROXY header is a
    /// `LOCAL` one, naming no client.
    Proxy,
}

impl Requester {
    /// The session the connection serves, if it serves one.
    pub fn session(&self) -> Option<SessionId> {
        match self {
            Self::Session { id, .. } => Some(*id),
            Self::Proxy => None,
        }
    }
}

/// What to connect to, and for whom.
#[derive(Debug, Clone, Copy)]
pub struct ConnectRequest<'a> {
    /// The route whose cluster to connect to.
    pub route: &'a RouteId,
    /// One address to use instead of the cluster's list (the Kafka broker a session is for),
    /// with the cluster's timeouts, TLS, PROXY and authentication settings.
    pub pinned: Option<&'a BackendAddr>,
    /// Whose connection it is.
    pub requester: Requester,
}

impl<'a> ConnectRequest<'a> {
    /// A connection for the session `cx` to `route`'s cluster.
    pub fn for_session(route: &'a RouteId, cx: &SessionContext) -> Self {
        Self {
            route,
            pinned: None,
            requester: Requester::Session {
                id: cx.id(),
                client: cx.client_addr(),
                destination: cx.destination_addr(),
            },
        }
    }

    /// A connection of the proxy's own to `route`'s cluster.
    pub fn for_proxy(route: &'a RouteId) -> Self {
        Self {
            route,
            pinned: None,
            requester: Requester::Proxy,
        }
    }

    /// The same request, to `backend` only.
    pub fn pinned_to(self, backend: Option<&'a BackendAddr>) -> Self {
        Self {
            pinned: backend,
            ..self
        }
    }
}

/// Opens connections to the backends of a route.
pub trait Connect: Send + Sync + 'static {
    /// The transport to the backend. A client's reset is passed on to it ([`IntoTcp`]), so
    /// the backend sees the client's abort as one.
    type Io: AsyncRead + AsyncWrite + IntoTcp + Unpin + Send + 'static;

    /// Connects to a backend of the request's route, trying its addresses in order (or only
    /// the pinned one). The returned error is the session's close reason.
    fn connect(
        &self,
        request: ConnectRequest<'_>,
    ) -> impl Future<Output = Result<Connected<Self::Io>, CloseReason>> + Send;
}
