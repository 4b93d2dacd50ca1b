//! The data APIs' refusals list every topic and partition the request names, in request order,
//! by name or by topic id as the version does, after a trip through the wire format.

use kafka_protocol::messages::{
    ApiKey, DeleteRecordsRequest, DescribeProducersRequest, DescribeTopicPartitionsRequest,
    FetchRequest, ListOffsetsRequest, MetadataRequest, OffsetForLeaderEpochRequest, ProduceRequest,
    ResponseKind, ShareAcknowledgeRequest, ShareFetchRequest,
    delete_records_request as delete_records, describe_producers_request as describe_producers,
    describe_topic_partitions_request as describe_topic_partitions, fetch_request as fetch,
    list_offsets_request as list_offsets, metadata_request as metadata,
    offset_for_leader_epoch_request as leader_epoch, produce_request as produce,
    share_acknowledge_request as share_acknowledge, share_fetch_request as share_fetch,
};

use super::error_answer_tests::{
    A01_B0, CODE, ID_A, ID_B, IDS_A01_B0, listing, refuse, refused, topic,
};

#[test]
fn produce_lists_every_partition_by_name_then_by_topic_id() {
    for version in [3, 9, 12, 13] {
        let by_id = version >= 13;
        let named = if by_id { IDS_A01_B0 } else { A01_B0 };
        let topics = named.map(|(name, partitions)| {
            let partitions = partitions
                .iter()
                .map(|&i| produce::PartitionProduceData::default().with_index(i));
            let data =
                produce::TopicProduceData::default().with_partition_data(partitions.collect());
            if by_id {
                data.with_topic_id(name.parse().unwrap())
            } else {
                data.with_name(topic(name))
            }
        });
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_topic_data(topics.to_vec());
        let ResponseKind::Produce(answer) = refuse(ApiKey::Produce, version, request.into()) else {
            panic!("not a produce response");
        };
        let name = |t: &kafka_protocol::messages::produce_response::TopicProduceResponse| {
            if by_id {
                t.topic_id.to_string()
            } else {
                t.name.0.to_string()
            }
        };
        let listed = listing(
            &answer.responses,
            name,
            |t| &t.partition_responses,
            |p| (p.index, p.error_code),
        );
        assert_eq!(listed, refused(named), "v{version}");
        let partitions = answer.responses.iter().flat_map(|t| &t.partition_responses);
        assert!(
            partitions.clone().all(|p| p.base_offset == -1),
            "v{version}: no offsets"
        );
        assert_eq!(answer.throttle_time_ms, 0);
    }
}

#[test]
fn fetch_lists_every_partition_with_no_high_watermark_by_name_then_by_topic_id() {
    for version in [4, 7, 12, 13, 18] {
        let by_id = version >= 13;
        let named = if by_id { IDS_A01_B0 } else { A01_B0 };
        let topics = named.map(|(name, partitions)| {
            let partitions = partitions
                .iter()
                .map(|&i| fetch::FetchPartition::default().with_partition(i));
            let data = fetch::FetchTopic::default().with_partitions(partitions.collect());
            if by_id {
                data.with_topic_id(name.parse().unwrap())
            } else {
                data.with_topic(topic(name))
            }
        });
        let request = FetchRequest::default().with_topics(topics.to_vec());
        let ResponseKind::Fetch(answer) = refuse(ApiKey::Fetch, version, request.into()) else {
            panic!("not a fetch response");
        };
        let name = |t: &kafka_protocol::messages::fetch_response::FetchableTopicResponse| {
            if by_id {
                t.topic_id.to_string()
            } else {
                t.topic.0.to_string()
            }
        };
        let listed = listing(
            &answer.responses,
            name,
            |t| &t.partitions,
            |p| (p.partition_index, p.error_code),
        );
        assert_eq!(listed, refused(named), "v{version}");
        for partition in answer.responses.iter().flat_map(|t| &t.partitions) {
            assert_eq!(
                (partition.high_watermark, partition.last_stable_offset),
                (-1, -1)
            );
            assert_eq!(partition.records.as_ref().map(|r| r.len()), Some(0));
        }
        assert_eq!(
            answer.error_code,
            if version >= 7 { CODE } else { 0 },
            "v{version}"
        );
        assert_eq!(answer.session_id, 0, "v{version}: no session");
    }
}

