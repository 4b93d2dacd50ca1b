//! The admin audit: every state-changing Kafka request (CreateTopics, DeleteTopics,
//! CreatePartitions, AlterConfigs, IncrementalAlterConfigs, DeleteRecords, DeleteGroups,
//! OffsetDelete, CreateAcls, DeleteAcls, AlterUserScramCredentials,
//! AlterPartitionReassignments) reported to the session's audit sink with the resources it
//! names and, from the broker's answer, the outcome for each. A stage the embedder puts first
//! on a Kafka listener when admin events are wanted; requests it cannot decode pass, reported
//! with no resources.

use std::collections::VecDeque;
use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use proxy_core::audit::{AdminResource, AuditDetail, AuditKind};
use proxy_core::context::SessionContext;
use proxy_core::gate::Direction;
use proxy_core::stage::{Flow, NewStage, Stage, StageContext};

use crate::{Kafka, KafkaHead, KafkaRequest, KafkaResponse, Origin, api_label};

/// Requests a session keeps waiting for their answers, at most: the codec's in-flight limit
/// pauses a client far below.
const MAX_PENDING: usize = 10_000;

/// The factory: one admin audit stage per session.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewAdminAudit;

impl NewStage<Kafka> for NewAdminAudit {
    fn new_stage(&self, _cx: &SessionContext) -> Box<dyn Stage<Kafka>> {
        Box::new(AdminAudit::default())
    }
}

/// Whether `api` changes the cluster's state and is reported.
pub fn is_admin_api(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::CreatePartitions
            | ApiKey::AlterConfigs
            | ApiKey::IncrementalAlterConfigs
            | ApiKey::DeleteRecords
            | ApiKey::DeleteGroups
            | ApiKey::OffsetDelete
            | ApiKey::CreateAcls
            | ApiKey::DeleteAcls
            | ApiKey::AlterUserScramCredentials
            | ApiKey::AlterPartitionReassignments
    )
}

#[derive(Debug, Default)]
struct AdminAudit {
    pending: VecDeque<Pending>,
}

#[derive(Debug)]
struct Pending {
    correlation_id: i32,
    api_key: i16,
    api_version: i16,
    resources: Vec<AdminResource>,
}

impl Stage<Kafka> for AdminAudit {
    fn kind(&self) -> &'static str {
        "admin_audit"
    }

    /// State-changing admin requests and their answers only.
    fn needs(&self, _direction: Direction, head: &KafkaHead, _cx: &SessionContext) -> bool {
        head.api().is_some_and(is_admin_api)
    }

    fn on_request(
        &mut self,
        mut msg: KafkaRequest,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        let Some(api) = msg.api().filter(|api| is_admin_api(*api)) else {
            return Flow::Forward(msg);
        };
        if msg.origin() != Origin::Client {
            return Flow::Forward(msg);
        }
        let resources = msg.body().map(request_resources).unwrap_or_default();
        let pending = Pending {
            correlation_id: msg.correlation_id(),
            api_key: api as i16,
            api_version: msg.api_version(),
            resources,
        };
        if msg.expects_response() {
            if self.pending.len() >= MAX_PENDING
                && let Some(oldest) = self.pending.pop_front()
            {
                report(cx.session(), oldest, true);
            }
            self.pending.push_back(pending);
        } else {
            report(cx.session(), pending, true);
        }
        Flow::Forward(msg)
    }

    fn on_response(
        &mut self,
        mut msg: KafkaResponse,
        cx: &mut StageContext<'_>,
    ) -> Flow<KafkaResponse, KafkaRequest> {
        if self.pending.is_empty() || msg.origin() != Origin::Client {
            return Flow::Forward(msg);
        }
        let correlation_id = msg.correlation_id();
        let Some(at) = self
            .pending
            .iter()
            .position(|pending| pending.correlation_id == correlation_id)
        else {
            return Flow::Forward(msg);
        };
        // Answers come in request order: those before it were answered without passing here.
        for missed in self.pending.drain(..at).collect::<Vec<_>>() {
            report(cx.session(), missed, true);
        }
        let Some(mut pending) = self.pending.pop_front() else {
            return Flow::Forward(msg);
        };
        if let Ok(body) = msg.body() {
            apply_outcomes(&mut pending.resources, body);
        }
        report(cx.session(), pending, false);
        Flow::Forward(msg)
    }
}

fn report(session: &SessionContext, pending: Pending, unanswered: bool) {
    session.audit(
        || AuditDetail::Admin {
            api: Box::from(api_label(pending.api_key).as_str()),
            api_version: pending.api_version,
            resources: pending.resources,
            unanswered,
        },
        AuditKind::Admin,
    );
}

