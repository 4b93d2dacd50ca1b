//! `Forwarding` and `Draining`: the session's stage chain is built (its factories see the whole
//! PROXY header, which entering `Forwarding` then releases), and the forwarder moves messages
//! until either side ends the session; when the proxy starts draining, the machine enters
//! `Draining` with its deadline and the forwarder finishes in-flight work within it.

use proxy_core::audit::{AuditDetail, AuditKind};
use proxy_core::close::CloseReason;
use proxy_core::codec::{Codec, Protocol};
use proxy_core::forward::{Forwarded, Forwarder};
use proxy_core::io::IntoTcp;
use proxy_core::route::{ForwardPermit, RouteId, Router};
use proxy_core::stage::{StageChain, Stages};
use proxy_core::state::{BackendEvent, FrontendEvent};
use proxy_core::upstream::Connect;
use proxy_kafka::Kafka;
use proxy_kafka::broker_map::BrokerAddressRewrite;
use proxy_kafka::sasl::{ListenerSasl, SaslInspect, SaslReauthenticate};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tracing::debug;

use super::{Driver, ForwardingPhase};
use crate::spec::KafkaListener;

impl<R: Router, C: Connect> Driver<'_, R, C> {
    /// A Kafka session's stages, in request order: SASL first (answered or watched before
    /// anything else), then broker-address rewriting, then the configured stages. Responses
    /// cross them the other way, so rewriting is the last stage a response meets before the
    /// SASL stage and the client: no configured stage can put a broker's own address back.
    pub(super) fn kafka_stages(&self, kafka: &KafkaListener, route: &RouteId) -> Stages<Kafka> {
        let mut stages = Stages::new();
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
                    self.authenticated_at.unwrap_or_else(Instant::now),
                )));
            }
        }
        stages.push(Box::new(BrokerAddressRewrite::new(
            kafka.brokers.clone(),
            route.clone(),
            self.served.broker_listeners.clone(),
        )));
        stages.extend(kafka.stages.iter().map(|f| f.new_stage(self.cx)));
        stages
    }

    /// Enters `Forwarding` with `permit`; the phase it returns forwards through `stages` until
    /// the session ends, and if the proxy starts draining first, enters `Draining` and
    /// finishes within its deadline.
    ///
    /// Not an async fn: one would keep room for its arguments beside the forwarder that took
    /// them, for as long as the session forwards. The phase holds the forwarder, the chain and
    /// the driver alone.
    pub(super) fn forward_through<'s, P, K, Io>(
        &'s mut self,
        client: Io,
        backend: C::Io,
        codec: K,
        stages: Stages<P>,
        permit: ForwardPermit,
    ) -> Result<ForwardingPhase<'s>, CloseReason>
    where
        P: Protocol,
        K: Codec<P> + Send + 's,
        Io: AsyncRead + AsyncWrite + IntoTcp + Unpin + Send + 's,
    {
        let mut chain = StageChain::from(stages);
        self.step(FrontendEvent::Forward(permit))?;
        // Before anything is reported of the forwarding: what stages learn now (a tenant) is
        // in every event from the first on.
        chain.start(self.cx);
        debug!(backend.addr = ?self.cx.backend(), route = ?self.cx.route(), "forwarding");
        self.cx
            .audit(|| AuditDetail::ConnectionOpen, AuditKind::Connection);
        // The phase closes both transports as soon as forwarding ends.
        let (client_fin, backend_fin) = (client.close_sends_fin(), backend.close_sends_fin());
        let mut forwarder = Forwarder::new(client, backend, codec, self.served.spec.limits.clone())
            .with_fin_on_close(client_fin, backend_fin);
        if let Some(budget) = &self.served.spec.frame_budget {
            forwarder = forwarder.with_frame_budget(budget.clone());
        }
        Ok(Box::pin(async move {
            let reason = self.forward(&mut forwarder, &mut chain).await?;
            if !reason.is_reset() && reason != CloseReason::DrainCompleted {
                // Nothing to wait for: both transports close here (`with_fin_on_close`).
                drop(forwarder);
                return Ok(reason);
            }
            // A peer that reset is passed on as a reset, after what it sent was delivered; a
            // drained client's last answers are delivered before its connection closes.
            // Boxed: it holds the forwarder by value, and the phase would otherwise carry room
            // for a second forwarder from the start (an idle session's memory is mostly its
            // forwarding phase).
            let close = Box::pin(forwarder.close(&reason));
            tokio::select! {
                () = self.served.stop.force_close.cancelled() => {}
                () = close => {}
            }
            Ok(reason)
        }))
    }

    /// Forwards until the session ends; if the proxy starts draining first, enters `Draining`
    /// and finishes within its deadline. By reference, and returning before draining rather
    /// than draining in a match arm: the phase holds room for the forwarding's waits or for
    /// the close, one at a time, not for a result kept across the drain.
    async fn forward<P, K, Io>(
        &mut self,
        forwarder: &mut Forwarder<K, Io, C::Io>,
        chain: &mut StageChain<P>,
    ) -> Result<CloseReason, CloseReason>
    where
        P: Protocol,
        K: Codec<P>,
        Io: AsyncRead + AsyncWrite + IntoTcp + Unpin,
    {
        let stop = &self.served.stop;
        match forwarder.run(chain, self.cx, &stop.signal).await {
            Forwarded::Closed(reason) => return Ok(reason),
            Forwarded::DrainRequested => {}
        }
        let drain_timeout = self.served.drain_timeout;
        let deadline = Instant::now() + drain_timeout;
        self.step(FrontendEvent::Drain { deadline })?;
        self.backend_step(BackendEvent::Drain);
        debug!(deadline_ms = drain_timeout.as_millis() as u64, "draining");
        let deadline = self.machine.deadline();
        // Boxed: its timers are needed only once the proxy drains.
        Ok(Box::pin(forwarder.drain(chain, self.cx, deadline, &stop.signal)).await)
    }
}
