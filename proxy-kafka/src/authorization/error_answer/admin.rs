//! Refusals of the administration APIs: creating and deleting topics and partitions, configs,
//! replica placement, leader elections, reassignments, the cluster's description and features.
//! Each lists every topic, partition, config resource or feature the request names.

use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, AlterPartitionReassignmentsRequest,
    AlterPartitionReassignmentsResponse, AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse,
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeClusterRequest, DescribeClusterResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, DescribeLogDirsResponse, ElectLeadersRequest,
    ElectLeadersResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    ListConfigResourcesResponse, ListPartitionReassignmentsResponse, UpdateFeaturesRequest,
    UpdateFeaturesResponse, alter_configs_response as alter_configs,
    alter_partition_reassignments_response as reassignments,
    alter_replica_log_dirs_response as log_dirs, create_partitions_response as create_partitions,
    create_topics_response as create_topics, delete_topics_response as delete_topics,
    describe_configs_response as describe_configs, elect_leaders_response as elect_leaders,
    incremental_alter_configs_response as incremental, update_features_response as features,
};

use super::from_version;

/// DeleteTopics v6 names topics by name or id; earlier versions by name only.
const DELETE_TOPICS_STATES: i16 = 6;
/// DescribeLogDirs has a top-level error code from v3.
const DESCRIBE_LOG_DIRS_TOP_LEVEL_ERROR: i16 = 3;
/// ElectLeaders has a top-level error code from v1.
const ELECT_LEADERS_TOP_LEVEL_ERROR: i16 = 1;
/// UpdateFeatures answers each feature only in v0-v1.
const UPDATE_FEATURES_LAST_WITH_RESULTS: i16 = 1;

/// Partition count and replication factor keep their "unknown" defaults (-1).
pub(super) fn create_topics(request: &CreateTopicsRequest, code: i16) -> CreateTopicsResponse {
    let topics = request.topics.iter().map(|topic| {
        create_topics::CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_error_code(code)
            .with_error_message(None)
    });
    CreateTopicsResponse::default().with_topics(topics.collect())
}

/// v6 echoes each topic as named, by name or by id (the name then stays null).
pub(super) fn delete_topics(
    request: &DeleteTopicsRequest,
    version: i16,
    code: i16,
) -> DeleteTopicsResponse {
    let result = |name| {
        delete_topics::DeletableTopicResult::default()
            .with_name(name)
            .with_error_code(code)
            .with_error_message(None)
    };
    let responses = if version >= DELETE_TOPICS_STATES {
        let topics = request.topics.iter();
        topics
            .map(|topic| result(topic.name.clone()).with_topic_id(topic.topic_id))
            .collect()
    } else {
        let names = request.topic_names.iter();
        names.map(|name| result(Some(name.clone()))).collect()
    };
    DeleteTopicsResponse::default().with_responses(responses)
}

pub(super) fn create_partitions(
    request: &CreatePartitionsRequest,
    code: i16,
) -> CreatePartitionsResponse {
    let results = request.topics.iter().map(|topic| {
        create_partitions::CreatePartitionsTopicResult::default()
            .with_name(topic.name.clone())
            .with_error_code(code)
            .with_error_message(None)
    });
    CreatePartitionsResponse::default().with_results(results.collect())
}

/// Every resource (type and name) asked about, with no configs.
pub(super) fn describe_configs(
    request: &DescribeConfigsRequest,
    code: i16,
) -> DescribeConfigsResponse {
    let results = request.resources.iter().map(|resource| {
        describe_configs::DescribeConfigsResult::default()
            .with_error_code(code)
            .with_error_message(None)
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone())
    });
    DescribeConfigsResponse::default().with_results(results.collect())
}

pub(super) fn alter_configs(request: &AlterConfigsRequest, code: i16) -> AlterConfigsResponse {
    let responses = request.resources.iter().map(|resource| {
        alter_configs::AlterConfigsResourceResponse::default()
            .with_error_code(code)
            .with_error_message(None)
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone())
    });
    AlterConfigsResponse::default().with_responses(responses.collect())
}

pub(super) fn incremental_alter_configs(
    request: &IncrementalAlterConfigsRequest,
    code: i16,
) -> IncrementalAlterConfigsResponse {
    let responses = request.resources.iter().map(|resource| {
        incremental::AlterConfigsResourceResponse::default()
            .with_error_code(code)
            .with_error_message(None)
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone())
    });
    IncrementalAlterConfigsResponse::default().with_responses(responses.collect())
}

