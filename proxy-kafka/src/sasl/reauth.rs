//! SASL termination after the session is authenticated: the backend connection is
//! authenticated as the proxy, so the client's SASL requests are never forwarded. A client
//! re-authenticating (KIP-368) is answered here, must stay the same principal, and restarts its
//! session lifetime; a session whose lifetime passed without that is closed at its next request,
//! as a broker does.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use parking_lot::Mutex;
use proxy_core::close::CloseReason;
use proxy_core::context::{AuthState, SessionContext};
use proxy_core::gate::Direction;
use proxy_core::stage::{Flow, Stage, StageContext};
use tokio::time::Instant;

use super::negotiation::{Negotiation, NegotiationStep};
use super::termination::SaslTermination;
use crate::{Kafka, KafkaHead, KafkaRefusal, KafkaRequest, KafkaResponse};

/// Answers an authenticated session's SASL requests and enforces its lifetime.
#[derive(Debug)]
pub struct SaslReauthenticate {
    /// Shared with a deferred password check, which settles the exchange when it completes.
    negotiation: Arc<Mutex<Negotiation>>,
    /// When the session must have re-authenticated by; `None`: never.
    expires_at: Option<Instant>,
    session_lifetime: Option<Duration>,
    /// A re-authentication failed: the session ends at the client's next request.
    failed: Option<CloseReason>,
    /// What a deferred password check settled, applied before the client's next request (which
    /// waits for the check).
    settled: Arc<Mutex<Option<Settled>>>,
}

/// What an answered step means for the session.
#[derive(Debug)]
enum Effect {
    None,
    /// The client re-authenticated: its lifetime restarts.
    Authenticated,
    /// The re-authentication failed: the session ends at the next request.
    Failed(CloseReason),
}

/// A deferred check's outcome, for the stage to apply.
#[derive(Debug)]
struct Settled {
    effect: Effect,
    at: Instant,
    auth: Option<AuthState>,
}

/// A step as the stage acts on it.
enum Outcome {
    Answer(KafkaResponse, Duration, Effect),
    Close(CloseReason),
    Forward(KafkaRequest),
}

impl From<NegotiationStep> for Outcome {
    fn from(step: NegotiationStep) -> Self {
        match step {
            NegotiationStep::Answer(response) => {
                Self::Answer(response, Duration::ZERO, Effect::None)
            }
            NegotiationStep::Authenticated(response) => {
                Self::Answer(response, Duration::ZERO, Effect::Authenticated)
            }
            // A stage answers or closes, not both: the session ends at the client's next
            // request.
            NegotiationStep::Refuse {
                response: Some(response),
                delay,
                reason,
            } => Self::Answer(response, delay, Effect::Failed(reason)),
            NegotiationStep::Refuse {
                response: None,
                reason,
                ..
            } => Self::Close(reason),
            // SASL requests only reach `on_sasl`.
            NegotiationStep::ApiVersions(msg) => Self::Forward(msg),
            // `sasl_request` runs checks before it gets here.
            NegotiationStep::CheckPassword { .. } => Self::Close(CloseReason::Internal(
                proxy_core::close::InternalError::BlockingTask(
                    "a password check was not run".into(),
                ),
            )),
        }
    }
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
            negotiation: Arc::new(Mutex::new(Negotiation::reauthentication(
                termination,
                principal,
            ))),
            expires_at: session_lifetime.map(|lifetime| authenticated_at + lifetime),
            session_lifetime,
            failed: None,
            settled: Arc::default(),
        }
    }

    fn apply(&mut self, effect: Effect, at: Instant) {
        match effect {
            Effect::None => {}
            Effect::Authenticated => {
                self.expires_at = self.session_lifetime.map(|lifetime| at + lifetime);
            }
            Effect::Failed(reason) => self.failed = Some(reason),
        }
    }

    fn sasl_request(
        &mut self,
        msg: KafkaRequest,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        let step = self.negotiation.lock().on_sasl(msg, cx.session_mut());
        let NegotiationStep::CheckPassword { request, check } = step else {
            return match Outcome::from(step) {
                Outcome::Answer(response, delay, effect) => {
                    self.apply(effect, Instant::now());
                    answer_after(response, delay)
                }
                Outcome::Close(reason) => Flow::Close(reason),
                Outcome::Forward(msg) => Flow::Forward(msg),
            };
        };
        // Off the runtime; the session's later requests wait behind it.
        let negotiation = Arc::clone(&self.negotiation);
        let settled = Arc::clone(&self.settled);
        let termination = negotiation.lock().termination().clone();
        let client_ip = cx.session().client_addr().ip();
        Flow::Defer(Box::pin(async move {
            let checked = termination.check_password(check).await;
            let (step, auth) = negotiation
                .lock()
                .on_password_checked(&request, checked, client_ip);
            match Outcome::from(step) {
                Outcome::Answer(response, delay, effect) => {
                    *settled.lock() = Some(Settled {
                        effect,
                        at: Instant::now(),
                        auth,
                    });
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Flow::Respond(response)
                }
                Outcome::Close(reason) => Flow::Close(reason),
                Outcome::Forward(msg) => Flow::Forward(msg),
            }
        }))
    }
}

/// `response`, after `delay` when there is one.
fn answer_after(response: KafkaResponse, delay: Duration) -> Flow<KafkaRequest, KafkaResponse> {
    if delay.is_zero() {
        return Flow::Respond(response);
    }
    Flow::Defer(Box::pin(async move {
        tokio::time::sleep(delay).await;
        Flow::Respond(response)
    }))
}

impl Stage<Kafka> for SaslReauthenticate {
    fn kind(&self) -> &'static str {
        "sasl_terminate"
    }

    /// A request it would act on: the SASL exchange, and any request while a
    /// re-authentication is in progress, has failed or has settled unseen, or once the
    /// session's credentials have expired. Every other request it passes on unread, so those
    /// may stream past it; it never looks at a response.
    fn needs(&self, direction: Direction, head: &KafkaHead, _cx: &SessionContext) -> bool {
        direction == Direction::Request
            && (head.is(ApiKey::SaslHandshake)
                || head.is(ApiKey::SaslAuthenticate)
                || self.failed.is_some()
                || self.settled.lock().is_some()
                || self.negotiation.lock().in_progress()
                || self.expires_at.is_some_and(|at| Instant::now() >= at))
    }

    fn on_request(
        &mut self,
        msg: KafkaRequest,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        let settled = self.settled.lock().take();
        if let Some(settled) = settled {
            self.apply(settled.effect, settled.at);
            if let Some(auth) = settled.auth {
                cx.session_mut().set_auth(auth);
            }
        }
        if let Some(reason) = &self.failed {
            return Flow::Close(reason.clone());
        }
        match msg.api() {
            Some(ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) => self.sasl_request(msg, cx),
            _ if self.negotiation.lock().in_progress() => Flow::Close(
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
