//! What the crate's unit tests share: frames built with the `kafka-protocol` crate as a real
//! client or broker would write them, messages to put in them, a [`Session`] holding a codec and
//! its two write queues as the forwarding driver does, and a broker-address map that records what
//! the rewrite asks of it. Only tests reach this module.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponseTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, MetadataRequest, MetadataResponse, ProduceRequest,
    RequestHeader, RequestKind, ResponseHeader, ResponseKind, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use proxy_core::close::{CloseReason, InternalError};
use proxy_core::codec::{Codec, CodecError};
use proxy_core::context::SessionContext;
use proxy_core::io::WriteQueue;
use proxy_core::route::Prerequisites;
use proxy_core::stage::Emit;

use crate::rewrite::{BrokerAddressMap, Listing, Rewritten, UpstreamBroker, rewrite_response};
use crate::{Kafka, KafkaCodec, KafkaRequest, KafkaResponse};

/// A TCP-only session context on listener `t`, from and to 127.0.0.1:1.
pub(crate) fn cx() -> SessionContext {
    let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
    SessionContext::new(
        Arc::from("t"),
        addr,
        addr,
        Prerequisites::TCP,
        Arc::default(),
    )
}

// === frames, as clients and brokers write them ===

/// A length prefix, then what `write` puts after it.
pub(crate) fn frame(write: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    write(&mut buf);
    let len = i32::try_from(buf.len() - 4).unwrap();
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.freeze()
}

pub(crate) fn request_frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &RequestKind,
) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("test-client")));
    frame(|buf| {
        header
            .encode(buf, api.request_header_version(version))
            .unwrap();
        body.encode(buf, version).unwrap();
    })
}

pub(crate) fn response_frame_with(
    header: &ResponseHeader,
    api: ApiKey,
    version: i16,
    body: &ResponseKind,
) -> Bytes {
    frame(|buf| {
        header
            .encode(buf, api.response_header_version(version))
            .unwrap();
        body.encode(buf, version).unwrap();
    })
}

pub(crate) fn response_frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Bytes {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    response_frame_with(&header, api, version, body)
}

/// A frame of an API key no Kafka version has: header v1 layout, then opaque bytes.
pub(crate) fn unknown_api_frame(correlation_id: i32, tail: &[u8]) -> Bytes {
    frame(|buf| {
        buf.put_i16(9999);
        buf.put_i16(3);
        buf.put_i32(correlation_id);
        buf.put_i16(1);
        buf.put_slice(b"x");
        buf.put_slice(tail);
    })
}

/// Reads back a request frame the codec wrote, checking its length prefix.
pub(crate) fn read_request(frame: &Bytes) -> (RequestHeader, RequestKind) {
    let mut bytes = frame.clone();
    assert_eq!(bytes.get_i32() as usize, bytes.len(), "length prefix");
    let api = ApiKey::try_from(i16::from_be_bytes([bytes[0], bytes[1]])).unwrap();
    let version = i16::from_be_bytes([bytes[2], bytes[3]]);
    let header = RequestHeader::decode(&mut bytes, api.request_header_version(version)).unwrap();
    let body = RequestKind::decode(api, &mut bytes, version).unwrap();
    assert!(bytes.is_empty(), "bytes after the request body");
    (header, body)
}

/// Reads back a response frame the codec wrote, checking its length prefix.
pub(crate) fn read_response(
    api: ApiKey,
    version: i16,
    frame: &Bytes,
) -> (ResponseHeader, ResponseKind) {
    let mut bytes = frame.clone();
    assert_eq!(bytes.get_i32() as usize, bytes.len(), "length prefix");
    let header = ResponseHeader::decode(&mut bytes, api.response_header_version(version)).unwrap();
    let body = ResponseKind::decode(api, &mut bytes, version).unwrap();
    assert!(bytes.is_empty(), "bytes after the response body");
    (header, body)
}

pub(crate) fn name(s: &'static str) -> StrBytes {
    StrBytes::from_static_str(s)
}

pub(crate) fn metadata_request(topics: &[&'static str]) -> RequestKind {
    let topics = topics
        .iter()
        .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(name(t)))))
        .collect();
    RequestKind::Metadata(MetadataRequest::default().with_topics(Some(topics)))
}

pub(crate) fn metadata_response() -> MetadataResponse {
    let broker = |id: i32, host: &'static str| {
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(name(host))
            .with_port(9092)
            .with_rack(Some(name("rack-a")))
    };
    MetadataResponse::default()
        .with_brokers(vec![
            broker(1, "kafka-1.internal"),
            broker(2, "kafka-2.internal"),
        ])
        .with_cluster_id(Some(name("cluster")))
        .with_controller_id(BrokerId(1))
        .with_topics(vec![
            MetadataResponseTopic::default().with_name(Some(TopicName(name("orders")))),
        ])
}

pub(crate) fn produce_request(acks: i16, records: usize) -> RequestKind {
    let partition = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(Bytes::from(vec![7u8; records])));
    let topic = TopicProduceData::default()
        .with_name(TopicName(name("orders")))
        .with_partition_data(vec![partition]);
    RequestKind::Produce(
        ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(name("tx"))))
            .with_acks(acks)
            .with_timeout_ms(1000)
            .with_topic_data(vec![topic]),
    )
}

