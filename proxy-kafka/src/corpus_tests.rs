//! The `kafka_frames` fuzz target's session, run on stable in CI over its committed seed corpus
//! (`fuzz/corpus/kafka_frames/`): no fuzzer, a bounded replay of the inputs that reach the codec,
//! the lazy body decoders and the broker-address rewrite. Inputs a fuzzing run found (and that
//! were fixed) are committed there too and stay fixed through this test.
//!
//! Keep `Session` in step with `fuzz/fuzz_targets/kafka_frames.rs`, which documents the input
//! format (a control byte, then a raw stream or `[kind][len][bytes]` messages). The seeds are
//! written by `write_seeds` below from the builders of [`crate::test_support`].

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_response::NodeEndpoint;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, BrokerId, ProduceResponse, RequestKind, ResponseKind,
};
use proxy_core::codec::Codec;
use proxy_core::io::WriteQueue;

use crate::rewrite::{BrokerAddressMap, Listing, UpstreamBroker, rewrite_response};
use crate::test_support::{
    api_versions_response, metadata_request, metadata_response, name, produce_request,
    request_frame, response_frame, unknown_api_frame,
};
use crate::{KafkaCodec, KafkaRequest, KafkaResponse};

/// The fuzz target's: small enough that large declared sizes take the refusal path.
const MAX_FRAME_SIZE: usize = 64 * 1024;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/kafka_frames")
}

/// Every corpus file, by name.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "expected seeds in {}", dir.display());
    files
}

#[test]
fn corpus_replays_through_the_fuzz_targets_session() {
    for (name, input) in corpus() {
        let session = replay(&input);
        // The `framed_` seeds are well-formed exchanges: every message reads, every request
        // expecting an answer gets it, and nothing is left half-read.
        if name.starts_with("framed_") {
            assert!(!session.closed, "{name}: the session was abandoned");
            assert!(session.seen > 0, "{name}: no message read");
            assert!(
                session.expected.is_empty(),
                "{name}: requests left unanswered"
            );
            assert!(session.from_client.is_empty() && session.from_backend.is_empty());
        }
    }
}

/// What the fuzz target does with `input`.
fn replay(input: &[u8]) -> Session {
    let Some((&control, data)) = input.split_first() else {
        return Session::new(1, false);
    };
    let mut session = Session::new(usize::from(control & 0x3f) + 1, control & 0x80 != 0);
    if control & 0x40 == 0 {
        session.client_sends(data);
        session.backend_sends(data);
    } else {
        let mut data = data;
        while let [kind, len, rest @ ..] = data {
            let len = usize::from(*len).min(rest.len());
            let (payload, tail) = rest.split_at(len);
            data = tail;
            let mut frame = BytesMut::new();
            if kind & 1 == 0 {
                frame.put_i32(i32::try_from(len).unwrap());
                frame.put_slice(payload);
                session.client_sends(&frame);
            } else {
                frame.put_i32(i32::try_from(len + 4).unwrap());
                frame.put_i32(session.expected.front().copied().unwrap_or(0));
                frame.put_slice(payload);
                session.backend_sends(&frame);
            }
        }
    }
    session
}

/// One session's codec, read buffers and write queues, as the forwarding driver holds them.
struct Session {
    codec: KafkaCodec,
    from_client: BytesMut,
    from_backend: BytesMut,
    to_client: WriteQueue,
    to_backend: WriteQueue,
    /// Correlation ids of the requests sent on that expect a response, oldest first.
    expected: VecDeque<i32>,
    /// Correlation ids of the requests sent on that expect none (Produce, `acks = 0`).
    unanswered: Vec<i32>,
    /// A decode error closes the session: nothing more is read.
    closed: bool,
    chunk: usize,
    reencode: bool,
    /// Messages read, to re-encode every other one.
    seen: usize,
}

impl Session {
    fn new(chunk: usize, reencode: bool) -> Self {
        Self {
            codec: KafkaCodec::new(MAX_FRAME_SIZE),
            from_client: BytesMut::new(),
            from_backend: BytesMut::new(),
            to_client: WriteQueue::default(),
            to_backend: WriteQueue::default(),
            expected: VecDeque::new(),
            unanswered: Vec::new(),
            closed: false,
            chunk,
            reencode,
            seen: 0,
        }
    }