/// One result per log dir and topic, in request order (as Kafka's `getErrorResponse`, which
/// does not merge a topic named under two dirs).
pub(super) fn alter_replica_log_dirs(
    request: &AlterReplicaLogDirsRequest,
    code: i16,
) -> AlterReplicaLogDirsResponse {
    let topics = request.dirs.iter().flat_map(|dir| &dir.topics);
    let results = topics.map(|topic| {
        let partitions = topic.partitions.iter().map(|&index| {
            log_dirs::AlterReplicaLogDirPartitionResult::default()
                .with_partition_index(index)
                .with_error_code(code)
        });
        log_dirs::AlterReplicaLogDirTopicResult::default()
            .with_topic_name(topic.name.clone())
            .with_partitions(partitions.collect())
    });
    AlterReplicaLogDirsResponse::default().with_results(results.collect())
}

/// Results are per log dir of the broker, not per topic asked about: none. The code is
/// top-level from v3; before, an empty answer is all a broker can say.
pub(super) fn describe_log_dirs(version: i16, code: i16) -> DescribeLogDirsResponse {
    DescribeLogDirsResponse::default().with_error_code(from_version(
        DESCRIBE_LOG_DIRS_TOP_LEVEL_ERROR,
        version,
        code,
    ))
}

/// Every partition named (none for an election of all partitions), and the top-level code
/// from v1 (as Kafka's `getErrorResponse`).
pub(super) fn elect_leaders(
    request: &ElectLeadersRequest,
    version: i16,
    code: i16,
) -> ElectLeadersResponse {
    let results = request.topic_partitions.iter().flatten().map(|topic| {
        let partitions = topic.partitions.iter().map(|&index| {
            elect_leaders::PartitionResult::default()
                .with_partition_id(index)
                .with_error_code(code)
                .with_error_message(None)
        });
        elect_leaders::ReplicaElectionResult::default()
            .with_topic(topic.topic.clone())
            .with_partition_result(partitions.collect())
    });
    ElectLeadersResponse::default()
        .with_error_code(from_version(ELECT_LEADERS_TOP_LEVEL_ERROR, version, code))
        .with_replica_election_results(results.collect())
}

/// The top-level code and every partition named; the replication-factor option echoed.
pub(super) fn alter_partition_reassignments(
    request: &AlterPartitionReassignmentsRequest,
    code: i16,
) -> AlterPartitionReassignmentsResponse {
    let responses = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            reassignments::ReassignablePartitionResponse::default()
                .with_partition_index(partition.partition_index)
                .with_error_code(code)
                .with_error_message(None)
        });
        reassignments::ReassignableTopicResponse::default()
            .with_name(topic.name.clone())
            .with_partitions(partitions.collect())
    });
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(request.allow_replication_factor_change)
        .with_error_code(code)
        .with_error_message(None)
        .with_responses(responses.collect())
}

/// No reassignments listed.
pub(super) fn list_partition_reassignments(code: i16) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
        .with_error_code(code)
        .with_error_message(None)
}

/// No cluster id, controller (-1) or brokers; the endpoint type asked for is echoed.
pub(super) fn describe_cluster(
    request: &DescribeClusterRequest,
    code: i16,
) -> DescribeClusterResponse {
    DescribeClusterResponse::default()
        .with_error_code(code)
        .with_error_message(None)
        .with_endpoint_type(request.endpoint_type)
}

/// The top-level code, and in v0-v1 every feature named.
pub(super) fn update_features(
    request: &UpdateFeaturesRequest,
    version: i16,
    code: i16,
) -> UpdateFeaturesResponse {
    let results = request.feature_updates.iter().map(|update| {
        features::UpdatableFeatureResult::default()
            .with_feature(update.feature.clone())
            .with_error_code(code)
            .with_error_message(None)
    });
    let results = if version <= UPDATE_FEATURES_LAST_WITH_RESULTS {
        results.collect()
    } else {
        Vec::new()
    };
    UpdateFeaturesResponse::default()
        .with_error_code(code)
        .with_error_message(None)
        .with_results(results)
}

/// No resources listed.
pub(super) fn list_config_resources(code: i16) -> ListConfigResourcesResponse {
    ListConfigResourcesResponse::default().with_error_code(code)
}
