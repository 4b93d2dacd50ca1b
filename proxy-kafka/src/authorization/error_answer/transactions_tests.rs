//! The transaction APIs' refusals list every transaction, producer, topic and partition the
//! request names, in request order, after a trip through the wire format.

use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, ApiKey, DescribeTransactionsRequest, InitProducerIdRequest,
    ResponseKind, TransactionalId, TxnOffsetCommitRequest, WriteTxnMarkersRequest,
    add_partitions_to_txn_request as add_partitions, add_partitions_to_txn_response,
    txn_offset_commit_request as txn_offset_commit, write_txn_markers_request as markers,
};

use super::error_answer_tests::{A01_B0, CODE, Listing, listing, refuse, refused, text, topic};

fn txn_topics() -> Vec<add_partitions::AddPartitionsToTxnTopic> {
    [("a", vec![0, 1]), ("b", vec![0])]
        .map(|(name, partitions)| {
            add_partitions::AddPartitionsToTxnTopic::default()
                .with_name(topic(name))
                .with_partitions(partitions)
        })
        .to_vec()
}

fn txn_listing(
    topics: &[add_partitions_to_txn_response::AddPartitionsToTxnTopicResult],
) -> Listing {
    topics
        .iter()
        .map(|t| {
            let partitions = t
                .results_by_partition
                .iter()
                .map(|p| (p.partition_index, p.partition_error_code));
            (t.name.0.to_string(), partitions.collect())
        })
        .collect()
}

#[test]
fn add_partitions_to_txn_lists_the_partitions_and_from_v4_every_transaction() {
    for version in [0, 3] {
        let request = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(text("t")))
            .with_v3_and_below_topics(txn_topics());
        let ResponseKind::AddPartitionsToTxn(answer) =
            refuse(ApiKey::AddPartitionsToTxn, version, request.into())
        else {
            panic!("not an add-partitions-to-txn response");
        };
        assert_eq!(
            txn_listing(&answer.results_by_topic_v3_and_below),
            refused(A01_B0),
            "v{version}"
        );
        assert_eq!(answer.error_code, 0, "v{version} has no top-level code");
    }

    let transactions = ["t1", "t2"].map(|id| {
        add_partitions::AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(text(id)))
            .with_topics(txn_topics())
    });
    for version in [4, 5] {
        let request = AddPartitionsToTxnRequest::default().with_transactions(transactions.to_vec());
        let ResponseKind::AddPartitionsToTxn(answer) =
            refuse(ApiKey::AddPartitionsToTxn, version, request.into())
        else {
            panic!("not an add-partitions-to-txn response");
        };
        let listed: Vec<_> = answer
            .results_by_transaction
            .iter()
            .map(|t| {
                (
                    t.transactional_id.0.to_string(),
                    txn_listing(&t.topic_results),
                )
            })
            .collect();
        assert_eq!(
            listed,
            vec![
                ("t1".to_string(), refused(A01_B0)),
                ("t2".to_string(), refused(A01_B0))
            ],
            "v{version}"
        );
        assert_eq!(answer.error_code, CODE, "v{version}");
    }
}

#[test]
fn txn_offset_commit_lists_every_partition() {
    let topics = [("a", &[0, 1][..]), ("b", &[0][..])].map(|(name, partitions)| {
        let partitions = partitions.iter().map(|&i| {
            txn_offset_commit::TxnOffsetCommitRequestPartition::default().with_partition_index(i)
        });
        txn_offset_commit::TxnOffsetCommitRequestTopic::default()
            .with_name(topic(name))
            .with_partitions(partitions.collect())
    });
    for version in [0, 3, 5] {
        let request = TxnOffsetCommitRequest::default().with_topics(topics.to_vec());
        let ResponseKind::TxnOffsetCommit(answer) =
            refuse(ApiKey::TxnOffsetCommit, version, request.into())
        else {
            panic!("not a txn-offset-commit response");
        };
        let listed = listing(
            &answer.topics,
            |t| t.name.0.to_string(),
            |t| &t.partitions,
            |p| (p.partition_index, p.error_code),
        );
        assert_eq!(listed, refused(A01_B0), "v{version}");
    }
}

#[test]
fn write_txn_markers_answers_every_marker_with_its_partitions() {
    let topics = [("a", vec![0, 1]), ("b", vec![0])].map(|(name, partitions)| {
        markers::WritableTxnMarkerTopic::default()
            .with_name(topic(name))
            .with_partition_indexes(partitions)
    });
    let marker = |producer: i64| {
        markers::WritableTxnMarker::default()
            .with_producer_id(producer.into())
            .with_topics(topics.to_vec())
    };
    let request = WriteTxnMarkersRequest::default().with_markers(vec![marker(7), marker(8)]);
    let ResponseKind::WriteTxnMarkers(answer) = refuse(ApiKey::WriteTxnMarkers, 1, request.into())
    else {
        panic!("not a write-txn-markers response");
    };
    let listed: Vec<(i64, Listing)> = answer
        .markers
        .iter()
        .map(|m| {
            let topics = m.topics.iter().map(|t| {
                (
                    t.name.0.to_string(),
                    t.partitions
                        .iter()
                        .map(|p| (p.partition_index, p.error_code))
                        .collect(),
                )
            });
            (m.producer_id.0, topics.collect())
        })
        .collect();
    assert_eq!(listed, vec![(7, refused(A01_B0)), (8, refused(A01_B0))]);
}

#[test]
fn describe_transactions_answers_every_transactional_id() {
    let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![
        TransactionalId(text("t1")),
        TransactionalId(text("t2")),
    ]);
    let ResponseKind::DescribeTransactions(answer) =
        refuse(ApiKey::DescribeTransactions, 0, request.into())
    else {
        panic!("not a describe-transactions response");
    };
    let listed: Vec<_> = answer
        .transaction_states
        .iter()
        .map(|t| (t.transactional_id.0.to_string(), t.error_code))
        .collect();
    assert_eq!(listed, ["t1", "t2"].map(|t| (t.to_string(), CODE)));
}

#[test]
fn init_producer_id_gives_no_producer_id_or_epoch() {
    for version in [0, 5] {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(text("t"))));
        let ResponseKind::InitProducerId(answer) =
            refuse(ApiKey::InitProducerId, version, request.into())
        else {
            panic!("not an init-producer-id response");
        };
        assert_eq!(
            (
                answer.error_code,
                answer.producer_id.0,
                answer.producer_epoch
            ),
            (CODE, -1, -1),
            "v{version}"
        );
    }
}
