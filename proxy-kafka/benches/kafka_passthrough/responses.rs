//! The response side of the pass-through benchmark: Produce v10 and Fetch v16 responses without
//! KIP-951 `node_endpoints`, delivered to the client with no stage and with the broker-address
//! rewrite, whose look for endpoints is the cost measured.

use std::hint::black_box;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use proxy_core::CloseReason;
use proxy_core::close::InternalError;
use proxy_core::codec::Codec;
use proxy_core::context::SessionContext;
use proxy_core::io::WriteQueue;
use proxy_core::stage::{Emit, Flow, Stage, StageChain, StageContext};
use proxy_kafka::kafka_protocol::messages::fetch_response::{
    FetchableTopicResponse, PartitionData,
};
use proxy_kafka::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use proxy_kafka::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use proxy_kafka::kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, RequestHeader,
    RequestKind, ResponseHeader, ResponseKind, TopicName,
};
use proxy_kafka::kafka_protocol::protocol::{Encodable, StrBytes};
use proxy_kafka::rewrite::{BrokerAddressMap, Listing, UpstreamBroker, rewrite_response};
use proxy_kafka::{Kafka, KafkaCodec, KafkaRequest, KafkaResponse};

use super::{FRAMES, session_context};

/// One kind of response batch: every response has `topics` × `partitions`, each Fetch partition
/// with `records` bytes of records.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    api: ApiKey,
    version: i16,
    topics: usize,
    partitions: usize,
    records: usize,
}

const CASES: [Case; 4] = [
    Case {
        name: "produce_v10_1x1",
        api: ApiKey::Produce,
        version: 10,
        topics: 1,
        partitions: 1,
        records: 0,
    },
    Case {
        name: "produce_v10_4x8",
        api: ApiKey::Produce,
        version: 10,
        topics: 4,
        partitions: 8,
        records: 0,
    },
    Case {
        name: "fetch_v16_1x1_1KiB",
        api: ApiKey::Fetch,
        version: 16,
        topics: 1,
        partitions: 1,
        records: 1024,
    },
    Case {
        name: "fetch_v16_4x8_1KiB",
        api: ApiKey::Fetch,
        version: 16,
        topics: 4,
        partitions: 8,
        records: 1024,
    },
];

/// A length prefix, then what `write` puts after it.
fn frame(write: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    write(&mut buf);
    let len = i32::try_from(buf.len() - 4).unwrap();
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.freeze()
}

/// The client's request a response of `case` answers (its body does not matter to the codec,
/// only that a Produce has `acks` other than 0).
fn request_frame(case: Case, correlation_id: i32) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(case.api as i16)
        .with_request_api_version(case.version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("bench-client")));
    let body = match case.api {
        ApiKey::Produce => RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(1)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_static_str("bench-topic")))
                        .with_partition_data(vec![PartitionProduceData::default()]),
                ]),
        ),
        _ => RequestKind::Fetch(FetchRequest::default()),
    };
    frame(|buf| {
        header
            .encode(buf, case.api.request_header_version(case.version))
            .unwrap();
        body.encode(buf, case.version).unwrap();
    })
}

/// A successful response of `case`, without `node_endpoints`.
fn response_body(case: Case) -> ResponseKind {
    let topic_name = |t: usize| TopicName(StrBytes::from_string(format!("bench-topic-{t}")));
    match case.api {
        ApiKey::Produce => {
            let topics = (0..case.topics)
                .map(|t| {
                    let partitions = (0..case.partitions)
                        .map(|p| {
                            PartitionProduceResponse::default()
                                .with_index(i32::try_from(p).unwrap())
                                .with_base_offset(1_000_000)
                                .with_log_start_offset(0)
                        })
                        .collect();
                    TopicProduceResponse::default()
                        .with_name(topic_name(t))
                        .with_partition_responses(partitions)
                })
                .collect();
            ResponseKind::Produce(ProduceResponse::default().with_responses(topics))
        }
        _ => {
            let topics = (0..case.topics)
                .map(|_| {
                    let partitions = (0..case.partitions)
                        .map(|p| {
                            PartitionData::default()
                                .with_partition_index(i32::try_from(p).unwrap())
                                .with_high_watermark(1_000_000)
                                .with_last_stable_offset(1_000_000)
                                .with_log_start_offset(0)
                                .with_records(Some(Bytes::from(vec![0x5a; case.records])))
                        })
                        .collect();
                    // Topic ids stay nil: `kafka-protocol` does not re-export `uuid`, and 16
                    // bytes are 16 bytes to the codec.
                    FetchableTopicResponse::default().with_partitions(partitions)
                })
                .collect();
            ResponseKind::Fetch(
                FetchResponse::default()
                    .with_session_id(7)
                    .with_responses(topics),
            )
        }
    }
}

