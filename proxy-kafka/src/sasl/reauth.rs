//! SASL termination after the session is authenticated: the backend connection is
//! authenticated as the proxy, so the client's SASL requests are never forwarded. A client
//! re-authenticating (KIP-368) is answered here, must stay the same principal, and restarts its
//! session lifetime; a session whose lifetime passed without that is closed at its next request,
//! as a broker does.

use std::net::IpAddr;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ResponseKind};
use tokio::time::Instant;
use tracing::{info, warn};

use super::metrics::SaslPhase;
use super::server::{SASL_AUTHENTICATION_FAILED, SaslServer, SaslStep, authenticate_error};
use super::termination::SaslTermination;
use crate::{Kafka, KafkaRefusal, KafkaRequest, KafkaResponse};
use proxy_core::close::CloseReason;
use proxy_core::context::{AuthMechanism, AuthState};
use proxy_core::gate::Side;
use proxy_core::stage::{Flow, Stage, StageContext};

/// Answers an authenticated session's SASL requests and enforces its lifetime.
#[derive(Debug)]
pub struct SaslReauthenticate {
    termination: SaslTermination,
    server: SaslServer,
    principal: Box<str>,
    client_ip: IpAddr,
    expires_at: Option<Instant>,
    /// A re-authentication failed: the session ends at the client's next request.
    failed: Option<CloseReason>,
}

impl SaslReauthenticate {
    /// The stage for a session authenticated as `principal` at `authenticated_at`.
    pub fn new(
        termination: SaslTermination,
        principal: Box<str>,
        client_ip: IpAddr,
        authenticated_at: Instant,
    ) -> Self {
        let expires_at = termination
            .config
            .session_lifetime
            .map(|lifetime| authenticated_at + lifetime);
        Self {
            server: SaslServer::new(termination.config.clone()),
            termination,
            principal,
            client_ip,
            expires_at,
            failed: None,
        }
    }

    fn answer(
        msg: &KafkaRequest,
        response: ResponseKind,
        delay: Duration,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        let answer = KafkaResponse::answer(msg, response);
        if delay.is_zero() {
            return Flow::Respond(answer);
        }
        Flow::Defer(Box::pin(async move {
            tokio::time::sleep(delay).await;
            Flow::Respond(answer)
        }))
    }

    fn sasl_request(
        &mut self,
        mut msg: KafkaRequest,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        let step = match self.server.on_request(&mut msg) {
            Ok(step) => step,
            Err(err) => {
                return Flow::Close(CloseReason::Protocol {
                    side: Side::Client,
                    detail: format!("SASL request: {err}").into(),
                });
            }
        };
        let termination = &self.termination;
        let phase = SaslPhase::Reauthentication;
        match step {
            SaslStep::Continue(response) => Self::answer(&msg, response, Duration::ZERO),
            SaslStep::Authenticated {
                response,
                principal,
                mechanism,
            } => {
                if *principal != *self.principal {
                    let delay = termination.throttle.delay(self.client_ip);
                    termination.failed(Some(mechanism), phase, self.client_ip, false);
                    warn!(
                        auth.principal = %self.principal,
                        auth.new_principal = %principal,
                        "re-authentication tried to change the principal"
                    );
                    self.failed = Some(CloseReason::AuthenticationFailed {
                        mechanism: mechanism.name().into(),
                    });
                    let refusal = authenticate_error(
                        SASL_AUTHENTICATION_FAILED,
                        "Cannot change principals during re-authentication",
                    );
                    return Self::answer(&msg, refusal, delay);
                }
                let delay = termination.succeeded(mechanism, phase, self.client_ip);
                self.expires_at = termination
                    .config
                    .session_lifetime
                    .map(|lifetime| Instant::now() + lifetime);
                info!(auth.principal = %principal, mechanism = %mechanism, "client re-authenticated");
                cx.session_mut().set_auth(AuthState::Authenticated {
                    principal: principal.into(),
                    mechanism: AuthMechanism::from(mechanism),
                });
                Self::answer(&msg, response, delay)
            }
            SaslStep::Failed {
                response,
                mechanism,
                credentials_rejected,
            } => {
                let delay =
                    termination.failed(mechanism, phase, self.client_ip, credentials_rejected);
                warn!(
                    auth.principal = %self.principal,
                    mechanism = mechanism.map_or("-", |m| m.name()),
                    "re-authentication failed"
                );
                self.failed = Some(CloseReason::AuthenticationFailed {
                    mechanism: mechanism.map_or("-", |m| m.name()).into(),
                });
                Self::answer(&msg, response, delay)
            }
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
            _ if self.server.in_progress() => Flow::Close(
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
