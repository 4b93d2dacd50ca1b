//! The checks of the `kafka_frames` fuzz target (`fuzz/fuzz_targets/kafka_frames.rs`), here so
//! that the target and its stable replay over the seed corpus (`corpus_tests`) run the same ones.
//! Compiled only for tests and for cargo-fuzz builds (`--cfg fuzzing`).
#![expect(
    clippy::panic,
    reason = "assertions of a checker: a failed property panics"
)]

use std::collections::VecDeque;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseKind};
use proxy_core::codec::Codec;
use proxy_core::io::WriteQueue;

use crate::rewrite::{BrokerAddressMap, Listing, UpstreamBroker, rewrite_response};
use crate::{KafkaCodec, KafkaRequest, KafkaResponse};

/// Small enough that large declared sizes take the refusal path, large enough for real frames.
const MAX_FRAME_SIZE: usize = 64 * 1024;

/// The `kafka_frames` fuzz target: both directions of a Kafka session through the codec, which
/// reads every byte of a Kafka session from both peers: framing, request headers, the
/// request/response bookkeeping, and (through `body()`) the `kafka-protocol` decoders a stage
/// reaches.
///
/// The first input byte steers the run: its low six bits give the size of the chunks the rest is
/// fed in (1–64 bytes, as TCP segments would cut it), bit 7 makes every other decoded message
/// re-encoded through `body_mut()`, and bit 6 picks the input's shape:
///
/// - *raw*: the rest is fed as the client's request stream, the requests are sent on, and the
///   same bytes are then fed as the backend's response stream;
/// - *framed*: the rest is a list of messages, `[kind][len][len bytes]`, each put in a frame
///   with a correct length prefix; responses (odd kind) also get the correlation id of the oldest
///   request in flight, so their bodies are reached without guessing ids.
///
/// Every response first goes through the broker-address rewrite (`rewrite_response`), as every
/// Kafka session's responses do. Produce (v10+) and Fetch (v16+) responses are scanned there for
/// KIP-951 `node_endpoints` without a decode; the scan must never let one through undecoded that
/// the decoder refuses or finds endpoints in.
///
/// For any input nothing panics; a read buffer stays below the frame limit plus a length prefix
/// (the codec takes each frame off as soon as it is whole); a message written on unchanged is
/// written whole (the queue's chunks are not readable from outside `proxy-core`, so its length is
/// what is checked; the unit tests check the bytes); only a changed (or rewritten) message may
/// fail to encode; every request expecting a response is counted in flight; every response
/// answers the oldest request in flight (or an `acks = 0` Produce, which brokers may answer
/// anyway); and a stream that fails to decode is abandoned, as the session would be closed.
pub fn kafka_frames(input: &[u8]) -> SessionEnd {
    let Some((&control, data)) = input.split_first() else {
        return Session::new(1, false).end();
    };
    let chunk = usize::from(control & 0x3f) + 1;
    let mut session = Session::new(chunk, control & 0x80 != 0);
    if control & 0x40 == 0 {
        session.client_sends(data);
        session.backend_sends(data);
    } else {
        framed(&mut session, data);
    }
    session.end()
}

/// Where a [`kafka_frames`] session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionEnd {
    /// A message failed to decode or to encode, which closes a session.
    pub closed: bool,
    /// Messages read, from both sides.
    pub messages: usize,
    /// Requests sent on whose response has not arrived.
    pub in_flight: usize,
    /// Bytes read that are not (yet) a whole message, from both sides.
    pub unread: usize,
}

/// Feeds `data` as a list of `[kind][len][bytes]` messages, framing each correctly.
fn framed(session: &mut Session, mut data: &[u8]) {
    while let [kind, len, rest @ ..] = data {
        let len = usize::from(*len).min(rest.len());
        let (payload, tail) = rest.split_at(len);
        data = tail;
        let mut frame = BytesMut::new();
        if kind & 1 == 0 {
            frame.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
            frame.put_slice(payload);
            session.client_sends(&frame);
        } else {
            frame.put_i32(i32::try_from(len + 4).unwrap_or(i32::MAX));
            let correlation_id = session.expected.front().copied().unwrap_or(0);
            frame.put_i32(correlation_id);
            frame.put_slice(payload);
            session.backend_sends(&frame);
        }
    }
}

