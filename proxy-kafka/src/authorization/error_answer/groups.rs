//! Refusals of the consumer-group and share-group APIs: coordinator lookup, membership,
//! committed offsets and describing or deleting groups. Each lists every group, member, topic
//! and partition the request names.

use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse, ConsumerGroupDescribeRequest,
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatResponse, DeleteGroupsRequest,
    DeleteGroupsResponse, DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, DescribeShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    HeartbeatResponse, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, ShareGroupDescribeRequest,
    ShareGroupDescribeResponse, ShareGroupHeartbeatResponse, SyncGroupResponse,
    alter_share_group_offsets_response as alter_share_offsets,
    consumer_group_describe_response as consumer_describe, delete_groups_response as delete_groups,
    delete_share_group_offsets_response as delete_share_offsets,
    describe_groups_response as describe_groups,
    describe_share_group_offsets_response as describe_share_offsets,
    find_coordinator_response as find_coordinator, leave_group_response as leave_group,
    offset_commit_response as offset_commit, offset_delete_response as offset_delete,
    offset_fetch_response as offset_fetch, share_group_describe_response as share_describe,
};
use kafka_protocol::protocol::StrBytes;

use super::{NO_NODE, from_version};

/// OffsetCommit v10 names topics by id; earlier versions by name.
const OFFSET_COMMIT_TOPIC_IDS: i16 = 10;
/// OffsetFetch v8 asks for several groups, each with its own error code.
const OFFSET_FETCH_GROUPS: i16 = 8;
/// OffsetFetch v10 names topics by id; earlier versions by name.
const OFFSET_FETCH_TOPIC_IDS: i16 = 10;
/// OffsetFetch has a top-level error code in v2-v7.
const OFFSET_FETCH_TOP_LEVEL_ERROR: i16 = 2;
/// FindCoordinator v4 looks up several keys, each with its own coordinator and error code.
const FIND_COORDINATOR_KEYS: i16 = 4;
/// JoinGroup's protocol name is nullable from v7, and null in Kafka's error answer.
const JOIN_GROUP_NULLABLE_PROTOCOL: i16 = 7;
/// LeaveGroup v3 removes several members, each answered.
const LEAVE_GROUP_MEMBERS: i16 = 3;

pub(super) fn offset_commit(
    request: &OffsetCommitRequest,
    version: i16,
    code: i16,
) -> OffsetCommitResponse {
    let topics = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            offset_commit::OffsetCommitResponsePartition::default()
                .with_partition_index(partition.partition_index)
                .with_error_code(code)
        });
        let answer = offset_commit::OffsetCommitResponseTopic::default()
            .with_partitions(partitions.collect());
        if version >= OFFSET_COMMIT_TOPIC_IDS {
            answer.with_topic_id(topic.topic_id)
        } else {
            answer.with_name(topic.name.clone())
        }
    });
    OffsetCommitResponse::default().with_topics(topics.collect())
}

/// v1: every partition asked for. v2-v7: the top-level code as well (Kafka's own answer has
/// only that). v8+: every group with `code`, with the partitions it asked for. Committed offset
/// -1 (`INVALID_OFFSET`); a request for all of a group's topics gets no topics.
pub(super) fn offset_fetch(
    request: &OffsetFetchRequest,
    version: i16,
    code: i16,
) -> OffsetFetchResponse {
    if version >= OFFSET_FETCH_GROUPS {
        let groups = request.groups.iter().map(|group| {
            let topics = group.topics.iter().flatten().map(|topic| {
                let partitions = topic.partition_indexes.iter().map(|&index| {
                    offset_fetch::OffsetFetchResponsePartitions::default()
                        .with_partition_index(index)
                        .with_committed_offset(-1)
                        .with_error_code(code)
                });
                let answer = offset_fetch::OffsetFetchResponseTopics::default()
                    .with_partitions(partitions.collect());
                if version >= OFFSET_FETCH_TOPIC_IDS {
                    answer.with_topic_id(topic.topic_id)
                } else {
                    answer.with_name(topic.name.clone())
                }
            });
            offset_fetch::OffsetFetchResponseGroup::default()
                .with_group_id(group.group_id.clone())
                .with_topics(topics.collect())
                .with_error_code(code)
        });
        return OffsetFetchResponse::default().with_groups(groups.collect());
    }
    let topics = request.topics.iter().flatten().map(|topic| {
        let partitions = topic.partition_indexes.iter().map(|&index| {
            offset_fetch::OffsetFetchResponsePartition::default()
                .with_partition_index(index)
                .with_committed_offset(-1)
                .with_error_code(code)
        });
        offset_fetch::OffsetFetchResponseTopic::default()
            .with_name(topic.name.clone())
            .with_partitions(partitions.collect())
    });
    OffsetFetchResponse::default()
        .with_topics(topics.collect())
        .with_error_code(from_version(OFFSET_FETCH_TOP_LEVEL_ERROR, version, code))
}

