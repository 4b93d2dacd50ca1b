//! The `Negotiating` phase of a SASL-terminating Kafka listener: before the session has a
//! route or a backend, the proxy answers ApiVersions, SaslHandshake and SaslAuthenticate
//! itself. Any other request before authentication closes the connection, as a broker does;
//! nothing is forwarded. Bytes the client sent past its last SASL request are returned, to be
//! read first once the session forwards.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseKind};
use kafka_protocol::protocol::Message;
use proxy_core::close::CloseReason;
use proxy_core::codec::Codec;
use proxy_core::context::{AuthMechanism, AuthState, SessionContext};
use proxy_core::gate::Side;
use proxy_core::route::{RouteId, Router};
use proxy_core::upstream::Connect;
use proxy_kafka::exchange::{ExchangeError, write_response};
use proxy_kafka::sasl::{SaslPhase, SaslServer, SaslStep, UNSUPPORTED_VERSION};
use proxy_kafka::{KafkaCodec, KafkaRefusal, KafkaRequest, KafkaResponse};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::{Instant, timeout_at};
use tracing::{info, warn};

use super::KafkaListener;
use super::discovery::{discover, own_context};
use super::sasl::SaslTerminate;
use super::versions::offered_versions;
use crate::frontend::Frontend;

/// The largest frame a client may send before it has authenticated (Kafka brokers'
/// `sasl.server.max.receive.size` is 512 KiB): an unauthenticated client must not make the
/// proxy hold `max_frame_size` for it.
const MAX_UNAUTHENTICATED_FRAME: usize = 512 * 1024;

/// A client that finished authenticating.
#[derive(Debug)]
pub(crate) struct Negotiated {
    /// What the client sent after its last SASL request.
    pub(crate) early: Bytes,
    /// When the client was told it is authenticated (its session lifetime starts then).
    pub(crate) authenticated_at: Instant,
}

/// Runs the negotiation on `client` until the client is authenticated (recorded in `cx`), or
/// the reason the session ends; `deadline` is the `Negotiating` state's.
pub(crate) async fn negotiate<Io, R, C>(
    client: &mut Io,
    cx: &mut SessionContext,
    kafka: &KafkaListener,
    terminate: &SaslTerminate,
    frontend: &Frontend<R, C>,
    deadline: Instant,
) -> Result<Negotiated, CloseReason>
where
    Io: AsyncRead + AsyncWrite + Unpin,
    R: Router,
    C: Connect,
{
    let work = Negotiation {
        client,
        cx,
        kafka,
        terminate,
        frontend,
        codec: KafkaCodec::new(kafka.max_frame_size.min(MAX_UNAUTHENTICATED_FRAME))
            .with_metrics(kafka.metrics.clone()),
    };
    timeout_at(deadline, work.run())
        .await
        .map_err(|_| CloseReason::AuthenticationTimeout)?
}

struct Negotiation<'a, Io, R, C> {
    client: &'a mut Io,
    cx: &'a mut SessionContext,
    kafka: &'a KafkaListener,
    terminate: &'a SaslTerminate,
    frontend: &'a Frontend<R, C>,
    codec: KafkaCodec,
}

