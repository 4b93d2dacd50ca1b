//! Producing records of the proxy's own (the audit stream's Kafka sink): where a topic
//! partition's leader is, and one record batch to it, acknowledged by the leader.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, ProduceRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, Record, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{ClientError, ask};
use crate::KafkaError;
use crate::rewrite::UpstreamBroker;

/// Metadata v4 (as discovery uses): any broker since Kafka 0.11.
const METADATA_VERSION: i16 = 4;
/// Produce v7: record batches, non-flexible, any broker since Kafka 2.1.
const PRODUCE_VERSION: i16 = 7;

/// The leader of `topic`'s `partition`, as the broker at the other end of `io` knows it.
pub async fn ask_leader<Io>(
    io: &mut Io,
    topic: &str,
    partition: i32,
    deadline: Instant,
) -> Result<UpstreamBroker, ClientError>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let api = ApiKey::Metadata;
    let body = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(
        vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_string(topic.to_owned())),
            ))],
    )));
    let malformed = |what| ClientError::Malformed {
        api,
        source: KafkaError::Malformed(what),
    };
    let ResponseKind::Metadata(body) = ask(io, api, METADATA_VERSION, body, deadline).await? else {
        return Err(malformed("not a Metadata response"));
    };
    let found = body
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|name| name.as_str() == topic))
        .ok_or_else(|| malformed("the topic is not in the answer"))?;
    if found.error_code != 0 {
        return Err(ClientError::Refused {
            api,
            error_code: found.error_code,
        });
    }
    let leader = found
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .map(|p| p.leader_id)
        .ok_or_else(|| malformed("the partition is not in the answer"))?;
    body.brokers
        .iter()
        .find(|broker| broker.node_id == leader)
        .and_then(|broker| {
            Some(UpstreamBroker {
                node_id: broker.node_id.0,
                host: broker.host.to_string(),
                port: u16::try_from(broker.port).ok()?,
            })
        })
        .ok_or_else(|| malformed("the partition has no leader among the brokers"))
}

/// Produces `values` (one record each, no key, timestamped now) as one batch to `topic`'s
/// `partition` through its leader at the other end of `io`, with `acks = 1`.
pub async fn produce<Io>(
    io: &mut Io,
    topic: &str,
    partition: i32,
    values: &[Bytes],
    deadline: Instant,
) -> Result<(), ClientError>
where
    Io: AsyncRead + AsyncWrite + Unpin,
{
    let api = ApiKey::Produce;
    let batch = record_batch(values, now_millis()).map_err(|detail| ClientError::Malformed {
        api,
        source: KafkaError::Encode {
            api,
            version: PRODUCE_VERSION,
            detail,
        },
    })?;
    let body = RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(batch)),
                    ]),
            ]),
    );
    let ResponseKind::Produce(answer) = ask(io, api, PRODUCE_VERSION, body, deadline).await? else {
        return Err(ClientError::Malformed {
            api,
            source: KafkaError::Malformed("not a Produce response"),
        });
    };
    let refused = answer
        .responses
        .iter()
        .flat_map(|topic| &topic.partition_responses)
        .map(|partition| partition.error_code)
        .find(|code| *code != 0);
    match refused {
        Some(error_code) => Err(ClientError::Refused { api, error_code }),
        None => Ok(()),
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// `values` as ONE v2 record batch (no producer id, offsets 0..n, timestamped `now`).
///
/// The encoder starts a new batch wherever `offset - sequence` changes, and brokers that read
/// only the first batch of a partition's records (librdkafka's mock cluster) would then store
/// one record and acknowledge them all: each record's sequence is its offset minus one, so the
/// batch stays whole and its base sequence is -1 (no idempotence).
fn record_batch(values: &[Bytes], now: i64) -> Result<Bytes, String> {
    let records: Vec<Record> = values
        .iter()
        .zip(0i64..)
        .map(|(value, offset)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: i32::try_from(offset - 1).unwrap_or(i32::MAX),
            timestamp: now,
            key: None,
            value: Some(value.clone()),
            headers: Default::default(),
        })
        .collect();
    let mut batch = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut batch, &records, &options).map_err(|err| err.to_string())?;
    Ok(batch.freeze())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::records::RecordBatchDecoder;

    use super::record_batch;

    #[test]
    fn many_values_make_one_batch_with_no_sequence() {
        let values: Vec<Bytes> = (0..5).map(|n| Bytes::from(format!("line {n}"))).collect();
        let batch = record_batch(&values, 1_700_000_000_000).expect("encodes");
        // Base offset (8 bytes), then the batch's length: one batch spans every byte.
        let length = i32::from_be_bytes([batch[8], batch[9], batch[10], batch[11]]);
        assert_eq!(usize::try_from(length).ok(), Some(batch.len() - 12));
        // Record count at 57..61, base sequence at 53..57 (record batch v2 layout).
        assert_eq!(
            i32::from_be_bytes([batch[57], batch[58], batch[59], batch[60]]),
            5
        );
        assert_eq!(
            i32::from_be_bytes([batch[53], batch[54], batch[55], batch[56]]),
            -1
        );
        let mut encoded = batch.clone();
        let decoded = RecordBatchDecoder::decode(&mut encoded).expect("decodes");
        let values_back: Vec<_> = decoded
            .records
            .iter()
            .map(|record| record.value.clone())
            .collect();
        assert_eq!(
            values_back,
            values.into_iter().map(Some).collect::<Vec<_>>()
        );
        let offsets: Vec<i64> = decoded.records.iter().map(|record| record.offset).collect();
        assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
    }
}
