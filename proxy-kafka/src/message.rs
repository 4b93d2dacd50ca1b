//! Kafka requests and responses as stages see them: the frame as read, its parsed header, and
//! the body decoded only when a stage asks for it.
//!
//! A frame nobody decodes is written on as the same `Bytes` it was read into. A stage that only
//! reads a body ([`KafkaRequest::body`]) leaves the frame as it was; one that may change it
//! ([`KafkaRequest::body_mut`]) makes the message re-encoded on its way out.
//!
//! Requests ([`request`]) and responses ([`response`]) each have their own module; what ties a
//! response to its request is here.

use kafka_protocol::messages::ApiKey;

mod request;
mod response;

pub use self::request::{KafkaRequest, Origin};
pub use self::response::KafkaResponse;

/// What a Kafka message's first bytes tell before the rest of it has arrived: what a stage
/// looks at to say whether it needs the message whole
/// ([`Stage::needs`](proxy_core::stage::Stage::needs)). A response's API is its request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaHead {
    /// The API key, as sent.
    pub api_key: i16,
    /// The API version.
    pub api_version: i16,
    /// The whole message's size on the wire, length prefix included.
    pub wire_len: usize,
}

impl KafkaHead {
    /// The API, when this proxy knows its key.
    pub fn api(&self) -> Option<ApiKey> {
        ApiKey::try_from(self.api_key).ok()
    }

    /// Whether it is a message of `api`.
    pub fn is(&self, api: ApiKey) -> bool {
        self.api_key == api as i16
    }
}

/// What a response needs to know of the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InFlightKey {
    pub(crate) api_key: i16,
    pub(crate) api_version: i16,
    pub(crate) correlation_id: i32,
}

impl InFlightKey {
    pub(crate) fn of(request: &KafkaRequest) -> Self {
        Self {
            api_key: request.api_key(),
            api_version: request.api_version(),
            correlation_id: request.correlation_id(),
        }
    }

    /// The response header version (ApiVersions always answers with v0, so a client that
    /// sent a version the broker does not know can still read the answer).
    pub(crate) fn response_header_version(&self) -> i16 {
        match ApiKey::try_from(self.api_key) {
            Ok(api) => api.response_header_version(self.api_version),
            Err(()) => 0,
        }
    }
}