    fn change_this_one(&mut self) -> bool {
        self.seen += 1;
        self.reencode && self.seen.is_multiple_of(2)
    }

    fn client_sends(&mut self, data: &[u8]) {
        for piece in data.chunks(self.chunk) {
            if self.closed {
                return;
            }
            self.from_client.extend_from_slice(piece);
            while !self.closed {
                match self.codec.decode_request(&mut self.from_client) {
                    Ok(Some(request)) => self.forward(request),
                    Ok(None) => break,
                    Err(_) => self.closed = true,
                }
            }
            assert!(self.from_client.len() < MAX_FRAME_SIZE + 4);
        }
    }

    fn backend_sends(&mut self, data: &[u8]) {
        for piece in data.chunks(self.chunk) {
            if self.closed {
                return;
            }
            self.from_backend.extend_from_slice(piece);
            while !self.closed {
                match self.codec.decode_response(&mut self.from_backend) {
                    Ok(Some(response)) => self.deliver(response),
                    Ok(None) => break,
                    Err(_) => self.closed = true,
                }
            }
            assert!(self.from_backend.len() < MAX_FRAME_SIZE + 4);
        }
    }

    fn forward(&mut self, mut request: KafkaRequest) {
        let correlation_id = request.correlation_id();
        let _ = (request.api(), request.client_id(), request.origin());
        let read_len = request.wire_len();
        let changed =
            request.body().is_ok() && self.change_this_one() && request.body_mut().is_ok();
        let expects_response = request.expects_response();
        let before = self.to_backend.len();
        if let Err(err) = self.codec.encode_request(request, &mut self.to_backend) {
            assert!(changed, "an unchanged request failed to encode: {err}");
            self.closed = true;
            return;
        }
        if !changed {
            assert_eq!(
                self.to_backend.len() - before,
                read_len,
                "request not written as read"
            );
        }
        if expects_response {
            self.expected.push_back(correlation_id);
        } else {
            self.unanswered.push(correlation_id);
        }
    }

    fn deliver(&mut self, mut response: KafkaResponse) {
        let correlation_id = response.correlation_id();
        if self.expected.front() == Some(&correlation_id) {
            self.expected.pop_front();
        } else {
            assert!(
                self.unanswered.contains(&correlation_id),
                "answered the wrong request"
            );
        }
        let read_len = response.wire_len();
        let rewrite = rewrite_response(&mut response, &OneAddress).ok();
        let always_rewritten = matches!(
            response.api(),
            Some(ApiKey::Metadata | ApiKey::FindCoordinator | ApiKey::DescribeCluster)
        );
        let rewritten = rewrite
            .is_some_and(|done| always_rewritten || done.addresses > 0 || done.versions_capped > 0);
        let decoded = response.body().is_ok();
        let changed =
            rewritten || (decoded && self.change_this_one() && response.body_mut().is_ok());
        let before = self.to_client.len();
        if let Err(err) = self.codec.encode_response(response, &mut self.to_client) {
            assert!(changed, "an unchanged response failed to encode: {err}");
            self.closed = true;
            return;
        }
        if !changed {
            assert_eq!(
                self.to_client.len() - before,
                read_len,
                "response not written as read"
            );
        }
    }
}

/// Advertises every broker at one address, as a gateway does its own.
struct OneAddress;

impl BrokerAddressMap for OneAddress {
    fn learn(&self, _brokers: &[UpstreamBroker], _listing: Listing) {}

    fn advertised(&self, node_id: i32) -> Option<(String, u16)> {
        Some((format!("broker-{node_id}.proxy"), 9092))
    }
}

// === the seeds ===

/// Control bytes: chunk size (low six bits, plus one), framed input (bit 6), re-encode (bit 7).
const FRAMED: u8 = 0x40;
const REENCODE: u8 = 0x80;
const WHOLE: u8 = 0x3f;

