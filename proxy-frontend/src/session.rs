//! One client session, from accept to its close line.
//!
//! The frontend state machine is walked explicitly: `Accepted → AwaitingProxyHeader?` (when the
//! listener expects PROXY headers) `→ TlsHandshaking?` `→ Negotiating?` (a Kafka listener that
//! terminates SASL: the client authenticates to the proxy first) `→ Routing`, the router names
//! a route, the backend connector brings the route's backend state machine to `Ready`, the
//! forwarding gate issues a permit, `Forwarding` runs the stage chain until either side ends it,
//! and every path ends in `Closed` with the reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use proxy_core::close::{CloseReason, Fault};
use proxy_core::codec::{Codec, RawCodec};
use proxy_core::context::{AuthMechanism, AuthState, SessionContext, SessionId};
use proxy_core::forward::forward;
use proxy_core::gate::Side;
use proxy_core::io::PrefixedIo;
use proxy_core::proxy_protocol::ProxyProtocolMode;
use proxy_core::route::{ForwardPermit, ForwardingGate, RouteId, Router};
use proxy_core::stage::{Protocol, Stage, StageChain};
use proxy_core::state::{FrontendEvent, FrontendState};
use proxy_core::upstream::{BackendTarget, Connect};
use proxy_kafka::sasl::{SaslInspect, SaslReauthenticate};
use proxy_kafka::{Kafka, KafkaCodec, KafkaRefusal};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, Span, debug, field, info, info_span};

use crate::frontend::Frontend;
use crate::kafka::{
    self, BrokerAddressRewrite, GatewayMode, KafkaListener, ListenerSasl, SaslTerminate,
};
use crate::listener::ListenerSpec;
use crate::proxy_header;
use crate::sessions::Registration;
use crate::tls::{self, ListenerTls};

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

/// How shutdown reaches a session.
pub(crate) struct Stop {
    /// Cancelled when the proxy starts draining: a Kafka session closes between requests.
    pub(crate) drain: CancellationToken,
    /// Cancelled at the drain deadline: the session closes at once.
    pub(crate) force_close: CancellationToken,
}

/// Runs a session to its end and writes its close line.
pub(crate) async fn run<R: Router, C: Connect>(
    stream: TcpStream,
    peer: SocketAddr,
    spec: Arc<ListenerSpec>,
    frontend: Arc<Frontend<R, C>>,
    stop: Stop,
) {
    let Stop { drain, force_close } = stop;
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
        let driver = Driver {
            cx: &mut cx,
            spec: &spec,
            frontend: &frontend,
            registration: &registration,
            drain: &drain,
            force_close: &force_close,
            state: FrontendState::Accepted,
            authenticated_at: None,
        };
        let reason = driver.run(stream).await;
        // Unregistered before the close is published: whoever hears of it sees it gone.
        drop(registration);
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

/// Everything one session's phases use, and its frontend state machine.
struct Driver<'a, R, C> {
    cx: &'a mut SessionContext,
    spec: &'a ListenerSpec,
    frontend: &'a Frontend<R, C>,
    registration: &'a Registration,
    drain: &'a CancellationToken,
    force_close: &'a CancellationToken,
    state: FrontendState,
    /// When the client authenticated to the proxy (SASL termination or mTLS).
    authenticated_at: Option<Instant>,
}

