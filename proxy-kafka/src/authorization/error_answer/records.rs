//! Refusals of the data APIs: producing, fetching (classic and share), offsets by time or
//! leader epoch, deleting records and topic metadata. Each lists every topic and partition the
//! request names, by name or by topic id as the version does.

use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, DescribeProducersRequest,
    DescribeProducersResponse, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    MetadataResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest,
    ProduceResponse, ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest,
    ShareFetchResponse, TopicName, delete_records_response as delete_records,
    describe_producers_response as describe_producers,
    describe_topic_partitions_response as describe_topic_partitions, fetch_response as fetch,
    list_offsets_response as list_offsets, metadata_response as metadata,
    offset_for_leader_epoch_response as offset_for_leader_epoch, produce_response as produce,
    share_acknowledge_response as share_acknowledge, share_fetch_response as share_fetch,
};

use super::from_version;

/// Produce v13 names topics by id; earlier versions by name.
const PRODUCE_TOPIC_IDS: i16 = 13;
/// Fetch v13 names topics by id; earlier versions by name.
const FETCH_TOPIC_IDS: i16 = 13;
/// Fetch has a top-level error code from v7.
const FETCH_TOP_LEVEL_ERROR: i16 = 7;
/// Metadata has a top-level error code from v13.
const METADATA_TOP_LEVEL_ERROR: i16 = 13;
/// Metadata topic names are nullable from v12 (a topic asked for by id).
const METADATA_NULLABLE_NAMES: i16 = 12;

/// No records written: base offset -1 (Kafka's `INVALID_OFFSET`), as a broker's
/// `PartitionResponse(error)`; log-append time and log-start offset default to -1.
pub(super) fn produce(request: &ProduceRequest, version: i16, code: i16) -> ProduceResponse {
    let responses = request.topic_data.iter().map(|topic| {
        let partitions = topic.partition_data.iter().map(|partition| {
            produce::PartitionProduceResponse::default()
                .with_index(partition.index)
                .with_error_code(code)
                .with_base_offset(-1)
        });
        let answer =
            produce::TopicProduceResponse::default().with_partition_responses(partitions.collect());
        if version >= PRODUCE_TOPIC_IDS {
            answer.with_topic_id(topic.topic_id)
        } else {
            answer.with_name(topic.name.clone())
        }
    });
    ProduceResponse::default().with_responses(responses.collect())
}

/// Every partition as Kafka's `FetchResponse.partitionResponse(partition, error)`: high
/// watermark -1 (the other offsets default to -1 too), no records; forgotten topics are not
/// answered. From v7 the top-level code as well, as Kafka's `FetchRequest.getErrorResponse`
/// does. Session id 0 (`INVALID_SESSION_ID`): with a top-level error the client drops its
/// session anyway.
///
/// A Java consumer that reads a top-level error logs it and retries without reading the
/// partitions (`FetchSessionHandler.handleResponse`); a broker that denies topics answers them
/// per partition with top-level NONE, which surfaces as `TopicAuthorizationException`.
pub(super) fn fetch(request: &FetchRequest, version: i16, code: i16) -> FetchResponse {
    let responses = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            fetch::PartitionData::default()
                .with_partition_index(partition.partition)
                .with_error_code(code)
                .with_high_watermark(-1)
        });
        let answer = fetch::FetchableTopicResponse::default().with_partitions(partitions.collect());
        if version >= FETCH_TOPIC_IDS {
            answer.with_topic_id(topic.topic_id)
        } else {
            answer.with_topic(topic.topic.clone())
        }
    });
    FetchResponse::default()
        .with_error_code(from_version(FETCH_TOP_LEVEL_ERROR, version, code))
        .with_responses(responses.collect())
}

/// Timestamp, offset and leader epoch keep their "unknown" defaults (-1).
pub(super) fn list_offsets(request: &ListOffsetsRequest, code: i16) -> ListOffsetsResponse {
    let topics = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            list_offsets::ListOffsetsPartitionResponse::default()
                .with_partition_index(partition.partition_index)
                .with_error_code(code)
        });
        list_offsets::ListOffsetsTopicResponse::default()
            .with_name(topic.name.clone())
            .with_partitions(partitions.collect())
    });
    ListOffsetsResponse::default().with_topics(topics.collect())
}

