//! The built-in stages for Kafka listeners, configured as `[[listener.stage]]` tables:
//!
//! ```toml
//! [[listener.stage]]
//! kind = "audit"                       # logs every request: API, version, client id
//!
//! [[listener.stage]]
//! kind = "client_id_prefix"            # prepends a prefix to every request's client id
//! prefix = "tenant-a/"
//!
//! [[listener.stage]]
//! kind = "deny_api"                    # refuses these APIs with their authorization error
//! apis = ["DeleteTopics", "DeleteRecords"]
//!
//! [[listener.stage]]
//! kind = "quota"                       # Kafka's client quotas: see [`crate::quota`]
//! per = "principal"
//! produce_bytes_per_second = "1MiB"
//! ```
//!
//! `audit` reads only the header every request is parsed for, so frames stay undecoded;
//! `deny_api` decodes only the requests it refuses (to answer them); `client_id_prefix` decodes
//! and re-encodes every request.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::StrBytes;
use tracing::info;

use super::authorization::{error_answer, refusal_code};
use super::{Kafka, KafkaHead, KafkaRequest, KafkaResponse, api_label};
use proxy_core::close::CloseReason;
use proxy_core::context::SessionContext;
use proxy_core::gate::Direction;
use proxy_core::stage::{
    Flow, NewStage, Stage, StageConfigError, StageContext, StageOptions, StageRegistry,
};

/// The built-in stages for Kafka listeners.
pub fn kafka_registry() -> StageRegistry<Kafka> {
    let mut registry = StageRegistry::new();
    registry
        .register(AUDIT, build_audit)
        .register(CLIENT_ID_PREFIX, build_client_id_prefix)
        .register(DENY_API, build_deny_api)
        .register(crate::quota::KIND, crate::quota::build)
        .register(crate::tenant::KIND, crate::tenant::build);
    registry
}

const AUDIT: &str = "audit";
const CLIENT_ID_PREFIX: &str = "client_id_prefix";
const DENY_API: &str = "deny_api";

/// A factory for stages without per-session state.
#[derive(Debug, Clone)]
struct Shared<S>(S);

impl<S: Stage<Kafka> + Clone + Sync + 'static> NewStage<Kafka> for Shared<S> {
    fn new_stage(&self, _cx: &SessionContext) -> Box<dyn Stage<Kafka>> {
        Box::new(self.0.clone())
    }
}

fn build_audit(_: &mut StageOptions<'_>) -> Result<Arc<dyn NewStage<Kafka>>, StageConfigError> {
    Ok(Arc::new(Shared(Audit)))
}

/// Logs every request at `info`: a record of who asked for what.
#[derive(Debug, Clone, Copy)]
struct Audit;

impl Stage<Kafka> for Audit {
    fn kind(&self) -> &'static str {
        AUDIT
    }

    /// Every request (it logs their headers); no response.
    fn needs(&self, direction: Direction, _head: &KafkaHead, _cx: &SessionContext) -> bool {
        direction == Direction::Request
    }

    fn on_request(
        &mut self,
        msg: KafkaRequest,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        let session = cx.session();
        info!(
            session.id = session.id().get(),
            client.addr = %session.client_addr(),
            auth.principal = session.auth().principal().unwrap_or("-"),
            kafka.api = %api_label(msg.api_key()),
            kafka.api_version = msg.api_version(),
            kafka.correlation_id = msg.correlation_id(),
            kafka.client_id = msg.client_id().unwrap_or("-"),
            "kafka request"
        );
        Flow::Forward(msg)
    }
}

fn build_client_id_prefix(
    options: &mut StageOptions<'_>,
) -> Result<Arc<dyn NewStage<Kafka>>, StageConfigError> {
    let prefix = options
        .string("prefix")?
        .ok_or(StageConfigError::MissingOption { key: "prefix" })?;
    if prefix.is_empty() {
        return Err(StageConfigError::InvalidOption {
            key: "prefix",
            message: "must not be empty".into(),
        });
    }
    Ok(Arc::new(Shared(ClientIdPrefix {
        prefix: Arc::from(prefix),
    })))
}

