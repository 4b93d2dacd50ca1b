//! The authorization stage of a Kafka listener: every request a client sends is decided
//! against the listener's rules before it reaches a broker, and what is denied is answered as a
//! broker answers it (see [`super::apis`]). One factory per listener shares the rules, the
//! topic ids learned from brokers and the decision counters with every session.

use std::collections::VecDeque;
use std::sync::Arc;

use kafka_protocol::messages::ApiKey;
use proxy_core::close::CloseReason;
use proxy_core::context::SessionContext;
use proxy_core::stage::{Flow, NewStage, Stage, StageContext};

use super::apis::{self, Edit, Verdict};
pub use super::decide::AuditAllows;
use super::decide::{Decide, Memo};
use super::error_answer::error_answer;
use super::{AuthorizationMetrics, SharedAcl, TopicIds};
use crate::{Kafka, KafkaRequest, KafkaResponse, Origin, api_label};

/// The stage's kind, in close reasons and logs.
pub const KIND: &str = "authorization";

/// Requests a session keeps edits for at most: the codec's in-flight limit pauses a client far
/// below.
const MAX_PENDING: usize = 10_000;

/// One listener's authorization: its rules, the topic ids its brokers named, its counters.
#[derive(Debug, Clone)]
pub struct NewAuthorization {
    acl: Arc<SharedAcl>,
    topic_ids: Arc<TopicIds>,
    metrics: Arc<AuthorizationMetrics>,
    audit_allows: AuditAllows,
}

impl NewAuthorization {
    /// Decides by `acl` (replace its rules to reload them); allowed decisions are audited when
    /// `audit_allows` says so.
    pub fn new(acl: Arc<SharedAcl>, audit_allows: AuditAllows) -> Self {
        Self {
            acl,
            topic_ids: Arc::default(),
            metrics: Arc::default(),
            audit_allows,
        }
    }

    /// The rules, to replace on reload.
    pub fn acl(&self) -> &Arc<SharedAcl> {
        &self.acl
    }

    /// The decision counters.
    pub fn metrics(&self) -> &Arc<AuthorizationMetrics> {
        &self.metrics
    }
}

impl NewStage<Kafka> for NewAuthorization {
    fn new_stage(&self, _cx: &SessionContext) -> Box<dyn Stage<Kafka>> {
        Box::new(Authorization {
            shared: self.clone(),
            memo: Memo::default(),
            pending: VecDeque::new(),
        })
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// One session's authorization.
struct Authorization {
    shared: NewAuthorization,
    memo: Memo,
    /// Edits for the answers of trimmed requests, by correlation id, in request order.
    pending: VecDeque<(i32, Edit)>,
}

impl Authorization {
    fn decide<'a>(
        &'a mut self,
        acl: &'a super::Acl,
        cx: &'a SessionContext,
        api: ApiKey,
    ) -> Decide<'a> {
        Decide {
            acl,
            cx,
            memo: &mut self.memo,
            metrics: &self.shared.metrics,
            topic_ids: &self.shared.topic_ids,
            api,
            audit_allows: self.shared.audit_allows,
            quiet: false,
        }
    }

    fn refresh(&mut self, cx: &SessionContext) -> Arc<super::Acl> {
        self.memo
            .refresh(self.shared.acl.generation(), cx.auth().principal());
        self.shared.acl.load()
    }
}

/// Why a session is closed rather than answered: there is no broker answer to build.
fn close(reason: String) -> CloseReason {
    CloseReason::Stage {
        stage: KIND,
        reason: reason.into(),
    }
}

impl Stage<Kafka> for Authorization {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn on_request(
        &mut self,
        mut msg: KafkaRequest,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        if msg.origin() == Origin::Proxy {
            return Flow::Forward(msg);
        }
        let Some(api) = msg.api() else {
            // Fail closed: no answer can be built for an API nobody here knows.
            return Flow::Close(close(format!(
                "API key {} is not one the proxy can authorize",
                msg.api_key()
            )));
        };
        if matches!(
            api,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        ) {
            return Flow::Forward(msg);
        }
        let session = cx.session();
        let acl = self.refresh(session);
        let version = msg.api_version();
        let verdict = match msg.body() {
            Ok(body) => apis::check(api, version, body, &mut self.decide(&acl, session, api)),
            Err(err) => {
                return Flow::Close(close(format!(
                    "cannot decode the request to authorize it: {err}"
                )));
            }
        };
        let answer = match verdict {
            Verdict::Forward => return Flow::Forward(msg),
            Verdict::Trim { trim, merge } => {
                match msg.body_mut() {
                    Ok(body) => trim(body),
                    Err(err) => {
                        return Flow::Close(close(format!("cannot change the request: {err}")));
                    }
                }
                if msg.expects_response() {
                    if self.pending.len() >= MAX_PENDING {
                        self.pending.pop_front();
                    }
                    self.pending.push_back((msg.correlation_id(), merge));
                }
                return Flow::Forward(msg);
            }
            Verdict::Answer(answer) => *answer,
            Verdict::Refuse(code) => match msg.body() {
                Ok(body) => match error_answer(body, version, code) {
                    Some(answer) => answer,
                    None => {
                        return Flow::Close(close(format!(
                            "{} is refused, and the proxy cannot write its answer",
                            api_label(api as i16)
                        )));
                    }
                },
                Err(err) => return Flow::Close(close(err.to_string())),
            },
        };
        if !msg.expects_response() {
            // Produce with acks = 0: the client waits for nothing, so nothing is sent.
            return Flow::Drop;
        }
        Flow::Respond(KafkaResponse::answer(&msg, answer))
    }

    fn on_response(
        &mut self,
        mut msg: KafkaResponse,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaResponse, KafkaRequest> {
        if msg.origin() == Origin::Proxy {
            return Flow::Forward(msg);
        }
        let Some(api) = msg.api() else {
            return Flow::Forward(msg);
        };
        let correlation_id = msg.correlation_id();
        let merge = self
            .pending
            .iter()
            .position(|(id, _)| *id == correlation_id)
            .and_then(|at| self.pending.drain(..=at).next_back())
            .map(|(_, merge)| merge);
        let filters = apis::filters(api);
        if merge.is_none() && !filters && !apis::teaches_topic_ids(api) {
            return Flow::Forward(msg);
        }
        let session = cx.session();
        let acl = self.refresh(session);
        let hides = match msg.body() {
            Ok(body) => {
                apis::learn_topic_ids(body, &self.shared.topic_ids);
                filters && apis::hides_anything(body, &mut self.decide(&acl, session, api))
            }
            Err(err) => {
                return Flow::Close(close(format!(
                    "cannot decode the {} answer to authorize it: {err}",
                    api_label(api as i16)
                )));
            }
        };
        if !hides && merge.is_none() {
            return Flow::Forward(msg);
        }
        match msg.body_mut() {
            Ok(body) => {
                if hides {
                    apis::filter(body, &mut self.decide(&acl, session, api));
                }
                if let Some(merge) = merge {
                    merge(body);
                }
            }
            Err(err) => return Flow::Close(close(err.to_string())),
        }
        Flow::Forward(msg)
    }
}