/// Every topic asked for, with no partitions; no brokers and no controller (-1). A request for
/// all topics (`topics: None`) gets no topics: the refusal names none.
pub(super) fn metadata(request: &MetadataRequest, version: i16, code: i16) -> MetadataResponse {
    let topics = request.topics.iter().flatten().map(|topic| {
        // A topic asked for by id has no name; before v12 the answer's name may not be null.
        let name = match &topic.name {
            None if version < METADATA_NULLABLE_NAMES => Some(TopicName::default()),
            name => name.clone(),
        };
        metadata::MetadataResponseTopic::default()
            .with_error_code(code)
            .with_name(name)
            .with_topic_id(topic.topic_id)
    });
    MetadataResponse::default()
        .with_topics(topics.collect())
        .with_error_code(from_version(METADATA_TOP_LEVEL_ERROR, version, code))
}

/// Leader epoch and end offset keep their "unknown" defaults (-1).
pub(super) fn offset_for_leader_epoch(
    request: &OffsetForLeaderEpochRequest,
    code: i16,
) -> OffsetForLeaderEpochResponse {
    let topics = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            offset_for_leader_epoch::EpochEndOffset::default()
                .with_partition(partition.partition)
                .with_error_code(code)
        });
        offset_for_leader_epoch::OffsetForLeaderTopicResult::default()
            .with_topic(topic.topic.clone())
            .with_partitions(partitions.collect())
    });
    OffsetForLeaderEpochResponse::default().with_topics(topics.collect())
}

/// Low watermark -1 (Kafka's `INVALID_LOW_WATERMARK`): nothing was deleted.
pub(super) fn delete_records(request: &DeleteRecordsRequest, code: i16) -> DeleteRecordsResponse {
    let topics = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            delete_records::DeleteRecordsPartitionResult::default()
                .with_partition_index(partition.partition_index)
                .with_low_watermark(-1)
                .with_error_code(code)
        });
        delete_records::DeleteRecordsTopicResult::default()
            .with_name(topic.name.clone())
            .with_partitions(partitions.collect())
    });
    DeleteRecordsResponse::default().with_topics(topics.collect())
}

/// Every partition asked about, with no active producers.
pub(super) fn describe_producers(
    request: &DescribeProducersRequest,
    code: i16,
) -> DescribeProducersResponse {
    let topics = request.topics.iter().map(|topic| {
        let partitions = topic.partition_indexes.iter().map(|&index| {
            describe_producers::PartitionResponse::default()
                .with_partition_index(index)
                .with_error_code(code)
                .with_error_message(None)
        });
        describe_producers::TopicResponse::default()
            .with_name(topic.name.clone())
            .with_partitions(partitions.collect())
    });
    DescribeProducersResponse::default().with_topics(topics.collect())
}

/// Every topic asked about, with no partitions and no cursor: as Kafka's `getErrorResponse`.
pub(super) fn describe_topic_partitions(
    request: &DescribeTopicPartitionsRequest,
    code: i16,
) -> DescribeTopicPartitionsResponse {
    let topics = request.topics.iter().map(|topic| {
        describe_topic_partitions::DescribeTopicPartitionsResponseTopic::default()
            .with_error_code(code)
            .with_name(Some(topic.name.clone()))
    });
    DescribeTopicPartitionsResponse::default().with_topics(topics.collect())
}

/// Every partition with `code`, and with `code` as its acknowledgement error too when the
/// request acknowledged records in it (those acknowledgements were not applied either). The
/// leader stays unknown (0 is the schema's default) and no records are acquired.
pub(super) fn share_fetch(request: &ShareFetchRequest, code: i16) -> ShareFetchResponse {
    let responses = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            let acknowledged = !partition.acknowledgement_batches.is_empty();
            share_fetch::PartitionData::default()
                .with_partition_index(partition.partition_index)
                .with_error_code(code)
                .with_acknowledge_error_code(if acknowledged { code } else { 0 })
        });
        share_fetch::ShareFetchableTopicResponse::default()
            .with_topic_id(topic.topic_id)
            .with_partitions(partitions.collect())
    });
    ShareFetchResponse::default()
        .with_error_code(code)
        .with_responses(responses.collect())
}

/// Every partition acknowledged, with `code`: no acknowledgement was applied.
pub(super) fn share_acknowledge(
    request: &ShareAcknowledgeRequest,
    code: i16,
) -> ShareAcknowledgeResponse {
    let responses = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            share_acknowledge::PartitionData::default()
                .with_partition_index(partition.partition_index)
                .with_error_code(code)
        });
        share_acknowledge::ShareAcknowledgeTopicResponse::default()
            .with_topic_id(topic.topic_id)
            .with_partitions(partitions.collect())
    });
    ShareAcknowledgeResponse::default()
        .with_error_code(code)
        .with_responses(responses.collect())
}