impl<Io, R, C> Negotiation<'_, Io, R, C>
where
    Io: AsyncRead + AsyncWrite + Unpin,
    R: Router,
    C: Connect,
{
    async fn run(mut self) -> Result<Negotiated, CloseReason> {
        let termination = &self.terminate.termination;
        let mut server = SaslServer::new(termination.config.clone());
        let mut buf = BytesMut::with_capacity(1024);
        loop {
            while let Some(mut request) =
                self.codec
                    .decode_request(&mut buf)
                    .map_err(|err| CloseReason::Protocol {
                        side: Side::Client,
                        detail: err.detail,
                    })?
            {
                match request.api() {
                    Some(ApiKey::ApiVersions) => {
                        let answer = self.api_versions(&request).await?;
                        self.write(answer).await?;
                    }
                    Some(ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) => {
                        let step = server.on_request(&mut request).map_err(|err| {
                            CloseReason::Protocol {
                                side: Side::Client,
                                detail: format!("SASL request: {err}").into(),
                            }
                        })?;
                        if let (SaslStep::Continue(_), Some(mechanism)) =
                            (&step, server.mechanism())
                        {
                            self.cx.set_auth(AuthState::InProgress {
                                mechanism: AuthMechanism::from(mechanism),
                            });
                        }
                        if let Some(authenticated_at) = self.step(&request, step).await? {
                            return Ok(Negotiated {
                                early: buf.freeze(),
                                authenticated_at,
                            });
                        }
                    }
                    _ => {
                        return Err(KafkaRefusal::NotAuthenticated {
                            api_key: request.api_key(),
                        }
                        .into());
                    }
                }
            }
            let read = self.client.read_buf(&mut buf).await;
            match read {
                Ok(0) => return Err(CloseReason::ClientClosed),
                Ok(_) => {}
                Err(err) => return Err(CloseReason::ClientIo(err.kind())),
            }
        }
    }

    /// Answers one SASL step; `Some(when)` once the client is authenticated.
    async fn step(
        &mut self,
        request: &KafkaRequest,
        step: SaslStep,
    ) -> Result<Option<Instant>, CloseReason> {
        let termination = &self.terminate.termination;
        let ip = self.cx.client_addr().ip();
        match step {
            SaslStep::Continue(response) => {
                self.write(KafkaResponse::answer(request, response)).await?;
                Ok(None)
            }
            SaslStep::Authenticated {
                response,
                principal,
                mechanism,
            } => {
                sleep(termination.succeeded(mechanism, SaslPhase::Initial, ip)).await;
                info!(auth.principal = %principal, mechanism = %mechanism, "client authenticated");
                self.cx.set_auth(AuthState::Authenticated {
                    principal: principal.into(),
                    mechanism: AuthMechanism::from(mechanism),
                });
                self.write(KafkaResponse::answer(request, response)).await?;
                Ok(Some(Instant::now()))
            }
            SaslStep::Failed {
                response,
                mechanism,
                credentials_rejected,
            } => {
                let delay =
                    termination.failed(mechanism, SaslPhase::Initial, ip, credentials_rejected);
                let name = mechanism.map_or("-", |m| m.name());
                if let Some(mechanism) = mechanism {
                    self.cx.set_auth(AuthState::Failed {
                        mechanism: AuthMechanism::from(mechanism),
                    });
                }
                if credentials_rejected {
                    warn!(
                        mechanism = name,
                        delay_ms = delay.as_millis() as u64,
                        "client authentication failed"
                    );
                    sleep(delay).await;
                } else {
                    warn!(mechanism = name, "client SASL exchange refused");
                }
                self.write(KafkaResponse::answer(request, response)).await?;
                Err(CloseReason::AuthenticationFailed {
                    mechanism: name.into(),
                })
            }
        }
    }

    /// The answer to ApiVersions: what every cluster the listener routes to supports.
    async fn api_versions(&mut self, request: &KafkaRequest) -> Result<KafkaResponse, CloseReason> {
        let max = ApiVersionsResponse::VERSIONS.max;
        if request.api_version() > max {
            // As a broker does: an error in v0, with the versions, so the client retries.
            let body = ApiVersionsResponse::default()
                .with_error_code(UNSUPPORTED_VERSION)
                .with_api_keys(self.offered().await?);
            return Ok(KafkaResponse::answer_in_version(
                request,
                0,
                ResponseKind::ApiVersions(body),
            ));
        }
        let body = ApiVersionsResponse::default().with_api_keys(self.offered().await?);
        Ok(KafkaResponse::answer(
            request,
            ResponseKind::ApiVersions(body),
        ))
    }

    async fn offered(
        &mut self,
    ) -> Result<Vec<kafka_protocol::messages::api_versions_response::ApiVersion>, CloseReason> {
        let gateway = &self.kafka.gateway;
        let frontend = self.frontend;
        let listener: Arc<str> = self.cx.listener().into();
        let addr = self.cx.local_addr();
        let requires = self.cx.requires();
        let fetch = |route: RouteId| {
            let mut own = own_context(listener.clone(), addr, requires);
            async move { discover(&frontend.connector, &route, &mut own, gateway).await }
        };
        let clusters = gateway.versions().of_all(&self.kafka.routes, fetch).await?;
        Ok(offered_versions(&clusters))
    }

    async fn write(&mut self, response: KafkaResponse) -> Result<(), CloseReason> {
        write_response(&mut *self.client, &mut self.codec, response)
            .await
            .map_err(|err| match err {
                ExchangeError::Io(err) => CloseReason::ClientIo(err.kind()),
                other => CloseReason::Internal(other.to_string().into()),
            })
    }
}

async fn sleep(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}
