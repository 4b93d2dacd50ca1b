//! The `Negotiating` phase's I/O: before the session has a route or a backend, the client's
//! requests go to the state's sans-IO negotiation, which answers ApiVersions (with versions the
//! driver fetches from the listener's clusters), SaslHandshake and SaslAuthenticate, and
//! refuses anything else, as a broker does. Nothing is forwarded. Bytes the client sent past
//! its last SASL request are kept, to be read first once the session forwards.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use proxy_core::close::{CloseReason, Fault, InternalError, Refusal};
use proxy_core::codec::Codec;
use proxy_core::context::SessionContext;
use proxy_core::gate::Side;
use proxy_core::io::{IntoTcp, PrefixedIo};
use proxy_core::route::{RouteId, Router};
use proxy_core::sasl::PendingRefused;
use proxy_core::state::{FrontendEvent, InvalidEvent};
use proxy_core::upstream::Connect;
use proxy_kafka::broker_map::{BrokerListeners, offered_versions};
use proxy_kafka::client::{ExchangeError, write_response};
use proxy_kafka::sasl::{
    MAX_UNAUTHENTICATED_FRAME, Negotiation, NegotiationStep, SaslRefusal, answer_api_versions,
};
use proxy_kafka::{KafkaCodec, KafkaResponse};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::{Instant, timeout_at};

use super::{Driver, ForwardingPhase};
use crate::discovery::discover_and_serve;
use crate::frontend::Frontend;
use crate::spec::KafkaListener;

impl<R: Router, C: Connect> Driver<'_, R, C> {
    /// Runs the negotiation the machine holds until the client is authenticated, within the
    /// state's deadline, then routes; returns the forwarding phase.
    pub(super) async fn negotiate_then_route<Io>(
        &mut self,
        mut client: Io,
    ) -> Result<ForwardingPhase<'_>, CloseReason>
    where
        Io: AsyncRead + AsyncWrite + IntoTcp + Unpin + Send + 'static,
    {
        let state = self.machine.state().name();
        let (Some((deadline, negotiation)), Some(kafka)) =
            (self.machine.negotiating(), self.served.spec.kafka())
        else {
            // Only a Kafka listener that terminates SASL has this phase.
            return Err(InvalidEvent {
                machine: "frontend",
                state,
                event: "negotiate",
            }
            .into());
        };
        let clusters = Clusters {
            kafka,
            frontend: self.frontend,
            broker_listeners: self.served.broker_listeners.as_ref(),
        };
        // Counted as authenticating until the exchange ends, whichever way it does.
        let termination = negotiation.termination();
        let pending = match termination.pending.enter(self.cx.client_addr().ip()) {
            Ok(pending) => pending,
            Err(refused) => {
                let why = match refused {
                    PendingRefused::Listener => SaslRefusal::ListenerPending,
                    PendingRefused::Source => SaslRefusal::SourcePending,
                };
                termination.metrics.record_refused(why);
                return Err(CloseReason::Refused(Box::new(Refusal {
                    label: why.label(),
                    fault: Fault::Downstream,
                    detail: refused.to_string().into(),
                })));
            }
        };
        let exchange = exchange(&mut client, self.cx, negotiation, &clusters, deadline);
        // A client still authenticating when the proxy drains has nothing in flight: it is
        // closed at once and reconnects elsewhere.
        let early = tokio::select! {
            () = self.served.stop.drain.cancelled() => Err(CloseReason::DrainCompleted),
            timed = timeout_at(deadline, exchange) => {
                timed.map_err(|_| CloseReason::AuthenticationTimeout)?
            }
        }?;
        drop(pending);
        self.authenticated_at = Some(Instant::now());
        self.step(FrontendEvent::Authenticated)?;
        self.route_and_forward(PrefixedIo::new(early, client)).await
    }
}

/// Where the API versions a client is told come from: the listener's clusters.
struct Clusters<'a, R, C> {
    kafka: &'a KafkaListener,
    frontend: &'a Frontend<R, C>,
    broker_listeners: Option<&'a std::sync::Arc<dyn BrokerListeners>>,
}

impl<R: Router, C: Connect> Clusters<'_, R, C> {
    /// What every cluster the listener can route to supports, fetched (once at a time, on a
    /// connection of the proxy's own) for clusters not yet known.
    async fn offered(&self) -> Result<Vec<ApiVersion>, CloseReason> {
        let fetch = |route: RouteId| async move {
            let connector = &self.frontend.connector;
            let brokers = &self.kafka.brokers;
            let discovered =
                discover_and_serve(connector, &route, brokers, self.broker_listeners).await?;
            Ok(discovered.versions)
        };
        let clusters = self
            .kafka
            .brokers
            .versions()
            .of_all(&self.kafka.routes, fetch)
            .await?;
        Ok(offered_versions(&clusters))
    }
}