pub(crate) fn api_versions_response() -> ApiVersionsResponse {
    let entry = |api: ApiKey, min, max| {
        ApiVersion::default()
            .with_api_key(api as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    ApiVersionsResponse::default().with_api_keys(vec![
        entry(ApiKey::Produce, 0, 20),
        entry(ApiKey::Fetch, 4, 30),
        entry(ApiKey::ListOffsets, 1, 100),
        entry(ApiKey::Metadata, 0, 20),
        entry(ApiKey::ApiVersions, 0, 4),
    ])
}

/// The one frame a queue held.
pub(crate) fn one(frames: Vec<Bytes>) -> Bytes {
    assert_eq!(frames.len(), 1, "{frames:?}");
    frames.into_iter().next().unwrap()
}

// === a session: the codec and its two write queues, as the forwarding driver holds them ===

#[derive(Debug, Default)]
pub(crate) struct Session {
    pub(crate) codec: KafkaCodec,
    pub(crate) to_backend: WriteQueue,
    pub(crate) to_client: WriteQueue,
}

impl Session {
    pub(crate) fn read_request(&mut self, frame: &[u8]) -> KafkaRequest {
        let mut buf = BytesMut::from(frame);
        let request = self.codec.decode_request(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        request
    }

    pub(crate) fn read_response(&mut self, frame: &[u8]) -> Result<KafkaResponse, CodecError> {
        let mut buf = BytesMut::from(frame);
        let response = self.codec.decode_response(&mut buf)?;
        assert!(buf.is_empty());
        response.ok_or_else(|| CodecError {
            detail: "incomplete frame".into(),
        })
    }

    /// Reads a request and sends it on unchanged.
    pub(crate) fn forward(&mut self, frame: &[u8]) {
        let request = self.read_request(frame);
        self.codec
            .encode_request(request, &mut self.to_backend)
            .unwrap();
    }

    /// Reads a response and delivers it unchanged.
    pub(crate) fn deliver(&mut self, frame: &[u8]) {
        let response = self.read_response(frame).unwrap();
        self.codec
            .encode_response(response, &mut self.to_client)
            .unwrap();
    }
}

impl Emit<Kafka> for Session {
    fn to_backend(&mut self, msg: KafkaRequest) -> Result<(), CloseReason> {
        self.codec
            .encode_request(msg, &mut self.to_backend)
            .map_err(|err| CloseReason::Internal(InternalError::Encode(err)))
    }

    fn to_client(&mut self, msg: KafkaResponse) -> Result<(), CloseReason> {
        self.codec
            .encode_response(msg, &mut self.to_client)
            .map_err(|err| CloseReason::Internal(InternalError::Encode(err)))
    }
}

/// The correlation id of each frame: after the length prefix in a response, and after the API
/// key and version too in a request.
pub(crate) fn correlation_ids(frames: &[Bytes], request: bool) -> Vec<i32> {
    let at = if request { 8 } else { 4 };
    frames
        .iter()
        .map(|f| i32::from_be_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]]))
        .collect()
}

// === broker-address rewriting ===

#[derive(Debug, PartialEq)]
pub(crate) enum MapCall {
    Learn(Vec<UpstreamBroker>, Listing),
    Advertised(i32),
}

/// Advertises node `n` as `sluice-n.proxy:19000+n` for `n` in `0..100` (others are not served),
/// and records what it was asked.
#[derive(Debug, Default)]
pub(crate) struct RecordingMap {
    pub(crate) calls: RefCell<Vec<MapCall>>,
}

impl BrokerAddressMap for RecordingMap {
    fn learn(&self, brokers: &[UpstreamBroker], listing: Listing) {
        self.calls
            .borrow_mut()
            .push(MapCall::Learn(brokers.to_vec(), listing));
    }

    fn advertised(&self, node_id: i32) -> Option<(String, u16)> {
        self.calls.borrow_mut().push(MapCall::Advertised(node_id));
        let port = u16::try_from(node_id).ok().filter(|&n| n < 100)?;
        Some((format!("sluice-{node_id}.proxy"), 19000 + port))
    }
}

impl RecordingMap {
    /// The brokers learnt, checking `learn` ran once, before any address was looked up.
    pub(crate) fn learnt(&self) -> Vec<UpstreamBroker> {
        let calls = self.calls.borrow();
        let Some((MapCall::Learn(learnt, _), rest)) = calls.split_first() else {
            panic!("learn was not called first: {calls:?}");
        };
        assert!(
            rest.iter().all(|c| matches!(c, MapCall::Advertised(_))),
            "{calls:?}"
        );
        learnt.clone()
    }
}

pub(crate) fn upstream(node_id: i32, host: &str, port: u16) -> UpstreamBroker {
    UpstreamBroker {
        node_id,
        host: host.to_owned(),
        port,
    }
}

/// Sends `request`, reads `response` to it, rewrites it through `map` and delivers it: what the
/// rewrite reported, whether the frame delivered is the very one read, and that frame.
pub(crate) fn rewrite(
    api: ApiKey,
    version: i16,
    request: &RequestKind,
    response: &ResponseKind,
    map: &RecordingMap,
) -> (Rewritten, bool, Bytes) {
    let mut session = Session::default();
    session.forward(&request_frame(api, version, 11, request));
    let wire = response_frame(api, version, 11, response);
    let mut buf = BytesMut::from(&wire[..]);
    let read_at = buf.as_ptr();
    let mut response = session.codec.decode_response(&mut buf).unwrap().unwrap();
    let rewritten = rewrite_response(&mut response, map).unwrap();
    session
        .codec
        .encode_response(response, &mut session.to_client)
        .unwrap();
    let delivered = one(session.to_client.take_chunks());
    let (header, _) = read_response(api, version, &delivered);
    assert_eq!(header.correlation_id, 11);
    let as_read = delivered.as_ptr() == read_at && delivered == wire;
    (rewritten, as_read, delivered)
}