/// No coordinator: node -1, host "", port -1 (as Kafka's `FindCoordinatorResponse.prepareResponse`
/// for an error); v4+ once per key looked up.
pub(super) fn find_coordinator(
    request: &FindCoordinatorRequest,
    version: i16,
    code: i16,
) -> FindCoordinatorResponse {
    if version >= FIND_COORDINATOR_KEYS {
        let coordinators = request.coordinator_keys.iter().map(|key| {
            find_coordinator::Coordinator::default()
                .with_key(key.clone())
                .with_node_id(NO_NODE)
                .with_host(StrBytes::default())
                .with_port(-1)
                .with_error_code(code)
                .with_error_message(None)
        });
        return FindCoordinatorResponse::default().with_coordinators(coordinators.collect());
    }
    FindCoordinatorResponse::default()
        .with_error_code(code)
        .with_error_message(None)
        .with_node_id(NO_NODE)
        .with_host(StrBytes::default())
        .with_port(-1)
}

/// As Kafka's `JoinGroupRequest.getErrorResponse`: generation -1, no leader, member id or
/// members; the protocol name "" before v7 and null from v7.
pub(super) fn join_group(version: i16, code: i16) -> JoinGroupResponse {
    let protocol_name = if version >= JOIN_GROUP_NULLABLE_PROTOCOL {
        None
    } else {
        Some(StrBytes::default())
    };
    JoinGroupResponse::default()
        .with_error_code(code)
        .with_generation_id(-1)
        .with_protocol_name(protocol_name)
}

pub(super) fn heartbeat(code: i16) -> HeartbeatResponse {
    HeartbeatResponse::default().with_error_code(code)
}

/// v3+ also answers every member the request names.
pub(super) fn leave_group(
    request: &LeaveGroupRequest,
    version: i16,
    code: i16,
) -> LeaveGroupResponse {
    let members = request.members.iter().map(|member| {
        leave_group::MemberResponse::default()
            .with_member_id(member.member_id.clone())
            .with_group_instance_id(member.group_instance_id.clone())
            .with_error_code(code)
    });
    let members = if version >= LEAVE_GROUP_MEMBERS {
        members.collect()
    } else {
        Vec::new()
    };
    LeaveGroupResponse::default()
        .with_error_code(code)
        .with_members(members)
}

/// No assignment.
pub(super) fn sync_group(code: i16) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(code)
}

/// Every group asked about, with state, protocol type and protocol "" and no members (as
/// Kafka's `DescribeGroupsResponse.groupError`).
pub(super) fn describe_groups(
    request: &DescribeGroupsRequest,
    code: i16,
) -> DescribeGroupsResponse {
    let groups = request.groups.iter().map(|group_id| {
        describe_groups::DescribedGroup::default()
            .with_error_code(code)
            .with_error_message(None)
            .with_group_id(group_id.clone())
    });
    DescribeGroupsResponse::default().with_groups(groups.collect())
}

/// No groups listed.
pub(super) fn list_groups(code: i16) -> ListGroupsResponse {
    ListGroupsResponse::default().with_error_code(code)
}

pub(super) fn delete_groups(request: &DeleteGroupsRequest, code: i16) -> DeleteGroupsResponse {
    let results = request.groups_names.iter().map(|group_id| {
        delete_groups::DeletableGroupResult::default()
            .with_group_id(group_id.clone())
            .with_error_code(code)
    });
    DeleteGroupsResponse::default().with_results(results.collect())
}

