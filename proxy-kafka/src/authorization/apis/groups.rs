//! APIs about consumer groups: joining, syncing, heartbeats and leaving (read), committing
//! offsets (read on the group and each topic), fetching them (describe), finding coordinators,
//! describing, listing and deleting groups, and the KIP-848 group protocol.

use std::collections::{HashMap, HashSet};

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, DeleteGroupsRequest,
    DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsResponse,
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, OffsetFetchResponse, RequestKind,
    ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::listed::{Key, Listed, split};
use super::{
    Decide, GROUP_DENIED, Operation, ResourceType, TOPIC_DENIED, TXN_DENIED, Verdict, refusals,
    topic_code,
};

/// A request about one group, refused whole when the group is denied.
pub(crate) fn whole_group(group: &GroupId, operation: Operation, d: &mut Decide<'_>) -> Verdict {
    if d.allows(ResourceType::Group, group, operation) {
        Verdict::Forward
    } else {
        Verdict::Refuse(GROUP_DENIED)
    }
}

listed! {
    /// OffsetCommit, by topic.
    OffsetCommitTopics:
    OffsetCommit.topics: kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic
        => |e| Key::topic(&e.name, &e.topic_id),
    OffsetCommit.topics: kafka_protocol::messages::offset_commit_response::OffsetCommitResponseTopic
        => |a| Key::topic(&a.name, &a.topic_id),
}

pub(crate) fn offset_commit(
    body: &OffsetCommitRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    if !d.allows(ResourceType::Group, &body.group_id, Operation::Read) {
        return Verdict::Refuse(GROUP_DENIED);
    }
    let codes = body
        .topics
        .iter()
        .map(|topic| topic_code(&topic.name, &topic.topic_id, Operation::Read, d))
        .collect();
    split::<OffsetCommitTopics>(|| RequestKind::OffsetCommit(body.clone()), version, codes)
}

/// OffsetFetch v0-v7, by topic (the list is absent for "every topic").
pub(crate) struct OffsetFetchTopics;

impl Listed for OffsetFetchTopics {
    type Entry = kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    type Answer = kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseTopic;

    fn entries(request: &mut RequestKind) -> Option<&mut Vec<Self::Entry>> {
        match request {
            RequestKind::OffsetFetch(body) => body.topics.as_mut(),
            _ => None,
        }
    }

    fn answers(response: &mut ResponseKind) -> Option<&mut Vec<Self::Answer>> {
        match response {
            ResponseKind::OffsetFetch(body) => Some(&mut body.topics),
            _ => None,
        }
    }

    fn entry_key(entry: &Self::Entry) -> Key {
        Key::Name(entry.name.0.clone())
    }

    fn answer_key(answer: &Self::Answer) -> Key {
        Key::Name(answer.name.0.clone())
    }
}

listed! {
    /// OffsetFetch v8+, by group.
    OffsetFetchGroups:
    OffsetFetch.groups: kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup
        => |e| Key::Name(e.group_id.0.clone()),
    OffsetFetch.groups: kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup
        => |a| Key::Name(a.group_id.0.clone()),
}