// === impl Session ===

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
    /// Counts decoded messages a rewrite did not change, to re-encode every other one.
    seen: usize,
    /// Messages read, from both sides.
    messages: usize,
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
            messages: 0,
        }
    }

    fn end(&self) -> SessionEnd {
        SessionEnd {
            closed: self.closed,
            messages: self.messages,
            in_flight: self.expected.len(),
            unread: self.from_client.len() + self.from_backend.len(),
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
            // Also once closed: the codec takes a frame off the buffer before reading its header.
            assert!(
                self.from_client.len() < MAX_FRAME_SIZE + 4,
                "buffer past the limit"
            );
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
            assert!(
                self.from_backend.len() < MAX_FRAME_SIZE + 4,
                "buffer past the limit"
            );
        }
    }

    fn forward(&mut self, mut request: KafkaRequest) {
        self.messages += 1;
        let correlation_id = request.correlation_id();
        let _ = (request.api(), request.api_key(), request.api_version());
        let _ = (request.client_id(), request.origin());
        let read_len = request.wire_len();
        let decoded = request.body().is_ok();
        let changed = decoded && self.change_this_one() && request.body_mut().is_ok();
        let expects_response = request.expects_response();
        let before = self.to_backend.len();
        let in_flight = self.codec.in_flight();
        if let Err(err) = self.codec.encode_request(request, &mut self.to_backend) {
            // Only a message a stage changed can fail to encode.
            assert!(changed, "an unchanged request failed to encode: {err}");
            self.closed = true;
            return;
        }
        let written = self.to_backend.len() - before;
        if changed {
            assert!(written > 0, "a re-encoded request wrote nothing");
        } else {
            assert_eq!(
                written, read_len,
                "an unchanged request was not written as read"
            );
        }
        if expects_response {
            assert_eq!(self.codec.in_flight(), in_flight + 1);
            self.expected.push_back(correlation_id);
        } else {
            assert_eq!(self.codec.in_flight(), in_flight);
            self.unanswered.push(correlation_id);
        }
    }

    fn deliver(&mut self, mut response: KafkaResponse) {
        self.messages += 1;
        let correlation_id = response.correlation_id();
        if self.expected.front() == Some(&correlation_id) {
            self.expected.pop_front();
        } else {
            // Only a broker answering an `acks = 0` Produce may skip the queue.
            assert!(
                self.unanswered.contains(&correlation_id),
                "answered the wrong request"
            );
        }
        let _ = (response.api(), response.api_key(), response.api_version());
        let read_len = response.wire_len();
        // A rewrite that fails leaves the message as it was (the session would be closed; the
        // codec is still exercised with it).
        let rewrite = rewrite_response(&mut response, &OneAddress).ok();
        // Metadata, FindCoordinator and DescribeCluster responses are re-encoded whenever they
        // decode; others only when something was replaced or capped.
        let always_rewritten = matches!(
            response.api(),
            Some(ApiKey::Metadata | ApiKey::FindCoordinator | ApiKey::DescribeCluster)
        );
        let rewritten = rewrite
            .is_some_and(|done| always_rewritten || done.addresses > 0 || done.versions_capped > 0);
        if rewrite.is_some_and(|done| done.addresses == 0) && carries_node_endpoints(&response) {
            match response.body() {
                Ok(ResponseKind::Produce(body)) => assert!(body.node_endpoints.is_empty()),
                Ok(ResponseKind::Fetch(body)) => assert!(body.node_endpoints.is_empty()),
                Ok(_) => unreachable!("a Produce or Fetch response decoded as another"),
                Err(err) => panic!("a response the decoder refuses passed the rewrite: {err}"),
            }
        }
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

/// Whether `response` is of a version that may carry KIP-951 `node_endpoints`.
fn carries_node_endpoints(response: &KafkaResponse) -> bool {
    match response.api() {
        Some(ApiKey::Produce) => response.api_version() >= 10,
        Some(ApiKey::Fetch) => response.api_version() >= 16,
        _ => false,
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
