//! The Kafka codec: frames in, frames out, and the per-session bookkeeping that ties each
//! response to its request. It sits between a session's sockets and its stages: the frames
//! ([`super::frame`]) it cuts become [`KafkaRequest`]s and [`KafkaResponse`]s, and what the
//! stages let through is written back as frames.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;
use tracing::debug;

use super::frame::{LENGTH_PREFIX, frame_len, next_frame};
use super::header::{parse_request_header, response_body_offset, response_correlation_id};
use super::message::{InFlightKey, KafkaHead};
use super::{
    DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_IN_FLIGHT_REQUESTS, Kafka, KafkaError, KafkaMetrics,
    KafkaRequest, KafkaResponse,
};
use crate::{KafkaRefusal, Origin};
use kafka_protocol::messages::ApiKey;
use proxy_core::codec::{ClientCaused, Codec, CodecError};
use proxy_core::gate::Side;
use proxy_core::io::WriteQueue;
use proxy_core::queue::InlineFirstQueue;

/// Where a codec reads the time: when a request arrived, when its response left, for the
/// per-API latency histogram ([`KafkaMetrics`]).
///
/// A plain function rather than a trait: the codec is `Send` and `Debug` and stays so, a clock
/// costs no allocation or generic parameter, and the default ([`tokio::time::Instant::now`])
/// already follows `tokio::time::pause()` in tests. A test that wants another clock passes a
/// function reading its own (thread-local) state.
pub type Clock = fn() -> Instant;

/// Correlation ids of the proxy's own requests start here (clients count up from 0).
const FIRST_PROXY_CORRELATION_ID: i32 = 0x5100_0000;

/// Cuts Kafka frames and keeps, in order, the requests the backend still has to answer.
#[derive(Debug)]
pub struct KafkaCodec {
    /// The largest response frame; requests too unless `max_request_size` says otherwise.
    max_frame_size: usize,
    /// The largest request frame.
    max_request_size: usize,
    /// Requests sent to the backend that expect a response, oldest first.
    in_flight: InlineFirstQueue<InFlight>,
    /// Client requests whose response has not been written to the client yet, oldest first.
    undelivered: InlineFirstQueue<Undelivered>,
    /// Answers stages gave, held in `undelivered` behind an earlier request's response: those
    /// requests are unanswered for the client too.
    held_answers: usize,
    /// At this many unanswered client requests (`undelivered` and `held_answers`), reading
    /// from the client pauses: without a cap, a client that pipelines and never reads grows
    /// both queues by one entry per request for as long as the broker keeps reading.
    max_in_flight: usize,
    /// Recent Produce requests with `acks = 0`, newest last: Kafka sends them no response, but
    /// some brokers (librdkafka's mock) do, and such an answer is passed on, not an error.
    /// Boxed: only producers with `acks = 0` need it, and an idle session should not carry it.
    unanswered: Option<Box<Unanswered>>,
    /// Requests sent so far: orders `in_flight` against `unanswered`.
    sent: u64,
    next_proxy_correlation_id: i32,
    metrics: Option<Arc<KafkaMetrics>>,
    /// Read once per request decoded and once per response delivered.
    clock: Clock,
    /// A client request is streaming to the backend: requests the proxy sends meanwhile wait
    /// here, so as not to land inside it.
    streaming_request: Option<Vec<Bytes>>,
    /// A response is streaming to the client (its request stays first in `undelivered`, so
    /// stages' answers wait behind it).
    streaming_response: bool,
}

/// `acks = 0` requests sent, with their place among the requests sent, oldest first.
#[derive(Debug, Default)]
struct Unanswered(VecDeque<(u64, InFlightKey)>);

#[derive(Debug)]
struct InFlight {
    /// As on the wire.
    key: InFlightKey,
    origin: Origin,
    /// Its place among the requests sent.
    seq: u64,
}

/// How many `acks = 0` requests are remembered in case their broker answers anyway.
const UNANSWERED_KEPT: usize = 256;

#[derive(Debug)]
struct Undelivered {
    api_key: i16,
    received_at: Instant,
    /// Answers stages gave to later requests: written right after this response, so the
    /// client sees responses in the order of its requests.
    held: Vec<Bytes>,
}

