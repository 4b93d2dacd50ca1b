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

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use proxy_core::audit::{AuditDetail, AuditKind};
use proxy_core::close::{CloseReason, Fault};
use proxy_core::context::SessionContext;
use proxy_core::gate::Side;
use proxy_core::route::Router;
use proxy_core::state::{BackendEvent, BackendState, FrontendEvent, FrontendMachine, Phases};
use proxy_core::stop::StopSignal;
use proxy_core::upstream::Connect;
use proxy_kafka::broker_map::BrokerListeners;
use proxy_kafka::sasl::Negotiation;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, field, info_span};

use crate::admission::SourceGuard;
use crate::frontend::{Frontend, Lifecycle};
use crate::sessions::Registration;
use crate::spec::ListenerSpec;
use crate::summary::{SessionSummary, log_close, summarize};

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
    /// How shutdown reaches its sessions: shared, so a session holds no tokens of its own.
    pub(crate) stop: Stop,
}

/// How shutdown reaches a listener's sessions.
pub(crate) struct Stop {
    /// Cancelled when the proxy starts draining: the session enters `Draining`.
    pub(crate) drain: CancellationToken,
    /// Cancelled to close the session at once.
    pub(crate) force_close: CancellationToken,
    /// The two tokens as a forwarding session waits for them: its waker kept in one table
    /// the listener's sessions share, rather than a wait on each token in every session.
    pub(crate) signal: StopSignal,
}

impl Stop {
    /// The tokens of `lifecycle` that reach sessions. Spawns the task that raises `signal`
    /// with the tokens: called on the runtime, by a listener starting.
    pub(crate) fn of(lifecycle: &Lifecycle) -> Self {
        let drain = lifecycle.stop_accepting.clone();
        let force_close = lifecycle.force_close.clone();
        Self {
            signal: StopSignal::following(drain.clone(), force_close.clone()),
            drain,
            force_close,
        }
    }
}

/// A session, from accept to its close line: the future the listener spawns. `local` is the
/// address the connection was accepted on, when the listener knows it (it is bound to one);
/// otherwise it is asked of the socket.
///
/// Not an async fn, and what follows the session is a `map`, not an `await`: either would
/// keep room for the arguments, or for the session's whole future, a second time in every
/// session's task.
pub(crate) fn run<R: Router, C: Connect>(
    stream: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    served: Arc<Served>,
    frontend: Arc<Frontend<R, C>>,
) -> impl Future<Output = ()> + Send {
    let spec = &served.spec;
    let local = local.unwrap_or_else(|| stream.local_addr().unwrap_or(spec.bind));
    let mut cx = SessionContext::new(
        spec.name.clone(),
        peer,
        local,
        spec.requires,
        frontend.live.clone(),
    );
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
    drive(stream, cx, served, frontend.clone())
        .instrument(span)
        .map(move |summary| {
            // Outside the session's span: the close line carries every field once, itself.
            log_close(&summary);
            frontend.closes.count(&summary.listener, &summary.reason);
            if let Some(observer) = &frontend.on_close {
                observer(&summary);
            }
        })
}

/// Runs a session's phases to their end, leaving both machines closed whichever way it ends;
/// returns what its close line says.
///
/// An async block, not an async fn: an async fn copies its arguments into locals of its own,
/// and every session would hold its context twice. The phases run here rather than in a
/// method of the driver's: each level of async code keeps room for what it was given.
fn drive<R: Router, C: Connect>(
    stream: TcpStream,
    cx: SessionContext,
    served: Arc<Served>,
    frontend: Arc<Frontend<R, C>>,
) -> impl Future<Output = SessionSummary> + Send {
    let mut cx = cx;
    async move {
        let registration = frontend.sessions.register(&cx, served.spec.name.clone());
        debug!("accepted");
        // Sluice adds no delay of its own: small writes leave at once.
        if let Err(err) = stream.set_nodelay(true) {
            debug!(error = %err, "could not set TCP_NODELAY");
        }
        let mut driver = Driver {
            machine: FrontendMachine::new(&served.phases, served.spec.negotiation()),
            cx: &mut cx,
            served: &served,
            frontend: &frontend,
            registration,
            backend: None,
            authenticated_at: None,
            source: None,
        };
        // Boxed: the handshakes' state is freed as soon as they end. A session that ended
        // before forwarding gets a phase that has ended too: a match whose arm awaited the
        // phase would keep the handshakes' result beside it for the whole session.
        let forwarding = match Box::pin(driver.phases(stream)).await {
            Ok(forwarding) => forwarding,
            Err(reason) => Box::pin(std::future::ready(Err(reason))),
        };
        let reason = match forwarding.await {
            Ok(reason) | Err(reason) => reason,
        };
        let reason = driver.close(reason);
        // Unregistered (the driver holds the registration) before the close is published:
        // whoever hears of it sees it gone.
        drop(driver);
        cx.audit(|| close_detail(&cx, &reason), AuditKind::Connection);
        summarize(&cx, served.spec.name.clone(), reason)
    }
}

/// A session's forwarding phase, ready to run on the driver it borrows. Boxed: its type
/// depends on the transport and the protocol the handshakes chose, and so a session's future
/// holds either the handshakes' state or this, never both side by side.
type ForwardingPhase<'s> =
    Pin<Box<dyn Future<Output = Result<CloseReason, CloseReason>> + Send + 's>>;

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
    /// The session's entry in the registry: it leaves the registry when the driver drops.
    registration: Registration,
    /// The backend machine of the session's route, once connected.
    backend: Option<BackendState>,
    /// When the client authenticated to the proxy (SASL termination or mTLS).
    authenticated_at: Option<Instant>,
    /// The client's source address's share of the listener's per-source limits. Boxed: only
    /// listeners with such limits have one, and every session would carry room for it.
    source: Option<Box<SourceGuard>>,
}

impl<R: Router, C: Connect> Driver<'_, R, C> {
    /// Closes both machines with the reason the session ended; returns the reason the close
    /// line gives.
    fn close(&mut self, reason: CloseReason) -> CloseReason {
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
