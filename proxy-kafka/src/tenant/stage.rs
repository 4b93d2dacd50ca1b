//! The `tenant` stage: its options, its factory (one per listener: the template, the topic ids
//! its brokers named, the counters), and the per-session stage.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, ResponseKind};
use proxy_core::close::CloseReason;
use proxy_core::context::SessionContext;
use proxy_core::stage::{Flow, NewStage, Stage, StageConfigError, StageContext, StageOptions};
use tracing::info;

use super::metrics::TenantMetrics;
use super::names::{Namespace, legal_in_topic_names};
use super::requests::{Map, maps};
use super::responses;
use crate::authorization::{TopicIds, error_answer, learn_topic_ids, refusal_code};
use crate::{Kafka, KafkaRequest, KafkaResponse, Origin, api_label};

/// The stage's kind, as configured.
pub const KIND: &str = "tenant";

/// Where a session's tenant comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// `{principal}`: its SASL or mTLS principal.
    Principal,
    /// `{sni}`: the server name its TLS ClientHello asked for.
    Sni,
    /// A fixed prefix: one tenant per listener.
    Fixed,
}

/// A prefix template: text around at most one placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    before: Box<str>,
    source: Source,
    after: Box<str>,
}

impl Template {
    fn parse(text: &str) -> Result<Self, String> {
        let placeholders = [("{principal}", Source::Principal), ("{sni}", Source::Sni)];
        let mut found = None;
        for (placeholder, source) in placeholders {
            if let Some(at) = text.find(placeholder) {
                if found.is_some() || text[at + placeholder.len()..].contains(placeholder) {
                    return Err("holds more than one placeholder".into());
                }
                found = Some((at, placeholder.len(), source));
            }
        }
        let template = match found {
            Some((at, len, source)) => Self {
                before: Box::from(&text[..at]),
                source,
                after: Box::from(&text[at + len..]),
            },
            None => Self {
                before: Box::from(text),
                source: Source::Fixed,
                after: Box::from(""),
            },
        };
        for part in [&template.before, &template.after] {
            if part.contains(['{', '}']) {
                return Err("knows only the placeholders {principal} and {sni}".into());
            }
            if !part.is_empty() && !legal_in_topic_names(part) {
                return Err(format!(
                    "{part:?} has characters a topic name cannot hold (letters, digits, '.', \
                     '_' and '-' only)"
                ));
            }
        }
        if template.source == Source::Fixed && template.before.is_empty() {
            return Err("must not be empty".into());
        }
        if template.source != Source::Fixed && template.after.is_empty() {
            // Without a separator, principal "al" would own everything of "alice".
            return Err("needs a separator after its placeholder, as in \"{principal}.\"".into());
        }
        Ok(template)
    }

    /// The session's tenant and its namespace, or `None` when the session lacks what the
    /// template needs (or has a principal or server name no topic name can hold).
    fn render(&self, cx: &SessionContext) -> Option<(Box<str>, Namespace)> {
        let value = match self.source {
            Source::Principal => cx.auth().principal()?,
            Source::Sni => cx.sni()?,
            Source::Fixed => {
                let tenant = self.before.trim_end_matches(['.', '_', '-']);
                return Some((Box::from(tenant), Namespace::new(&self.before)));
            }
        };
        if !legal_in_topic_names(value) {
            return None;
        }
        // Prefixes must not be prefixes of one another: with "{principal}.", principal
        // "alice.admin" would otherwise have "alice.admin." — inside alice's namespace. A
        // principal holding the separator has no tenant. (A server name is the client's to
        // choose, so `{sni}` gives no such guarantee to take away: see docs/tenants.md.)
        if self.source == Source::Principal
            && self
                .after
                .chars()
                .next()
                .is_some_and(|sep| value.contains(sep))
        {
            return None;
        }
        let prefix = format!("{}{value}{}", self.before, self.after);
        Some((Box::from(value), Namespace::new(&prefix)))
    }
}

/// Builds a `tenant` stage from its options.
pub fn build(options: &mut StageOptions<'_>) -> Result<Arc<dyn NewStage<Kafka>>, StageConfigError> {
    let prefix = options
        .string("prefix")?
        .ok_or(StageConfigError::MissingOption { key: "prefix" })?;
    let template = Template::parse(prefix).map_err(|message| StageConfigError::InvalidOption {
        key: "prefix",
        message,
    })?;
    let tenants = options.strings("tenants")?.unwrap_or_default();
    Ok(Arc::new(NewTenant {
        template: Arc::new(template),
        topic_ids: Arc::default(),
        metrics: Arc::new(TenantMetrics::new(tenants)),
    }))
}

/// One listener's `tenant` stage.
#[derive(Debug, Clone)]
pub struct NewTenant {
    template: Arc<Template>,
    topic_ids: Arc<TopicIds>,
    metrics: Arc<TenantMetrics>,
}

impl NewTenant {
    /// Its per-tenant counters.
    pub fn metrics(&self) -> &Arc<TenantMetrics> {
        &self.metrics
    }
}

