//! What each Kafka API asks of the rules, and how a denial is answered: the resources a request
//! names (topics, groups, transactional ids, the cluster), the operation on each (as Kafka's
//! own authorizer asks it), and the broker's way of refusing — per resource where the answer
//! has room for it, for the whole request where it does not.
//!
//! A request that mixes allowed and denied resources is trimmed to the allowed ones; the denied
//! ones' errors are merged into the broker's answer, in request order. Answers that list what
//! a client may not see (Metadata for every topic, ListGroups, ...) are filtered on their way
//! back. An API not listed in [`COVERED_APIS`] is refused with its authorization error.

#[macro_use]
mod listed;
mod cluster;
mod groups;
mod topics;
mod txn;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use super::decide::Decide;
use super::{Operation, ResourceType};

/// How a request goes on.
pub(crate) enum Verdict {
    /// Unchanged, to the broker.
    Forward,
    /// Refused whole with this error code, answered the broker's way.
    Refuse(i16),
    /// Nothing of it may reach the broker: this is the answer.
    Answer(Box<ResponseKind>),
    /// Trimmed to what is allowed, and the denied part's errors merged into the answer.
    Trim {
        /// Takes the denied resources out of the request.
        trim: Box<dyn FnOnce(&mut RequestKind) + Send>,
        /// Puts their errors into the broker's answer.
        merge: Edit,
    },
}

/// A change to the broker's answer of a trimmed request.
pub(crate) type Edit = Box<dyn FnOnce(&mut ResponseKind) + Send>;

/// Every API the stage decides by resource; any other is refused with its authorization error.
/// The always-allowed ones (ApiVersions, SASL, telemetry) are here too: they name no resource.
pub const COVERED_APIS: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::SyncGroup,
    ApiKey::DescribeGroups,
    ApiKey::ListGroups,
    ApiKey::SaslHandshake,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DeleteRecords,
    ApiKey::InitProducerId,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::TxnOffsetCommit,
    ApiKey::DescribeAcls,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::AlterReplicaLogDirs,
    ApiKey::DescribeLogDirs,
    ApiKey::SaslAuthenticate,
    ApiKey::CreatePartitions,
    ApiKey::DeleteGroups,
    ApiKey::ElectLeaders,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::OffsetDelete,
    ApiKey::DescribeClientQuotas,
    ApiKey::AlterClientQuotas,
    ApiKey::DescribeUserScramCredentials,
    ApiKey::AlterUserScramCredentials,
    ApiKey::DescribeQuorum,
    ApiKey::UpdateFeatures,
    ApiKey::DescribeCluster,
    ApiKey::DescribeProducers,
    ApiKey::DescribeTransactions,
    ApiKey::ListTransactions,
    ApiKey::ConsumerGroupHeartbeat,
    ApiKey::ConsumerGroupDescribe,
    ApiKey::GetTelemetrySubscriptions,
    ApiKey::PushTelemetry,
    ApiKey::DescribeTopicPartitions,
];

/// Whether the stage decides `api` by its resources (else it refuses it).
pub fn covers(api: ApiKey) -> bool {
    COVERED_APIS.contains(&api)
}

/// The error an API refused whole answers with: the error of the resource it is about, and the
/// cluster's for the rest.
pub(crate) fn refusal_code(api: ApiKey) -> i16 {
    match api {
        ApiKey::Produce
        | ApiKey::Fetch
        | ApiKey::ListOffsets
        | ApiKey::Metadata
        | ApiKey::OffsetForLeaderEpoch
        | ApiKey::CreateTopics
        | ApiKey::DeleteTopics
        | ApiKey::DeleteRecords
        | ApiKey::CreatePartitions
        | ApiKey::DescribeProducers
        | ApiKey::DescribeTopicPartitions => TOPIC_DENIED,
        ApiKey::OffsetCommit
        | ApiKey::OffsetFetch
        | ApiKey::JoinGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::SyncGroup
        | ApiKey::DescribeGroups
        | ApiKey::DeleteGroups
        | ApiKey::OffsetDelete
        | ApiKey::ConsumerGroupHeartbeat
        | ApiKey::ConsumerGroupDescribe
        | ApiKey::ShareGroupHeartbeat
        | ApiKey::ShareGroupDescribe
        | ApiKey::FindCoordinator => GROUP_DENIED,
        ApiKey::AddPartitionsToTxn
        | ApiKey::AddOffsetsToTxn
        | ApiKey::EndTxn
        | ApiKey::TxnOffsetCommit
        | ApiKey::DescribeTransactions => TXN_DENIED,
        _ => CLUSTER_DENIED,
    }
}

