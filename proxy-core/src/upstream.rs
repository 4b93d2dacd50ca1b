//! The seam between the frontend and the backend crates: how a session obtains a connection to
//! its route's backend. `proxy-backend` implements [`Connect`]; `proxy-frontend` drives it.
//! Neither crate depends on the other.

use std::future::Future;

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