impl NewStage<Kafka> for NewTenant {
    fn new_stage(&self, _cx: &SessionContext) -> Box<dyn Stage<Kafka>> {
        Box::new(Tenant {
            shared: self.clone(),
            tenant: None,
        })
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// One session's tenant stage.
struct Tenant {
    shared: NewTenant,
    /// The tenant and namespace, once known.
    tenant: Option<(Box<str>, Namespace)>,
}

impl Tenant {
    /// The session's tenant, worked out as forwarding starts or, for a session that
    /// authenticates later, at its first request after that.
    fn tenant(&mut self, cx: &mut SessionContext) -> Option<&(Box<str>, Namespace)> {
        if self.tenant.is_none() {
            let rendered = self.shared.template.render(cx)?;
            info!(
                session.id = cx.id().get(),
                client.addr = %cx.client_addr(),
                tenant.name = &*rendered.0,
                tenant.prefix = rendered.1.prefix(),
                "session tenant"
            );
            cx.set_tenant(Some(rendered.0.clone()));
            self.tenant = Some(rendered);
        }
        self.tenant.as_ref()
    }
}

fn close(reason: String) -> CloseReason {
    CloseReason::Stage {
        stage: KIND,
        reason: reason.into(),
    }
}

/// Refuses `msg` whole with `code`, as a broker does; nothing is sent for a request that
/// expects no answer.
fn refuse(mut msg: KafkaRequest, api: ApiKey, code: i16) -> Flow<KafkaRequest, KafkaResponse> {
    let version = msg.api_version();
    let answer = match msg.body().map(|body| error_answer(body, version, code)) {
        Ok(Some(answer)) => answer,
        Ok(None) => {
            return Flow::Close(close(format!(
                "{} is refused, and the proxy cannot write its answer",
                api_label(api as i16)
            )));
        }
        Err(err) => return Flow::Close(close(err.to_string())),
    };
    if !msg.expects_response() {
        return Flow::Drop;
    }
    Flow::Respond(KafkaResponse::answer(&msg, answer))
}

/// APIs whose answers name nothing to map back.
fn answer_names_nothing(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::ApiVersions
            | ApiKey::SaslHandshake
            | ApiKey::SaslAuthenticate
            | ApiKey::DescribeCluster
            | ApiKey::GetTelemetrySubscriptions
            | ApiKey::PushTelemetry
            | ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::InitProducerId
            | ApiKey::AddOffsetsToTxn
            | ApiKey::EndTxn
    )
}

impl Stage<Kafka> for Tenant {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// A session authenticated before forwarding (SASL termination, mTLS) or named by its SNI
    /// has its tenant now, so the connection's open event and its first request's carry it.
    fn on_start(&mut self, cx: &mut StageContext<'_>) {
        let _ = self.tenant(cx.session_mut());
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
            return Flow::Close(close(format!(
                "API key {} is not one the proxy can map to a tenant",
                msg.api_key()
            )));
        };
        if matches!(
            api,
            ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
        ) {
            return Flow::Forward(msg);
        }
        if !maps(api) {
            return refuse(msg, api, refusal_code(api));
        }
        let ids = self.shared.topic_ids.clone();
        let metrics = self.shared.metrics.clone();
        let Some((tenant, ns)) = self.tenant(cx.session_mut()) else {
            // No tenant: nothing of the cluster is this session's.
            return refuse(msg, api, refusal_code(api));
        };
        metrics.request(tenant, msg.wire_len());
        let version = msg.api_version();
        let map = Map { ns, ids: &ids };
        let refused = match msg.body_mut() {
            Ok(body) => {
                let original = body.clone();
                map.request(body, version)
                    .err()
                    .map(|code| (original, code))
            }
            Err(err) => {
                return Flow::Close(close(format!(
                    "cannot decode the request to map its names: {err}"
                )));
            }
        };
        let Some((original, code)) = refused else {
            return Flow::Forward(msg);
        };
        match error_answer(&original, version, code) {
            Some(answer) if msg.expects_response() => {
                Flow::Respond(KafkaResponse::answer(&msg, answer))
            }
            Some(_) => Flow::Drop,
            None => Flow::Close(close(format!(
                "{} is refused, and the proxy cannot write its answer",
                api_label(api as i16)
            ))),
        }
    }

    fn on_response(
        &mut self,
        mut msg: KafkaResponse,
        _cx: &mut StageContext<'_>,
    ) -> Flow<KafkaResponse, KafkaRequest> {
        if msg.origin() == Origin::Proxy {
            return Flow::Forward(msg);
        }
        let Some(api) = msg.api() else {
            return Flow::Forward(msg);
        };
        let Some((tenant, ns)) = &self.tenant else {
            return Flow::Forward(msg);
        };
        self.shared.metrics.response(tenant, msg.wire_len());
        if answer_names_nothing(api) {
            return Flow::Forward(msg);
        }
        match msg.body_mut() {
            Ok(body) => {
                learn_topic_ids(body, &self.shared.topic_ids);
                responses::map(ns, &self.shared.topic_ids, body);
                if let ResponseKind::DeleteTopics(deleted) = body {
                    for topic in deleted.responses.iter().filter(|t| t.error_code == 0) {
                        self.shared.topic_ids.forget(&topic.topic_id);
                    }
                }
            }
            Err(err) => {
                return Flow::Close(close(format!(
                    "cannot decode the {} answer to map its names: {err}",
                    api_label(api as i16)
                )));
            }
        }
        Flow::Forward(msg)
    }
}
