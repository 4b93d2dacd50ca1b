//! `proxy-kafka`: everything Sluice knows about Kafka, on top of `proxy-core`'s protocol-neutral
//! session model. Length-prefixed frames, request headers parsed for every request, bodies
//! decoded (with the `kafka-protocol` crate) only when a stage asks, the broker-address
//! rewriting that keeps clients on the proxy ([`broker_map`], [`rewrite`]), SASL as a server,
//! an inspector and a sans-IO negotiation ([`sasl`]), the proxy's own client for the requests it
//! sends a cluster itself ([`client`]), and the configurable Kafka stages
//! ([`kafka_registry`]).
//!
//! [`KafkaCodec`] cuts frames and remembers, per session, which request each response answers
//! (API key and version, so the response header and body can be read), in order; Produce with
//! `acks = 0` expects no response. Stages see [`KafkaRequest`]s and [`KafkaResponse`]s; a frame
//! no stage decodes is written on as the `Bytes` it was read into.
#![warn(missing_docs)]

pub mod admin_audit;
pub mod authorization;
pub mod broker_map;
pub mod client;
mod codec;
mod frame;
mod header;
mod message;
mod metrics;
pub mod quota;
mod refusal;
pub mod rewrite;
pub mod sasl;
mod stages;
mod tagged_scan;
pub mod tenant;
mod wire;

#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzz_checks;

#[cfg(test)]
mod admin_audit_tests;
#[cfg(test)]
mod codec_tests;
#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod frame_tests;
#[cfg(test)]
mod in_flight_tests;
#[cfg(test)]
mod message_tests;
#[cfg(test)]
mod metrics_tests;
#[cfg(test)]
mod rewrite_tests;
#[cfg(test)]
mod rewrite_unserved_tests;
#[cfg(test)]
mod tagged_scan_tests;
#[cfg(test)]
mod test_support;

pub use kafka_protocol;
use kafka_protocol::messages::ApiKey;

pub use self::codec::{Clock, KafkaCodec};
pub use self::header::{RequestHeaderInfo, parse_request_header, produce_acks};
pub use self::message::{KafkaHead, KafkaRequest, KafkaResponse, Origin};
pub use self::metrics::{ApiSnapshot, KafkaMetrics, LATENCY_BUCKETS};
pub use self::refusal::KafkaRefusal;
pub use self::stages::kafka_registry;
use proxy_core::stage::Protocol;

/// The client id of the requests the proxy sends on its own (discovery, authentication).
pub const PROXY_CLIENT_ID: &str = "sluice";

/// The largest frame accepted unless configured otherwise (Kafka's `socket.request.max.bytes`).
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// The largest request accepted unless configured otherwise on a listener where no client is
/// authenticated before its requests reach a broker: anonymous clients may not hold frames of
/// [`DEFAULT_MAX_FRAME_SIZE`]. Producers' own defaults stay far below it (librdkafka's
/// `message.max.bytes` is 1 000 000, the Java client's `max.request.size` 1 MiB).
pub const DEFAULT_MAX_ANONYMOUS_REQUEST_SIZE: usize = 16 * 1024 * 1024;

/// Requests a session may have awaiting their answers unless configured otherwise; at this
/// many, reading from the client pauses until an answer arrives.
///
/// Far above what real clients keep in flight on one connection: Java's
/// `max.in.flight.requests.per.connection` defaults to 5 (and idempotent producers of every
/// client stay at 5); librdkafka's `max.in.flight` defaults to 1 000 000, but that is a
/// ceiling, and what it has in flight to one broker is bounded by the batches it has ready for
/// that broker's partitions. At about 80 bytes of bookkeeping per request, 1024 cost at most
/// 80 KiB per session, and reaching the cap only slows a client down (its reads pause), so a
/// pipelining client that does read its answers never notices it, while one that never reads
/// stops growing the proxy.
pub const DEFAULT_MAX_IN_FLIGHT_REQUESTS: usize = 1024;

/// The Kafka protocol's messages, for stages and the forwarding driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kafka;

impl Protocol for Kafka {
    type Request = KafkaRequest;
    type Response = KafkaResponse;
    type Head = KafkaHead;
}

/// A Kafka message that could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// The frame ended inside the header.
    #[error("truncated header")]
    Truncated,
    /// A header field with an impossible value.
    #[error("malformed header: {0}")]
    Malformed(&'static str),
    /// An API key this proxy does not know, asked to be decoded.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A body `kafka-protocol` could not decode.
    #[error("cannot decode {api:?} v{version}: {detail}")]
    Decode {
        /// The API.
        api: ApiKey,
        /// Its version.
        version: i16,
        /// What went wrong.
        detail: String,
    },
    /// A changed message that could not be encoded.
    #[error("cannot encode {api:?} v{version}: {detail}")]
    Encode {
        /// The API.
        api: ApiKey,
        /// Its version.
        version: i16,
        /// What went wrong.
        detail: String,
    },
}

impl KafkaError {
    pub(crate) fn decode(api: ApiKey, version: i16, err: &impl std::fmt::Display) -> Self {
        Self::Decode {
            api,
            version,
            detail: err.to_string(),
        }
    }
}

/// The API's name as Kafka spells it (`Metadata`), or its number when unknown.
pub fn api_label(api_key: i16) -> String {
    match ApiKey::try_from(api_key) {
        Ok(api) => format!("{api:?}"),
        Err(()) => api_key.to_string(),
    }
}