pub(crate) fn offset_fetch(body: &OffsetFetchRequest, version: i16, d: &mut Decide<'_>) -> Verdict {
    if version < 8 {
        if !d.allows(ResourceType::Group, &body.group_id, Operation::Describe) {
            return Verdict::Refuse(GROUP_DENIED);
        }
        let Some(topics) = &body.topics else {
            return Verdict::Forward;
        };
        let codes = refusals(
            topics.iter().map(|topic| &*topic.name.0),
            ResourceType::Topic,
            Operation::Describe,
            TOPIC_DENIED,
            d,
        );
        return split::<OffsetFetchTopics>(
            || RequestKind::OffsetFetch(body.clone()),
            version,
            codes,
        );
    }
    // v8+: groups denied whole; within allowed groups, named topics denied one by one.
    let group_codes: Vec<Option<i16>> = refusals(
        body.groups.iter().map(|group| &*group.group_id.0),
        ResourceType::Group,
        Operation::Describe,
        GROUP_DENIED,
        d,
    );
    let mut denied_topics: HashMap<GroupId, Vec<(TopicName, uuid::Uuid, Vec<i32>)>> =
        HashMap::new();
    for (group, code) in body.groups.iter().zip(&group_codes) {
        if code.is_some() {
            continue;
        }
        for topic in group.topics.iter().flatten() {
            if topic_code(&topic.name, &topic.topic_id, Operation::Describe, d).is_some() {
                denied_topics
                    .entry(group.group_id.clone())
                    .or_default()
                    .push((
                        topic.name.clone(),
                        topic.topic_id,
                        topic.partition_indexes.clone(),
                    ));
            }
        }
    }
    let verdict = split::<OffsetFetchGroups>(
        || RequestKind::OffsetFetch(body.clone()),
        version,
        group_codes,
    );
    if denied_topics.is_empty() {
        return verdict;
    }
    let trim_topics = {
        let denied: HashMap<GroupId, HashSet<TopicName>> = denied_topics
            .iter()
            .map(|(group, topics)| {
                (
                    group.clone(),
                    topics.iter().map(|(name, ..)| name.clone()).collect(),
                )
            })
            .collect();
        move |request: &mut RequestKind| {
            if let RequestKind::OffsetFetch(request) = request {
                for group in &mut request.groups {
                    if let (Some(denied), Some(topics)) =
                        (denied.get(&group.group_id), group.topics.as_mut())
                    {
                        topics.retain(|topic| !denied.contains(&topic.name));
                    }
                }
            }
        }
    };
    let mut add_denied = move |response: &mut ResponseKind| {
        if let ResponseKind::OffsetFetch(response) = response {
            for group in &mut response.groups {
                for (name, topic_id, partitions) in
                    denied_topics.remove(&group.group_id).into_iter().flatten()
                {
                    let mut topic = OffsetFetchResponseTopics::default();
                    topic.name = name;
                    topic.topic_id = topic_id;
                    topic.partitions = partitions
                        .into_iter()
                        .map(|index| {
                            let mut partition = OffsetFetchResponsePartitions::default();
                            partition.partition_index = index;
                            partition.committed_offset = -1;
                            partition.committed_leader_epoch = -1;
                            partition.error_code = TOPIC_DENIED;
                            partition
                        })
                        .collect();
                    group.topics.push(topic);
                }
            }
        }
    };
    match verdict {
        Verdict::Forward => Verdict::Trim {
            trim: Box::new(trim_topics),
            merge: Box::new(add_denied),
        },
        Verdict::Trim { trim, merge } => Verdict::Trim {
            trim: Box::new(move |request| {
                trim(request);
                trim_topics(request);
            }),
            merge: Box::new(move |response| {
                merge(response);
                add_denied(response);
            }),
        },
        other => other,
    }
}

/// An OffsetFetch answer lists only topics the session may describe (named topics it may not
/// are answered as denied, merged after this filter).
pub(crate) fn filter_offset_fetch(body: &mut OffsetFetchResponse, d: &mut Decide<'_>) {
    body.topics
        .retain(|topic| topic_visible(&topic.name, &uuid::Uuid::nil(), d));
    for group in &mut body.groups {
        group
            .topics
            .retain(|topic| topic_visible(&topic.name, &topic.topic_id, d));
    }
}

/// Whether an answer may show the topic.
pub(crate) fn topic_visible(name: &TopicName, id: &uuid::Uuid, d: &mut Decide<'_>) -> bool {
    topic_code(name, id, Operation::Describe, d).is_none()
}

/// Whether an answer may show the group.
pub(crate) fn group_visible(group: &GroupId, d: &mut Decide<'_>) -> bool {
    d.allows(ResourceType::Group, group, Operation::Describe)
}

/// Whether the session may see every group (describe on the cluster).
pub(crate) fn lists_every_group(d: &mut Decide<'_>) -> bool {
    d.allows_cluster(Operation::Describe)
}

listed! {
    /// FindCoordinator v4+, by key.
    CoordinatorKeys:
    FindCoordinator.coordinator_keys: StrBytes => |e| Key::Name(e.clone()),
    FindCoordinator.coordinators: kafka_protocol::messages::find_coordinator_response::Coordinator
        => |a| Key::Name(a.key.clone()),
}

pub(crate) fn find_coordinator(
    body: &FindCoordinatorRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    // Key type 1 is a transaction's coordinator; 0 (and 2, a share group's) a group's.
    let (resource, code) = if body.key_type == 1 {
        (ResourceType::TransactionalId, TXN_DENIED)
    } else {
        (ResourceType::Group, GROUP_DENIED)
    };
    if version < 4 {
        return if d.allows(resource, &body.key, Operation::Describe) {
            Verdict::Forward
        } else {
            Verdict::Refuse(code)
        };
    }
    let codes = refusals(
        body.coordinator_keys.iter().map(|key| &**key),
        resource,
        Operation::Describe,
        code,
        d,
    );
    split::<CoordinatorKeys>(
        || RequestKind::FindCoordinator(body.clone()),
        version,
        codes,
    )
}

listed! {
    /// DescribeGroups, by group.
    DescribeGroupsGroups:
    DescribeGroups.groups: GroupId => |e| Key::Name(e.0.clone()),
    DescribeGroups.groups: kafka_protocol::messages::describe_groups_response::DescribedGroup
        => |a| Key::Name(a.group_id.0.clone()),
}

