//! One client session, from accept to its close line.
//!
//! The frontend state machine is walked explicitly: `Accepted → Routing` (no handshake phases
//! exist for raw TCP yet), the router names a route, the backend connector brings the route's
//! backend state machine to `Ready`, the forwarding gate issues a permit, `Forwarding` runs the
//! stage chain until either side ends it, and `Closed` records why.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use proxy_core::close::{CloseReason, Fault};
use proxy_core::codec::RawCodec;
use proxy_core::context::{SessionContext, SessionId};
use proxy_core::forward::forward;
use proxy_core::gate::Side;
use proxy_core::io::PrefixedIo;
use proxy_core::proxy_protocol::ProxyProtocolMode;
use proxy_core::route::{ForwardingGate, RouteId, Router};
use proxy_core::stage::StageChain;
use proxy_core::state::{FrontendEvent, FrontendState};
use proxy_core::upstream::Connect;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, debug, field, info, info_span};

use crate::frontend::Frontend;
use crate::listener::ListenerSpec;
use crate::proxy_header;
use crate::sessions::Registration;

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
    /// The route it was given, if it got that far.
    pub route: Option<RouteId>,
    /// The backend address that served it, if one did.
    pub backend_addr: Option<SocketAddr>,
    /// Bytes read from the client.
    pub bytes_from_client: u64,
    /// Bytes read from the backend.
    pub bytes_from_backend: u64,
    /// From accept to close.
    pub duration: Duration,
    /// Why it ended.
    pub reason: CloseReason,
}

/// Runs a session to its end and writes its close line.
pub(crate) async fn run<R: Router, C: Connect>(
    stream: TcpStream,
    peer: SocketAddr,
    spec: Arc<ListenerSpec>,
    frontend: Arc<Frontend<R, C>>,
    force_close: CancellationToken,
) {
    let local = stream.local_addr().unwrap_or(spec.bind);
    let mut cx = SessionContext::new(
        spec.name.clone(),
        peer,
        local,
        spec.requires,
        frontend.live.clone(),
    );
    // The client's address is known only after a PROXY header (if any) has been read.
    let span = info_span!(
        "session",
        session.id = cx.id().get(),
        peer.addr = %peer,
        client.addr = field::Empty,
        listener = %spec.name,
    );
    async move {
        let registration = frontend.sessions.register(&cx, spec.name.clone());
        debug!("accepted");
        let reason = drive(
            stream,
            &mut cx,
            &spec,
            &frontend,
            &registration,
            &force_close,
        )
        .await;
        let summary = summarize(&cx, spec.name.clone(), reason);
        log_close(&summary);
        frontend.closes.count(&summary.reason);
        if let Some(observer) = &frontend.on_close {
            observer(&summary);
        }
    }
    .instrument(span)
    .await;
}

/// Walks the frontend state machine until the session closes; returns why it closed.
async fn drive<R: Router, C: Connect>(
    client: TcpStream,
    cx: &mut SessionContext,
    spec: &ListenerSpec,
    frontend: &Frontend<R, C>,
    registration: &Registration,
    force_close: &CancellationToken,
) -> CloseReason {
    // Sluice adds no delay of its own: small writes leave at once.
    if let Err(err) = client.set_nodelay(true) {
        debug!(error = %err, "could not set TCP_NODELAY");
    }
    let handshake = handshake_and_forward(client, cx, spec, frontend, registration, force_close);
    let reason = match handshake.await {
        Ok(reason) | Err(reason) => reason,
    };
    debug!(reason = %reason, "closing");
    reason
}

