//! What is known about a session when it closes: its summary, handed to the close observer,
//! and the one close line every session ends with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proxy_core::close::{CloseReason, Fault};
use proxy_core::context::{SessionContext, SessionId};
use proxy_core::gate::Side;
use proxy_core::route::RouteId;
use proxy_core::upstream::BackendTarget;
use tracing::info;

/// What is known about a session when it closes; logged as its close line.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    /// The session's identifier.
    pub id: SessionId,
    /// The listener that accepted it.
    pub listener: Arc<str>,
    /// The real client's address (from the PROXY header when one was accepted).
    pub client_addr: SocketAddr,
    /// The TCP peer: the client itself, or the load balancer in front of it.
    pub peer_addr: SocketAddr,
    /// The proxy's address the connection was accepted on.
    pub local_addr: SocketAddr,
    /// The route it was given, if it got that far.
    pub route: Option<RouteId>,
    /// The backend's TCP address, when a network backend served it.
    pub backend_addr: Option<SocketAddr>,
    /// What served it (an address or a child process), if anything did.
    pub backend: Option<BackendTarget>,
    /// The server name the client's ClientHello asked for.
    pub sni: Option<Box<str>>,
    /// The authenticated principal (from the client certificate, later SASL).
    pub principal: Option<Box<str>>,
    /// Bytes read from the client.
    pub bytes_from_client: u64,
    /// Bytes read from the backend.
    pub bytes_from_backend: u64,
    /// From accept to close.
    pub duration: Duration,
    /// Why it ended.
    pub reason: CloseReason,
}

pub(crate) fn summarize(
    cx: &SessionContext,
    listener: Arc<str>,
    reason: CloseReason,
) -> SessionSummary {
    SessionSummary {
        id: cx.id(),
        listener,
        client_addr: cx.client_addr(),
        peer_addr: cx.peer_addr(),
        local_addr: cx.local_addr(),
        route: cx.route().cloned(),
        backend_addr: cx.backend_addr(),
        backend: cx.backend().cloned(),
        sni: cx.sni().map(Box::from),
        principal: cx.auth().principal().map(Box::from),
        bytes_from_client: cx.stats().bytes_from(Side::Client),
        bytes_from_backend: cx.stats().bytes_from(Side::Backend),
        duration: cx.accepted_at().elapsed(),
        reason,
    }
}

/// The one line every session ends with. A close caused by a peer is not an error of ours, so
/// it is `info` whatever the reason; the `fault` field says whose it was.
pub(crate) fn log_close(summary: &SessionSummary) {
    let backend = summary.backend.as_ref().map(ToString::to_string);
    let route = summary.route.as_ref().map(|r| r.as_str());
    info!(
        session.id = summary.id.get(),
        client.addr = %summary.client_addr,
        peer.addr = %summary.peer_addr,
        listener = %summary.listener,
        listener.addr = %summary.local_addr,
        route = route.unwrap_or("-"),
        backend.addr = backend.as_deref().unwrap_or("-"),
        tls.sni = summary.sni.as_deref().unwrap_or("-"),
        auth.principal = summary.principal.as_deref().unwrap_or("-"),
        bytes.from_client = summary.bytes_from_client,
        bytes.from_backend = summary.bytes_from_backend,
        duration_ms = summary.duration.as_millis() as u64,
        reason = %summary.reason,
        reason.label = summary.reason.label(),
        fault = summary.reason.fault().map_or("none", Fault::label),
        "session closed"
    );
}
