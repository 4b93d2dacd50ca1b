//! Refusals of the transaction APIs: producer ids, adding partitions and offsets to a
//! transaction, ending it, its markers and describing or listing transactions.

use kafka_protocol::messages::{
    AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnResponse,
    InitProducerIdResponse, ListTransactionsResponse, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
    add_partitions_to_txn_request::AddPartitionsToTxnTopic,
    add_partitions_to_txn_response as add_partitions, describe_transactions_response as describe,
    txn_offset_commit_response as txn_offset_commit, write_txn_markers_response as markers,
};

/// AddPartitionsToTxn v4 (sent by brokers) batches transactions, each answered, and has a
/// top-level error code.
const ADD_PARTITIONS_BY_TRANSACTION: i16 = 4;

/// No producer id or epoch (-1 each).
pub(super) fn init_producer_id(code: i16) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(code)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1)
}

/// v0-v3: every partition of the one transaction. v4+: the top-level code and every
/// transaction with its partitions.
pub(super) fn add_partitions_to_txn(
    request: &AddPartitionsToTxnRequest,
    version: i16,
    code: i16,
) -> AddPartitionsToTxnResponse {
    if version >= ADD_PARTITIONS_BY_TRANSACTION {
        let transactions = request.transactions.iter().map(|transaction| {
            add_partitions::AddPartitionsToTxnResult::default()
                .with_transactional_id(transaction.transactional_id.clone())
                .with_topic_results(add_partitions_topics(&transaction.topics, code))
        });
        return AddPartitionsToTxnResponse::default()
            .with_error_code(code)
            .with_results_by_transaction(transactions.collect());
    }
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(add_partitions_topics(
        &request.v3_and_below_topics,
        code,
    ))
}

fn add_partitions_topics(
    topics: &[AddPartitionsToTxnTopic],
    code: i16,
) -> Vec<add_partitions::AddPartitionsToTxnTopicResult> {
    let topics = topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|&index| {
            add_partitions::AddPartitionsToTxnPartitionResult::default()
                .with_partition_index(index)
                .with_partition_error_code(code)
        });
        add_partitions::AddPartitionsToTxnTopicResult::default()
            .with_name(topic.name.clone())
            .with_results_by_partition(partitions.collect())
    });
    topics.collect()
}

pub(super) fn add_offsets_to_txn(code: i16) -> AddOffsetsToTxnResponse {
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

/// Producer id and epoch (v5) keep their "none" defaults (-1).
pub(super) fn end_txn(code: i16) -> EndTxnResponse {
    EndTxnResponse::default().with_error_code(code)
}

/// Every marker's producer, with every partition it names.
pub(super) fn write_txn_markers(
    request: &WriteTxnMarkersRequest,
    code: i16,
) -> WriteTxnMarkersResponse {
    let results = request.markers.iter().map(|marker| {
        let topics = marker.topics.iter().map(|topic| {
            let partitions = topic.partition_indexes.iter().map(|&index| {
                markers::WritableTxnMarkerPartitionResult::default()
                    .with_partition_index(index)
                    .with_error_code(code)
            });
            markers::WritableTxnMarkerTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions.collect())
        });
        markers::WritableTxnMarkerResult::default()
            .with_producer_id(marker.producer_id)
            .with_topics(topics.collect())
    });
    WriteTxnMarkersResponse::default().with_markers(results.collect())
}

pub(super) fn txn_offset_commit(
    request: &TxnOffsetCommitRequest,
    code: i16,
) -> TxnOffsetCommitResponse {
    let topics = request.topics.iter().map(|topic| {
        let partitions = topic.partitions.iter().map(|partition| {
            txn_offset_commit::TxnOffsetCommitResponsePartition::default()
                .with_partition_index(partition.partition_index)
                .with_error_code(code)
        });
        txn_offset_commit::TxnOffsetCommitResponseTopic::default()
            .with_name(topic.name.clone())
            .with_partitions(partitions.collect())
    });
    TxnOffsetCommitResponse::default().with_topics(topics.collect())
}

/// Every transactional id asked about, with nothing else (as Kafka's `getErrorResponse`).
pub(super) fn describe_transactions(
    request: &DescribeTransactionsRequest,
    code: i16,
) -> DescribeTransactionsResponse {
    let states = request.transactional_ids.iter().map(|id| {
        describe::TransactionState::default()
            .with_error_code(code)
            .with_transactional_id(id.clone())
    });
    DescribeTransactionsResponse::default().with_transaction_states(states.collect())
}

/// No transactions listed.
pub(super) fn list_transactions(code: i16) -> ListTransactionsResponse {
    ListTransactionsResponse::default().with_error_code(code)
}
