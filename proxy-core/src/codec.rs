//! Framing: how a protocol cuts the bytes it reads into messages, and writes messages back.
//!
//! The [`forward`](crate::forward) driver reads into one bounded `BytesMut` per side and asks the
//! session's [`Codec`] for whole messages; messages are written as `Bytes` chunks through a
//! [`WriteQueue`], so pass-through traffic is never copied. Raw TCP is the degenerate protocol:
//! every read is one message.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};

use crate::gate::Side;
use crate::io::WriteQueue;

/// The message types one protocol moves through its stages.
pub trait Protocol: Send + 'static {
    /// What the client sends.
    type Request: Send + 'static;
    /// What the backend sends.
    type Response: Send + 'static;
    /// What the first bytes of a message tell about it before the rest has arrived (Kafka: its
    /// API key and version). Stages look at it to say whether they need the message whole
    /// ([`Stage::needs`](crate::stage::Stage::needs)); a large one that none needs is streamed.
    type Head: Send + 'static;
}

/// Bytes that do not follow the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct CodecError {
    /// What was wrong, for the close line.
    pub detail: Cow<'static, str>,
}

/// A backend's hang-up that the protocol blames on the client: the backend closed on a request
/// the client should not have sent (Kafka: an API key the proxy does not know, which brokers
/// answer by closing). It becomes a close reason labelled `label` and tagged
/// [`Fault::Downstream`](crate::close::Fault::Downstream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCaused {
    /// A short, stable label for metrics and the close line (`unknown_api_key`).
    pub label: &'static str,
    /// What the client sent, for the log.
    pub detail: Cow<'static, str>,
}

/// Cuts one session's byte streams into messages and writes messages out.
///
/// A codec is per session, so it may keep state across directions (Kafka remembers which
/// request each response answers). `decode_*` return `Ok(None)` when more bytes are needed;
/// they must reject a message whose declared length exceeds their maximum as soon as the length
/// is known, so a read buffer never grows past what the codec allows.
pub trait Codec<P: Protocol>: Send {
    /// The next whole request in `buf`, removing its bytes.
    fn decode_request(&mut self, buf: &mut BytesMut) -> Result<Option<P::Request>, CodecError>;
    /// The next whole response in `buf`, removing its bytes.
    fn decode_response(&mut self, buf: &mut BytesMut) -> Result<Option<P::Response>, CodecError>;
    /// Whether the session stands between requests: every request sent has been answered.
    /// A draining session closes there. `None` (raw TCP) means the protocol has no such point,
    /// so draining leaves the session to its peers until the drain deadline.
    fn at_request_boundary(&self) -> Option<bool> {
        None
    }

    /// The backend sent EOF with requests unanswered (`at_request_boundary` is `Some(false)`):
    /// `Some` when the request it left unanswered is one the protocol knows a backend closes
    /// on, so the client caused the close. `None` (the default) leaves it the backend's fault.
    fn backend_hung_up_on_client(&self) -> Option<ClientCaused> {
        None
    }

    /// Whether the client has as many requests awaiting their answers as the session allows.
    /// While it holds, the driver reads no more from the client
    /// ([`PauseReason::InFlightLimit`](crate::gate::PauseReason::InFlightLimit)); the answer
    /// that brings the count below the limit opens reads again. It is backpressure, never a
    /// reason to close. Protocols without answers to count (raw TCP) never reach a limit.
    fn in_flight_limit_reached(&self) -> bool {
        false
    }

    /// The whole length of the message `buf` begins with, once its framing tells it (Kafka:
    /// the length prefix plus the size it declares). The driver charges a message larger than
    /// one read to the session's [`FrameBudget`](crate::forward::FrameBudget) before reading
    /// the rest of it. `None` (the default) when the length is not known yet or the protocol
    /// has no messages longer than a read (raw TCP).
    fn message_len(&self, buf: &[u8]) -> Option<usize> {
        let _ = buf;
        None
    }

    /// Streams the message `buf` (read from `side`) begins with, if the protocol can and
    /// `stream` agrees: its bytes then go on to the other side as they arrive, past every
    /// stage, and the session never holds it whole. The codec reads the message's head once
    /// it has arrived and asks `stream` (the stage chain) about it; on yes it books the message
    /// as it would one decoded and encoded (what it answers, what will answer it) and returns
    /// the message's whole length, which the driver then passes on unread. `None` (the
    /// default): the message is decoded whole, or its head has not arrived yet.
    fn stream_message(
        &mut self,
        side: Side,
        buf: &[u8],
        stream: &mut dyn FnMut(&P::Head) -> bool,
    ) -> Result<Option<usize>, CodecError> {
        let _ = (side, buf, stream);
        Ok(None)
    }

    /// The last byte of the message streamed from `side` has been queued in `out` (toward the
    /// other side): what the codec held back so as not to split it goes after it now.
    fn end_stream(&mut self, side: Side, out: &mut WriteQueue) {
        let _ = (side, out);
    }

    /// Queues a request for the backend; fails only for a message that cannot be encoded.
    fn encode_request(&mut self, msg: P::Request, out: &mut WriteQueue) -> Result<(), CodecError>;
    /// Queues a response for the client; fails only for a message that cannot be encoded.
    fn encode_response(&mut self, msg: P::Response, out: &mut WriteQueue)
    -> Result<(), CodecError>;
}

/// Raw TCP: requests and responses are byte chunks, exactly as read.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawTcp;

impl Protocol for RawTcp {
    type Request = Bytes;
    type Response = Bytes;
    /// Raw TCP has no messages to stream: every read is one already.
    type Head = ();
}

/// The identity codec for [`RawTcp`]: whatever was read is one message, shared, not copied.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl RawCodec {
    fn take(buf: &mut BytesMut) -> Option<Bytes> {
        (!buf.is_empty()).then(|| buf.split().freeze())
    }
}

impl Codec<RawTcp> for RawCodec {
    fn decode_request(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        Ok(Self::take(buf))
    }

    fn decode_response(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        Ok(Self::take(buf))
    }

    fn encode_request(&mut self, msg: Bytes, out: &mut WriteQueue) -> Result<(), CodecError> {
        out.push(msg);
        Ok(())
    }

    fn encode_response(&mut self, msg: Bytes, out: &mut WriteQueue) -> Result<(), CodecError> {
        out.push(msg);
        Ok(())
    }
}
