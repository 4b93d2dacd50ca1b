//! The `Routing` phase: the router names a route; a Kafka session for one broker (by its port,
//! or its server name on an SNI gateway) is pinned to that broker's own address, discovering
//! the cluster's brokers first if none is known; the connector brings the route's backend
//! machine to `Ready`; the forwarding gate issues the permit `Forwarding` demands.

use proxy_core::close::CloseReason;
use proxy_core::codec::RawCodec;
use proxy_core::io::IntoTcp;
use proxy_core::route::{ForwardingGate, RouteId, Router};
use proxy_core::upstream::{BackendAddr, Connect, ConnectRequest, Connected};
use proxy_kafka::{KafkaCodec, KafkaRefusal};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info};

use super::{Driver, ForwardingPhase};
use crate::discovery::discover_and_serve;
use crate::spec::{KafkaListener, ListenerProtocol};

impl<R: Router, C: Connect> Driver<'_, R, C> {
    /// Routes the session and connects its backend; returns the forwarding phase.
    pub(super) async fn route_and_forward<Io>(
        &mut self,
        client: Io,
    ) -> Result<ForwardingPhase<'_>, CloseReason>
    where
        Io: AsyncRead + AsyncWrite + IntoTcp + Unpin + Send + 'static,
    {
        let route = self
            .frontend
            .router
            .route(self.cx)
            .map_err(|_| CloseReason::NoRoute)?;
        self.cx.set_route(route.clone());
        let pinned = match self.served.spec.kafka() {
            // Boxed: discovery's state is held only while it runs.
            Some(kafka) => Box::pin(self.pin_broker(&route, kafka)).await?,
            None => None,
        };
        let request = ConnectRequest::for_session(&route, self.cx).pinned_to(pinned.as_ref());
        // Boxed: connecting (TLS, SASL, a child process) takes kilobytes of state, which held
        // inline would be allocated for every session's handshakes, plain ones included.
        let connect = Box::pin(self.frontend.connector.connect(request));
        let connected = tokio::select! {
            () = self.served.stop.force_close.cancelled() => return Err(CloseReason::Shutdown),
            connected = connect => connected?,
        };
        // Taken apart, so nothing of it but the transport stays in this future.
        let Connected { io, state, target } = connected;
        self.cx.set_backend(target);
        let permit = ForwardingGate::check(self.cx, &state)
            .map_err(|closed| CloseReason::Internal(closed.into()))?;
        self.backend = Some(state);
        // The protocol's chain and codec, then the forwarding phase.
        match &self.served.spec.protocol {
            ListenerProtocol::Kafka(kafka) => {
                let stages = self.kafka_stages(kafka, &route);
                let codec = KafkaCodec::new(kafka.max_frame_size)
                    .with_max_request_size(kafka.max_request_size)
                    .with_max_in_flight(kafka.max_in_flight_requests)
                    .with_metrics(kafka.metrics.clone());
                self.forward_through(client, io, codec, stages, permit)
            }
            ListenerProtocol::Tcp { stages } => {
                let stages = stages.iter().map(|f| f.new_stage(self.cx)).collect();
                self.forward_through(client, io, RawCodec, stages, permit)
            }
        }
    }

    /// The broker a session for one broker must use, discovering the cluster's brokers first if
    /// that one is not known yet; `None` for a session that may use any (the bootstrap port).
    async fn pin_broker(
        &mut self,
        route: &RouteId,
        kafka: &KafkaListener,
    ) -> Result<Option<BackendAddr>, CloseReason> {
        let by_name = || {
            self.cx
                .sni()
                .and_then(|name| kafka.brokers.node_for_server_name(name))
        };
        let Some(node_id) = self.served.broker.or_else(by_name) else {
            return Ok(None);
        };
        if kafka.brokers.upstream(route, node_id).is_none() {
            // A client that remembered a broker across a restart: ask the cluster. Through the
            // map's gate: one discovery at a time, and none again soon after one succeeded, so
            // clients naming brokers that do not exist cannot make the proxy flood the cluster.
            let discovery = kafka.brokers.on_demand().run(route, async {
                info!(
                    broker.node_id = node_id,
                    "discovering the cluster's brokers for a session"
                );
                discover_and_serve(
                    &self.frontend.connector,
                    route,
                    &kafka.brokers,
                    self.served.broker_listeners.as_ref(),
                )
                .await
            });
            tokio::select! {
                () = self.served.stop.force_close.cancelled() => return Err(CloseReason::Shutdown),
                discovered = discovery => discovered?,
            };
        }
        let upstream = kafka
            .brokers
            .upstream(route, node_id)
            .ok_or(KafkaRefusal::UnknownBroker { node_id })?;
        // The host is the cluster's word: escaped (`?`).
        debug!(
            broker.node_id = node_id,
            broker.host = ?upstream.host,
            broker.port = upstream.port,
            "session is for one broker"
        );
        Ok(Some(upstream))
    }
}
