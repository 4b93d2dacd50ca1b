//! `throttle_time_ms` in a response: raised to the proxy's throttle when larger than the
//! broker's (KIP-219: clients honour it, back off, and report it).

use kafka_protocol::messages::ResponseKind;

use crate::{KafkaError, KafkaResponse};

/// Raises the response's `throttle_time_ms` to at least `millis`. Returns whether the response
/// carries the field in its version (the APIs clients use; a response without one is left as
/// it is: the read gate's hold still throttles the client).
pub(crate) fn raise(response: &mut KafkaResponse, millis: i32) -> Result<bool, KafkaError> {
    let version = response.api_version();
    let Some(field) = field(response.body_mut()?, version) else {
        return Ok(false);
    };
    if *field < millis {
        *field = millis;
    }
    Ok(true)
}

/// The version from which an API's response has `throttle_time_ms`, where it is not the first
/// version the library supports.
fn since(body: &ResponseKind) -> i16 {
    match body {
        ResponseKind::ApiVersions(_)
        | ResponseKind::Heartbeat(_)
        | ResponseKind::LeaveGroup(_)
        | ResponseKind::SyncGroup(_)
        | ResponseKind::DescribeGroups(_)
        | ResponseKind::ListGroups(_)
        | ResponseKind::FindCoordinator(_) => 1,
        ResponseKind::ListOffsets(_) | ResponseKind::JoinGroup(_) => 2,
        ResponseKind::Metadata(_)
        | ResponseKind::OffsetCommit(_)
        | ResponseKind::OffsetFetch(_) => 3,
        _ => 0,
    }
}

macro_rules! throttle_fields {
    ($body:expr, $($variant:ident),+ $(,)?) => {
        match $body {
            $(ResponseKind::$variant(response) => Some(&mut response.throttle_time_ms),)+
            _ => None,
        }
    };
}

fn field(body: &mut ResponseKind, version: i16) -> Option<&mut i32> {
    if version < since(body) {
        return None;
    }
    throttle_fields!(
        body,
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ListGroups,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        InitProducerId,
        OffsetForLeaderEpoch,
        AddPartitionsToTxn,
        AddOffsetsToTxn,
        EndTxn,
        TxnOffsetCommit,
        DescribeAcls,
        CreateAcls,
        DeleteAcls,
        DescribeConfigs,
        AlterConfigs,
        AlterReplicaLogDirs,
        DescribeLogDirs,
        CreatePartitions,
        CreateDelegationToken,
        RenewDelegationToken,
        ExpireDelegationToken,
        DescribeDelegationToken,
        DeleteGroups,
        ElectLeaders,
        IncrementalAlterConfigs,
        AlterPartitionReassignments,
        ListPartitionReassignments,
        OffsetDelete,
        DescribeClientQuotas,
        AlterClientQuotas,
        DescribeUserScramCredentials,
        AlterUserScramCredentials,
        DescribeCluster,
        DescribeProducers,
        DescribeTransactions,
        ListTransactions,
        ConsumerGroupHeartbeat,
        ConsumerGroupDescribe,
        GetTelemetrySubscriptions,
        PushTelemetry,
        DescribeTopicPartitions,
        UpdateFeatures,
    )
}
