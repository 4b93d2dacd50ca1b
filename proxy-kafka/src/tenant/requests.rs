//! Requests, from the tenant's names to the broker's: every topic, group and transactional id a
//! request names gets the tenant's prefix; a topic named by id must be one of the tenant's. An
//! API not mapped here is refused whole, with its authorization error: a request whose names
//! the proxy cannot see could reach another tenant's resources.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ApiKey, GroupId, RequestKind, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::names::Namespace;
use crate::authorization::TopicIds;

/// Every API the tenant stage maps, both ways; any other is refused.
pub const MAPPED_APIS: &[ApiKey] = &[
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
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::SaslAuthenticate,
    ApiKey::CreatePartitions,
    ApiKey::DeleteGroups,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::OffsetDelete,
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

/// Whether the tenant stage maps `api` (else it refuses it).
pub fn maps(api: ApiKey) -> bool {
    MAPPED_APIS.contains(&api)
}

const INVALID_TOPIC: i16 = ResponseError::InvalidTopicException.code();
const UNKNOWN_TOPIC_ID: i16 = ResponseError::UnknownTopicId.code();
const CLUSTER_DENIED: i16 = ResponseError::ClusterAuthorizationFailed.code();
const INVALID_REQUEST: i16 = ResponseError::InvalidRequest.code();

/// Kafka's config resource types.
const CONFIG_TOPIC: i8 = 2;
const CONFIG_GROUP: i8 = 32;

/// Why a request is refused whole: the error code to answer it with.
pub(crate) type Refused = i16;

/// One request's mapping: the session's namespace and the listener's topic ids.
pub(crate) struct Map<'a> {
    pub(crate) ns: &'a Namespace,
    pub(crate) ids: &'a TopicIds,
}

