//! The negotiation of a SASL-terminating listener, sans I/O: a request in, and out what to
//! answer, that the client is authenticated, or that the session ends. One type serves both
//! places the proxy is the client's SASL server: the `Negotiating` phase before a session has a
//! route or a backend (where ApiVersions is answered too and any other request refused), and
//! re-authentication in an authenticated session (KIP-368), where the principal must not
//! change. The outcome bookkeeping (counters, the failure throttle's delays, the session's
//! auth state) happens here, once.

use std::net::IpAddr;
use std::time::Duration;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseKind};
use kafka_protocol::protocol::Message;
use proxy_core::close::CloseReason;
use proxy_core::context::{AuthMechanism, AuthState, SessionContext};
use proxy_core::gate::Side;
use proxy_core::sasl::{PasswordCheck, VerifierError};
use tracing::{info, warn};

use super::metrics::SaslPhase;
use super::server::{
    SASL_AUTHENTICATION_FAILED, SaslServer, SaslStep, UNSUPPORTED_VERSION, authenticate_error,
};
use super::termination::SaslTermination;
use crate::{KafkaRefusal, KafkaRequest, KafkaResponse};

/// The largest frame a client may send before it has authenticated (Kafka brokers'
/// `sasl.server.max.receive.size` is 512 KiB): an unauthenticated client must not make the
/// proxy hold `max_frame_size` for it.
pub const MAX_UNAUTHENTICATED_FRAME: usize = 512 * 1024;

/// What the driver does after one request.
#[derive(Debug)]
pub enum NegotiationStep {
    /// Write `response`, then read the next request.
    Answer(KafkaResponse),
    /// The client asked ApiVersions before any backend exists: answer it with
    /// [`answer_api_versions`] and the versions the listener's clusters support.
    ApiVersions(KafkaRequest),
    /// A PLAIN login: run `check` with [`SaslTermination::check_password`] (off the runtime), then
    /// hand the outcome to [`Negotiation::on_password_checked`] with `request`.
    CheckPassword {
        /// The SaslAuthenticate request to answer.
        request: KafkaRequest,
        /// The check.
        check: PasswordCheck,
    },
    /// Write the answer: the client is authenticated (recorded in the session's context), and
    /// its session lifetime starts when the answer is written. Never delayed.
    Authenticated(KafkaResponse),
    /// Write `response` (if there is one) after `delay` (the failure delay: a client that keeps
    /// failing waits longer for each answer), then end the session with `reason`, as a broker
    /// does.
    Refuse {
        /// The error answer, if the refusal has one.
        response: Option<KafkaResponse>,
        /// How long the failure throttle holds it back.
        delay: Duration,
        /// Why the session ends.
        reason: CloseReason,
    },
}

/// One client's SASL negotiation with the proxy.
#[derive(Debug)]
pub struct Negotiation {
    termination: SaslTermination,
    server: SaslServer,
    phase: SaslPhase,
    /// The principal a re-authentication must keep; `None` before the first authentication.
    principal: Option<Box<str>>,
}

// === impl Negotiation ===

impl Negotiation {
    /// The negotiation before a session has a route: the client's first authentication.
    pub fn initial(termination: SaslTermination) -> Self {
        Self {
            server: SaslServer::new(termination.config.clone()),
            termination,
            phase: SaslPhase::Initial,
            principal: None,
        }
    }

    /// The negotiation of an authenticated session re-authenticating as `principal`.
    pub fn reauthentication(termination: SaslTermination, principal: Box<str>) -> Self {
        Self {
            server: SaslServer::new(termination.config.clone()),
            termination,
            phase: SaslPhase::Reauthentication,
            principal: Some(principal),
        }
    }

    /// The listener's termination settings.
    pub fn termination(&self) -> &SaslTermination {
        &self.termination
    }

    /// True between a SaslHandshake and the exchange's outcome.
    pub fn in_progress(&self) -> bool {
        self.server.in_progress()
    }

    /// A request before the session has a route: ApiVersions, SASL, or a refusal of anything
    /// else (closed unanswered, as a broker does).
    pub fn on_request(
        &mut self,
        request: KafkaRequest,
        cx: &mut SessionContext,
    ) -> NegotiationStep {
        match request.api() {
            Some(ApiKey::ApiVersions) => NegotiationStep::ApiVersions(request),
            Some(ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) => self.on_sasl(request, cx),
            _ => NegotiationStep::Refuse {
                response: None,
                delay: Duration::ZERO,
                reason: KafkaRefusal::NotAuthenticated {
                    api_key: request.api_key(),
                }
                .into(),
            },
        }
    }

    /// A SaslHandshake or SaslAuthenticate request. Failures are counted against the client's
    /// address (the PROXY header's, when one was read) and the user it claimed.
    pub fn on_sasl(
        &mut self,
        mut request: KafkaRequest,
        cx: &mut SessionContext,
    ) -> NegotiationStep {
        let step = match self.server.on_request(&mut request) {
            Ok(step) => step,
            Err(err) => {
                return NegotiationStep::Refuse {
                    response: None,
                    delay: Duration::ZERO,
                    reason: CloseReason::Protocol {
                        side: Side::Client,
                        detail: format!("SASL request: {err}").into(),
                    },
                };
            }
        };
        if let SaslStep::CheckPassword(check) = step {
            return NegotiationStep::CheckPassword { request, check };
        }
        let (step, auth) = self.settle(step, &request, cx.client_addr().ip());
        if let Some(auth) = auth {
            cx.set_auth(auth);
        }
        step
    }

