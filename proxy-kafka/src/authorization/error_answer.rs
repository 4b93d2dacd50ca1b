//! The answer a broker gives when it refuses a whole request: the authorization stage sends it
//! instead of forwarding a request no rule allows (STYLE 11b, "answer like a broker").
//!
//! Every resource the request names (topic, partition, group, transactional id, config
//! resource, ACL filter, ...) comes back in request order with the refusal's error code, and a
//! top-level `error_code`, where the response has one in that version, carries it too. Kafka's
//! own `AbstractRequest::getErrorResponse` implementations are the model; where they answer
//! with the top-level code alone, the resources are listed as well. (A client may read only
//! the top-level code when it is set: see `records::fetch` for the Java consumer's Fetch.)
//!
//! One function per API lives in a file per family; this file is the table that picks it.

mod admin;
mod controller;
mod groups;
mod records;
mod security;
mod session;
mod transactions;

#[cfg(test)]
#[path = "error_answer_tests.rs"]
pub(crate) mod error_answer_tests;

#[cfg(test)]
#[path = "error_answer/admin_tests.rs"]
mod admin_tests;
#[cfg(test)]
#[path = "error_answer/groups_tests.rs"]
mod groups_tests;
#[cfg(test)]
#[path = "error_answer/records_tests.rs"]
mod records_tests;
#[cfg(test)]
#[path = "error_answer/security_tests.rs"]
mod security_tests;
#[cfg(test)]
#[path = "error_answer/transactions_tests.rs"]
mod transactions_tests;

use kafka_protocol::messages::{RequestKind, ResponseKind};

