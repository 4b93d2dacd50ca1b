//! One client session, from accept to its close line.
//!
//! The frontend state machine decides and the driver obeys: the machine is built from the
//! listener's phases, and after each phase the driver asks it which phase comes next and until
//! when. `Accepted → AwaitingProxyHeader?` (`proxy_header.rs`) `→ TlsHandshaking?`
//! (`handshake.rs`) `→ Negotiating?` (a Kafka listener that terminates SASL: the client
//! authenticates to the proxy first, `negotiate.rs`) `→ Routing` (the router names a route,
//! the connector brings the route's backend machine to `Ready`, the forwarding gate issues a
//! permit, `route.rs`) `→ Forwarding` (the stage chain runs, `forward.rs`) `→ Draining?` (the
//! proxy is shutting down) `→ Closed`, with the reason on the close line.

mod forward;
mod handshake;
mod negotiate;
mod proxy_header;
mod route;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proxy_core::audit::{AuditDetail, AuditKind};
use proxy_core::close::{CloseReason, Fault};
use proxy_core::context::SessionContext;
use proxy_core::gate::Side;
use proxy_core::route::Router;
use proxy_core::state::{BackendEvent, BackendState, FrontendEvent, FrontendMachine, Phases};
use proxy_core::upstream::Connect;
use proxy_kafka::broker_map::BrokerListeners;
use proxy_kafka::sasl::Negotiation;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, field, info_span};

use crate::admission::SourceGuard;
use crate::frontend::Frontend;
use crate::sessions::Registration;
use crate::spec::ListenerSpec;
use crate::summary::{log_close, summarize};

/// What the sessions of one listening socket share.
pub(crate) struct Served {
    /// The listener's spec (for a broker port: its bootstrap listener's).
    pub(crate) spec: Arc<ListenerSpec>,
    /// The phases its sessions walk, from the spec.
    pub(crate) phases: Phases,
    /// How long a draining session may finish its in-flight work (the lifecycle's).
    pub(crate) drain_timeout: Duration,
    /// The broker this port is for (port-per-broker Kafka listeners): sessions are pinned to it.
    pub(crate) broker: Option<i32>,
    /// Where brokers a session learns are served (port-per-broker Kafka listeners).
    pub(crate) broker_listeners: Option<Arc<dyn BrokerListeners>>,
}

/// How shutdown reaches a session.
pub(crate) struct Stop {
    /// Cancelled when the proxy starts draining: the session enters `Draining`.
    pub(crate) drain: CancellationToken,
    /// Cancelled to close the session at once.
    pub(crate) force_close: CancellationToken,
}

/// Runs a session to its end and writes its close line. `local` is the address the connection
/// was accepted on, when the listener knows it (it is bound to one); otherwise it is asked of
/// the socket.
pub(crate) async fn run<R: Router, C: Connect>(
    stream: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    served: Arc<Served>,
    frontend: Arc<Frontend<R, C>>,
    stop: Stop,
) {
    let spec = &served.spec;
    let local = local.unwrap_or_else(|| stream.local_addr().unwrap_or(spec.bind));
    // Boxed: moved into the future below, it would be kept twice in this one.
    let mut cx = Box::new(SessionContext::new(
        spec.name.clone(),
        peer,
        local,
        spec.requires,
        frontend.live.clone(),
    ));
    if let Some(sink) = &frontend.audit {
        cx.set_audit(sink.clone());
    }
    // The client's address is known only after a PROXY header (if any) has been read.
    let span = info_span!(
        "session",
        session.id = cx.id().get(),
        peer.addr = %peer,
        client.addr = field::Empty,
        listener.name = %spec.name,
    );
    let session_frontend = frontend.clone();
    let summary = async move {
        let frontend = session_frontend;
        let spec = &served.spec;
        let registration = frontend.sessions.register(&cx, spec.name.clone());
        debug!("accepted");
        let mut driver = Driver {
            machine: FrontendMachine::new(&served.phases, spec.negotiation()),
            cx: &mut cx,
            served: &served,
            frontend: &frontend,
            registration: &registration,
            stop: &stop,
            backend: None,
            authenticated_at: None,
            source: None,
        };
        let reason = driver.run(stream).await;
        drop(driver);
        // Unregistered before the close is published: whoever hears of it sees it gone.
        drop(registration);
        cx.audit(|| close_detail(&cx, &reason), AuditKind::Connection);
        summarize(&cx, spec.name.clone(), reason)
    }
    .instrument(span)
    .await;
    // Outside the session's span: the close line carries every field once, itself.
    log_close(&summary);
    frontend.closes.count(&summary.listener, &summary.reason);
    if let Some(observer) = &frontend.on_close {
        observer(&summary);
    }
}

/// The audit event of a session's close.
fn close_detail(cx: &SessionContext, reason: &CloseReason) -> AuditDetail {
    AuditDetail::ConnectionClose {
        bytes_from_client: cx.stats().bytes_from(Side::Client),
        bytes_from_backend: cx.stats().bytes_from(Side::Backend),
        duration: cx.accepted_at().elapsed(),
        reason: reason.label(),
        reason_detail: reason.to_string().into_boxed_str(),
        fault: reason.fault().map(Fault::label),
    }
}

/// One session's phases, and the state machines they walk.
struct Driver<'a, R, C> {
    machine: FrontendMachine<'a, Box<Negotiation>>,
    cx: &'a mut SessionContext,
    served: &'a Served,
    frontend: &'a Frontend<R, C>,
    registration: &'a Registration,
    stop: &'a Stop,
    /// The backend machine of the session's route, once connected.
    backend: Option<BackendState>,
    /// When the client authenticated to the proxy (SASL termination or mTLS).
    authenticated_at: Option<Instant>,
    /// The client's source address's share of the listener's per-source limits.
    source: Option<SourceGuard>,
}

impl<R: Router, C: Connect> Driver<'_, R, C> {
    /// Runs every phase; whichever way the session ends, both machines end closed.
    /// By reference: a future taking the driver by value would hold it twice.
    async fn run(&mut self, client: TcpStream) -> CloseReason {
        // Sluice adds no delay of its own: small writes leave at once.
        if let Err(err) = client.set_nodelay(true) {
            debug!(error = %err, "could not set TCP_NODELAY");
        }
        let reason = match self.phases(client).await {
            Ok(reason) | Err(reason) => reason,
        };
        self.backend_step(BackendEvent::Close);
        let reason = self.machine.close(reason, self.cx);
        debug!(reason.detail = %reason, "closing");
        reason
    }

    /// Applies `event` to the frontend machine. An event its state does not allow leaves it
    /// as it was and ends the session with a typed internal error.
    fn step(&mut self, event: FrontendEvent) -> Result<(), CloseReason> {
        self.machine.on(event, self.cx, Instant::now())?;
        Ok(())
    }

    /// Applies `event` to the backend machine, if the session has one.
    fn backend_step(&mut self, event: BackendEvent) {
        let Some(state) = self.backend.take() else {
            return;
        };
        match state.clone().on(event, Some(self.cx.id())) {
            Ok(next) => self.backend = Some(next),
            Err(err) => {
                debug!(error = %err, "backend machine refused the event");
                self.backend = Some(state);
            }
        }
    }
}