impl Map<'_> {
    fn topic(&self, name: &mut TopicName) -> Result<(), Refused> {
        name.0 = self.ns.topic(&name.0).map_err(|_| INVALID_TOPIC)?;
        Ok(())
    }

    fn topic_str(&self, name: &mut StrBytes) -> Result<(), Refused> {
        *name = self.ns.topic(name).map_err(|_| INVALID_TOPIC)?;
        Ok(())
    }

    /// A topic named by id (when set) or by name: an id must be one of the tenant's topics.
    fn topic_ref(&self, name: &mut TopicName, id: &uuid::Uuid) -> Result<(), Refused> {
        if id.is_nil() {
            return self.topic(name);
        }
        self.topic_id(id)
    }

    fn topic_id(&self, id: &uuid::Uuid) -> Result<(), Refused> {
        match self.ids.name(id) {
            Some(name) if self.ns.owns(&name) => Ok(()),
            _ => Err(UNKNOWN_TOPIC_ID),
        }
    }

    fn group(&self, group: &mut GroupId) {
        group.0 = self.ns.name(&group.0);
    }

    fn transactional_id(&self, id: &mut TransactionalId) {
        id.0 = self.ns.name(&id.0);
    }

    fn config_resource(&self, kind: i8, name: &mut StrBytes) -> Result<(), Refused> {
        match kind {
            CONFIG_TOPIC => self.topic_str(name),
            CONFIG_GROUP => {
                *name = self.ns.name(name);
                Ok(())
            }
            // A broker's or a logger's configs are the cluster's, shared by every tenant.
            _ => Err(CLUSTER_DENIED),
        }
    }

    /// Maps `request` (of `api`, at `version`) to the broker's names in place.
    pub(crate) fn request(&self, request: &mut RequestKind, version: i16) -> Result<(), Refused> {
        use RequestKind as R;
        match request {
            R::ApiVersions(_)
            | R::SaslHandshake(_)
            | R::SaslAuthenticate(_)
            | R::DescribeCluster(_)
            | R::GetTelemetrySubscriptions(_)
            | R::PushTelemetry(_)
            | R::ListGroups(_) => {}
            R::ListTransactions(body) => {
                // A pattern is matched against the broker's ids: refused rather than guessed.
                if body
                    .transactional_id_pattern
                    .as_ref()
                    .is_some_and(|pattern| !pattern.is_empty())
                {
                    return Err(INVALID_REQUEST);
                }
            }
            R::Produce(body) => {
                if let Some(id) = &mut body.transactional_id {
                    self.transactional_id(id);
                }
                for topic in &mut body.topic_data {
                    self.topic_ref(&mut topic.name, &topic.topic_id)?;
                }
            }
            R::Fetch(body) => {
                for topic in &mut body.topics {
                    self.topic_ref(&mut topic.topic, &topic.topic_id)?;
                }
                for topic in &mut body.forgotten_topics_data {
                    self.topic_ref(&mut topic.topic, &topic.topic_id)?;
                }
            }
            R::ListOffsets(body) => {
                for topic in &mut body.topics {
                    self.topic(&mut topic.name)?;
                }
            }
            R::Metadata(body) => {
                for topic in body.topics.iter_mut().flatten() {
                    match &mut topic.name {
                        Some(name) if topic.topic_id.is_nil() => self.topic(name)?,
                        _ => self.topic_id(&topic.topic_id)?,
                    }
                }
            }
            R::OffsetCommit(body) => {
                self.group(&mut body.group_id);
                for topic in &mut body.topics {
                    self.topic_ref(&mut topic.name, &topic.topic_id)?;
                }
            }
            R::OffsetFetch(body) => {
                if version < 8 {
                    self.group(&mut body.group_id);
                    for topic in body.topics.iter_mut().flatten() {
                        self.topic(&mut topic.name)?;
                    }
                }
                for group in &mut body.groups {
                    self.group(&mut group.group_id);
                    for topic in group.topics.iter_mut().flatten() {
                        self.topic_ref(&mut topic.name, &topic.topic_id)?;
                    }
                }
            }
            R::FindCoordinator(body) => {
                if version < 4 {
                    body.key = self.ns.name(&body.key);
                }
                for key in &mut body.coordinator_keys {
                    *key = self.ns.name(key);
                }
            }
            R::JoinGroup(body) => self.group(&mut body.group_id),
            R::Heartbeat(body) => self.group(&mut body.group_id),
            R::LeaveGroup(body) => self.group(&mut body.group_id),
            R::SyncGroup(body) => self.group(&mut body.group_id),
            R::DescribeGroups(body) => body.groups.iter_mut().for_each(|group| self.group(group)),
            R::DeleteGroups(body) => body
                .groups_names
                .iter_mut()
                .for_each(|group| self.group(group)),
            R::CreateTopics(body) => {
                for topic in &mut body.topics {
                    self.topic(&mut topic.name)?;
                }
            }
            R::DeleteTopics(body) => {
                for name in &mut body.topic_names {
                    self.topic(name)?;
                }
                for topic in &mut body.topics {
                    match &mut topic.name {
                        Some(name) if topic.topic_id.is_nil() => self.topic(name)?,
                        _ => self.topic_id(&topic.topic_id)?,
                    }
                }
            }
            R::DeleteRecords(body) => {
                for topic in &mut body.topics {
                    self.topic(&mut topic.name)?;
                }
            }
            R::CreatePartitions(body) => {
                for topic in &mut body.topics {
                    self.topic(&mut topic.name)?;
                }
            }
            R::InitProducerId(body) => {
                if let Some(id) = &mut body.transactional_id {
                    self.transactional_id(id);
                }
            }
            R::OffsetForLeaderEpoch(body) => {
                for topic in &mut body.topics {
                    self.topic(&mut topic.topic)?;
                }
            }
            R::AddPartitionsToTxn(body) => {
                if version >= 4 {
                    // Batched by transaction: brokers verifying for each other.
                    return Err(CLUSTER_DENIED);
                }
                self.transactional_id(&mut body.v3_and_below_transactional_id);
                for topic in &mut body.v3_and_below_topics {
                    self.topic(&mut topic.name)?;
                }
            }
            R::AddOffsetsToTxn(body) => {
                self.transactional_id(&mut body.transactional_id);
                self.group(&mut body.group_id);
            }
            R::EndTxn(body) => self.transactional_id(&mut body.transactional_id),
            R::TxnOffsetCommit(body) => {
                self.transactional_id(&mut body.transactional_id);
                self.group(&mut body.group_id);
                for topic in &mut body.topics {
                    self.topic(&mut topic.name)?;
                }
            }
            R::DescribeConfigs(body) => {
                for resource in &mut body.resources {
                    self.config_resource(resource.resource_type, &mut resource.resource_name)?;
                }
            }
            R::AlterConfigs(body) => {
                for resource in &mut body.resources {
                    self.config_resource(resource.resource_type, &mut resource.resource_name)?;
                }
            }
            R::IncrementalAlterConfigs(body) => {
                for resource in &mut body.resources {
                    self.config_resource(resource.resource_type, &mut resource.resource_name)?;
                }
            }
            R::OffsetDelete(body) => {
                self.group(&mut body.group_id);
                for topic in &mut body.topics {
                    self.topic(&mut topic.name)?;
                }
            }
            R::DescribeProducers(body) => {
                for topic in &mut body.topics {
                    self.topic(&mut topic.name)?;
                }
            }
            R::DescribeTransactions(body) => body
                .transactional_ids
                .iter_mut()
                .for_each(|id| self.transactional_id(id)),
            R::ConsumerGroupHeartbeat(body) => {
                self.group(&mut body.group_id);
                for topic in body.subscribed_topic_names.iter_mut().flatten() {
                    self.topic(topic)?;
                }
                if let Some(regex) = &mut body.subscribed_topic_regex {
                    let confined = self.ns.regex(regex).ok_or(INVALID_REQUEST)?;
                    *regex = StrBytes::from_string(confined);
                }
                for owned in body.topic_partitions.iter().flatten() {
                    self.topic_id(&owned.topic_id)?;
                }
            }
            R::ConsumerGroupDescribe(body) => body
                .group_ids
                .iter_mut()
                .for_each(|group| self.group(group)),
            R::DescribeTopicPartitions(body) => {
                for topic in &mut body.topics {
                    self.topic(&mut topic.name)?;
                }
                if let Some(cursor) = &mut body.cursor {
                    self.topic(&mut cursor.topic_name)?;
                }
            }
            // The stage refuses what it does not map before asking; should one come here, it
            // is refused all the same.
            _ => return Err(CLUSTER_DENIED),
        }
        Ok(())
    }
}