pub(crate) const TOPIC_DENIED: i16 = ResponseError::TopicAuthorizationFailed.code();
pub(crate) const GROUP_DENIED: i16 = ResponseError::GroupAuthorizationFailed.code();
pub(crate) const TXN_DENIED: i16 = ResponseError::TransactionalIdAuthorizationFailed.code();
pub(crate) const CLUSTER_DENIED: i16 = ResponseError::ClusterAuthorizationFailed.code();
pub(crate) const UNKNOWN_TOPIC_ID: i16 = ResponseError::UnknownTopicId.code();

/// What `request` (of `api`, at `version`) may do.
pub(crate) fn check(
    api: ApiKey,
    version: i16,
    request: &RequestKind,
    d: &mut Decide<'_>,
) -> Verdict {
    use RequestKind as R;
    match request {
        R::ApiVersions(_)
        | R::SaslHandshake(_)
        | R::SaslAuthenticate(_)
        | R::GetTelemetrySubscriptions(_)
        | R::PushTelemetry(_)
        | R::DescribeCluster(_) => Verdict::Forward,
        R::Produce(body) => topics::produce(body, version, d),
        R::Fetch(body) => topics::fetch(body, version, d),
        R::ListOffsets(body) => topics::list_offsets(body, version, d),
        R::Metadata(body) => topics::metadata(body, version, d),
        R::OffsetForLeaderEpoch(body) => topics::offset_for_leader_epoch(body, version, d),
        R::CreateTopics(body) => topics::create_topics(body, version, d),
        R::DeleteTopics(body) => topics::delete_topics(body, version, d),
        R::DeleteRecords(body) => topics::delete_records(body, version, d),
        R::CreatePartitions(body) => topics::create_partitions(body, version, d),
        R::DescribeTopicPartitions(body) => topics::describe_topic_partitions(body, version, d),
        R::DescribeProducers(body) => topics::describe_producers(body, version, d),
        R::OffsetCommit(body) => groups::offset_commit(body, version, d),
        R::OffsetFetch(body) => groups::offset_fetch(body, version, d),
        R::FindCoordinator(body) => groups::find_coordinator(body, version, d),
        R::JoinGroup(body) => groups::whole_group(&body.group_id, Operation::Read, d),
        R::Heartbeat(body) => groups::whole_group(&body.group_id, Operation::Read, d),
        R::LeaveGroup(body) => groups::whole_group(&body.group_id, Operation::Read, d),
        R::SyncGroup(body) => groups::whole_group(&body.group_id, Operation::Read, d),
        R::DescribeGroups(body) => groups::describe_groups(body, version, d),
        R::ListGroups(_) => Verdict::Forward,
        R::DeleteGroups(body) => groups::delete_groups(body, version, d),
        R::OffsetDelete(body) => groups::offset_delete(body, d),
        R::ConsumerGroupHeartbeat(body) => groups::consumer_group_heartbeat(body, d),
        R::ConsumerGroupDescribe(body) => groups::consumer_group_describe(body, version, d),
        R::InitProducerId(body) => txn::init_producer_id(body, d),
        R::AddPartitionsToTxn(body) => txn::add_partitions_to_txn(body, version, d),
        R::AddOffsetsToTxn(body) => txn::add_offsets_to_txn(body, d),
        R::EndTxn(body) => txn::whole_transaction(&body.transactional_id, d),
        R::TxnOffsetCommit(body) => txn::txn_offset_commit(body, version, d),
        R::DescribeTransactions(body) => txn::describe_transactions(body, version, d),
        R::ListTransactions(_) => Verdict::Forward,
        R::DescribeConfigs(body) => cluster::describe_configs(body, version, d),
        R::AlterConfigs(body) => cluster::alter_configs(body, version, d),
        R::IncrementalAlterConfigs(body) => cluster::incremental_alter_configs(body, version, d),
        _ => match cluster::cluster_operation(api) {
            Some(operation) if d.allows_cluster(operation) => Verdict::Forward,
            _ => Verdict::Refuse(refusal_code(api)),
        },
    }
}

/// Takes out of `response` what the session may not see (topics it may not describe in a
/// Metadata answer for every topic, groups in ListGroups, ...) and what it may no longer read
/// (a fetch session's topics after a rule was removed).
pub(crate) fn filter(response: &mut ResponseKind, d: &mut Decide<'_>) {
    use ResponseKind as R;
    d.quietly(|d| match response {
        R::Metadata(body) => topics::filter_metadata(body, d),
        R::DescribeTopicPartitions(body) => topics::filter_topic_partitions(body, d),
        R::Fetch(body) => topics::filter_fetch(body, d),
        R::ListGroups(body) => groups::filter_list_groups(body, d),
        R::OffsetFetch(body) => groups::filter_offset_fetch(body, d),
        R::ListTransactions(body) => txn::filter_list_transactions(body, d),
        R::DescribeTransactions(body) => txn::filter_describe_transactions(body, d),
        _ => {}
    });
}

