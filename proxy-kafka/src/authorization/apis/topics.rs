//! APIs about topics: Produce (write), Fetch (read), ListOffsets, OffsetForLeaderEpoch,
//! Metadata and DescribeTopicPartitions (describe), CreateTopics (create, on the cluster or
//! the topic), DeleteTopics and DeleteRecords (delete), CreatePartitions (alter),
//! DescribeProducers (read). A follower's Fetch or epoch query is the cluster's action.

use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest,
    DescribeProducersRequest, DescribeTopicPartitionsRequest, FetchRequest, FetchResponse,
    ListOffsetsRequest, MetadataRequest, MetadataResponse, OffsetForLeaderEpochRequest,
    ProduceRequest, RequestKind, ResponseKind, TopicName,
};

use super::listed::{Key, split};
use super::{
    Decide, Operation, ResourceType, TOPIC_DENIED, TXN_DENIED, Verdict, on_cluster, refusals,
    topic_code,
};

listed! {
    /// Produce, by topic.
    ProduceTopics:
    Produce.topic_data: kafka_protocol::messages::produce_request::TopicProduceData
        => |e| Key::topic(&e.name, &e.topic_id),
    Produce.responses: kafka_protocol::messages::produce_response::TopicProduceResponse
        => |a| Key::topic(&a.name, &a.topic_id),
}

pub(crate) fn produce(body: &ProduceRequest, version: i16, d: &mut Decide<'_>) -> Verdict {
    if let Some(id) = &body.transactional_id
        && !d.allows(ResourceType::TransactionalId, id, Operation::Write)
    {
        return Verdict::Refuse(TXN_DENIED);
    }
    let codes = body
        .topic_data
        .iter()
        .map(|topic| topic_code(&topic.name, &topic.topic_id, Operation::Write, d))
        .collect();
    split::<ProduceTopics>(|| RequestKind::Produce(body.clone()), version, codes)
}

listed! {
    /// Fetch, by topic.
    FetchTopics:
    Fetch.topics: kafka_protocol::messages::fetch_request::FetchTopic
        => |e| Key::topic(&e.topic, &e.topic_id),
    Fetch.responses: kafka_protocol::messages::fetch_response::FetchableTopicResponse
        => |a| Key::topic(&a.topic, &a.topic_id),
}

pub(crate) fn fetch(body: &FetchRequest, version: i16, d: &mut Decide<'_>) -> Verdict {
    if body.replica_id.0 >= 0 || body.replica_state.replica_id.0 >= 0 {
        return on_cluster(Operation::ClusterAction, d);
    }
    let codes = body
        .topics
        .iter()
        .map(|topic| topic_code(&topic.topic, &topic.topic_id, Operation::Read, d))
        .collect();
    split::<FetchTopics>(|| RequestKind::Fetch(body.clone()), version, codes)
}

/// A fetch session answers for partitions the request did not list (KIP-227): whatever the
/// session may no longer read is answered as denied, without its records.
pub(crate) fn filter_fetch(body: &mut FetchResponse, d: &mut Decide<'_>) {
    for topic in &mut body.responses {
        let Some(code) = fetch_denied(topic, d) else {
            continue;
        };
        for partition in &mut topic.partitions {
            partition.error_code = code;
            partition.records = None;
            partition.high_watermark = -1;
            partition.last_stable_offset = -1;
            partition.log_start_offset = -1;
            partition.aborted_transactions = None;
        }
    }
}

/// The error for a fetched topic the session may not read, unless already answered so.
pub(crate) fn fetch_denied(
    topic: &kafka_protocol::messages::fetch_response::FetchableTopicResponse,
    d: &mut Decide<'_>,
) -> Option<i16> {
    let code = topic_code(&topic.topic, &topic.topic_id, Operation::Read, d)?;
    let answered = topic
        .partitions
        .iter()
        .all(|partition| partition.error_code == code && partition.records.is_none());
    (!answered).then_some(code)
}

listed! {
    /// ListOffsets, by topic.
    ListOffsetsTopics:
    ListOffsets.topics: kafka_protocol::messages::list_offsets_request::ListOffsetsTopic
        => |e| Key::Name(e.name.0.clone()),
    ListOffsets.topics: kafka_protocol::messages::list_offsets_response::ListOffsetsTopicResponse
        => |a| Key::Name(a.name.0.clone()),
}