impl Default for KafkaCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl KafkaCodec {
    /// A codec rejecting frames larger than `max_frame_size` bytes (length prefix excluded).
    pub fn new(max_frame_size: usize) -> Self {
        Self {
            max_frame_size,
            max_request_size: max_frame_size,
            in_flight: InlineFirstQueue::default(),
            undelivered: InlineFirstQueue::default(),
            held_answers: 0,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT_REQUESTS,
            unanswered: None,
            sent: 0,
            next_proxy_correlation_id: FIRST_PROXY_CORRELATION_ID,
            metrics: None,
            clock: Instant::now,
            streaming_request: None,
            streaming_response: false,
        }
    }

    /// Refuses request frames larger than `max_request_size` bytes (length prefix excluded),
    /// while responses may still reach the codec's `max_frame_size`: a listener that forwards
    /// anonymous clients keeps their requests small, and Fetch responses stay as large as
    /// brokers send them.
    pub fn with_max_request_size(mut self, max_request_size: usize) -> Self {
        self.max_request_size = max_request_size;
        self
    }

    /// Reads the time from `clock` rather than [`tokio::time::Instant::now`].
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Counts requests, bytes and latency per API key into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<KafkaMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Pauses reading from the client at `limit` requests awaiting their answers
    /// ([`DEFAULT_MAX_IN_FLIGHT_REQUESTS`] otherwise); at least one, so 0 is taken as 1.
    pub fn with_max_in_flight(mut self, limit: usize) -> Self {
        self.max_in_flight = limit.max(1);
        self
    }

    /// Requests sent to the backend and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Client requests whose answer has not been queued toward the client yet: sent to the
    /// backend and not answered, or answered by a stage and waiting behind an earlier request.
    /// Produce with `acks = 0` gets no answer and is not counted.
    pub fn awaiting_answer(&self) -> usize {
        self.undelivered.len() + self.held_answers
    }

    fn next_proxy_id(&mut self) -> i32 {
        let id = self.next_proxy_correlation_id;
        self.next_proxy_correlation_id = id.wrapping_add(1);
        id
    }
}

/// The response in `frame` to the request `key` describes, its body located past the header.
fn response(frame: Bytes, key: &InFlightKey, origin: Origin) -> Result<KafkaResponse, CodecError> {
    let body_offset = response_body_offset(&frame[LENGTH_PREFIX..], key.response_header_version())
        .map_err(|err| codec_error("response header", err))?;
    Ok(KafkaResponse::from_frame(
        frame,
        LENGTH_PREFIX + body_offset,
        key,
        origin,
    ))
}

fn codec_error(what: &str, err: impl std::fmt::Display) -> CodecError {
    CodecError {
        detail: format!("{what}: {err}").into(),
    }
}

impl From<KafkaError> for CodecError {
    fn from(err: KafkaError) -> Self {
        CodecError {
            detail: err.to_string().into(),
        }
    }
}

impl Codec<Kafka> for KafkaCodec {
    fn at_request_boundary(&self) -> Option<bool> {
        Some(self.in_flight.is_empty() && self.undelivered.is_empty())
    }

    /// A broker reads a connection's requests in order and closes it on an API key it does not
    /// know; the oldest unanswered request is the one it closed on. If the proxy does not know
    /// that key either, the client sent it.
    fn backend_hung_up_on_client(&self) -> Option<ClientCaused> {
        let oldest = self.in_flight.front()?;
        (oldest.origin == Origin::Client && ApiKey::try_from(oldest.key.api_key).is_err()).then(
            || {
                KafkaRefusal::UnknownApiKey {
                    api_key: oldest.key.api_key,
                    correlation_id: oldest.key.correlation_id,
                }
                .into()
            },
        )
    }

    fn message_len(&self, buf: &[u8]) -> Option<usize> {
        frame_len(buf)
    }

    fn in_flight_limit_reached(&self) -> bool {
        self.awaiting_answer() >= self.max_in_flight
    }

    fn decode_request(&mut self, buf: &mut BytesMut) -> Result<Option<KafkaRequest>, CodecError> {
        let Some(frame) = next_frame(buf, self.max_request_size)? else {
            return Ok(None);
        };
        let info = parse_request_header(&frame[LENGTH_PREFIX..])
            .map_err(|err| codec_error("request header", err))?;
        if let Some(metrics) = &self.metrics {
            metrics.record_request(info.api_key, frame.len());
        }
        Ok(Some(KafkaRequest::from_frame(frame, info, (self.clock)())))
    }