fn resource(resource_type: &'static str, name: impl Into<String>) -> AdminResource {
    AdminResource {
        resource_type,
        name: name.into().into_boxed_str(),
        error_code: None,
        error_message: None,
    }
}

/// Kafka's config resource types (`ConfigResource.Type`).
fn config_resource_type(code: i8) -> &'static str {
    match code {
        2 => "topic",
        4 => "broker",
        8 => "broker_logger",
        16 => "client_metrics",
        32 => "group",
        _ => "config",
    }
}

/// An ACL as `RESOURCE_TYPE:NAME:PRINCIPAL:OPERATION:PERMISSION` (Kafka's codes).
fn acl_name(
    resource_type: i8,
    name: Option<&str>,
    principal: Option<&str>,
    operation: i8,
    permission: i8,
) -> String {
    format!(
        "{resource_type}:{}:{}:{operation}:{permission}",
        name.unwrap_or("*"),
        principal.unwrap_or("*")
    )
}

/// What a request names, in its order.
fn request_resources(body: &RequestKind) -> Vec<AdminResource> {
    match body {
        RequestKind::CreateTopics(request) => request
            .topics
            .iter()
            .map(|topic| resource("topic", topic.name.as_str()))
            .collect(),
        RequestKind::DeleteTopics(request) => request
            .topic_names
            .iter()
            .map(|name| resource("topic", name.as_str()))
            .chain(request.topics.iter().map(|topic| {
                let name = topic
                    .name
                    .as_ref()
                    .map_or_else(|| topic.topic_id.to_string(), |name| name.to_string());
                resource("topic", name)
            }))
            .collect(),
        RequestKind::CreatePartitions(request) => request
            .topics
            .iter()
            .map(|topic| resource("topic", topic.name.as_str()))
            .collect(),
        RequestKind::AlterConfigs(request) => request
            .resources
            .iter()
            .map(|r| {
                resource(
                    config_resource_type(r.resource_type),
                    r.resource_name.as_str(),
                )
            })
            .collect(),
        RequestKind::IncrementalAlterConfigs(request) => request
            .resources
            .iter()
            .map(|r| {
                resource(
                    config_resource_type(r.resource_type),
                    r.resource_name.as_str(),
                )
            })
            .collect(),
        RequestKind::DeleteRecords(request) => request
            .topics
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(move |partition| {
                    resource(
                        "partition",
                        format!("{}-{}", topic.name.as_str(), partition.partition_index),
                    )
                })
            })
            .collect(),
        RequestKind::DeleteGroups(request) => request
            .groups_names
            .iter()
            .map(|group| resource("group", group.as_str()))
            .collect(),
        RequestKind::OffsetDelete(request) => vec![resource("group", request.group_id.as_str())],
        RequestKind::CreateAcls(request) => request
            .creations
            .iter()
            .map(|acl| {
                resource(
                    "acl",
                    acl_name(
                        acl.resource_type,
                        Some(acl.resource_name.as_str()),
                        Some(acl.principal.as_str()),
                        acl.operation,
                        acl.permission_type,
                    ),
                )
            })
            .collect(),
        RequestKind::DeleteAcls(request) => request
            .filters
            .iter()
            .map(|filter| {
                resource(
                    "acl",
                    acl_name(
                        filter.resource_type_filter,
                        filter.resource_name_filter.as_deref(),
                        filter.principal_filter.as_deref(),
                        filter.operation,
                        filter.permission_type,
                    ),
                )
            })
            .collect(),
        RequestKind::AlterUserScramCredentials(request) => request
            .deletions
            .iter()
            .map(|deletion| resource("user", deletion.name.as_str()))
            .chain(
                request
                    .upsertions
                    .iter()
                    .map(|upsertion| resource("user", upsertion.name.as_str())),
            )
            .collect(),
        RequestKind::AlterPartitionReassignments(request) => request
            .topics
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(move |partition| {
                    resource(
                        "partition",
                        format!("{}-{}", topic.name.as_str(), partition.partition_index),
                    )
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Sets the outcome of the resource named `name` (the first without one), or appends it.
fn outcome(
    resources: &mut Vec<AdminResource>,
    resource_type: &'static str,
    name: &str,
    error_code: i16,
    error_message: Option<&str>,
) {
    let found = resources
        .iter_mut()
        .find(|r| r.error_code.is_none() && &*r.name == name);
    let target = match found {
        Some(found) => found,
        None => {
            resources.push(resource(resource_type, name));
            let last = resources.len() - 1;
            &mut resources[last]
        }
    };
    target.error_code = Some(error_code);
    target.error_message = error_message.map(Box::from);
}

/// Sets, in order, the outcomes of resources answered by position (ACLs).
fn outcomes_in_order<'a>(
    resources: &mut [AdminResource],
    answers: impl Iterator<Item = (i16, Option<&'a str>)>,
) {
    for (resource, (error_code, message)) in resources.iter_mut().zip(answers) {
        resource.error_code = Some(error_code);
        resource.error_message = message.map(Box::from);
    }
}

/// What the broker answered for each resource.
fn apply_outcomes(resources: &mut Vec<AdminResource>, body: &ResponseKind) {
    match body {
        ResponseKind::CreateTopics(response) => {
            for topic in &response.topics {
                let message = topic.error_message.as_deref();
                outcome(
                    resources,
                    "topic",
                    topic.name.as_str(),
                    topic.error_code,
                    message,
                );
            }
        }
        ResponseKind::DeleteTopics(response) => {
            for topic in &response.responses {
                let name = topic
                    .name
                    .as_ref()
                    .map_or_else(|| topic.topic_id.to_string(), |name| name.to_string());
                let message = topic.error_message.as_deref();
                outcome(resources, "topic", &name, topic.error_code, message);
            }
        }
        ResponseKind::CreatePartitions(response) => {
            for topic in &response.results {
                let message = topic.error_message.as_deref();
                outcome(
                    resources,
                    "topic",
                    topic.name.as_str(),
                    topic.error_code,
                    message,
                );
            }
        }
        ResponseKind::AlterConfigs(response) => {
            for r in &response.responses {
                let kind = config_resource_type(r.resource_type);
                let message = r.error_message.as_deref();
                outcome(
                    resources,
                    kind,
                    r.resource_name.as_str(),
                    r.error_code,
                    message,
                );
            }
        }
        ResponseKind::IncrementalAlterConfigs(response) => {
            for r in &response.responses {
                let kind = config_resource_type(r.resource_type);
                let message = r.error_message.as_deref();
                outcome(
                    resources,
                    kind,
                    r.resource_name.as_str(),
                    r.error_code,
                    message,
                );
            }
        }
        ResponseKind::DeleteRecords(response) => {
            for topic in &response.topics {
                for partition in &topic.partitions {
                    let name = format!("{}-{}", topic.name.as_str(), partition.partition_index);
                    outcome(resources, "partition", &name, partition.error_code, None);
                }
            }
        }
        ResponseKind::DeleteGroups(response) => {
            for group in &response.results {
                outcome(
                    resources,
                    "group",
                    group.group_id.as_str(),
                    group.error_code,
                    None,
                );
            }
        }
        ResponseKind::OffsetDelete(response) => {
            // The group's own error, else the first partition's.
            let code = if response.error_code != 0 {
                response.error_code
            } else {
                response
                    .topics
                    .iter()
                    .flat_map(|topic| &topic.partitions)
                    .map(|partition| partition.error_code)
                    .find(|code| *code != 0)
                    .unwrap_or(0)
            };
            for r in resources.iter_mut() {
                r.error_code = Some(code);
            }
        }
        ResponseKind::CreateAcls(response) => outcomes_in_order(
            resources,
            response
                .results
                .iter()
                .map(|r| (r.error_code, r.error_message.as_deref())),
        ),
        ResponseKind::DeleteAcls(response) => outcomes_in_order(
            resources,
            response
                .filter_results
                .iter()
                .map(|r| (r.error_code, r.error_message.as_deref())),
        ),
        ResponseKind::AlterUserScramCredentials(response) => {
            for user in &response.results {
                let message = user.error_message.as_deref();
                outcome(
                    resources,
                    "user",
                    user.user.as_str(),
                    user.error_code,
                    message,
                );
            }
        }
        ResponseKind::AlterPartitionReassignments(response) => {
            for topic in &response.responses {
                for partition in &topic.partitions {
                    let name = format!("{}-{}", topic.name.as_str(), partition.partition_index);
                    let code = if response.error_code != 0 {
                        response.error_code
                    } else {
                        partition.error_code
                    };
                    let message = partition
                        .error_message
                        .as_deref()
                        .or(response.error_message.as_deref());
                    outcome(resources, "partition", &name, code, message);
                }
            }
        }
        _ => {}
    }
}

/// The factory, shared.
pub fn new_admin_audit() -> Arc<dyn NewStage<Kafka>> {
    Arc::new(NewAdminAudit)
}