#[test]
fn list_offsets_lists_every_partition_with_no_offset() {
    let topics = A01_B0.map(|(name, partitions)| {
        let partitions = partitions
            .iter()
            .map(|&i| list_offsets::ListOffsetsPartition::default().with_partition_index(i));
        list_offsets::ListOffsetsTopic::default()
            .with_name(topic(name))
            .with_partitions(partitions.collect())
    });
    for version in [1, 4, 10] {
        let request = ListOffsetsRequest::default().with_topics(topics.to_vec());
        let ResponseKind::ListOffsets(answer) =
            refuse(ApiKey::ListOffsets, version, request.into())
        else {
            panic!("not a list-offsets response");
        };
        let listed = listing(
            &answer.topics,
            |t| t.name.0.to_string(),
            |t| &t.partitions,
            |p| (p.partition_index, p.error_code),
        );
        assert_eq!(listed, refused(A01_B0), "v{version}");
        let partitions = answer.topics.iter().flat_map(|t| &t.partitions);
        assert!(
            partitions
                .clone()
                .all(|p| p.offset == -1 && p.timestamp == -1)
        );
    }
}

#[test]
fn metadata_lists_the_topics_asked_for_and_none_for_all_topics() {
    let asked = ["a", "b"]
        .map(|name| metadata::MetadataRequestTopic::default().with_name(Some(topic(name))));
    for version in [0, 4, 9, 12, 13] {
        let request = MetadataRequest::default().with_topics(Some(asked.to_vec()));
        let ResponseKind::Metadata(answer) = refuse(ApiKey::Metadata, version, request.into())
        else {
            panic!("not a metadata response");
        };
        let listed: Vec<_> = answer
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.0.to_string()),
                    t.error_code,
                    t.partitions.len(),
                )
            })
            .collect();
        assert_eq!(
            listed,
            ["a", "b"].map(|n| (Some(n.to_string()), CODE, 0)),
            "v{version}"
        );
        assert!(answer.brokers.is_empty(), "v{version}: no brokers");
        assert_eq!(answer.controller_id.0, -1);
        assert_eq!(
            answer.error_code,
            if version >= 13 { CODE } else { 0 },
            "v{version}"
        );

        // v0 has no null topic list (an empty one means all topics).
        let all = MetadataRequest::default().with_topics(None);
        let ResponseKind::Metadata(answer) = refuse(ApiKey::Metadata, version.max(1), all.into())
        else {
            panic!("not a metadata response");
        };
        assert!(
            answer.topics.is_empty() && answer.brokers.is_empty(),
            "v{version}: all topics"
        );
    }
}

#[test]
fn metadata_by_topic_id_answers_the_id_with_a_null_name_from_v12() {
    let by_id = metadata::MetadataRequestTopic::default()
        .with_name(None)
        .with_topic_id(ID_A.parse().unwrap());
    let request = MetadataRequest::default().with_topics(Some(vec![by_id]));
    let ResponseKind::Metadata(answer) = refuse(ApiKey::Metadata, 12, request.into()) else {
        panic!("not a metadata response");
    };
    let listed: Vec<_> = answer
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.topic_id.to_string(), t.error_code))
        .collect();
    assert_eq!(listed, vec![(None, ID_A.to_string(), CODE)]);
}

#[test]
fn offset_for_leader_epoch_and_delete_records_list_every_partition() {
    let epochs = A01_B0.map(|(name, partitions)| {
        let partitions = partitions
            .iter()
            .map(|&i| leader_epoch::OffsetForLeaderPartition::default().with_partition(i));
        leader_epoch::OffsetForLeaderTopic::default()
            .with_topic(topic(name))
            .with_partitions(partitions.collect())
    });
    let request = OffsetForLeaderEpochRequest::default().with_topics(epochs.to_vec());
    let ResponseKind::OffsetForLeaderEpoch(answer) =
        refuse(ApiKey::OffsetForLeaderEpoch, 4, request.into())
    else {
        panic!("not an offset-for-leader-epoch response");
    };
    let listed = listing(
        &answer.topics,
        |t| t.topic.0.to_string(),
        |t| &t.partitions,
        |p| (p.partition, p.error_code),
    );
    assert_eq!(listed, refused(A01_B0));

    let deletes = A01_B0.map(|(name, partitions)| {
        let partitions = partitions
            .iter()
            .map(|&i| delete_records::DeleteRecordsPartition::default().with_partition_index(i));
        delete_records::DeleteRecordsTopic::default()
            .with_name(topic(name))
            .with_partitions(partitions.collect())
    });
    for version in [0, 2] {
        let request = DeleteRecordsRequest::default().with_topics(deletes.to_vec());
        let ResponseKind::DeleteRecords(answer) =
            refuse(ApiKey::DeleteRecords, version, request.into())
        else {
            panic!("not a delete-records response");
        };
        let listed = listing(
            &answer.topics,
            |t| t.name.0.to_string(),
            |t| &t.partitions,
            |p| (p.partition_index, p.error_code),
        );
        assert_eq!(listed, refused(A01_B0), "v{version}");
        assert!(
            answer
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .all(|p| p.low_watermark == -1)
        );
    }
}

