//! A Kafka response as stages see it: read from the backend by [`crate::KafkaCodec`] (located
//! past its header, its body left as bytes), or a stage's own answer to a request; on its way to
//! the client it becomes a frame again, the bytes as read unless a stage changed it.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use super::{InFlightKey, KafkaRequest, Origin};
use crate::KafkaError;
use crate::frame::encode_frame;

/// A response from the broker, or an answer from a stage.
#[derive(Debug)]
pub struct KafkaResponse {
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    header_version: i16,
    /// The frame as read (length prefix included); empty for answers built by the proxy.
    frame: Bytes,
    /// Where the body starts in `frame`.
    body_offset: usize,
    decoded: Option<Box<DecodedResponse>>,
    origin: Origin,
    /// Built by a stage, not read from the backend.
    answer: bool,
    /// An answer to a request Kafka does not answer (Produce with `acks = 0`).
    unsolicited: bool,
}

#[derive(Debug)]
struct DecodedResponse {
    body: ResponseKind,
    dirty: bool,
}

impl KafkaResponse {
    pub(crate) fn from_frame(
        frame: Bytes,
        body_offset: usize,
        request: &InFlightKey,
        origin: Origin,
    ) -> Self {
        Self {
            api_key: request.api_key,
            api_version: request.api_version,
            correlation_id: request.correlation_id,
            header_version: request.response_header_version(),
            frame,
            body_offset,
            decoded: None,
            origin,
            answer: false,
            unsolicited: false,
        }
    }

    /// A stage's answer to `request`, sent to the client in its place.
    pub fn answer(request: &KafkaRequest, body: ResponseKind) -> Self {
        let key = InFlightKey::of(request);
        Self {
            api_key: key.api_key,
            api_version: key.api_version,
            correlation_id: key.correlation_id,
            header_version: key.response_header_version(),
            frame: Bytes::new(),
            body_offset: 0,
            decoded: Some(Box::new(DecodedResponse { body, dirty: true })),
            origin: Origin::Client,
            answer: true,
            unsolicited: false,
        }
    }

    /// An answer to `request` encoded in `version` rather than the request's: Kafka answers an
    /// ApiVersions request of a version it does not know in v0, with an error.
    pub fn answer_in_version(request: &KafkaRequest, version: i16, body: ResponseKind) -> Self {
        let mut answer = Self::answer(request, body);
        answer.api_version = version;
        answer
    }

    /// The API key of the request it answers.
    pub fn api_key(&self) -> i16 {
        self.api_key
    }

    /// The API, when this proxy knows the key.
    pub fn api(&self) -> Option<ApiKey> {
        ApiKey::try_from(self.api_key).ok()
    }

    /// The API version of the request it answers.
    pub fn api_version(&self) -> i16 {
        self.api_version
    }

    /// The correlation id.
    pub fn correlation_id(&self) -> i32 {
        self.correlation_id
    }

    /// Who the request came from: a response to the proxy's own request never reaches the
    /// client.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    pub(crate) fn unsolicited(mut self) -> Self {
        self.unsolicited = true;
        self
    }

    /// True for a broker's answer to a request Kafka does not answer (Produce, `acks = 0`).
    pub fn is_unsolicited(&self) -> bool {
        self.unsolicited
    }

    /// True for a stage's answer, false for the backend's response.
    pub fn is_answer(&self) -> bool {
        self.answer
    }

    /// Size on the wire as read, length prefix included (0 for an answer built by the proxy).
    pub fn wire_len(&self) -> usize {
        self.frame.len()
    }

    /// The body's bytes as read, while nothing has decoded it (after a decode, the decoded body
    /// is what counts: a stage may have changed it).
    pub(crate) fn undecoded_body(&self) -> Option<&[u8]> {
        match self.decoded {
            None => self.frame.get(self.body_offset..),
            Some(_) => None,
        }
    }

    /// True once the body was decoded.
    #[cfg(test)]
    pub(crate) fn is_decoded(&self) -> bool {
        self.decoded.is_some()
    }

    /// The body, decoded on first use; the frame is still written on unchanged.
    pub fn body(&mut self) -> Result<&ResponseKind, KafkaError> {
        Ok(&self.decode()?.body)
    }

    /// The body to change; the response is re-encoded on its way out.
    pub fn body_mut(&mut self) -> Result<&mut ResponseKind, KafkaError> {
        let decoded = self.decode()?;
        decoded.dirty = true;
        Ok(&mut decoded.body)
    }

    /// Takes the decoded body (for the proxy's own requests' responses).
    pub fn into_body(mut self) -> Result<ResponseKind, KafkaError> {
        self.decode()?;
        self.decoded
            .map(|decoded| decoded.body)
            .ok_or(KafkaError::Malformed("response body vanished"))
    }

    fn decode(&mut self) -> Result<&mut DecodedResponse, KafkaError> {
        if self.decoded.is_none() {
            let api = self.api().ok_or(KafkaError::UnknownApiKey(self.api_key))?;
            let mut body = self.frame.slice(self.body_offset.min(self.frame.len())..);
            let body = ResponseKind::decode(api, &mut body, self.api_version)
                .map_err(|err| KafkaError::decode(api, self.api_version, &err))?;
            self.decoded = Some(Box::new(DecodedResponse { body, dirty: false }));
        }
        self.decoded
            .as_deref_mut()
            .ok_or(KafkaError::Malformed("response body vanished"))
    }

    /// The frame to write: the bytes as read when nothing changed them, else re-encoded.
    pub(crate) fn into_frame(self) -> Result<Bytes, KafkaError> {
        let api = self.api();
        match self.decoded {
            Some(decoded) if decoded.dirty => {
                let api = api.ok_or(KafkaError::UnknownApiKey(self.api_key))?;
                let header = ResponseHeader::default().with_correlation_id(self.correlation_id);
                encode_frame(api, self.api_version, |buf| {
                    header.encode(buf, self.header_version)?;
                    decoded.body.encode(buf, self.api_version)
                })
            }
            _ => Ok(self.frame),
        }
    }
}