/// Prepends a prefix to the client id of every request (quotas and logs on the broker then
/// tell tenants apart).
#[derive(Debug, Clone)]
struct ClientIdPrefix {
    prefix: Arc<str>,
}

impl Stage<Kafka> for ClientIdPrefix {
    fn kind(&self) -> &'static str {
        CLIENT_ID_PREFIX
    }

    /// Every request (it rewrites their headers); no response.
    fn needs(&self, direction: Direction, _head: &KafkaHead, _cx: &SessionContext) -> bool {
        direction == Direction::Request
    }

    fn on_request(
        &mut self,
        mut msg: KafkaRequest,
        _cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        // Requests this proxy cannot decode pass as they are: the broker judges them.
        if msg.api().is_none() {
            return Flow::Forward(msg);
        }
        match msg.header_mut() {
            Ok(header) => {
                let current = header.client_id.as_deref().unwrap_or("");
                header.client_id = Some(StrBytes::from_string(format!("{}{current}", self.prefix)));
                Flow::Forward(msg)
            }
            Err(err) => Flow::Close(CloseReason::Stage {
                stage: CLIENT_ID_PREFIX,
                reason: format!("cannot decode the request: {err}").into(),
            }),
        }
    }
}

fn build_deny_api(
    options: &mut StageOptions<'_>,
) -> Result<Arc<dyn NewStage<Kafka>>, StageConfigError> {
    let names = options
        .strings("apis")?
        .ok_or(StageConfigError::MissingOption { key: "apis" })?;
    let mut apis = BTreeSet::new();
    for name in names {
        let api = ApiKey::iter()
            .find(|api| api_label(*api as i16) == name)
            .ok_or_else(|| StageConfigError::InvalidOption {
                key: "apis",
                message: format!(
                    "unknown Kafka API {name:?} (names as Kafka spells them, e.g. \"DeleteTopics\")"
                ),
            })?;
        apis.insert(api as i16);
    }
    if apis.is_empty() {
        return Err(StageConfigError::InvalidOption {
            key: "apis",
            message: "must name at least one API".into(),
        });
    }
    Ok(Arc::new(Shared(DenyApi {
        apis: Arc::new(apis),
    })))
}

/// Refuses a request of a denied API the way a broker refuses what a principal may not do:
/// with the API's authorization error (`CLUSTER_AUTHORIZATION_FAILED`, or the topic's, group's
/// or transactional id's for the APIs about those), for every resource it names. Nothing of it
/// reaches the broker, and the session goes on: a closed connection is a network error to a
/// client, which retries it forever.
#[derive(Debug, Clone)]
struct DenyApi {
    apis: Arc<BTreeSet<i16>>,
}

impl Stage<Kafka> for DenyApi {
    fn kind(&self) -> &'static str {
        DENY_API
    }

    /// Requests of the denied APIs, which it answers; no response.
    fn needs(&self, direction: Direction, head: &KafkaHead, _cx: &SessionContext) -> bool {
        direction == Direction::Request && self.apis.contains(&head.api_key)
    }

    fn on_request(
        &mut self,
        mut msg: KafkaRequest,
        _cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        if !self.apis.contains(&msg.api_key()) {
            return Flow::Forward(msg);
        }
        let (Some(api), version) = (msg.api(), msg.api_version()) else {
            return Flow::Forward(msg);
        };
        let answer = match msg
            .body()
            .map(|body| error_answer(body, version, refusal_code(api)))
        {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                return Flow::Close(CloseReason::Stage {
                    stage: DENY_API,
                    reason: format!(
                        "{} requests are denied, and the proxy cannot write their answer",
                        api_label(msg.api_key())
                    )
                    .into(),
                });
            }
            Err(err) => {
                return Flow::Close(CloseReason::Stage {
                    stage: DENY_API,
                    reason: format!(
                        "{} requests are denied, and this one cannot be read to answer it: {err}",
                        api_label(msg.api_key())
                    )
                    .into(),
                });
            }
        };
        if !msg.expects_response() {
            return Flow::Drop;
        }
        Flow::Respond(KafkaResponse::answer(&msg, answer))
    }
}