/// The top-level code (Kafka's own answer has only that) and every partition named.
pub(super) fn offset_delete(request: &OffsetDeleteRequest, code: i16) -> OffsetDeleteResponse {
    let topics = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            offset_delete::OffsetDeleteResponsePartition::default()
                .with_partition_index(partition.partition_index)
                .with_error_code(code)
        });
        offset_delete::OffsetDeleteResponseTopic::default()
            .with_name(topic.name.clone())
            .with_partitions(partitions.collect())
    });
    OffsetDeleteResponse::default()
        .with_error_code(code)
        .with_topics(topics.collect())
}

/// No member id, epoch or assignment.
pub(super) fn consumer_group_heartbeat(code: i16) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_error_message(None)
}

pub(super) fn consumer_group_describe(
    request: &ConsumerGroupDescribeRequest,
    code: i16,
) -> ConsumerGroupDescribeResponse {
    let groups = request.group_ids.iter().map(|group_id| {
        consumer_describe::DescribedGroup::default()
            .with_error_code(code)
            .with_error_message(None)
            .with_group_id(group_id.clone())
    });
    ConsumerGroupDescribeResponse::default().with_groups(groups.collect())
}

/// No member id, epoch or assignment.
pub(super) fn share_group_heartbeat(code: i16) -> ShareGroupHeartbeatResponse {
    ShareGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_error_message(None)
}

pub(super) fn share_group_describe(
    request: &ShareGroupDescribeRequest,
    code: i16,
) -> ShareGroupDescribeResponse {
    let groups = request.group_ids.iter().map(|group_id| {
        share_describe::DescribedGroup::default()
            .with_error_code(code)
            .with_error_message(None)
            .with_group_id(group_id.clone())
    });
    ShareGroupDescribeResponse::default().with_groups(groups.collect())
}

/// Every group, with the partitions it asked for (none when it asked for all topics).
pub(super) fn describe_share_group_offsets(
    request: &DescribeShareGroupOffsetsRequest,
    code: i16,
) -> DescribeShareGroupOffsetsResponse {
    let groups = request.groups.iter().map(|group| {
        let topics = group.topics.iter().flatten().map(|topic| {
            let partitions = topic.partitions.iter().map(|&index| {
                describe_share_offsets::DescribeShareGroupOffsetsResponsePartition::default()
                    .with_partition_index(index)
                    .with_error_code(code)
                    .with_error_message(None)
            });
            describe_share_offsets::DescribeShareGroupOffsetsResponseTopic::default()
                .with_topic_name(topic.topic_name.clone())
                .with_partitions(partitions.collect())
        });
        describe_share_offsets::DescribeShareGroupOffsetsResponseGroup::default()
            .with_group_id(group.group_id.clone())
            .with_topics(topics.collect())
            .with_error_code(code)
            .with_error_message(None)
    });
    DescribeShareGroupOffsetsResponse::default().with_groups(groups.collect())
}

pub(super) fn alter_share_group_offsets(
    request: &AlterShareGroupOffsetsRequest,
    code: i16,
) -> AlterShareGroupOffsetsResponse {
    let responses = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            alter_share_offsets::AlterShareGroupOffsetsResponsePartition::default()
                .with_partition_index(partition.partition_index)
                .with_error_code(code)
                .with_error_message(None)
        });
        alter_share_offsets::AlterShareGroupOffsetsResponseTopic::default()
            .with_topic_name(topic.topic_name.clone())
            .with_partitions(partitions.collect())
    });
    AlterShareGroupOffsetsResponse::default()
        .with_error_code(code)
        .with_error_message(None)
        .with_responses(responses.collect())
}

pub(super) fn delete_share_group_offsets(
    request: &DeleteShareGroupOffsetsRequest,
    code: i16,
) -> DeleteShareGroupOffsetsResponse {
    let responses = request.topics.iter().map(|topic| {
        delete_share_offsets::DeleteShareGroupOffsetsResponseTopic::default()
            .with_topic_name(topic.topic_name.clone())
            .with_error_code(code)
            .with_error_message(None)
    });
    DeleteShareGroupOffsetsResponse::default()
        .with_error_code(code)
        .with_error_message(None)
        .with_responses(responses.collect())
}