/// The seeds on disk are the ones the builders make (a drifted encoder shows here).
/// `SLUICE_WRITE_SEEDS=1 cargo test -p proxy-kafka --lib corpus` rewrites them after a seed
/// changes; files of other names (regressions a fuzzing run found) are left alone.
#[test]
fn seeds_on_disk_are_the_ones_written() {
    let dir = corpus_dir();
    if std::env::var_os("SLUICE_WRITE_SEEDS").is_some_and(|value| value == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, input) in seeds() {
            std::fs::write(dir.join(name), input).unwrap();
        }
    }
    for (name, input) in seeds() {
        let on_disk = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(on_disk, input, "{name}: rerun with SLUICE_WRITE_SEEDS=1");
    }
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let api_versions = RequestKind::ApiVersions(
        ApiVersionsRequest::default()
            .with_client_software_name(name("sluice-fuzz"))
            .with_client_software_version(name("1.0")),
    );
    let metadata = metadata_request(&["orders"]);
    let metadata_body = ResponseKind::Metadata(metadata_response());
    let produce_v10 = ResponseKind::Produce(ProduceResponse::default().with_node_endpoints(vec![
            NodeEndpoint::default()
                .with_node_id(BrokerId(2))
                .with_host(name("kafka-2.internal"))
                .with_port(9092),
        ]));
    let request =
        |api, version, id, body: &RequestKind| framed(0, &request_frame(api, version, id, body));
    let response = |api, version, body: &ResponseKind| {
        // The target puts the correlation id of the oldest request in flight: drop the frame's.
        let frame = response_frame(api, version, 0, body);
        let mut message = vec![1, u8::try_from(frame.len() - 8).unwrap()];
        message.extend_from_slice(&frame[8..]);
        message
    };
    let api_versions_answer = ResponseKind::ApiVersions(api_versions_response());
    vec![
        (
            "framed_api_versions_v3",
            [
                vec![FRAMED | WHOLE],
                request(ApiKey::ApiVersions, 3, 1, &api_versions),
                response(ApiKey::ApiVersions, 3, &api_versions_answer),
            ]
            .concat(),
        ),
        (
            "framed_metadata_v12_rewritten",
            [
                vec![FRAMED | WHOLE],
                request(ApiKey::Metadata, 12, 7, &metadata),
                response(ApiKey::Metadata, 12, &metadata_body),
            ]
            .concat(),
        ),
        (
            "framed_metadata_v1_bytewise_reencoded",
            [
                vec![FRAMED | REENCODE],
                request(ApiKey::Metadata, 1, 8, &metadata),
                request(ApiKey::Metadata, 1, 9, &metadata),
                response(ApiKey::Metadata, 1, &metadata_body),
                response(ApiKey::Metadata, 1, &metadata_body),
            ]
            .concat(),
        ),
        (
            "framed_produce_acks0_then_acks1",
            [
                vec![FRAMED | 6],
                request(ApiKey::Produce, 9, 20, &produce_request(0, 12)),
                request(ApiKey::Produce, 9, 21, &produce_request(1, 12)),
                response(
                    ApiKey::Produce,
                    9,
                    &ResponseKind::Produce(ProduceResponse::default()),
                ),
            ]
            .concat(),
        ),
        (
            "framed_produce_v10_node_endpoints",
            [
                vec![FRAMED | WHOLE],
                request(ApiKey::Produce, 10, 30, &produce_request(1, 4)),
                response(ApiKey::Produce, 10, &produce_v10),
            ]
            .concat(),
        ),
        (
            "raw_two_requests_in_segments",
            [
                vec![6],
                request_frame(ApiKey::ApiVersions, 3, 1, &api_versions).to_vec(),
                request_frame(ApiKey::Metadata, 12, 2, &metadata).to_vec(),
            ]
            .concat(),
        ),
        (
            "raw_unknown_api_key",
            [vec![WHOLE], unknown_api_frame(5, b"opaque").to_vec()].concat(),
        ),
        (
            "raw_huge_declared_length",
            vec![WHOLE, 0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 3],
        ),
    ]
}

/// A request frame as a framed-input message: its bytes after the length prefix.
fn framed(kind: u8, frame: &Bytes) -> Vec<u8> {
    let mut message = vec![kind, u8::try_from(frame.len() - 4).unwrap()];
    message.extend_from_slice(&frame[4..]);
    message
}