/// Whether `filter` would take anything out of `response`: answers are changed (and so
/// re-encoded) only when it would.
pub(crate) fn hides_anything(response: &ResponseKind, d: &mut Decide<'_>) -> bool {
    use ResponseKind as R;
    d.quietly(|d| match response {
        R::Metadata(body) => body
            .topics
            .iter()
            .any(|topic| !topics::metadata_visible(topic, d)),
        R::DescribeTopicPartitions(body) => {
            body.topics
                .iter()
                .any(|topic| !topics::partitions_visible(topic, d))
                || body.next_cursor.as_ref().is_some_and(|cursor| {
                    !d.allows(ResourceType::Topic, &cursor.topic_name, Operation::Describe)
                })
        }
        R::Fetch(body) => body
            .responses
            .iter()
            .any(|topic| topics::fetch_denied(topic, d).is_some()),
        R::ListGroups(body) => {
            !groups::lists_every_group(d)
                && body
                    .groups
                    .iter()
                    .any(|group| !groups::group_visible(&group.group_id, d))
        }
        R::OffsetFetch(body) => {
            body.topics
                .iter()
                .any(|topic| !groups::topic_visible(&topic.name, &uuid::Uuid::nil(), d))
                || body.groups.iter().any(|group| {
                    group
                        .topics
                        .iter()
                        .any(|topic| !groups::topic_visible(&topic.name, &topic.topic_id, d))
                })
        }
        R::ListTransactions(body) => body
            .transaction_states
            .iter()
            .any(|state| !txn::transaction_visible(&state.transactional_id, d)),
        R::DescribeTransactions(body) => txn::describe_transactions_hides(body, d),
        _ => false,
    })
}

/// Whether answers of `api` are filtered on their way back (so worth decoding).
pub(crate) fn filters(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::Metadata
            | ApiKey::DescribeTopicPartitions
            | ApiKey::Fetch
            | ApiKey::ListGroups
            | ApiKey::OffsetFetch
            | ApiKey::ListTransactions
            | ApiKey::DescribeTransactions
    )
}

/// Whether answers of `api` carry topic ids the proxy learns names from.
pub(crate) fn teaches_topic_ids(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::Metadata | ApiKey::CreateTopics | ApiKey::DescribeTopicPartitions
    )
}

/// Learns the topic ids an answer names.
pub(crate) fn learn_topic_ids(response: &ResponseKind, ids: &super::TopicIds) {
    use ResponseKind as R;
    match response {
        R::Metadata(body) => {
            for topic in &body.topics {
                if let Some(name) = &topic.name {
                    ids.learn(topic.topic_id, name);
                }
            }
        }
        R::CreateTopics(body) => {
            for topic in &body.topics {
                if topic.error_code == 0 {
                    ids.learn(topic.topic_id, &topic.name);
                }
            }
        }
        R::DescribeTopicPartitions(body) => {
            for topic in &body.topics {
                if let Some(name) = &topic.name {
                    ids.learn(topic.topic_id, name);
                }
            }
        }
        _ => {}
    }
}

/// For each name, `None` when the session may do `operation` to that `resource`, else
/// `refusal`: the per-entry codes [`listed::split`] takes.
pub(crate) fn refusals<'a>(
    names: impl IntoIterator<Item = &'a str>,
    resource: ResourceType,
    operation: Operation,
    refusal: i16,
    d: &mut Decide<'_>,
) -> Vec<Option<i16>> {
    names
        .into_iter()
        .map(|name| (!d.allows(resource, name, operation)).then_some(refusal))
        .collect()
}

/// Forwarded when the session may do `operation` to the cluster, else refused with the
/// cluster's error (a follower's Fetch, the inter-broker AddPartitionsToTxn).
pub(crate) fn on_cluster(operation: Operation, d: &mut Decide<'_>) -> Verdict {
    if d.allows_cluster(operation) {
        Verdict::Forward
    } else {
        Verdict::Refuse(CLUSTER_DENIED)
    }
}

/// `None` when the session may do `operation` to the topic, else the error to answer with.
pub(crate) fn topic_code(
    name: &str,
    id: &uuid::Uuid,
    operation: Operation,
    d: &mut Decide<'_>,
) -> Option<i16> {
    if id.is_nil() {
        return (!d.allows(ResourceType::Topic, name, operation)).then_some(TOPIC_DENIED);
    }
    match d.topic_name(id) {
        Some(known) => (!d.allows(ResourceType::Topic, &known, operation)).then_some(TOPIC_DENIED),
        None => Some(UNKNOWN_TOPIC_ID),
    }
}
