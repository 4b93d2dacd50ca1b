//! SASL inspection: the exchange passes through to the broker untouched, and the session learns
//! the mechanism, the principal (PLAIN's user name, or the name in SCRAM's client-first
//! message) and the outcome from the broker's SaslAuthenticate responses.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tracing::{info, warn};

use super::metrics::{SaslMetrics, SaslPhase};
use super::server::{UNSUPPORTED_SASL_MECHANISM, UNSUPPORTED_VERSION, handshake_response};
use crate::{Kafka, KafkaHead, KafkaRequest, KafkaResponse};
use proxy_core::close::CloseReason;
use proxy_core::context::{AuthMechanism, AuthState, SessionContext};
use proxy_core::gate::{Direction, Side};
use proxy_core::sasl::{Mechanism, client_first_username, parse_plain};
use proxy_core::stage::{Flow, Stage, StageContext};

/// Watches a session's SASL exchanges (the first and any re-authentication).
#[derive(Debug)]
pub struct SaslInspect {
    mechanisms: Arc<[Mechanism]>,
    metrics: Arc<SaslMetrics>,
    exchange: Option<Exchange>,
    authenticated_once: bool,
    /// SASL requests passed to the broker and not answered yet. The stage learns the principal
    /// from requests and the verdict from responses, so it pairs them one at a time: a client
    /// that sent a second SASL request before the first was answered could otherwise have the
    /// broker's verdict on one login recorded for the name in another.
    awaiting: u8,
}

#[derive(Debug)]
struct Exchange {
    mechanism: Mechanism,
    username: Option<String>,
    /// SaslAuthenticate responses seen so far in this exchange.
    rounds: u8,
}

impl Exchange {
    /// How many successful SaslAuthenticate rounds the mechanism takes.
    fn rounds_needed(&self) -> u8 {
        match self.mechanism {
            Mechanism::Plain => 1,
            Mechanism::Scram(_) => 2,
        }
    }
}

impl SaslInspect {
    /// Lets `mechanisms` through (others are refused with UNSUPPORTED_SASL_MECHANISM), counting
    /// outcomes into `metrics`.
    pub fn new(mechanisms: Arc<[Mechanism]>, metrics: Arc<SaslMetrics>) -> Self {
        Self {
            mechanisms,
            metrics,
            exchange: None,
            authenticated_once: false,
            awaiting: 0,
        }
    }

    fn phase(&self) -> SaslPhase {
        if self.authenticated_once {
            SaslPhase::Reauthentication
        } else {
            SaslPhase::Initial
        }
    }

    fn refuse(&self, msg: &KafkaRequest, error_code: i16) -> Flow<KafkaRequest, KafkaResponse> {
        Flow::Respond(KafkaResponse::answer(
            msg,
            handshake_response(error_code, &self.mechanisms),
        ))
    }

    fn fail(&mut self, cx: &mut StageContext<'_>, detail: &str) {
        let Some(exchange) = self.exchange.take() else {
            return;
        };
        self.metrics
            .record(Some(exchange.mechanism), self.phase(), false);
        warn!(
            mechanism = %exchange.mechanism,
            auth.user = exchange.username.as_deref().unwrap_or("-"),
            detail,
            "broker refused the client's authentication"
        );
        cx.session_mut().set_auth(AuthState::Failed {
            mechanism: AuthMechanism::from(exchange.mechanism),
        });
    }
}

impl Stage<Kafka> for SaslInspect {
    fn kind(&self) -> &'static str {
        "sasl_inspect"
    }

    /// The SASL exchange only, both ways.
    fn needs(&self, _direction: Direction, head: &KafkaHead, _cx: &SessionContext) -> bool {
        head.is(ApiKey::SaslHandshake) || head.is(ApiKey::SaslAuthenticate)
    }

    fn on_request(
        &mut self,
        msg: KafkaRequest,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        let sasl = is_sasl(msg.api());
        if sasl && self.awaiting > 0 {
            // No client does this (each step waits for the broker's answer to the last), and
            // which login a verdict belongs to would no longer be known: fail closed.
            const PIPELINED: &str = "a SASL request sent before the previous one was answered";
            self.fail(cx, PIPELINED);
            return Flow::Close(CloseReason::Protocol {
                side: Side::Client,
                detail: PIPELINED.into(),
            });
        }
        let flow = self.inspect_request(msg, cx);
        if sasl && matches!(flow, Flow::Forward(_)) {
            self.awaiting += 1;
        }
        flow
    }

    fn on_response(
        &mut self,
        msg: KafkaResponse,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaResponse, KafkaRequest> {
        if !msg.is_answer() && is_sasl(msg.api()) {
            self.awaiting = self.awaiting.saturating_sub(1);
        }
        self.inspect_response(msg, cx)
    }
}