#[test]
fn describe_producers_and_topic_partitions_list_every_topic_asked_about() {
    let topics = A01_B0.map(|(name, partitions)| {
        describe_producers::TopicRequest::default()
            .with_name(topic(name))
            .with_partition_indexes(partitions.to_vec())
    });
    let request = DescribeProducersRequest::default().with_topics(topics.to_vec());
    let ResponseKind::DescribeProducers(answer) =
        refuse(ApiKey::DescribeProducers, 0, request.into())
    else {
        panic!("not a describe-producers response");
    };
    let listed = listing(
        &answer.topics,
        |t| t.name.0.to_string(),
        |t| &t.partitions,
        |p| (p.partition_index, p.error_code),
    );
    assert_eq!(listed, refused(A01_B0));

    let topics = ["a", "b"]
        .map(|name| describe_topic_partitions::TopicRequest::default().with_name(topic(name)));
    let request = DescribeTopicPartitionsRequest::default().with_topics(topics.to_vec());
    let ResponseKind::DescribeTopicPartitions(answer) =
        refuse(ApiKey::DescribeTopicPartitions, 0, request.into())
    else {
        panic!("not a describe-topic-partitions response");
    };
    let listed: Vec<_> = answer
        .topics
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.0.to_string()),
                t.error_code,
                t.partitions.len(),
            )
        })
        .collect();
    assert_eq!(listed, ["a", "b"].map(|n| (Some(n.to_string()), CODE, 0)));
    assert!(answer.next_cursor.is_none());
}

#[test]
fn share_fetch_and_acknowledge_list_every_partition_by_topic_id() {
    let acked = share_fetch::AcknowledgementBatch::default()
        .with_last_offset(9)
        .with_acknowledge_types(vec![1]);
    let topics = IDS_A01_B0.map(|(id, partitions)| {
        let partitions = partitions.iter().map(|&i| {
            let partition = share_fetch::FetchPartition::default().with_partition_index(i);
            // Partition a-1 also acknowledges records; its acknowledgement is refused too.
            if id == ID_A && i == 1 {
                partition.with_acknowledgement_batches(vec![acked.clone()])
            } else {
                partition
            }
        });
        share_fetch::FetchTopic::default()
            .with_topic_id(id.parse().unwrap())
            .with_partitions(partitions.collect())
    });
    let request = ShareFetchRequest::default().with_topics(topics.to_vec());
    let ResponseKind::ShareFetch(answer) = refuse(ApiKey::ShareFetch, 1, request.into()) else {
        panic!("not a share-fetch response");
    };
    let listed: Vec<_> = answer
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.topic_id.to_string(),
                    p.partition_index,
                    p.error_code,
                    p.acknowledge_error_code,
                )
            })
        })
        .collect();
    let expected = [(ID_A, 0, 0), (ID_A, 1, CODE), (ID_B, 0, 0)]
        .map(|(id, i, ack)| (id.to_string(), i, CODE, ack));
    assert_eq!(listed, expected);
    assert_eq!(answer.error_code, CODE);

    let topics = IDS_A01_B0.map(|(id, partitions)| {
        let partitions = partitions
            .iter()
            .map(|&i| share_acknowledge::AcknowledgePartition::default().with_partition_index(i));
        share_acknowledge::AcknowledgeTopic::default()
            .with_topic_id(id.parse().unwrap())
            .with_partitions(partitions.collect())
    });
    let request = ShareAcknowledgeRequest::default().with_topics(topics.to_vec());
    let ResponseKind::ShareAcknowledge(answer) =
        refuse(ApiKey::ShareAcknowledge, 1, request.into())
    else {
        panic!("not a share-acknowledge response");
    };
    let listed = listing(
        &answer.responses,
        |t| t.topic_id.to_string(),
        |t| &t.partitions,
        |p| (p.partition_index, p.error_code),
    );
    assert_eq!(listed, refused(IDS_A01_B0));
    assert_eq!(answer.error_code, CODE);
}