/// `FRAMES` responses of `case` back to back, as one read buffer holds them.
fn response_stream(case: Case) -> Bytes {
    let body = response_body(case);
    let mut stream = BytesMut::new();
    for correlation_id in 0..FRAMES {
        let header =
            ResponseHeader::default().with_correlation_id(i32::try_from(correlation_id).unwrap());
        stream.extend_from_slice(&frame(|buf| {
            header
                .encode(buf, case.api.response_header_version(case.version))
                .unwrap();
            body.encode(buf, case.version).unwrap();
        }));
    }
    stream.freeze()
}

/// Advertises every broker at one address, as a gateway would its own.
struct OneAddress;

impl BrokerAddressMap for OneAddress {
    fn learn(&self, brokers: &[UpstreamBroker], listing: Listing) {
        black_box((brokers, listing));
    }

    fn advertised(&self, _node_id: i32) -> Option<(String, u16)> {
        Some(("sluice.proxy".to_owned(), 9092))
    }
}

/// The broker-address rewrite, as every Kafka session runs it on responses.
struct RewriteAddresses;

impl Stage<Kafka> for RewriteAddresses {
    fn kind(&self) -> &'static str {
        "broker-address-rewrite"
    }

    fn on_response(
        &mut self,
        mut msg: KafkaResponse,
        _cx: &mut StageContext<'_>,
    ) -> Flow<KafkaResponse, KafkaRequest> {
        match rewrite_response(&mut msg, &OneAddress) {
            Ok(done) => {
                black_box(done);
                Flow::Forward(msg)
            }
            Err(err) => Flow::Close(CloseReason::Stage {
                stage: "broker-address-rewrite",
                reason: err.to_string().into(),
            }),
        }
    }
}

/// The client side of the forwarding driver: the codec encodes onto the client's queue.
struct Client {
    codec: KafkaCodec,
    queue: WriteQueue,
}

impl Emit<Kafka> for Client {
    fn to_backend(&mut self, _msg: KafkaRequest) -> Result<(), CloseReason> {
        Err(CloseReason::Stage {
            stage: "bench",
            reason: "no stage here sends requests".into(),
        })
    }

    fn to_client(&mut self, msg: KafkaResponse) -> Result<(), CloseReason> {
        self.codec
            .encode_response(msg, &mut self.queue)
            .map_err(|err| CloseReason::Internal(InternalError::Encode(err)))
    }
}

/// One session at the start of a batch: the `FRAMES` requests sent (untimed), the responses in
/// their read buffer.
struct Batch {
    chain: StageChain<Kafka>,
    cx: SessionContext,
    client: Client,
    read: BytesMut,
}

fn batch(requests: &Bytes, stream: &Bytes, rewrite: bool) -> Batch {
    let stages: Vec<Box<dyn Stage<Kafka>>> = if rewrite {
        vec![Box::new(RewriteAddresses)]
    } else {
        Vec::new()
    };
    let mut codec = KafkaCodec::default();
    let mut to_backend = WriteQueue::default();
    let mut buf = BytesMut::from(&requests[..]);
    while let Some(request) = codec.decode_request(&mut buf).unwrap() {
        codec.encode_request(request, &mut to_backend).unwrap();
    }
    Batch {
        chain: StageChain::new(stages),
        cx: session_context(),
        client: Client {
            codec,
            queue: WriteQueue::default(),
        },
        read: BytesMut::from(&stream[..]),
    }
}

/// What the driver does with the backend's read buffer: cut responses, pass them through the
/// chain to the client.
fn deliver(mut batch: Batch) -> Batch {
    while let Some(response) = batch.client.codec.decode_response(&mut batch.read).unwrap() {
        batch
            .chain
            .on_response(response, &mut batch.cx, &mut batch.client)
            .unwrap();
    }
    assert!(batch.read.is_empty());
    batch
}

pub(crate) fn passthrough_responses(c: &mut Criterion) {
    let mut group = c.benchmark_group("kafka_passthrough_responses");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(FRAMES as u64));
    for case in CASES {
        let mut requests = BytesMut::new();
        for correlation_id in 0..FRAMES {
            requests
                .extend_from_slice(&request_frame(case, i32::try_from(correlation_id).unwrap()));
        }
        let requests = requests.freeze();
        let stream = response_stream(case);
        for (stage, rewrite) in [("no_stage", false), ("rewrite", true)] {
            // Check once that every response reaches the client, as read.
            let done = deliver(batch(&requests, &stream, rewrite));
            assert_eq!(done.client.queue.len(), stream.len());
            assert_eq!(done.client.codec.in_flight(), 0);
            group.bench_with_input(BenchmarkId::new(stage, case.name), &stream, |b, stream| {
                b.iter_batched(
                    || batch(&requests, stream, rewrite),
                    deliver,
                    BatchSize::LargeInput,
                );
            });
        }
    }
    group.finish();
}