impl<R: Router, C: Connect> Driver<'_, R, C> {
    /// Runs every phase; whichever way the session ends, the machine ends in `Closed`.
    async fn run(mut self, client: TcpStream) -> CloseReason {
        // Sluice adds no delay of its own: small writes leave at once.
        if let Err(err) = client.set_nodelay(true) {
            debug!(error = %err, "could not set TCP_NODELAY");
        }
        let reason = match self.phases(client).await {
            Ok(reason) | Err(reason) => reason,
        };
        if let Err(err) = self.step(FrontendEvent::Close(reason.clone())) {
            debug!(error = %err, "session was already closed");
        }
        debug!(reason = %reason, "closing");
        reason
    }

    /// Applies `event` to the frontend machine.
    fn step(&mut self, event: FrontendEvent) -> Result<(), CloseReason> {
        let current = std::mem::replace(&mut self.state, FrontendState::Accepted);
        self.state = current.on(event, self.cx)?;
        Ok(())
    }

    /// The handshake phases, routing, then forwarding; `Ok` and `Err` both carry the reason the
    /// session ended, `Err` for ends before forwarding.
    async fn phases(&mut self, mut client: TcpStream) -> Result<CloseReason, CloseReason> {
        let mut early_bytes = BytesMut::new();
        let policy = &self.spec.proxy_protocol;
        if policy.mode != ProxyProtocolMode::Off {
            let deadline = Instant::now() + policy.timeout;
            self.step(FrontendEvent::AwaitProxyHeader { deadline })?;
            let read = proxy_header::read(&mut client, self.cx, policy, deadline);
            let result = tokio::select! {
                () = self.force_close.cancelled() => Err(CloseReason::Shutdown),
                result = read => result,
            };
            self.registration.set_client_addr(self.cx.client_addr());
            Span::current().record("client.addr", field::display(self.cx.client_addr()));
            early_bytes = result?;
        } else {
            Span::current().record("client.addr", field::display(self.cx.client_addr()));
        }
        let spec = self.spec;
        let Some(tls) = &spec.tls else {
            return self
                .route_and_forward(PrefixedIo::new(early_bytes.freeze(), client))
                .await;
        };
        let deadline = Instant::now() + tls.handshake_timeout();
        self.step(FrontendEvent::StartTls { deadline })?;
        match tls {
            ListenerTls::Passthrough { .. } => {
                let peek = tls::peek_sni(&mut client, early_bytes, deadline, self.cx);
                let hello = tokio::select! {
                    () = self.force_close.cancelled() => Err(CloseReason::Shutdown),
                    hello = peek => hello,
                }?;
                self.route_and_forward(PrefixedIo::new(hello.freeze(), client))
                    .await
            }
            ListenerTls::Terminate(termination) => {
                let io = PrefixedIo::new(early_bytes.freeze(), client);
                let handshake = tls::terminate(io, termination, deadline, self.cx);
                let stream = tokio::select! {
                    () = self.force_close.cancelled() => Err(CloseReason::Shutdown),
                    stream = handshake => stream,
                }?;
                // Boxed: a TLS stream is large, and held inline it would make every plain
                // session's future as big as a TLS one.
                Box::pin(self.route_and_forward(stream)).await
            }
        }
    }

    /// Authenticates the client first when the listener terminates SASL, then routes.
    async fn route_and_forward<Io>(&mut self, client: Io) -> Result<CloseReason, CloseReason>
    where
        Io: AsyncRead + AsyncWrite + Unpin,
    {
        let spec = self.spec;
        if let Some(kafka) = &spec.kafka
            && let Some(ListenerSasl::Terminate(terminate)) = &kafka.sasl
        {
            // Boxed: only SASL-terminating sessions carry the negotiation's state.
            return Box::pin(self.authenticate_then_route(client, kafka, terminate)).await;
        }
        self.step(FrontendEvent::Route)?;
        self.routed(client).await
    }

    /// The `Negotiating` phase: the client authenticates to the proxy before any route or
    /// backend exists; a client certificate's principal may stand in for it.
    async fn authenticate_then_route<Io>(
        &mut self,
        mut client: Io,
        kafka: &KafkaListener,
        terminate: &SaslTerminate,
    ) -> Result<CloseReason, CloseReason>
    where
        Io: AsyncRead + AsyncWrite + Unpin,
    {
        let mtls_principal = terminate
            .accept_mtls_principal
            .then(|| self.cx.tls().and_then(|tls| tls.principal.clone()))
            .flatten();
        if let Some(principal) = mtls_principal {
            debug!(auth.principal = %principal, "authenticated by the client certificate");
            self.cx.set_auth(AuthState::Authenticated {
                principal,
                mechanism: AuthMechanism::Mtls,
            });
            self.authenticated_at = Some(Instant::now());
            self.step(FrontendEvent::Route)?;
            return self.routed(client).await;
        }
        let deadline = Instant::now() + terminate.timeout;
        self.step(FrontendEvent::StartNegotiation { deadline })?;
        let frontend = self.frontend;
        let negotiation =
            kafka::negotiate(&mut client, self.cx, kafka, terminate, frontend, deadline);
        // A client still authenticating when the proxy drains has nothing in flight: it is
        // closed at once and reconnects elsewhere.
        let negotiated = tokio::select! {
            () = self.drain.cancelled() => Err(CloseReason::DrainCompleted),
            negotiated = negotiation => negotiated,
        }?;
        self.authenticated_at = Some(negotiated.authenticated_at);
        self.step(FrontendEvent::Route)?;
        self.routed(PrefixedIo::new(negotiated.early, client)).await
    }

    /// Routes the session, connects its backend and forwards until it ends.
    async fn routed<Io>(&mut self, client: Io) -> Result<CloseReason, CloseReason>
    where
        Io: AsyncRead + AsyncWrite + Unpin,
    {
        let route = self
            .frontend
            .router
            .route(self.cx)
            .map_err(|_| CloseReason::NoRoute)?;
        self.cx.set_route(route.clone());
        if let Some(kafka) = &self.spec.kafka {
            self.pin_broker(&route, kafka).await?;
        }
        let connected = tokio::select! {
            () = self.force_close.cancelled() => return Err(CloseReason::Shutdown),
            connected = self.frontend.connector.connect(&route, self.cx) => connected?,
        };
        let permit = ForwardingGate::check(self.cx, &connected.state)
            .map_err(|closed| CloseReason::Internal(closed.to_string().into()))?;
        // Stage factories see the whole PROXY header (TLVs included) and keep what they need;
        // entering `Forwarding` releases it.
        if let Some(kafka) = &self.spec.kafka {
            let mut stages: Vec<Box<dyn Stage<Kafka>>> = Vec::new();
            // First on requests: SASL requests are answered (or watched) before anything else.
            match &kafka.sasl {
                None => {}
                Some(ListenerSasl::Inspect {
                    mechanisms,
                    metrics,
                }) => stages.push(Box::new(SaslInspect::new(
                    mechanisms.clone(),
                    metrics.clone(),
                ))),
                Some(ListenerSasl::Terminate(terminate)) => {
                    let principal = self.cx.auth().principal().unwrap_or_default().into();
                    stages.push(Box::new(SaslReauthenticate::new(
                        terminate.termination.clone(),
                        principal,
                        self.cx.client_addr().ip(),
                        self.authenticated_at.unwrap_or_else(Instant::now),
                    )));
                }
            }
            stages.push(Box::new(BrokerAddressRewrite::new(
                kafka.gateway.clone(),
                route.clone(),
            )));
            stages.extend(kafka.stages.iter().map(|f| f.new_stage(self.cx)));
            let codec = KafkaCodec::new(kafka.max_frame_size).with_metrics(kafka.metrics.clone());
            // Boxed: Kafka sessions' futures stay out of raw TCP sessions' size.
            return Box::pin(self.forward_through(
                client,
                connected.io,
                codec,
                stages,
                permit,
                &route,
            ))
            .await;
        }
        let stages = self
            .spec
            .stages
            .iter()
            .map(|f| f.new_stage(self.cx))
            .collect();
        self.forward_through(client, connected.io, RawCodec, stages, permit, &route)
            .await
    }

    /// Enters `Forwarding` with `permit` and forwards through `stages` until the session ends.
    async fn forward_through<P, K, Io>(
        &mut self,
        client: Io,
        backend: C::Io,
        codec: K,
        stages: Vec<Box<dyn Stage<P>>>,
        permit: ForwardPermit,
        route: &RouteId,
    ) -> Result<CloseReason, CloseReason>
    where
        P: Protocol,
        K: Codec<P>,
        Io: AsyncRead + AsyncWrite + Unpin,
    {
        let mut chain = StageChain::new(stages);
        self.step(FrontendEvent::Forward(permit))?;
        debug!(backend = ?self.cx.backend(), route = %route, "forwarding");
        Ok(forward(
            client,
            backend,
            codec,
            &mut chain,
            self.cx,
            self.spec.limits,
            self.drain,
            self.force_close,
        )
        .await)
    }

    /// Pins a session for one broker (by its port, or its server name on an SNI gateway) to
    /// that broker's own address, discovering the cluster's brokers first if none is known.
    async fn pin_broker(
        &mut self,
        route: &RouteId,
        kafka: &KafkaListener,
    ) -> Result<(), CloseReason> {
        let node_id = match (kafka.node_id, kafka.gateway.mode()) {
            (Some(node_id), _) => node_id,
            (
                None,
                GatewayMode::Sni {
                    broker_host_pattern,
                    ..
                },
            ) => {
                match self
                    .cx
                    .sni()
                    .and_then(|name| broker_host_pattern.node_id(name))
                {
                    Some(node_id) => node_id,
                    None => return Ok(()),
                }
            }
            (None, GatewayMode::PortPerBroker { .. }) => return Ok(()),
        };
        if kafka.gateway.upstream(route, node_id).is_none() {
            // The connector goes to the cluster's bootstrap servers: nothing is pinned yet.
            let discovery =
                kafka::discover(&self.frontend.connector, route, self.cx, &kafka.gateway);
            tokio::select! {
                () = self.force_close.cancelled() => return Err(CloseReason::Shutdown),
                discovered = discovery => discovered?,
            }
        }
        let upstream = kafka
            .gateway
            .upstream(route, node_id)
            .ok_or(KafkaRefusal::UnknownBroker { node_id })?;
        debug!(broker.node_id = node_id, broker.addr = %upstream, "session is for one broker");
        self.cx.pin_backend(upstream);
        Ok(())
    }
}

fn summarize(cx: &SessionContext, listener: Arc<str>, reason: CloseReason) -> SessionSummary {
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
fn log_close(summary: &SessionSummary) {
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
