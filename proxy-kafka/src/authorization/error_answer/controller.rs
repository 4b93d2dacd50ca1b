//! Refusals of the APIs brokers and controllers send each other: KRaft quorum and voters,
//! partition state, broker registration, envelopes, producer-id blocks and share-group state.
//! A client has no business sending them to the proxy; they are answered like the rest so
//! that refusing one needs no special case. Each lists every topic, partition or directory
//! the request names, with no leader (-1) where the answer names one.

use kafka_protocol::messages::{
    AddRaftVoterResponse, AllocateProducerIdsResponse, AlterPartitionRequest,
    AlterPartitionResponse, AssignReplicasToDirsRequest, AssignReplicasToDirsResponse,
    BeginQuorumEpochRequest, BeginQuorumEpochResponse, BrokerHeartbeatResponse,
    BrokerRegistrationResponse, ControllerRegistrationResponse, DeleteShareGroupStateRequest,
    DeleteShareGroupStateResponse, DescribeQuorumRequest, DescribeQuorumResponse,
    EndQuorumEpochRequest, EndQuorumEpochResponse, EnvelopeResponse, FetchSnapshotRequest,
    FetchSnapshotResponse, InitializeShareGroupStateRequest, InitializeShareGroupStateResponse,
    ReadShareGroupStateRequest, ReadShareGroupStateResponse, ReadShareGroupStateSummaryRequest,
    ReadShareGroupStateSummaryResponse, RemoveRaftVoterResponse, UnregisterBrokerResponse,
    UpdateRaftVoterResponse, VoteRequest, VoteResponse, WriteShareGroupStateRequest,
    WriteShareGroupStateResponse, alter_partition_response as alter_partition,
    assign_replicas_to_dirs_response as assign_dirs, begin_quorum_epoch_response as begin_epoch,
    delete_share_group_state_response as delete_state, describe_quorum_response as describe_quorum,
    end_quorum_epoch_response as end_epoch, fetch_snapshot_response as fetch_snapshot,
    initialize_share_group_state_response as initialize_state,
    read_share_group_state_response as read_state,
    read_share_group_state_summary_response as read_state_summary, vote_response as vote,
    write_share_group_state_response as write_state,
};

use super::NO_NODE;

/// DescribeQuorum has error messages from v2.
const DESCRIBE_QUORUM_MESSAGES: i16 = 2;

/// The topics and partitions of a KRaft request (`topic_name`, `partitions[].partition_index`),
/// each partition answered with `code` and no leader.
macro_rules! quorum_topics {
    ($request:expr, $code:expr, $module:ident) => {
        $request
            .topics
            .iter()
            .map(|topic| {
                let partitions = topic.partitions.iter().map(|partition| {
                    $module::PartitionData::default()
                        .with_partition_index(partition.partition_index)
                        .with_error_code($code)
                        .with_leader_id(NO_NODE)
                        .with_leader_epoch(-1)
                });
                $module::TopicData::default()
                    .with_topic_name(topic.topic_name.clone())
                    .with_partitions(partitions.collect())
            })
            .collect()
    };
}

/// The topics and partitions of a share-group state request (`topic_id`,
/// `partitions[].partition`), each partition answered with `code`.
macro_rules! share_state_results {
    ($request:expr, $code:expr, $module:ident, $result:ident) => {
        $request
            .topics
            .iter()
            .map(|topic| {
                let partitions = topic.partitions.iter().map(|partition| {
                    $module::PartitionResult::default()
                        .with_partition(partition.partition)
                        .with_error_code($code)
                        .with_error_message(None)
                });
                $module::$result::default()
                    .with_topic_id(topic.topic_id)
                    .with_partitions(partitions.collect())
            })
            .collect()
    };
}

// === KRaft quorum ===

/// No vote granted.
pub(super) fn vote(request: &VoteRequest, code: i16) -> VoteResponse {
    VoteResponse::default()
        .with_error_code(code)
        .with_topics(quorum_topics!(request, code, vote))
}

pub(super) fn begin_quorum_epoch(
    request: &BeginQuorumEpochRequest,
    code: i16,
) -> BeginQuorumEpochResponse {
    BeginQuorumEpochResponse::default()
        .with_error_code(code)
        .with_topics(quorum_topics!(request, code, begin_epoch))
}

pub(super) fn end_quorum_epoch(
    request: &EndQuorumEpochRequest,
    code: i16,
) -> EndQuorumEpochResponse {
    EndQuorumEpochResponse::default()
        .with_error_code(code)
        .with_topics(quorum_topics!(request, code, end_epoch))
}

/// No leader, high watermark -1, no voters or observers.
pub(super) fn describe_quorum(
    request: &DescribeQuorumRequest,
    version: i16,
    code: i16,
) -> DescribeQuorumResponse {
    // The messages default to "", which v0-v1 cannot carry; null is for v2 only.
    let messages = version >= DESCRIBE_QUORUM_MESSAGES;
    let topics = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            let answer = describe_quorum::PartitionData::default()
                .with_partition_index(partition.partition_index)
                .with_error_code(code)
                .with_leader_id(NO_NODE)
                .with_leader_epoch(-1)
                .with_high_watermark(-1);
            if messages {
                answer.with_error_message(None)
            } else {
                answer
            }
        });
        describe_quorum::TopicData::default()
            .with_topic_name(topic.topic_name.clone())
            .with_partitions(partitions.collect())
    });
    let answer = DescribeQuorumResponse::default()
        .with_error_code(code)
        .with_topics(topics.collect());
    if messages {
        answer.with_error_message(None)
    } else {
        answer
    }
}