/// The handshake phases, then routing and forwarding.
async fn handshake_and_forward<R: Router, C: Connect>(
    mut client: TcpStream,
    cx: &mut SessionContext,
    spec: &ListenerSpec,
    frontend: &Frontend<R, C>,
    registration: &Registration,
    force_close: &CancellationToken,
) -> Result<CloseReason, CloseReason> {
    let mut state = FrontendState::Accepted;
    let mut early_bytes = BytesMut::new();
    if spec.proxy_protocol.mode != ProxyProtocolMode::Off {
        let deadline = Instant::now() + spec.proxy_protocol.timeout;
        state = state.on(FrontendEvent::AwaitProxyHeader { deadline }, cx)?;
        let read = proxy_header::read(&mut client, cx, &spec.proxy_protocol, deadline);
        let result = tokio::select! {
            () = force_close.cancelled() => Err(CloseReason::Shutdown),
            result = read => result,
        };
        registration.set_client_addr(cx.client_addr());
        Span::current().record("client.addr", field::display(cx.client_addr()));
        early_bytes = result?;
    } else {
        Span::current().record("client.addr", field::display(cx.client_addr()));
    }
    let state = state.on(FrontendEvent::Route, cx)?;
    let client = PrefixedIo::new(early_bytes.freeze(), client);
    forward_session(client, cx, spec, frontend, force_close, state).await
}

async fn forward_session<R: Router, C: Connect>(
    client: PrefixedIo<TcpStream>,
    cx: &mut SessionContext,
    spec: &ListenerSpec,
    frontend: &Frontend<R, C>,
    force_close: &CancellationToken,
    state: FrontendState,
) -> Result<CloseReason, CloseReason> {
    let route = frontend
        .router
        .route(cx)
        .map_err(|_| CloseReason::NoRoute)?;
    cx.set_route(route.clone());
    let connected = tokio::select! {
        () = force_close.cancelled() => return Err(CloseReason::Shutdown),
        connected = frontend.connector.connect(&route, cx) => connected?,
    };
    let permit = ForwardingGate::check(cx, &connected.state)
        .map_err(|closed| CloseReason::Internal(closed.to_string().into()))?;
    let state = state.on(FrontendEvent::Forward(permit), cx)?;
    debug!(backend.addr = ?cx.backend_addr(), route = %route, "forwarding");
    let stages = spec
        .stages
        .iter()
        .map(|factory| factory.new_stage(cx))
        .collect();
    let mut chain = StageChain::new(stages);
    let reason = forward(
        client,
        connected.io,
        RawCodec,
        &mut chain,
        cx,
        spec.limits,
        force_close,
    )
    .await;
    state.on(FrontendEvent::Close(reason.clone()), cx)?;
    Ok(reason)
}

fn summarize(cx: &SessionContext, listener: Arc<str>, reason: CloseReason) -> SessionSummary {
    SessionSummary {
        id: cx.id(),
        listener,
        client_addr: cx.client_addr(),
        peer_addr: cx.peer_addr(),
        route: cx.route().cloned(),
        backend_addr: cx.backend_addr(),
        bytes_from_client: cx.stats().bytes_from(Side::Client),
        bytes_from_backend: cx.stats().bytes_from(Side::Backend),
        duration: cx.accepted_at().elapsed(),
        reason,
    }
}

/// The one line every session ends with. A close caused by a peer is not an error of ours, so
/// it is `info` whatever the reason; the `fault` field says whose it was.
fn log_close(summary: &SessionSummary) {
    let backend = summary.backend_addr.map(|a| a.to_string());
    let route = summary.route.as_ref().map(|r| r.as_str());
    info!(
        session.id = summary.id.get(),
        client.addr = %summary.client_addr,
        peer.addr = %summary.peer_addr,
        listener = %summary.listener,
        route = route.unwrap_or("-"),
        backend.addr = backend.as_deref().unwrap_or("-"),
        bytes.from_client = summary.bytes_from_client,
        bytes.from_backend = summary.bytes_from_backend,
        duration_ms = summary.duration.as_millis() as u64,
        reason = %summary.reason,
        reason.label = summary.reason.label(),
        fault = summary.reason.fault().map_or("none", Fault::label),
        "session closed"
    );
}
