//! Throughput of the Kafka pass-through path, the one every byte of a Kafka session crosses.
//!
//! Requests: Produce frames (v9, one partition of 1 KiB or 16 KiB of records) cut by
//! `KafkaCodec::decode_request`, run through a `StageChain<Kafka>` and encoded into a
//! `WriteQueue` for the backend, (a) with no stage and (b) with one stage that decodes every
//! request body through `body()` (which leaves the frame as read). Each case is reported twice,
//! in bytes/s and frames/s.
//!
//! Responses (`kafka_passthrough_responses`, frames/s): Produce v10 and Fetch v16 responses
//! *without* KIP-951 `node_endpoints` (the common case), cut by `KafkaCodec::decode_response`,
//! run through the chain and encoded for the client, (a) with no stage and (b) with the
//! broker-address rewrite every Kafka session runs (`rewrite_response`), which has to find out
//! whether the response carries endpoints: the difference is the cost of that detection.
//!
//! Each iteration handles a batch of `FRAMES` frames read from one buffer; the buffer's fill (the
//! socket read's copy), the requests a response batch answers, and the drop of the queued output
//! are outside the timing. Nanoseconds per frame are the time per iteration over `FRAMES`:
//!
//! ```sh
//! cargo bench -p proxy-kafka --bench kafka_passthrough -- --quick
//! ```
#![expect(clippy::unwrap_used, reason = "benchmark setup")]

mod responses;

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use proxy_core::CloseReason;
use proxy_core::close::InternalError;
use proxy_core::codec::Codec;
use proxy_core::context::SessionContext;
use proxy_core::io::WriteQueue;
use proxy_core::route::Prerequisites;
use proxy_core::stage::{Emit, Flow, Stage, StageChain, StageContext};
use proxy_kafka::kafka_protocol::messages::produce_request::{
    PartitionProduceData, TopicProduceData,
};
use proxy_kafka::kafka_protocol::messages::{
    ApiKey, ProduceRequest, RequestHeader, RequestKind, TopicName,
};
use proxy_kafka::kafka_protocol::protocol::{Encodable, StrBytes};
use proxy_kafka::{Kafka, KafkaCodec, KafkaRequest, KafkaResponse};

/// Frames per iteration: one batch, as a busy producer's reads deliver them.
const FRAMES: usize = 64;
/// Produce v9: the first flexible version (compact strings, tagged fields).
const PRODUCE_VERSION: i16 = 9;

/// One Produce request frame (length prefix included) with `records` bytes of records.
fn produce_frame(correlation_id: i32, records: usize) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(PRODUCE_VERSION)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("bench-producer")));
    let partition = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(Bytes::from(vec![0x5a; records])));
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("bench-topic")))
        .with_partition_data(vec![partition]);
    let body = RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![topic]),
    );
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(
            &mut buf,
            ApiKey::Produce.request_header_version(PRODUCE_VERSION),
        )
        .unwrap();
    body.encode(&mut buf, PRODUCE_VERSION).unwrap();
    let len = i32::try_from(buf.len() - 4).unwrap();
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.freeze()
}

/// `FRAMES` Produce frames back to back, as one read buffer holds them.
fn produce_stream(records: usize) -> Bytes {
    let mut stream = BytesMut::new();
    for correlation_id in 0..FRAMES {
        stream.extend_from_slice(&produce_frame(
            i32::try_from(correlation_id).unwrap(),
            records,
        ));
    }
    stream.freeze()
}

/// Decodes every request's body, as a stage that inspects Produce (an ACL, a topic filter)
/// does; the frame is still written on as read.
struct DecodeBodies;

impl Stage<Kafka> for DecodeBodies {
    fn kind(&self) -> &'static str {
        "decode-bodies"
    }

    fn on_request(
        &mut self,
        mut msg: KafkaRequest,
        _cx: &mut StageContext<'_>,
    ) -> Flow<KafkaRequest, KafkaResponse> {
        match msg.body() {
            Ok(body) => {
                black_box(body);
                Flow::Forward(msg)
            }
            Err(err) => Flow::Close(CloseReason::Stage {
                stage: "decode-bodies",
                reason: err.to_string().into(),
            }),
        }
    }
}

/// The backend side of the forwarding driver: the codec encodes onto the backend's queue.
struct Backend {
    codec: KafkaCodec,
    queue: WriteQueue,
}

impl Emit<Kafka> for Backend {
    fn to_backend(&mut self, msg: KafkaRequest) -> Result<(), CloseReason> {
        self.codec
            .encode_request(msg, &mut self.queue)
            .map_err(|err| CloseReason::Internal(InternalError::Encode(err)))
    }

    fn to_client(&mut self, _msg: KafkaResponse) -> Result<(), CloseReason> {
        Err(CloseReason::Stage {
            stage: "bench",
            reason: "no stage here answers".into(),
        })
    }
}

/// One session's state at the start of a batch: a new codec (so requests in flight do not pile
/// up across iterations), an empty queue, and the batch in its read buffer.
struct Batch {
    chain: StageChain<Kafka>,
    cx: SessionContext,
    backend: Backend,
    read: BytesMut,
}

fn batch(stream: &Bytes, decode_bodies: bool) -> Batch {
    let stages: Vec<Box<dyn Stage<Kafka>>> = if decode_bodies {
        vec![Box::new(DecodeBodies)]
    } else {
        Vec::new()
    };
    Batch {
        chain: StageChain::new(stages),
        cx: session_context(),
        backend: Backend {
            codec: KafkaCodec::default(),
            queue: WriteQueue::default(),
        },
        read: BytesMut::from(&stream[..]),
    }
}

/// The context of a plain TCP session, as the chain wants one.
fn session_context() -> SessionContext {
    let addr = SocketAddr::from(([127, 0, 0, 1], 9092));
    SessionContext::new(
        Arc::from("bench"),
        addr,
        addr,
        Prerequisites::TCP,
        Arc::default(),
    )
}

/// What the driver does with a read buffer: cut frames, pass them through the chain.
fn pass_through(mut batch: Batch) -> Batch {
    while let Some(request) = batch.backend.codec.decode_request(&mut batch.read).unwrap() {
        batch
            .chain
            .on_request(request, &mut batch.cx, &mut batch.backend)
            .unwrap();
    }
    assert!(batch.read.is_empty());
    batch
}

fn passthrough(c: &mut Criterion) {
    for unit in ["bytes", "frames"] {
        let mut group = c.benchmark_group(format!("kafka_passthrough_{unit}"));
        group
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        for (size, records) in [("1KiB", 1024), ("16KiB", 16 * 1024)] {
            let stream = produce_stream(records);
            group.throughput(match unit {
                "bytes" => Throughput::Bytes(stream.len() as u64),
                _ => Throughput::Elements(FRAMES as u64),
            });
            for (stage, decode_bodies) in [("no_stage", false), ("decode_body", true)] {
                // Check once that every frame reaches the queue, as read.
                let done = pass_through(batch(&stream, decode_bodies));
                assert_eq!(done.backend.queue.len(), stream.len());
                assert_eq!(done.backend.codec.in_flight(), FRAMES);
                group.bench_with_input(BenchmarkId::new(stage, size), &stream, |b, stream| {
                    b.iter_batched(
                        || batch(stream, decode_bodies),
                        pass_through,
                        BatchSize::LargeInput,
                    );
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, passthrough, responses::passthrough_responses);
criterion_main!(benches);