/// Reads requests and writes the negotiation's answers until it says the client is
/// authenticated; returns what the client sent past its last SASL request.
async fn exchange<Io, R, C>(
    client: &mut Io,
    cx: &mut SessionContext,
    negotiation: &mut Negotiation,
    clusters: &Clusters<'_, R, C>,
    deadline: Instant,
) -> Result<Bytes, CloseReason>
where
    Io: AsyncRead + AsyncWrite + Unpin,
    R: Router,
    C: Connect,
{
    let kafka = clusters.kafka;
    let mut codec = KafkaCodec::new(kafka.max_frame_size.min(MAX_UNAUTHENTICATED_FRAME))
        .with_metrics(kafka.metrics.clone());
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        while let Some(request) =
            codec
                .decode_request(&mut buf)
                .map_err(|err| CloseReason::Protocol {
                    side: Side::Client,
                    detail: err.detail,
                })?
        {
            let mut step = negotiation.on_request(request, cx);
            if let NegotiationStep::CheckPassword { request, check } = step {
                let checked = negotiation.termination().check_password(check).await;
                let (checked_step, auth) =
                    negotiation.on_password_checked(&request, checked, cx.client_addr().ip());
                if let Some(auth) = auth {
                    cx.set_auth(auth);
                }
                step = checked_step;
            }
            match step {
                NegotiationStep::Answer(response) => {
                    write(client, &mut codec, response).await?;
                }
                NegotiationStep::ApiVersions(request) => {
                    let offered = clusters.offered().await?;
                    write(client, &mut codec, answer_api_versions(&request, offered)).await?;
                }
                NegotiationStep::Authenticated(response) => {
                    write(client, &mut codec, response).await?;
                    return Ok(buf.freeze());
                }
                NegotiationStep::Refuse {
                    response,
                    delay,
                    reason,
                } => {
                    sleep(delay_within(delay, deadline, Instant::now())).await;
                    if let Some(response) = response {
                        write(client, &mut codec, response).await?;
                    }
                    return Err(reason);
                }
                // Answered above.
                NegotiationStep::CheckPassword { .. } => {
                    return Err(CloseReason::Internal(InternalError::BlockingTask(
                        "a password check asked for another".into(),
                    )));
                }
            }
        }
        match client.read_buf(&mut buf).await {
            // Not an orderly close: the client left without authenticating.
            Ok(0) => return Err(CloseReason::ClientClosedBeforeAuthentication),
            Ok(_) => {}
            Err(err) => return Err(CloseReason::ClientIo(err.kind())),
        }
    }
}

async fn write<Io>(
    client: &mut Io,
    codec: &mut KafkaCodec,
    response: KafkaResponse,
) -> Result<(), CloseReason>
where
    Io: AsyncWrite + Unpin,
{
    write_response(client, codec, response)
        .await
        .map_err(|err| match err {
            ExchangeError::Io(err) => CloseReason::ClientIo(err.kind()),
            ExchangeError::Encode(err) => CloseReason::Internal(InternalError::Encode(err)),
            // Writing reads nothing, so no other kind of failure describes a write.
            _ => CloseReason::ClientIo(io::ErrorKind::Other),
        })
}

/// How long before the authentication deadline a delayed failure is answered at the latest:
/// time to write the answer before the deadline closes the session.
const ANSWER_MARGIN: Duration = Duration::from_millis(250);

/// The failure delay, cut so that the answer still leaves before the authentication deadline:
/// a client that waited in the password checks' queue must get its failure, not a silent
/// `auth_timeout`.
fn delay_within(delay: Duration, deadline: Instant, now: Instant) -> Duration {
    delay.min(
        deadline
            .saturating_duration_since(now)
            .saturating_sub(ANSWER_MARGIN),
    )
}

async fn sleep(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_delay_never_reaches_past_the_authentication_deadline() {
        let now = Instant::now();
        let far = now + Duration::from_secs(10);
        assert_eq!(
            delay_within(Duration::from_secs(2), far, now),
            Duration::from_secs(2)
        );
        let near = now + Duration::from_secs(1);
        assert_eq!(
            delay_within(Duration::from_secs(5), near, now),
            Duration::from_secs(1) - ANSWER_MARGIN
        );
        assert_eq!(
            delay_within(Duration::from_secs(5), now, now),
            Duration::ZERO
        );
    }
}