    /// The outcome of a [`NegotiationStep::CheckPassword`]: what to answer `request`, and what
    /// the session's authentication state becomes (`None`: unchanged), for the caller to
    /// record (a re-authentication's check finishes where no session context is at hand).
    pub fn on_password_checked(
        &mut self,
        request: &KafkaRequest,
        checked: Result<bool, VerifierError>,
        client_ip: IpAddr,
    ) -> (NegotiationStep, Option<AuthState>) {
        let step = self.server.on_password_checked(checked);
        self.settle(step, request, client_ip)
    }

    /// The bookkeeping of one step of the exchange: counters, the failure delay, the log line,
    /// and the session's new authentication state.
    fn settle(
        &mut self,
        step: SaslStep,
        request: &KafkaRequest,
        client_ip: IpAddr,
    ) -> (NegotiationStep, Option<AuthState>) {
        let answer = |response| KafkaResponse::answer(request, response);
        match step {
            SaslStep::Continue(response) => {
                let auth = match (self.phase, self.server.mechanism()) {
                    (SaslPhase::Initial, Some(mechanism)) => Some(AuthState::InProgress {
                        mechanism: AuthMechanism::from(mechanism),
                    }),
                    _ => None,
                };
                (NegotiationStep::Answer(answer(response)), auth)
            }
            // `on_sasl` hands these out before settling; a server never answers a check with
            // another.
            SaslStep::CheckPassword(_) => {
                let step = self.server.on_password_checked(Err(VerifierError::Lost));
                self.settle(step, request, client_ip)
            }
            SaslStep::Authenticated {
                response,
                principal,
                mechanism,
            } => {
                if let Some(kept) = &self.principal
                    && **kept != *principal
                {
                    self.termination
                        .failed(Some(mechanism), self.phase, client_ip, None, false);
                    warn!(
                        auth.principal = %kept,
                        auth.new_principal = %principal,
                        "re-authentication tried to change the principal"
                    );
                    let refusal = authenticate_error(
                        SASL_AUTHENTICATION_FAILED,
                        "Cannot change principals during re-authentication",
                    );
                    let step = NegotiationStep::Refuse {
                        response: Some(answer(refusal)),
                        delay: Duration::ZERO,
                        reason: CloseReason::AuthenticationFailed {
                            mechanism: mechanism.name().into(),
                        },
                    };
                    return (step, None);
                }
                self.termination.succeeded(mechanism, self.phase);
                match self.phase {
                    SaslPhase::Initial => {
                        info!(auth.principal = %principal, mechanism = %mechanism, "client authenticated");
                    }
                    SaslPhase::Reauthentication => {
                        info!(auth.principal = %principal, mechanism = %mechanism, "client re-authenticated");
                    }
                }
                self.principal = Some(principal.as_str().into());
                let auth = AuthState::Authenticated {
                    principal: principal.into(),
                    mechanism: AuthMechanism::from(mechanism),
                };
                (NegotiationStep::Authenticated(answer(response)), Some(auth))
            }
            SaslStep::Failed {
                response,
                mechanism,
                credentials_rejected,
                username,
            } => {
                let delay = self.termination.failed(
                    mechanism,
                    self.phase,
                    client_ip,
                    username.as_deref(),
                    credentials_rejected,
                );
                let name = mechanism.map_or("-", |m| m.name());
                let auth = match (self.phase, mechanism) {
                    (SaslPhase::Initial, Some(mechanism)) => Some(AuthState::Failed {
                        mechanism: AuthMechanism::from(mechanism),
                    }),
                    _ => None,
                };
                // The user name is the client's to choose (it may hold a line break): logged
                // escaped. A principal that authenticated is a user of the users file, whose
                // names have no control characters.
                if credentials_rejected {
                    warn!(
                        mechanism = name,
                        auth.user = ?username.as_deref().unwrap_or(""),
                        delay_ms = delay.as_millis() as u64,
                        "client authentication failed"
                    );
                } else {
                    warn!(
                        mechanism = name,
                        auth.user = ?username.as_deref().unwrap_or(""),
                        "client SASL exchange refused"
                    );
                }
                let step = NegotiationStep::Refuse {
                    response: Some(answer(response)),
                    delay,
                    reason: CloseReason::AuthenticationFailed {
                        mechanism: name.into(),
                    },
                };
                (step, auth)
            }
        }
    }
}

/// The proxy's own answer to ApiVersions before a backend exists: `offered`, the versions the
/// listener's clusters support. A version newer than the proxy knows is answered as a broker
/// does: an error in v0, with the versions, so the client retries with one it has. So is a
/// negative version, which no client sends and no answer can be encoded in.
pub fn answer_api_versions(request: &KafkaRequest, offered: Vec<ApiVersion>) -> KafkaResponse {
    if !(0..=ApiVersionsResponse::VERSIONS.max).contains(&request.api_version()) {
        let body = ApiVersionsResponse::default()
            .with_error_code(UNSUPPORTED_VERSION)
            .with_api_keys(offered);
        return KafkaResponse::answer_in_version(request, 0, ResponseKind::ApiVersions(body));
    }
    let body = ApiVersionsResponse::default().with_api_keys(offered);
    KafkaResponse::answer(request, ResponseKind::ApiVersions(body))
}