pub(crate) fn describe_groups(
    body: &DescribeGroupsRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    let codes = refusals(
        body.groups.iter().map(|group| &*group.0),
        ResourceType::Group,
        Operation::Describe,
        GROUP_DENIED,
        d,
    );
    split::<DescribeGroupsGroups>(|| RequestKind::DescribeGroups(body.clone()), version, codes)
}

/// A ListGroups answer lists only groups the session may describe (all of them with describe
/// on the cluster).
pub(crate) fn filter_list_groups(body: &mut ListGroupsResponse, d: &mut Decide<'_>) {
    if lists_every_group(d) {
        return;
    }
    body.groups
        .retain(|group| group_visible(&group.group_id, d));
}

listed! {
    /// DeleteGroups, by group.
    DeleteGroupsGroups:
    DeleteGroups.groups_names: GroupId => |e| Key::Name(e.0.clone()),
    DeleteGroups.results: kafka_protocol::messages::delete_groups_response::DeletableGroupResult
        => |a| Key::Name(a.group_id.0.clone()),
}

pub(crate) fn delete_groups(
    body: &DeleteGroupsRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    let codes = refusals(
        body.groups_names.iter().map(|group| &*group.0),
        ResourceType::Group,
        Operation::Delete,
        GROUP_DENIED,
        d,
    );
    split::<DeleteGroupsGroups>(|| RequestKind::DeleteGroups(body.clone()), version, codes)
}

listed! {
    /// OffsetDelete, by topic.
    OffsetDeleteTopics:
    OffsetDelete.topics: kafka_protocol::messages::offset_delete_request::OffsetDeleteRequestTopic
        => |e| Key::Name(e.name.0.clone()),
    OffsetDelete.topics: kafka_protocol::messages::offset_delete_response::OffsetDeleteResponseTopic
        => |a| Key::Name(a.name.0.clone()),
}

pub(crate) fn offset_delete(body: &OffsetDeleteRequest, d: &mut Decide<'_>) -> Verdict {
    if !d.allows(ResourceType::Group, &body.group_id, Operation::Delete) {
        return Verdict::Refuse(GROUP_DENIED);
    }
    let codes = refusals(
        body.topics.iter().map(|topic| &*topic.name.0),
        ResourceType::Topic,
        Operation::Read,
        TOPIC_DENIED,
        d,
    );
    split::<OffsetDeleteTopics>(|| RequestKind::OffsetDelete(body.clone()), 0, codes)
}

/// KIP-848: read on the group; every topic subscribed by name must be describable (as Kafka
/// answers, `TOPIC_AUTHORIZATION_FAILED` for the heartbeat otherwise).
pub(crate) fn consumer_group_heartbeat(
    body: &ConsumerGroupHeartbeatRequest,
    d: &mut Decide<'_>,
) -> Verdict {
    if !d.allows(ResourceType::Group, &body.group_id, Operation::Read) {
        return Verdict::Refuse(GROUP_DENIED);
    }
    let mut all_described = true;
    for topic in body.subscribed_topic_names.iter().flatten() {
        all_described &= d.allows(ResourceType::Topic, topic, Operation::Describe);
    }
    // The broker resolves a regex over every topic, as the proxy's own principal: Kafka would
    // keep only topics the member may describe, which the proxy cannot do for it. A regex is
    // let through only for a principal that may describe every topic (a `*` rule).
    if body
        .subscribed_topic_regex
        .as_ref()
        .is_some_and(|regex| !regex.is_empty())
    {
        all_described &= d.allows(ResourceType::Topic, "*", Operation::Describe);
    }
    if all_described {
        Verdict::Forward
    } else {
        Verdict::Refuse(TOPIC_DENIED)
    }
}

listed! {
    /// ConsumerGroupDescribe, by group.
    ConsumerGroupDescribeGroups:
    ConsumerGroupDescribe.group_ids: GroupId => |e| Key::Name(e.0.clone()),
    ConsumerGroupDescribe.groups: kafka_protocol::messages::consumer_group_describe_response::DescribedGroup
        => |a| Key::Name(a.group_id.0.clone()),
}

pub(crate) fn consumer_group_describe(
    body: &ConsumerGroupDescribeRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    let codes = refusals(
        body.group_ids.iter().map(|group| &*group.0),
        ResourceType::Group,
        Operation::Describe,
        GROUP_DENIED,
        d,
    );
    split::<ConsumerGroupDescribeGroups>(
        || RequestKind::ConsumerGroupDescribe(body.clone()),
        version,
        codes,
    )
}