    fn decode_response(&mut self, buf: &mut BytesMut) -> Result<Option<KafkaResponse>, CodecError> {
        let Some(frame) = next_frame(buf, self.max_frame_size)? else {
            return Ok(None);
        };
        let correlation_id = response_correlation_id(&frame[LENGTH_PREFIX..])
            .map_err(|err| codec_error("response header", err))?;
        let expected = self.in_flight.front().map(|r| r.key.correlation_id);
        if expected != Some(correlation_id)
            && let Some(Unanswered(unanswered)) = self.unanswered.as_deref_mut()
            && let Some(at) = unanswered
                .iter()
                .position(|(_, key)| key.correlation_id == correlation_id)
        {
            // A broker answering an `acks = 0` Produce: pass the answer on as it came.
            let Some((_, key)) = unanswered.drain(..=at).next_back() else {
                return Err(CodecError {
                    detail: "acks=0 bookkeeping lost an entry".into(),
                });
            };
            return response(frame, &key, Origin::Client).map(|r| Some(r.unsolicited()));
        }
        let Some(request) = self.answer_oldest() else {
            return Err(CodecError {
                detail: format!("a response (correlation id {correlation_id}) to no request")
                    .into(),
            });
        };
        if request.key.correlation_id != correlation_id {
            return Err(CodecError {
                detail: format!(
                    "response correlation id {correlation_id} does not answer the oldest \
                     request ({})",
                    request.key.correlation_id
                )
                .into(),
            });
        }
        if let Some(metrics) = &self.metrics {
            metrics.record_response_bytes(request.key.api_key, frame.len());
        }
        response(frame, &request.key, request.origin).map(Some)
    }

    fn encode_request(
        &mut self,
        msg: KafkaRequest,
        out: &mut WriteQueue,
    ) -> Result<(), CodecError> {
        let origin = msg.origin();
        let expects_response = msg.expects_response();
        let received_at = msg.received_at;
        let mut key = InFlightKey::of(&msg);
        if origin == Origin::Proxy {
            key.correlation_id = self.next_proxy_id();
        }
        let frame = msg.into_frame(key.correlation_id)?;
        match &mut self.streaming_request {
            Some(held) => held.push(frame),
            None => out.push(frame),
        }
        self.book_sent(key, origin, expects_response, received_at);
        Ok(())
    }

    fn encode_response(
        &mut self,
        msg: KafkaResponse,
        out: &mut WriteQueue,
    ) -> Result<(), CodecError> {
        if msg.origin() == Origin::Proxy {
            debug!(
                correlation_id = msg.correlation_id(),
                "response to the proxy's own request reached the client side; dropped"
            );
            return Ok(());
        }
        let answered_locally = msg.is_answer();
        if msg.is_unsolicited() {
            out.push(msg.into_frame()?);
            return Ok(());
        }
        let frame = msg.into_frame()?;
        if answered_locally {
            match self.undelivered.back_mut() {
                Some(earlier) => {
                    earlier.held.push(frame);
                    self.held_answers += 1;
                }
                None => out.push(frame),
            }
            return Ok(());
        }
        out.push(frame);
        self.delivered(out);
        Ok(())
    }

    fn stream_message(
        &mut self,
        side: Side,
        buf: &[u8],
        stream: &mut dyn FnMut(&KafkaHead) -> bool,
    ) -> Result<Option<usize>, CodecError> {
        Ok(match side {
            Side::Client => self.stream_request(buf, stream),
            Side::Backend => self.stream_response(buf, stream),
        })
    }

    fn end_stream(&mut self, side: Side, out: &mut WriteQueue) {
        match side {
            Side::Client => {
                for frame in self.streaming_request.take().unwrap_or_default() {
                    out.push(frame);
                }
            }
            Side::Backend => {
                if std::mem::take(&mut self.streaming_response) {
                    self.delivered(out);
                }
            }
        }
    }
}

// === streaming ===

