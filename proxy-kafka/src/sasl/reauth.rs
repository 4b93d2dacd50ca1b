//! SASL termination after the session is authenticated: the backend connection is
//! authenticated as the proxy, so the client's SASL requests are never forwarded. A client
//! re-authenticating (KIP-368) is answered here, must stay the same principal, and restarts its
//! session lifetime; a session whose lifetime passed without that is closed at its next request,
//! as a broker does.

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use proxy_core::close::CloseReason;
use proxy_core::stage::{Flow, Stage, StageContext};
use tokio::time::Instant;

use super::negotiation::{Negotiation, NegotiationStep};
use super::termination::SaslTermination;
use crate::{Kafka, KafkaRefusal, KafkaRequest, KafkaResponse};

/// Answers an authenticated session's SASL requests and enforces its lifetime.
#[derive(Debug)]
pub struct SaslReauthenticate {
    negotiation: Negotiation,
    /// When the session must have re-authenticated by; `None`: never.
    expires_at: Option<Instant>,
    session_lifetime: Option<Duration>,
    /// A re-authentication failed: the session ends at the client's next request.
    failed: Option<CloseReason>,
}

impl SaslReauthenticate {
    /// The stage for a session authenticated as `principal` at `authenticated_at`.
    pub fn new(
        termination: SaslTermination,
        principal: Box<str>,
        authenticated_at: Instant,
    ) -> Self {
        let session_lifetime = termination.config.session_lifetime;
        Self {
            negotiation: Negotiation::reauthentication(termination, principal),
            expires_at: session_lifetime.map(|lifetime| authenticated_at + lifetime),
            session_lifetime,
            failed: None,
        }
    }

    fn answer(response: KafkaResponse, delay: Duration) -> Flow<KafkaRequest, KafkaResponse> {
        if delay.is_zero() {
            return Flow::Respond(response);
        }
        Flow::Defer(Box::pin(async move {
            tokio::time::sleep(delay).await;
            Flow::Respond(response)
        }))
    }

    fn sasl_request(
        &mut self,
        mut msg: KafkaRequest,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        match self.negotiation.on_sasl(&mut msg, cx.session_mut()) {
            NegotiationStep::Answer { response, delay } => Self::answer(response, delay),
            NegotiationStep::Authenticated { response, delay } => {
                self.expires_at = self
                    .session_lifetime
                    .map(|lifetime| Instant::now() + lifetime);
                Self::answer(response, delay)
            }
            // A stage answers or closes, not both: the session ends at the client's next
            // request.
            NegotiationStep::Refuse {
                response: Some(response),
                delay,
                reason,
            } => {
                self.failed = Some(reason);
                Self::answer(response, delay)
            }
            NegotiationStep::Refuse {
                response: None,
                reason,
                ..
            } => Flow::Close(reason),
            // SASL requests only reach `on_sasl`.
            NegotiationStep::ApiVersions(msg) => Flow::Forward(msg),
        }
    }
}

impl Stage<Kafka> for SaslReauthenticate {
    fn kind(&self) -> &'static str {
        "sasl_terminate"
    }

    fn on_request(
        &mut self,
        msg: KafkaRequest,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        if let Some(reason) = &self.failed {
            return Flow::Close(reason.clone());
        }
        match msg.api() {
            Some(ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) => self.sasl_request(msg, cx),
            _ if self.negotiation.in_progress() => Flow::Close(
                KafkaRefusal::NotAuthenticated {
                    api_key: msg.api_key(),
                }
                .into(),
            ),
            _ if self.expires_at.is_some_and(|at| Instant::now() >= at) => {
                Flow::Close(CloseReason::SessionExpired)
            }
            _ => Flow::Forward(msg),
        }
    }
}
