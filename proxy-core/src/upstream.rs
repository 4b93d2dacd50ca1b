//! The seam between the frontend and the backend crates: how a session obtains a connection to
//! its route's backend. `proxy-backend` implements [`Connect`]; `proxy-frontend` drives it.
//! Neither crate depends on the other.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::close::CloseReason;
use crate::context::SessionContext;
use crate::route::RouteId;
use crate::state::BackendState;

/// A connection to a backend, and the backend state machine that produced it (`Ready`).
#[derive(Debug)]
pub struct Connected<Io> {
    /// The connected transport.
    pub io: Io,
    /// The backend state machine's state; `Ready` on success.
    pub state: BackendState,
}

/// Opens connections to the backends of a route.
pub trait Connect: Send + Sync + 'static {
    /// The transport to the backend.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Connects the session to a backend of `route`, trying its addresses in order. The
    /// returned error is the session's close reason.
    fn connect(
        &self,
        route: &RouteId,
        cx: &mut SessionContext,
    ) -> impl Future<Output = Result<Connected<Self::Io>, CloseReason>> + Send;
}

/// One backend address as configured: a host (IP literal or DNS name) and a port. Names are
/// resolved at connect time, so a backend that moves is followed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendAddr {
    /// An IP literal (IPv6 without brackets) or a DNS name.
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// What a session's backend connection goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendTarget {
    /// A TCP address.
    Addr(SocketAddr),
    /// A child process spawned for the session, talking on its stdin and stdout.
    Child {
        /// Its process id.
        pid: u32,
        /// The program, for logs.
        program: Box<str>,
    },
}

impl BackendTarget {
    /// The TCP address, for a network backend.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Addr(addr) => Some(*addr),
            Self::Child { .. } => None,
        }
    }
}

impl fmt::Display for BackendTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(addr) => addr.fmt(f),
            Self::Child { pid, program } => write!(f, "{program}[{pid}]"),
        }
    }
}
