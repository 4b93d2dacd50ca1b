//! The parts of a Kafka request header every request is read for, parsed straight from the
//! frame without decoding its body: API key, version, correlation id, client id, and where the
//! body starts. Responses need only their correlation id and, to decode a body, the header
//! version their request implies.

use kafka_protocol::messages::ApiKey;

use super::KafkaError;
use super::wire::Cursor;

/// What a request's header says, with offsets into its frame (length prefix excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeaderInfo {
    /// The API key, as sent (it may be one this proxy does not know).
    pub api_key: i16,
    /// The API version.
    pub api_version: i16,
    /// The client's correlation id.
    pub correlation_id: i32,
    /// The request header version (0–2), when the API key is known.
    pub header_version: Option<i16>,
    /// Offset and length of the client id, when present.
    client_id: Option<(u32, u16)>,
    /// Where the body starts, when the API key is known.
    pub body_offset: Option<u32>,
}

impl RequestHeaderInfo {
    /// The API, when this proxy knows its key.
    pub fn api(&self) -> Option<ApiKey> {
        ApiKey::try_from(self.api_key).ok()
    }

    /// The client id's bytes within `frame` (the frame this header was parsed from).
    pub fn client_id<'f>(&self, frame: &'f [u8]) -> Option<&'f str> {
        let (start, len) = self.client_id?;
        let start = start as usize;
        let bytes = frame.get(start..start + usize::from(len))?;
        std::str::from_utf8(bytes).ok()
    }
}

impl RequestHeaderInfo {
    /// Whether the broker will answer the request this header begins in `frame` (the bytes
    /// after the length prefix, as many as have arrived): not a Produce with `acks = 0`.
    /// `None` while a Produce's `acks` has not arrived.
    pub(crate) fn expects_response(&self, frame: &[u8]) -> Option<bool> {
        if self.api() != Some(ApiKey::Produce) {
            return Some(true);
        }
        let body = frame.get(self.body_offset? as usize..)?;
        Some(produce_acks(body, self.api_version)? != 0)
    }

    /// The header of a request built by the proxy, never read from the wire.
    pub(crate) fn synthetic(api: ApiKey, api_version: i16) -> Self {
        Self {
            api_key: api as i16,
            api_version,
            correlation_id: 0,
            header_version: Some(request_header_version(api, api_version)),
            client_id: None,
            body_offset: None,
        }
    }
}

/// The request header version of `api` at `version`: 2 for flexible versions, else 1. (Only
/// ControlledShutdown v0, between brokers, used v0; that API is unknown here and passes raw.)
pub(crate) fn request_header_version(api: ApiKey, version: i16) -> i16 {
    api.request_header_version(version)
}

/// Parses the header at the start of `frame` (the bytes after the length prefix).
pub fn parse_request_header(frame: &[u8]) -> Result<RequestHeaderInfo, KafkaError> {
    let mut cursor = Cursor::new(frame);
    let api_key = cursor.i16()?;
    let api_version = cursor.i16()?;
    let correlation_id = cursor.i32()?;
    let api = ApiKey::try_from(api_key).ok();
    let header_version = api.map(|api| request_header_version(api, api_version));
    // Every header version from 1 has the client id in the same place, so it is read even for
    // API keys this proxy does not know (they are logged and counted by client).
    let mut client_id = None;
    if header_version != Some(0) {
        let len = cursor.i16()?;
        if len >= 0 {
            let start = cursor.pos;
            cursor.skip(len as usize)?;
            client_id = Some((start as u32, len as u16));
        } else if len != -1 {
            return Err(KafkaError::Malformed("negative client id length"));
        }
    }
    if header_version == Some(2) {
        cursor.skip_tagged_fields()?;
    }
    let body_offset = header_version.map(|_| cursor.pos as u32);
    Ok(RequestHeaderInfo {
        api_key,
        api_version,
        correlation_id,
        header_version,
        client_id,
        body_offset,
    })
}

/// The correlation id at the start of a response frame.
pub(crate) fn response_correlation_id(frame: &[u8]) -> Result<i32, KafkaError> {
    Cursor::new(frame).i32()
}