/// A step of a SASL exchange: what this stage watches, and pairs with its answer.
fn is_sasl(api: Option<ApiKey>) -> bool {
    matches!(api, Some(ApiKey::SaslHandshake | ApiKey::SaslAuthenticate))
}

impl SaslInspect {
    fn inspect_request(
        &mut self,
        mut msg: KafkaRequest,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        match msg.api() {
            Some(ApiKey::SaslHandshake) => {
                let version = msg.api_version();
                let name = match msg.body() {
                    Ok(RequestKind::SaslHandshake(body)) => body.mechanism.to_string(),
                    _ => return Flow::Forward(msg),
                };
                // v0 is followed by bare SASL frames, which are not Kafka requests.
                if version < 1 {
                    return self.refuse(&msg, UNSUPPORTED_VERSION);
                }
                let Some(mechanism) = name
                    .parse::<Mechanism>()
                    .ok()
                    .filter(|m| self.mechanisms.contains(m))
                else {
                    self.metrics.record(None, self.phase(), false);
                    return self.refuse(&msg, UNSUPPORTED_SASL_MECHANISM);
                };
                self.exchange = Some(Exchange {
                    mechanism,
                    username: None,
                    rounds: 0,
                });
                if !self.authenticated_once {
                    cx.session_mut().set_auth(AuthState::InProgress {
                        mechanism: AuthMechanism::from(mechanism),
                    });
                }
                Flow::Forward(msg)
            }
            Some(ApiKey::SaslAuthenticate) => {
                let Some(exchange) = &mut self.exchange else {
                    return Flow::Forward(msg);
                };
                if exchange.rounds == 0
                    && exchange.username.is_none()
                    && let Ok(RequestKind::SaslAuthenticate(body)) = msg.body()
                {
                    exchange.username = match exchange.mechanism {
                        Mechanism::Plain => {
                            parse_plain(&body.auth_bytes).map(|p| p.username.to_owned())
                        }
                        Mechanism::Scram(_) => client_first_username(&body.auth_bytes),
                    };
                }
                Flow::Forward(msg)
            }
            _ => Flow::Forward(msg),
        }
    }

    fn inspect_response(
        &mut self,
        mut msg: KafkaResponse,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaResponse, KafkaRequest> {
        if self.exchange.is_none() || msg.is_answer() {
            return Flow::Forward(msg);
        }
        match msg.api() {
            Some(ApiKey::SaslHandshake) => {
                if let Ok(ResponseKind::SaslHandshake(body)) = msg.body()
                    && body.error_code != 0
                {
                    let code = body.error_code;
                    self.fail(cx, &format!("SaslHandshake error {code}"));
                }
                Flow::Forward(msg)
            }
            Some(ApiKey::SaslAuthenticate) => {
                let (code, message) = match msg.body() {
                    Ok(ResponseKind::SaslAuthenticate(body)) => (
                        body.error_code,
                        body.error_message.as_ref().map(ToString::to_string),
                    ),
                    Ok(_) => return Flow::Forward(msg),
                    Err(err) => {
                        return Flow::Close(CloseReason::Protocol {
                            side: Side::Backend,
                            detail: format!("SaslAuthenticate response: {err}").into(),
                        });
                    }
                };
                if code != 0 {
                    let detail = message.unwrap_or_else(|| format!("error {code}"));
                    self.fail(cx, &detail);
                    return Flow::Forward(msg);
                }
                let done = self.exchange.as_mut().is_some_and(|exchange| {
                    exchange.rounds += 1;
                    exchange.rounds >= exchange.rounds_needed()
                });
                if done && let Some(exchange) = self.exchange.take() {
                    let phase = self.phase();
                    self.metrics.record(Some(exchange.mechanism), phase, true);
                    self.authenticated_once = true;
                    let Some(principal) = exchange.username else {
                        // The broker accepted a login whose name the proxy could not read
                        // (SCRAM extensions, such as a delegation token's `tokenauth`): every
                        // stage that decides by principal would decide for an unknown one.
                        warn!(
                            mechanism = %exchange.mechanism,
                            "broker accepted an authentication whose principal the proxy cannot read; closing"
                        );
                        cx.session_mut().set_auth(AuthState::Failed {
                            mechanism: AuthMechanism::from(exchange.mechanism),
                        });
                        return Flow::Close(CloseReason::Protocol {
                            side: Side::Client,
                            detail: "authenticated under a name the proxy cannot read".into(),
                        });
                    };
                    info!(
                        auth.principal = %principal,
                        mechanism = %exchange.mechanism,
                        phase = phase.label(),
                        "broker accepted the client's authentication"
                    );
                    cx.session_mut().set_auth(AuthState::Authenticated {
                        principal: principal.into(),
                        mechanism: AuthMechanism::from(exchange.mechanism),
                    });
                }
                Flow::Forward(msg)
            }
            _ => Flow::Forward(msg),
        }
    }
}