/// The answer a broker gives when it refuses all of `request` (decoded, at API version
/// `version`) with `code`: every resource the request names, in request order, with `code`;
/// the top-level `error_code`, in the versions that have one, is `code` too;
/// `throttle_time_ms` is 0 and error messages are left out (null), so a client shows the
/// code's own message.
///
/// `None` only for a request kind this function does not know. `RequestKind` is
/// `#[non_exhaustive]`, so the `match` below needs a wildcard arm, and a future kafka-protocol
/// with a new API would compile and land there; a caller should then do what a broker does
/// with an API it does not know: close the connection. With kafka-protocol 0.18 every variant
/// is matched by name, and `error_answer_tests` enumerates `ApiKey` (which is exhaustive) so
/// that a new API key fails to compile the tests and fails them until it has an arm here.
///
/// Produce with `acks = 0` expects no response: the caller must not send this answer then.
pub(crate) fn error_answer(request: &RequestKind, version: i16, code: i16) -> Option<ResponseKind> {
    use RequestKind as Q;
    use ResponseKind as A;
    let answer = match request {
        // === data: produce, fetch, offsets, metadata ===
        Q::Produce(r) => A::Produce(records::produce(r, version, code)),
        Q::Fetch(r) => A::Fetch(records::fetch(r, version, code)),
        Q::ListOffsets(r) => A::ListOffsets(records::list_offsets(r, code)),
        Q::Metadata(r) => A::Metadata(records::metadata(r, version, code)),
        Q::OffsetForLeaderEpoch(r) => {
            A::OffsetForLeaderEpoch(records::offset_for_leader_epoch(r, code))
        }
        Q::DeleteRecords(r) => A::DeleteRecords(records::delete_records(r, code)),
        Q::DescribeProducers(r) => A::DescribeProducers(records::describe_producers(r, code)),
        Q::DescribeTopicPartitions(r) => {
            A::DescribeTopicPartitions(records::describe_topic_partitions(r, code))
        }
        Q::ShareFetch(r) => A::ShareFetch(records::share_fetch(r, code)),
        Q::ShareAcknowledge(r) => A::ShareAcknowledge(records::share_acknowledge(r, code)),

        // === consumer groups and share groups ===
        Q::OffsetCommit(r) => A::OffsetCommit(groups::offset_commit(r, version, code)),
        Q::OffsetFetch(r) => A::OffsetFetch(groups::offset_fetch(r, version, code)),
        Q::FindCoordinator(r) => A::FindCoordinator(groups::find_coordinator(r, version, code)),
        Q::JoinGroup(_) => A::JoinGroup(groups::join_group(version, code)),
        Q::Heartbeat(_) => A::Heartbeat(groups::heartbeat(code)),
        Q::LeaveGroup(r) => A::LeaveGroup(groups::leave_group(r, version, code)),
        Q::SyncGroup(_) => A::SyncGroup(groups::sync_group(code)),
        Q::DescribeGroups(r) => A::DescribeGroups(groups::describe_groups(r, code)),
        Q::ListGroups(_) => A::ListGroups(groups::list_groups(code)),
        Q::DeleteGroups(r) => A::DeleteGroups(groups::delete_groups(r, code)),
        Q::OffsetDelete(r) => A::OffsetDelete(groups::offset_delete(r, code)),
        Q::ConsumerGroupHeartbeat(_) => {
            A::ConsumerGroupHeartbeat(groups::consumer_group_heartbeat(code))
        }
        Q::ConsumerGroupDescribe(r) => {
            A::ConsumerGroupDescribe(groups::consumer_group_describe(r, code))
        }
        Q::ShareGroupHeartbeat(_) => A::ShareGroupHeartbeat(groups::share_group_heartbeat(code)),
        Q::ShareGroupDescribe(r) => A::ShareGroupDescribe(groups::share_group_describe(r, code)),
        Q::DescribeShareGroupOffsets(r) => {
            A::DescribeShareGroupOffsets(groups::describe_share_group_offsets(r, code))
        }
        Q::AlterShareGroupOffsets(r) => {
            A::AlterShareGroupOffsets(groups::alter_share_group_offsets(r, code))
        }
        Q::DeleteShareGroupOffsets(r) => {
            A::DeleteShareGroupOffsets(groups::delete_share_group_offsets(r, code))
        }

        // === transactions ===
        Q::InitProducerId(_) => A::InitProducerId(transactions::init_producer_id(code)),
        Q::AddPartitionsToTxn(r) => {
            A::AddPartitionsToTxn(transactions::add_partitions_to_txn(r, version, code))
        }
        Q::AddOffsetsToTxn(_) => A::AddOffsetsToTxn(transactions::add_offsets_to_txn(code)),
        Q::EndTxn(_) => A::EndTxn(transactions::end_txn(code)),
        Q::WriteTxnMarkers(r) => A::WriteTxnMarkers(transactions::write_txn_markers(r, code)),
        Q::TxnOffsetCommit(r) => A::TxnOffsetCommit(transactions::txn_offset_commit(r, code)),
        Q::DescribeTransactions(r) => {
            A::DescribeTransactions(transactions::describe_transactions(r, code))
        }
        Q::ListTransactions(_) => A::ListTransactions(transactions::list_transactions(code)),

        // === topics, configs, partitions, cluster administration ===
        Q::CreateTopics(r) => A::CreateTopics(admin::create_topics(r, code)),
        Q::DeleteTopics(r) => A::DeleteTopics(admin::delete_topics(r, version, code)),
        Q::CreatePartitions(r) => A::CreatePartitions(admin::create_partitions(r, code)),
        Q::DescribeConfigs(r) => A::DescribeConfigs(admin::describe_configs(r, code)),
        Q::AlterConfigs(r) => A::AlterConfigs(admin::alter_configs(r, code)),
        Q::IncrementalAlterConfigs(r) => {
            A::IncrementalAlterConfigs(admin::incremental_alter_configs(r, code))
        }
        Q::AlterReplicaLogDirs(r) => A::AlterReplicaLogDirs(admin::alter_replica_log_dirs(r, code)),
        Q::DescribeLogDirs(_) => A::DescribeLogDirs(admin::describe_log_dirs(version, code)),
        Q::ElectLeaders(r) => A::ElectLeaders(admin::elect_leaders(r, version, code)),
        Q::AlterPartitionReassignments(r) => {
            A::AlterPartitionReassignments(admin::alter_partition_reassignments(r, code))
        }
        Q::ListPartitionReassignments(_) => {
            A::ListPartitionReassignments(admin::list_partition_reassignments(code))
        }
        Q::DescribeCluster(r) => A::DescribeCluster(admin::describe_cluster(r, code)),
        Q::UpdateFeatures(r) => A::UpdateFeatures(admin::update_features(r, version, code)),
        Q::ListConfigResources(_) => A::ListConfigResources(admin::list_config_resources(code)),

        // === ACLs, delegation tokens, quotas, SCRAM credentials ===
        Q::DescribeAcls(_) => A::DescribeAcls(security::describe_acls(code)),
        Q::CreateAcls(r) => A::CreateAcls(security::create_acls(r, code)),
        Q::DeleteAcls(r) => A::DeleteAcls(security::delete_acls(r, code)),
        Q::CreateDelegationToken(_) => {
            A::CreateDelegationToken(security::create_delegation_token(code))
        }
        Q::RenewDelegationToken(_) => {
            A::RenewDelegationToken(security::renew_delegation_token(code))
        }
        Q::ExpireDelegationToken(_) => {
            A::ExpireDelegationToken(security::expire_delegation_token(code))
        }
        Q::DescribeDelegationToken(_) => {
            A::DescribeDelegationToken(security::describe_delegation_token(code))
        }
        Q::DescribeClientQuotas(_) => {
            A::DescribeClientQuotas(security::describe_client_quotas(code))
        }
        Q::AlterClientQuotas(r) => A::AlterClientQuotas(security::alter_client_quotas(r, code)),
        Q::DescribeUserScramCredentials(r) => {
            A::DescribeUserScramCredentials(security::describe_user_scram_credentials(r, code))
        }
        Q::AlterUserScramCredentials(r) => {
            A::AlterUserScramCredentials(security::alter_user_scram_credentials(r, code))
        }

        // === the session: version negotiation, SASL, client telemetry ===
        Q::ApiVersions(_) => A::ApiVersions(session::api_versions(code)),
        Q::SaslHandshake(_) => A::SaslHandshake(session::sasl_handshake(code)),
        Q::SaslAuthenticate(_) => A::SaslAuthenticate(session::sasl_authenticate(code)),
        Q::GetTelemetrySubscriptions(_) => {
            A::GetTelemetrySubscriptions(session::get_telemetry_subscriptions(code))
        }
        Q::PushTelemetry(_) => A::PushTelemetry(session::push_telemetry(code)),

        // === between brokers and controllers: KRaft, registration, share-group state ===
        Q::Vote(r) => A::Vote(controller::vote(r, code)),
        Q::BeginQuorumEpoch(r) => A::BeginQuorumEpoch(controller::begin_quorum_epoch(r, code)),
        Q::EndQuorumEpoch(r) => A::EndQuorumEpoch(controller::end_quorum_epoch(r, code)),
        Q::DescribeQuorum(r) => A::DescribeQuorum(controller::describe_quorum(r, version, code)),
        Q::FetchSnapshot(r) => A::FetchSnapshot(controller::fetch_snapshot(r, code)),
        Q::AddRaftVoter(_) => A::AddRaftVoter(controller::add_raft_voter(code)),
        Q::RemoveRaftVoter(_) => A::RemoveRaftVoter(controller::remove_raft_voter(code)),
        Q::UpdateRaftVoter(_) => A::UpdateRaftVoter(controller::update_raft_voter(code)),
        Q::AlterPartition(r) => A::AlterPartition(controller::alter_partition(r, code)),
        Q::AssignReplicasToDirs(r) => {
            A::AssignReplicasToDirs(controller::assign_replicas_to_dirs(r, code))
        }
        Q::Envelope(_) => A::Envelope(controller::envelope(code)),
        Q::BrokerRegistration(_) => A::BrokerRegistration(controller::broker_registration(code)),
        Q::BrokerHeartbeat(_) => A::BrokerHeartbeat(controller::broker_heartbeat(code)),
        Q::UnregisterBroker(_) => A::UnregisterBroker(controller::unregister_broker(code)),
        Q::ControllerRegistration(_) => {
            A::ControllerRegistration(controller::controller_registration(code))
        }
        Q::AllocateProducerIds(_) => {
            A::AllocateProducerIds(controller::allocate_producer_ids(code))
        }
        Q::InitializeShareGroupState(r) => {
            A::InitializeShareGroupState(controller::initialize_share_group_state(r, code))
        }
        Q::ReadShareGroupState(r) => {
            A::ReadShareGroupState(controller::read_share_group_state(r, code))
        }
        Q::WriteShareGroupState(r) => {
            A::WriteShareGroupState(controller::write_share_group_state(r, code))
        }
        Q::DeleteShareGroupState(r) => {
            A::DeleteShareGroupState(controller::delete_share_group_state(r, code))
        }
        Q::ReadShareGroupStateSummary(r) => {
            A::ReadShareGroupStateSummary(controller::read_share_group_state_summary(r, code))
        }

        // `RequestKind` is `#[non_exhaustive]`: only a kafka-protocol newer than 0.18 reaches
        // this arm (see the doc comment above).
        _ => return None,
    };
    Some(answer)
}

/// `code` in the versions from `first` on, where the field exists; 0 (no error) before, where
/// kafka-protocol refuses to encode a field the version does not have.
fn from_version(first: i16, version: i16, code: i16) -> i16 {
    if version >= first { code } else { 0 }
}

/// Node id -1: no broker or leader is named (Kafka's "unknown").
const NO_NODE: kafka_protocol::messages::BrokerId = kafka_protocol::messages::BrokerId(-1);