pub(crate) fn list_offsets(body: &ListOffsetsRequest, version: i16, d: &mut Decide<'_>) -> Verdict {
    if body.replica_id.0 >= 0 {
        return on_cluster(Operation::ClusterAction, d);
    }
    let codes = refusals(
        body.topics.iter().map(|topic| &*topic.name.0),
        ResourceType::Topic,
        Operation::Describe,
        TOPIC_DENIED,
        d,
    );
    split::<ListOffsetsTopics>(|| RequestKind::ListOffsets(body.clone()), version, codes)
}

listed! {
    /// OffsetForLeaderEpoch, by topic.
    EpochTopics:
    OffsetForLeaderEpoch.topics:
        kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderTopic
        => |e| Key::Name(e.topic.0.clone()),
    OffsetForLeaderEpoch.topics:
        kafka_protocol::messages::offset_for_leader_epoch_response::OffsetForLeaderTopicResult
        => |a| Key::Name(a.topic.0.clone()),
}

pub(crate) fn offset_for_leader_epoch(
    body: &OffsetForLeaderEpochRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    if body.replica_id.0 >= 0 {
        return on_cluster(Operation::ClusterAction, d);
    }
    let codes = refusals(
        body.topics.iter().map(|topic| &*topic.topic.0),
        ResourceType::Topic,
        Operation::Describe,
        TOPIC_DENIED,
        d,
    );
    split::<EpochTopics>(
        || RequestKind::OffsetForLeaderEpoch(body.clone()),
        version,
        codes,
    )
}

/// Metadata topics: a topic asked for by name, or by id (then the answer names it).
fn metadata_key(name: Option<&TopicName>, id: &uuid::Uuid) -> Key {
    match name {
        Some(name) if id.is_nil() => Key::Name(name.0.clone()),
        _ => Key::Id(*id),
    }
}

listed! {
    /// Metadata, by topic.
    MetadataTopics:
    Metadata.topics: kafka_protocol::messages::metadata_request::MetadataRequestTopic
        => |e| metadata_key(e.name.as_ref(), &e.topic_id),
    Metadata.topics: kafka_protocol::messages::metadata_response::MetadataResponseTopic
        => |a| metadata_key(a.name.as_ref(), &a.topic_id),
}

pub(crate) fn metadata(body: &MetadataRequest, version: i16, d: &mut Decide<'_>) -> Verdict {
    let Some(topics) = &body.topics else {
        // Every topic: the answer is filtered.
        return Verdict::Forward;
    };
    let mut create_denied = false;
    let codes: Vec<Option<i16>> = topics
        .iter()
        .map(|topic| {
            let name = topic.name.as_ref().map_or("", |name| &name.0);
            let code = topic_code(name, &topic.topic_id, Operation::Describe, d);
            if code.is_none() && body.allow_auto_topic_creation && !may_create(name, d) {
                if version < 4 {
                    // Before v4 a request cannot turn auto-creation off: a topic the session
                    // may not create is not asked for at all.
                    return Some(TOPIC_DENIED);
                }
                create_denied = true;
            }
            code
        })
        .collect();
    // Metadata by id names topics in the answer by name as well as by id, and asked by name
    // the answer carries the id: match answers by id where the request asked by id.
    let verdict = split::<MetadataTopics>(|| RequestKind::Metadata(body.clone()), version, codes);
    let verdict = match verdict {
        // The brokers' list must still come from a broker: ask for no topics, then answer the
        // denied ones.
        Verdict::Answer(answer) if matches!(*answer, ResponseKind::Metadata(_)) => Verdict::Trim {
            trim: Box::new(|request| {
                if let RequestKind::Metadata(request) = request {
                    request.topics = Some(Vec::new());
                }
            }),
            merge: Box::new(move |response| {
                if let (ResponseKind::Metadata(response), ResponseKind::Metadata(answer)) =
                    (response, *answer)
                {
                    response.topics = answer.topics;
                }
            }),
        },
        other => other,
    };
    if !create_denied {
        return verdict;
    }
    // A topic it may not create is not created: no topic is, as one request cannot say which.
    let no_creation = |request: &mut RequestKind| {
        if let RequestKind::Metadata(request) = request {
            request.allow_auto_topic_creation = false;
        }
    };
    match verdict {
        Verdict::Forward => Verdict::Trim {
            trim: Box::new(no_creation),
            merge: Box::new(|_| {}),
        },
        Verdict::Trim { trim, merge } => Verdict::Trim {
            trim: Box::new(move |request| {
                trim(request);
                no_creation(request);
            }),
            merge,
        },
        other => other,
    }
}

