//! APIs about transactions and producer ids: InitProducerId (write on the transactional id, or
//! for an idempotent producer idempotent_write on the cluster or write on some topic),
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn and TxnOffsetCommit (write on the transactional
//! id, then the group and topics they touch), DescribeTransactions and ListTransactions
//! (describe).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeTransactionsRequest,
    InitProducerIdRequest, ListTransactionsResponse, RequestKind, TransactionalId,
    TxnOffsetCommitRequest,
};

use super::listed::{Key, split};
use super::{
    CLUSTER_DENIED, Decide, GROUP_DENIED, Operation, ResourceType, TOPIC_DENIED, TXN_DENIED,
    Verdict, on_cluster, refusals,
};

/// What a batched request's entries that were fine get when others were denied: Kafka does
/// none of it.
const NOT_ATTEMPTED: i16 = ResponseError::OperationNotAttempted.code();

/// A request of one transaction, refused whole when its transactional id is denied.
pub(crate) fn whole_transaction(id: &TransactionalId, d: &mut Decide<'_>) -> Verdict {
    if d.allows(ResourceType::TransactionalId, id, Operation::Write) {
        Verdict::Forward
    } else {
        Verdict::Refuse(TXN_DENIED)
    }
}

pub(crate) fn init_producer_id(body: &InitProducerIdRequest, d: &mut Decide<'_>) -> Verdict {
    if let Some(id) = &body.transactional_id {
        return whole_transaction(id, d);
    }
    // KIP-679: write on any topic is enough for an idempotent producer.
    if d.quietly(|d| d.allows_cluster(Operation::IdempotentWrite))
        || d.allows_any(ResourceType::Topic, Operation::Write)
    {
        Verdict::Forward
    } else {
        Verdict::Refuse(CLUSTER_DENIED)
    }
}

listed! {
    /// AddPartitionsToTxn v0-v3, by topic.
    AddPartitionsTopics:
    AddPartitionsToTxn.v3_and_below_topics:
        kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic
        => |e| Key::Name(e.name.0.clone()),
    AddPartitionsToTxn.results_by_topic_v3_and_below:
        kafka_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult
        => |a| Key::Name(a.name.0.clone()),
}

pub(crate) fn add_partitions_to_txn(
    body: &AddPartitionsToTxnRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    if version >= 4 {
        // Batched by transaction: brokers verifying for each other.
        return on_cluster(Operation::ClusterAction, d);
    }
    if !d.allows(
        ResourceType::TransactionalId,
        &body.v3_and_below_transactional_id,
        Operation::Write,
    ) {
        return Verdict::Refuse(TXN_DENIED);
    }
    let denied: Vec<bool> = body
        .v3_and_below_topics
        .iter()
        .map(|topic| !d.allows(ResourceType::Topic, &topic.name, Operation::Write))
        .collect();
    if !denied.contains(&true) {
        return Verdict::Forward;
    }
    // As Kafka: the denied topics fail, the others are not attempted.
    let codes = denied
        .into_iter()
        .map(|denied| Some(if denied { TOPIC_DENIED } else { NOT_ATTEMPTED }))
        .collect();
    split::<AddPartitionsTopics>(
        || RequestKind::AddPartitionsToTxn(body.clone()),
        version,
        codes,
    )
}

pub(crate) fn add_offsets_to_txn(body: &AddOffsetsToTxnRequest, d: &mut Decide<'_>) -> Verdict {
    if !d.allows(
        ResourceType::TransactionalId,
        &body.transactional_id,
        Operation::Write,
    ) {
        return Verdict::Refuse(TXN_DENIED);
    }
    if !d.allows(ResourceType::Group, &body.group_id, Operation::Read) {
        return Verdict::Refuse(GROUP_DENIED);
    }
    Verdict::Forward
}

listed! {
    /// TxnOffsetCommit, by topic.
    TxnOffsetCommitTopics:
    TxnOffsetCommit.topics:
        kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic
        => |e| Key::Name(e.name.0.clone()),
    TxnOffsetCommit.topics:
        kafka_protocol::messages::txn_offset_commit_response::TxnOffsetCommitResponseTopic
        => |a| Key::Name(a.name.0.clone()),
}

pub(crate) fn txn_offset_commit(
    body: &TxnOffsetCommitRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    if !d.allows(
        ResourceType::TransactionalId,
        &body.transactional_id,
        Operation::Write,
    ) {
        return Verdict::Refuse(TXN_DENIED);
    }
    if !d.allows(ResourceType::Group, &body.group_id, Operation::Read) {
        return Verdict::Refuse(GROUP_DENIED);
    }
    let codes = refusals(
        body.topics.iter().map(|topic| &*topic.name.0),
        ResourceType::Topic,
        Operation::Read,
        TOPIC_DENIED,
        d,
    );
    split::<TxnOffsetCommitTopics>(
        || RequestKind::TxnOffsetCommit(body.clone()),
        version,
        codes,
    )
}

listed! {
    /// DescribeTransactions, by transactional id.
    DescribeTransactionsIds:
    DescribeTransactions.transactional_ids: TransactionalId => |e| Key::Name(e.0.clone()),
    DescribeTransactions.transaction_states:
        kafka_protocol::messages::describe_transactions_response::TransactionState
        => |a| Key::Name(a.transactional_id.0.clone()),
}

pub(crate) fn describe_transactions(
    body: &DescribeTransactionsRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    let codes = refusals(
        body.transactional_ids.iter().map(|id| &*id.0),
        ResourceType::TransactionalId,
        Operation::Describe,
        TXN_DENIED,
        d,
    );
    split::<DescribeTransactionsIds>(
        || RequestKind::DescribeTransactions(body.clone()),
        version,
        codes,
    )
}

/// A ListTransactions answer lists only transactional ids the session may describe.
pub(crate) fn filter_list_transactions(body: &mut ListTransactionsResponse, d: &mut Decide<'_>) {
    body.transaction_states
        .retain(|state| transaction_visible(&state.transactional_id, d));
}

/// A DescribeTransactions answer names only the topics the session may describe in each
/// transaction, as Kafka's does.
pub(crate) fn filter_describe_transactions(
    body: &mut kafka_protocol::messages::DescribeTransactionsResponse,
    d: &mut Decide<'_>,
) {
    for state in &mut body.transaction_states {
        state
            .topics
            .retain(|topic| d.allows(ResourceType::Topic, &topic.topic, Operation::Describe));
    }
}

/// Whether a DescribeTransactions answer names a topic the session may not describe.
pub(crate) fn describe_transactions_hides(
    body: &kafka_protocol::messages::DescribeTransactionsResponse,
    d: &mut Decide<'_>,
) -> bool {
    body.transaction_states.iter().any(|state| {
        state
            .topics
            .iter()
            .any(|topic| !d.allows(ResourceType::Topic, &topic.topic, Operation::Describe))
    })
}

/// Whether an answer may show the transactional id.
pub(crate) fn transaction_visible(id: &TransactionalId, d: &mut Decide<'_>) -> bool {
    d.allows(ResourceType::TransactionalId, id, Operation::Describe)
}