/// No snapshot (end offset and epoch -1) and no leader.
pub(super) fn fetch_snapshot(request: &FetchSnapshotRequest, code: i16) -> FetchSnapshotResponse {
    let topics = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            fetch_snapshot::PartitionSnapshot::default()
                .with_index(partition.partition)
                .with_error_code(code)
                .with_snapshot_id(
                    fetch_snapshot::SnapshotId::default()
                        .with_end_offset(-1)
                        .with_epoch(-1),
                )
                .with_current_leader(
                    fetch_snapshot::LeaderIdAndEpoch::default()
                        .with_leader_id(NO_NODE)
                        .with_leader_epoch(-1),
                )
        });
        fetch_snapshot::TopicSnapshot::default()
            .with_name(topic.name.clone())
            .with_partitions(partitions.collect())
    });
    FetchSnapshotResponse::default()
        .with_error_code(code)
        .with_topics(topics.collect())
}

pub(super) fn add_raft_voter(code: i16) -> AddRaftVoterResponse {
    AddRaftVoterResponse::default()
        .with_error_code(code)
        .with_error_message(None)
}

pub(super) fn remove_raft_voter(code: i16) -> RemoveRaftVoterResponse {
    RemoveRaftVoterResponse::default()
        .with_error_code(code)
        .with_error_message(None)
}

/// The current leader keeps its "unknown" default (-1).
pub(super) fn update_raft_voter(code: i16) -> UpdateRaftVoterResponse {
    UpdateRaftVoterResponse::default().with_error_code(code)
}

// === partitions and directories ===

/// Every partition named, with no leader and an empty ISR.
pub(super) fn alter_partition(
    request: &AlterPartitionRequest,
    code: i16,
) -> AlterPartitionResponse {
    let topics = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            alter_partition::PartitionData::default()
                .with_partition_index(partition.partition_index)
                .with_error_code(code)
                .with_leader_id(NO_NODE)
                .with_leader_epoch(-1)
        });
        alter_partition::TopicData::default()
            .with_topic_id(topic.topic_id)
            .with_partitions(partitions.collect())
    });
    AlterPartitionResponse::default()
        .with_error_code(code)
        .with_topics(topics.collect())
}

pub(super) fn assign_replicas_to_dirs(
    request: &AssignReplicasToDirsRequest,
    code: i16,
) -> AssignReplicasToDirsResponse {
    let directories = request.directories.iter().map(|directory| {
        let topics = directory.topics.iter().map(|topic| {
            let partitions = topic.partitions.iter().map(|partition| {
                assign_dirs::PartitionData::default()
                    .with_partition_index(partition.partition_index)
                    .with_error_code(code)
            });
            assign_dirs::TopicData::default()
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions.collect())
        });
        assign_dirs::DirectoryData::default()
            .with_id(directory.id)
            .with_topics(topics.collect())
    });
    AssignReplicasToDirsResponse::default()
        .with_error_code(code)
        .with_directories(directories.collect())
}

// === brokers and controllers ===

/// No inner response.
pub(super) fn envelope(code: i16) -> EnvelopeResponse {
    EnvelopeResponse::default().with_error_code(code)
}

/// Broker epoch keeps its "none" default (-1).
pub(super) fn broker_registration(code: i16) -> BrokerRegistrationResponse {
    BrokerRegistrationResponse::default().with_error_code(code)
}

/// The broker stays fenced (the schema's default).
pub(super) fn broker_heartbeat(code: i16) -> BrokerHeartbeatResponse {
    BrokerHeartbeatResponse::default().with_error_code(code)
}

pub(super) fn unregister_broker(code: i16) -> UnregisterBrokerResponse {
    UnregisterBrokerResponse::default()
        .with_error_code(code)
        .with_error_message(None)
}

pub(super) fn controller_registration(code: i16) -> ControllerRegistrationResponse {
    ControllerRegistrationResponse::default()
        .with_error_code(code)
        .with_error_message(None)
}

/// No block of producer ids.
pub(super) fn allocate_producer_ids(code: i16) -> AllocateProducerIdsResponse {
    AllocateProducerIdsResponse::default().with_error_code(code)
}

// === share-group state (broker to share coordinator) ===

pub(super) fn initialize_share_group_state(
    request: &InitializeShareGroupStateRequest,
    code: i16,
) -> InitializeShareGroupStateResponse {
    let results = share_state_results!(request, code, initialize_state, InitializeStateResult);
    InitializeShareGroupStateResponse::default().with_results(results)
}

pub(super) fn read_share_group_state(
    request: &ReadShareGroupStateRequest,
    code: i16,
) -> ReadShareGroupStateResponse {
    let results = share_state_results!(request, code, read_state, ReadStateResult);
    ReadShareGroupStateResponse::default().with_results(results)
}

pub(super) fn write_share_group_state(
    request: &WriteShareGroupStateRequest,
    code: i16,
) -> WriteShareGroupStateResponse {
    let results = share_state_results!(request, code, write_state, WriteStateResult);
    WriteShareGroupStateResponse::default().with_results(results)
}

pub(super) fn delete_share_group_state(
    request: &DeleteShareGroupStateRequest,
    code: i16,
) -> DeleteShareGroupStateResponse {
    let results = share_state_results!(request, code, delete_state, DeleteStateResult);
    DeleteShareGroupStateResponse::default().with_results(results)
}

pub(super) fn read_share_group_state_summary(
    request: &ReadShareGroupStateSummaryRequest,
    code: i16,
) -> ReadShareGroupStateSummaryResponse {
    let results = share_state_results!(request, code, read_state_summary, ReadStateSummaryResult);
    ReadShareGroupStateSummaryResponse::default().with_results(results)
}