/// Whether the session may create the topic: on the cluster, or on the topic.
fn may_create(name: &str, d: &mut Decide<'_>) -> bool {
    d.quietly(|d| d.allows_cluster(Operation::Create))
        || d.quietly(|d| d.allows(ResourceType::Topic, name, Operation::Create))
}

/// A Metadata answer lists only topics the session may describe; asked by name, denied topics
/// are answered as denied (merged after this filter).
pub(crate) fn filter_metadata(body: &mut MetadataResponse, d: &mut Decide<'_>) {
    body.topics.retain(|topic| metadata_visible(topic, d));
}

/// Whether a Metadata answer may show the topic.
pub(crate) fn metadata_visible(
    topic: &kafka_protocol::messages::metadata_response::MetadataResponseTopic,
    d: &mut Decide<'_>,
) -> bool {
    let name = topic.name.as_ref().map_or("", |name| &name.0);
    d.allows(ResourceType::Topic, name, Operation::Describe)
}

listed! {
    /// CreateTopics, by topic.
    CreateTopics:
    CreateTopics.topics: kafka_protocol::messages::create_topics_request::CreatableTopic
        => |e| Key::Name(e.name.0.clone()),
    CreateTopics.topics: kafka_protocol::messages::create_topics_response::CreatableTopicResult
        => |a| Key::Name(a.name.0.clone()),
}

pub(crate) fn create_topics(
    body: &CreateTopicsRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    if d.quietly(|d| d.allows_cluster(Operation::Create)) {
        return Verdict::Forward;
    }
    let codes = refusals(
        body.topics.iter().map(|topic| &*topic.name.0),
        ResourceType::Topic,
        Operation::Create,
        TOPIC_DENIED,
        d,
    );
    split::<CreateTopics>(|| RequestKind::CreateTopics(body.clone()), version, codes)
}

fn delete_key(name: Option<&TopicName>, id: &uuid::Uuid) -> Key {
    match name {
        Some(name) if id.is_nil() => Key::Name(name.0.clone()),
        _ => Key::Id(*id),
    }
}

listed! {
    /// DeleteTopics v0-v5, by name.
    DeleteTopicNames:
    DeleteTopics.topic_names: TopicName => |e| Key::Name(e.0.clone()),
    DeleteTopics.responses: kafka_protocol::messages::delete_topics_response::DeletableTopicResult
        => |a| delete_key(a.name.as_ref(), &uuid::Uuid::nil()),
}

listed! {
    /// DeleteTopics v6, by name or id.
    DeleteTopicStates:
    DeleteTopics.topics: kafka_protocol::messages::delete_topics_request::DeleteTopicState
        => |e| delete_key(e.name.as_ref(), &e.topic_id),
    DeleteTopics.responses: kafka_protocol::messages::delete_topics_response::DeletableTopicResult
        => |a| delete_key(a.name.as_ref(), &a.topic_id),
}

pub(crate) fn delete_topics(
    body: &DeleteTopicsRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    let request = || RequestKind::DeleteTopics(body.clone());
    if version >= 6 {
        let codes = body
            .topics
            .iter()
            .map(|topic| {
                let name = topic.name.as_ref().map_or("", |name| &name.0);
                topic_code(name, &topic.topic_id, Operation::Delete, d)
            })
            .collect();
        split::<DeleteTopicStates>(request, version, codes)
    } else {
        let codes = refusals(
            body.topic_names.iter().map(|name| &*name.0),
            ResourceType::Topic,
            Operation::Delete,
            TOPIC_DENIED,
            d,
        );
        split::<DeleteTopicNames>(request, version, codes)
    }
}