impl KafkaCodec {
    /// Books a request sent to the backend: what will answer it, or that nothing will.
    fn book_sent(
        &mut self,
        key: InFlightKey,
        origin: Origin,
        expects_response: bool,
        received_at: Instant,
    ) {
        let seq = self.sent;
        self.sent += 1;
        if !expects_response {
            let Unanswered(unanswered) = self.unanswered.get_or_insert_default().as_mut();
            if unanswered.len() == UNANSWERED_KEPT {
                unanswered.pop_front();
            }
            unanswered.push_back((seq, key));
        } else {
            self.in_flight.push_back(InFlight { key, origin, seq });
            if origin == Origin::Client {
                self.undelivered.push_back(Undelivered {
                    api_key: key.api_key,
                    received_at,
                    held: Vec::new(),
                });
            }
        }
    }

    /// The oldest request in flight, taken out as its response arrives; `acks = 0` requests
    /// sent before it will not be answered any more.
    fn answer_oldest(&mut self) -> Option<InFlight> {
        let request = self.in_flight.pop_front()?;
        if let Some(Unanswered(unanswered)) = self.unanswered.as_deref_mut() {
            while unanswered
                .front()
                .is_some_and(|(seq, _)| *seq < request.seq)
            {
                unanswered.pop_front();
            }
        }
        Some(request)
    }

    /// The oldest client request's answer is queued in `out`: the answers stages gave to later
    /// requests follow it.
    fn delivered(&mut self, out: &mut WriteQueue) {
        let Some(delivered) = self.undelivered.pop_front() else {
            return;
        };
        if let Some(metrics) = &self.metrics {
            let latency = (self.clock)().saturating_duration_since(delivered.received_at);
            metrics.record_latency(delivered.api_key, latency);
        }
        self.held_answers = self.held_answers.saturating_sub(delivered.held.len());
        for answer in delivered.held {
            out.push(answer);
        }
    }

    /// Streams the request `buf` begins with once its header (and for Produce, its `acks`) has
    /// arrived, if it is of an API this proxy knows, within the request size, and `stream`
    /// agrees. Anything else is left to [`Codec::decode_request`], which reads it whole (and
    /// refuses what it must).
    fn stream_request(
        &mut self,
        buf: &[u8],
        stream: &mut dyn FnMut(&KafkaHead) -> bool,
    ) -> Option<usize> {
        let wire_len = frame_len(buf)?;
        if wire_len - LENGTH_PREFIX > self.max_request_size {
            return None;
        }
        let frame = &buf[LENGTH_PREFIX..];
        let info = parse_request_header(frame).ok()?;
        info.api()?;
        let expects_response = info.expects_response(frame)?;
        let head = KafkaHead {
            api_key: info.api_key,
            api_version: info.api_version,
            wire_len,
        };
        if !stream(&head) {
            return None;
        }
        if let Some(metrics) = &self.metrics {
            metrics.record_request(info.api_key, wire_len);
        }
        let key = InFlightKey {
            api_key: info.api_key,
            api_version: info.api_version,
            correlation_id: info.correlation_id,
        };
        let received_at = (self.clock)();
        self.book_sent(key, Origin::Client, expects_response, received_at);
        self.streaming_request = Some(Vec::new());
        Some(wire_len)
    }

    /// Streams the response `buf` begins with if it answers the oldest request in flight, a
    /// client's, within the frame size, and `stream` agrees. Anything else (an answer to the
    /// proxy's own request, which its stage reads; one out of order) is left to
    /// [`Codec::decode_response`].
    fn stream_response(
        &mut self,
        buf: &[u8],
        stream: &mut dyn FnMut(&KafkaHead) -> bool,
    ) -> Option<usize> {
        let wire_len = frame_len(buf)?;
        if wire_len - LENGTH_PREFIX > self.max_frame_size {
            return None;
        }
        let correlation_id = response_correlation_id(&buf[LENGTH_PREFIX..]).ok()?;
        let request = self.in_flight.front()?;
        if request.origin != Origin::Client || request.key.correlation_id != correlation_id {
            return None;
        }
        let head = KafkaHead {
            api_key: request.key.api_key,
            api_version: request.key.api_version,
            wire_len,
        };
        if !stream(&head) {
            return None;
        }
        let request = self.answer_oldest()?;
        if let Some(metrics) = &self.metrics {
            metrics.record_response_bytes(request.key.api_key, wire_len);
        }
        self.streaming_response = true;
        Some(wire_len)
    }
}
