//! A Kafka request as stages see it: read from the client by [`crate::KafkaCodec`] (its header
//! parsed, its body left as bytes), or built by the proxy for its own exchanges with a broker;
//! on its way to the backend it becomes a frame again, the bytes as read unless a stage changed
//! it.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::time::Instant;

use crate::KafkaError;
use crate::frame::{LENGTH_PREFIX, encode_frame};
use crate::header::RequestHeaderInfo;

/// A request from the client, or one the proxy originates.
#[derive(Debug)]
pub struct KafkaRequest {
    info: RequestHeaderInfo,
    /// The frame as read, length prefix included; empty for requests built by the proxy.
    frame: Bytes,
    decoded: Option<Box<DecodedRequest>>,
    expects_response: bool,
    origin: Origin,
    /// When the codec read it, by the codec's clock: where the latency the metrics record
    /// starts. The proxy's own requests (never timed: their responses stay in the proxy) carry
    /// the time they were built.
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
    /// A request read from the client at `received_at`; `frame` includes its length prefix.
    pub(crate) fn from_frame(frame: Bytes, info: RequestHeaderInfo, received_at: Instant) -> Self {
        let expects_response = frame
            .get(LENGTH_PREFIX..)
            .and_then(|after_prefix| info.expects_response(after_prefix))
            .unwrap_or(true);
        Self {
            info,
            frame,
            decoded: None,
            expects_response,
            origin: Origin::Client,
            received_at,
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