listed! {
    /// DeleteRecords, by topic.
    DeleteRecordsTopics:
    DeleteRecords.topics: kafka_protocol::messages::delete_records_request::DeleteRecordsTopic
        => |e| Key::Name(e.name.0.clone()),
    DeleteRecords.topics: kafka_protocol::messages::delete_records_response::DeleteRecordsTopicResult
        => |a| Key::Name(a.name.0.clone()),
}

pub(crate) fn delete_records(
    body: &DeleteRecordsRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    let codes = refusals(
        body.topics.iter().map(|topic| &*topic.name.0),
        ResourceType::Topic,
        Operation::Delete,
        TOPIC_DENIED,
        d,
    );
    split::<DeleteRecordsTopics>(|| RequestKind::DeleteRecords(body.clone()), version, codes)
}

listed! {
    /// CreatePartitions, by topic.
    CreatePartitionsTopics:
    CreatePartitions.topics: kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic
        => |e| Key::Name(e.name.0.clone()),
    CreatePartitions.results: kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult
        => |a| Key::Name(a.name.0.clone()),
}

pub(crate) fn create_partitions(
    body: &CreatePartitionsRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    let codes = refusals(
        body.topics.iter().map(|topic| &*topic.name.0),
        ResourceType::Topic,
        Operation::Alter,
        TOPIC_DENIED,
        d,
    );
    split::<CreatePartitionsTopics>(
        || RequestKind::CreatePartitions(body.clone()),
        version,
        codes,
    )
}

listed! {
    /// DescribeTopicPartitions, by topic.
    DescribeTopicPartitionsTopics:
    DescribeTopicPartitions.topics:
        kafka_protocol::messages::describe_topic_partitions_request::TopicRequest
        => |e| Key::Name(e.name.0.clone()),
    DescribeTopicPartitions.topics:
        kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic
        => |a| Key::Name(a.name.as_ref().map(|name| name.0.clone()).unwrap_or_default()),
}

pub(crate) fn describe_topic_partitions(
    body: &DescribeTopicPartitionsRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    let codes = refusals(
        body.topics.iter().map(|topic| &*topic.name.0),
        ResourceType::Topic,
        Operation::Describe,
        TOPIC_DENIED,
        d,
    );
    split::<DescribeTopicPartitionsTopics>(
        || RequestKind::DescribeTopicPartitions(body.clone()),
        version,
        codes,
    )
}

/// A DescribeTopicPartitions answer (for every topic, when none is named) lists only topics
/// the session may describe; named denied topics are merged after this filter.
pub(crate) fn filter_topic_partitions(
    body: &mut kafka_protocol::messages::DescribeTopicPartitionsResponse,
    d: &mut Decide<'_>,
) {
    body.topics.retain(|topic| partitions_visible(topic, d));
    // The next page starts at a topic: one the session may not see is not named to it.
    if body.next_cursor.as_ref().is_some_and(|cursor| {
        !d.allows(ResourceType::Topic, &cursor.topic_name, Operation::Describe)
    }) {
        body.next_cursor = None;
    }
}

/// Whether a DescribeTopicPartitions answer may show the topic.
pub(crate) fn partitions_visible(
    topic: &kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic,
    d: &mut Decide<'_>,
) -> bool {
    let name = topic.name.as_ref().map_or("", |name| &name.0);
    d.allows(ResourceType::Topic, name, Operation::Describe)
}

listed! {
    /// DescribeProducers, by topic.
    DescribeProducersTopics:
    DescribeProducers.topics: kafka_protocol::messages::describe_producers_request::TopicRequest
        => |e| Key::Name(e.name.0.clone()),
    DescribeProducers.topics: kafka_protocol::messages::describe_producers_response::TopicResponse
        => |a| Key::Name(a.name.0.clone()),
}

pub(crate) fn describe_producers(
    body: &DescribeProducersRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    let codes = refusals(
        body.topics.iter().map(|topic| &*topic.name.0),
        ResourceType::Topic,
        Operation::Read,
        TOPIC_DENIED,
        d,
    );
    split::<DescribeProducersTopics>(
        || RequestKind::DescribeProducers(body.clone()),
        version,
        codes,
    )
}
