//! Kafka requests and responses as stages see them: the frame as read, its parsed header, and
//! the body decoded only when a stage asks for it.
//!
//! A frame nobody decodes is written on as the same `Bytes` it was read into. A stage that only
//! reads a body ([`KafkaRequest::body`]) leaves the frame as it was; one that may change it
//! ([`KafkaRequest::body_mut`]) makes the message re-encoded on its way out.

use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::KafkaError;
use super::header::{RequestHeaderInfo, produce_acks};

/// The length prefix of every frame.
pub(crate) const LENGTH_PREFIX: usize = 4;

/// A request from the client, or one the proxy originates.
#[derive(Debug)]
pub struct KafkaRequest {
    info: RequestHeaderInfo,
    /// The frame as read, length prefix included; empty for requests built by the proxy.
    frame: Bytes,
    decoded: Option<Box<DecodedRequest>>,
    expects_response: bool,
    origin: Origin,
    pub(crate) received_at: Instant,
}

/// Who a request comes from, and so who its response goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The client: its response goes back to the client.
    Client,
    /// The proxy: its response is the proxy's, and never reaches the client.
    Proxy,
}

#[derive(Debug)]
struct DecodedRequest {
    header: RequestHeader,
    body: RequestKind,
    dirty: bool,
}

impl KafkaRequest {
    /// A request read from the client; `frame` includes its length prefix.
    pub(crate) fn from_frame(frame: Bytes, info: RequestHeaderInfo) -> Self {
        let expects_response = match (info.api(), info.body_offset) {
            (Some(ApiKey::Produce), Some(offset)) => frame
                .get(LENGTH_PREFIX + offset as usize..)
                .and_then(|body| produce_acks(body, info.api_version))
                .is_none_or(|acks| acks != 0),
            _ => true,
        };
        Self {
            info,
            frame,
            decoded: None,
            expects_response,
            origin: Origin::Client,
            received_at: Instant::now(),
        }
    }

    /// A request the proxy sends on its own; the codec gives it a correlation id of the proxy's.
    pub fn originate(api: ApiKey, api_version: i16, client_id: &str, body: RequestKind) -> Self {
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(api_version)
            .with_client_id(Some(StrBytes::from_string(client_id.to_owned())));
        Self {
            info: RequestHeaderInfo::synthetic(api, api_version),
            frame: Bytes::new(),
            decoded: Some(Box::new(DecodedRequest {
                header,
                body,
                dirty: true,
            })),
            expects_response: true,
            origin: Origin::Proxy,
            received_at: Instant::now(),
        }
    }

    /// The API key as sent.
    pub fn api_key(&self) -> i16 {
        self.info.api_key
    }

    /// The API, when this proxy knows the key.
    pub fn api(&self) -> Option<ApiKey> {
        self.info.api()
    }

    /// The API version.
    pub fn api_version(&self) -> i16 {
        self.info.api_version
    }

    /// The correlation id.
    pub fn correlation_id(&self) -> i32 {
        self.info.correlation_id
    }

    /// The client id (as read: a stage's change shows in [`Self::header_mut`]).
    pub fn client_id(&self) -> Option<&str> {
        match &self.decoded {
            Some(decoded) => decoded.header.client_id.as_deref(),
            None => self
                .info
                .client_id(&self.frame[LENGTH_PREFIX.min(self.frame.len())..]),
        }
    }

    /// Whether the broker will answer (false for Produce with `acks = 0`).
    pub fn expects_response(&self) -> bool {
        self.expects_response
    }

    /// Who sent it.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// Size on the wire as read, length prefix included (0 for a request built by the proxy).
    pub fn wire_len(&self) -> usize {
        self.frame.len()
    }

    /// The body, decoded on first use; the frame is still written on unchanged.
    pub fn body(&mut self) -> Result<&RequestKind, KafkaError> {
        Ok(&self.decode()?.body)
    }

    /// The body to change; the request is re-encoded on its way out.
    pub fn body_mut(&mut self) -> Result<&mut RequestKind, KafkaError> {
        let decoded = self.decode()?;
        decoded.dirty = true;
        Ok(&mut decoded.body)
    }

    /// The header to change (the client id, say); the request is re-encoded on its way out.
    pub fn header_mut(&mut self) -> Result<&mut RequestHeader, KafkaError> {
        let decoded = self.decode()?;
        decoded.dirty = true;
        Ok(&mut decoded.header)
    }

    fn decode(&mut self) -> Result<&mut DecodedRequest, KafkaError> {
        if self.decoded.is_none() {
            let api = self
                .api()
                .ok_or(KafkaError::UnknownApiKey(self.info.api_key))?;
            let (Some(header_version), Some(body_offset)) =
                (self.info.header_version, self.info.body_offset)
            else {
                return Err(KafkaError::UnknownApiKey(self.info.api_key));
            };
            let mut header_bytes = self.frame.slice(LENGTH_PREFIX..);
            let header = RequestHeader::decode(&mut header_bytes, header_version)
                .map_err(|err| KafkaError::decode(api, self.info.api_version, &err))?;
            let mut body_bytes = self.frame.slice(LENGTH_PREFIX + body_offset as usize..);
            let body = RequestKind::decode(api, &mut body_bytes, self.info.api_version)
                .map_err(|err| KafkaError::decode(api, self.info.api_version, &err))?;
            self.decoded = Some(Box::new(DecodedRequest {
                header,
                body,
                dirty: false,
            }));
        }
        self.decoded
            .as_deref_mut()
            .ok_or(KafkaError::Malformed("request body vanished"))
    }

    /// The frame to write, with `correlation_id` in its header: the bytes as read when nothing
    /// changed them (and the id is the client's), else the re-encoded message.
    pub(crate) fn into_frame(self, correlation_id: i32) -> Result<Bytes, KafkaError> {
        match self.decoded {
            Some(decoded) if decoded.dirty => {
                let DecodedRequest {
                    mut header, body, ..
                } = *decoded;
                let api = self
                    .info
                    .api()
                    .ok_or(KafkaError::UnknownApiKey(self.info.api_key))?;
                header.correlation_id = correlation_id;
                let header_version = self.info.header_version.unwrap_or(1);
                encode_frame(api, self.info.api_version, |buf| {
                    header.encode(buf, header_version)?;
                    body.encode(buf, self.info.api_version)
                })
            }
            _ if correlation_id == self.info.correlation_id => Ok(self.frame),
            _ => {
                // A new correlation id on an unchanged frame: patch the four bytes in a copy.
                let mut frame = BytesMut::from(&self.frame[..]);
                let at = LENGTH_PREFIX + 4;
                frame
                    .get_mut(at..at + 4)
                    .ok_or(KafkaError::Truncated)?
                    .copy_from_slice(&correlation_id.to_be_bytes());
                Ok(frame.freeze())
            }
        }
    }
}

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

/// Encodes a frame: a length prefix, then what `write` puts after it.
fn encode_frame<E: std::fmt::Display>(
    api: ApiKey,
    version: i16,
    write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<Bytes, KafkaError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    write(&mut buf).map_err(|err| KafkaError::Encode {
        api,
        version,
        detail: err.to_string(),
    })?;
    let len = i32::try_from(buf.len() - LENGTH_PREFIX).map_err(|_| KafkaError::Encode {
        api,
        version,
        detail: "message larger than 2 GiB".into(),
    })?;
    buf[..LENGTH_PREFIX].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}