/// Where a response's body starts, given its header version (0: correlation id only; 1: and
/// tagged fields).
pub(crate) fn response_body_offset(frame: &[u8], header_version: i16) -> Result<usize, KafkaError> {
    let mut cursor = Cursor::new(frame);
    cursor.i32()?;
    if header_version >= 1 {
        cursor.skip_tagged_fields()?;
    }
    Ok(cursor.pos)
}

/// The `acks` of a Produce request body, read without decoding the records: 0 means the
/// broker sends no response. `None` when the body is too short to say.
pub fn produce_acks(body: &[u8], version: i16) -> Option<i16> {
    let mut cursor = Cursor::new(body);
    if version >= 9 {
        // transactional_id: compact nullable string (length + 1, 0 for null)
        let len = cursor.uvarint().ok()?;
        if len > 0 {
            cursor.skip(len as usize - 1).ok()?;
        }
    } else if version >= 3 {
        let len = cursor.i16().ok()?;
        if len > 0 {
            cursor.skip(len as usize).ok()?;
        }
    }
    cursor.i16().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(api_key: i16, version: i16, correlation: i32, client: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&api_key.to_be_bytes());
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&correlation.to_be_bytes());
        match client {
            Some(id) => {
                out.extend_from_slice(&(id.len() as i16).to_be_bytes());
                out.extend_from_slice(id.as_bytes());
            }
            None => out.extend_from_slice(&(-1i16).to_be_bytes()),
        }
        out
    }

    #[test]
    fn header_v1_gives_client_id_and_body_offset() {
        // Metadata v4 is not flexible: header v1.
        let mut frame = header(3, 4, 77, Some("rdkafka"));
        frame.extend_from_slice(b"BODY");
        let info = parse_request_header(&frame).unwrap();
        assert_eq!(info.api(), Some(ApiKey::Metadata));
        assert_eq!(info.correlation_id, 77);
        assert_eq!(info.header_version, Some(1));
        assert_eq!(info.client_id(&frame), Some("rdkafka"));
        assert_eq!(&frame[info.body_offset.unwrap() as usize..], b"BODY");
    }

    #[test]
    fn header_v2_skips_tagged_fields() {
        // Metadata v12 is flexible: header v2, with one tagged field of 3 bytes.
        let mut frame = header(3, 12, 1, None);
        frame.extend_from_slice(&[1, 5, 3, 9, 9, 9]);
        frame.extend_from_slice(b"B");
        let info = parse_request_header(&frame).unwrap();
        assert_eq!(info.header_version, Some(2));
        assert_eq!(info.client_id(&frame), None);
        assert_eq!(&frame[info.body_offset.unwrap() as usize..], b"B");
    }

    #[test]
    fn unknown_api_keys_keep_their_correlation_id_and_client_id() {
        let frame = header(9999, 1, 5, Some("x"));
        let info = parse_request_header(&frame).unwrap();
        assert_eq!(info.api(), None);
        assert_eq!(info.correlation_id, 5);
        assert_eq!(info.client_id(&frame), Some("x"));
        assert_eq!(info.body_offset, None);
    }

    #[test]
    fn truncated_headers_are_errors_at_every_length() {
        let mut full = header(3, 12, 1, Some("client"));
        full.push(0); // no tagged fields
        for len in 0..full.len() {
            assert!(
                parse_request_header(&full[..len]).is_err(),
                "a header cut at {len} bytes was accepted"
            );
        }
        assert!(parse_request_header(&full).is_ok());
    }

    #[test]
    fn produce_acks_by_version() {
        assert_eq!(produce_acks(&[0, 0, 0, 1], 2), Some(0));
        // v3: null transactional id, acks -1
        assert_eq!(produce_acks(&[0xff, 0xff, 0xff, 0xff], 3), Some(-1));
        // v3: transactional id "ab", acks 0
        assert_eq!(produce_acks(&[0, 2, b'a', b'b', 0, 0], 5), Some(0));
        // v9: compact null, acks 1; compact "a", acks 0
        assert_eq!(produce_acks(&[0, 0, 1], 9), Some(1));
        assert_eq!(produce_acks(&[2, b'a', 0, 0], 9), Some(0));
        assert_eq!(produce_acks(&[5, b'a'], 9), None);
    }
}
