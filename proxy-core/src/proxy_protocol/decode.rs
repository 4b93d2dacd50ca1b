//! Detecting and decoding an inbound PROXY header.

use std::net::SocketAddr;

use bytes::BytesMut;
use ppp::{PartialResult, v1, v2};

use super::ProxyHeaderError;
use super::header::{ProxiedAddrs, ProxyHeader, Tlv};

const V1_SIGNATURE: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8] = v2::PROTOCOL_PREFIX;
/// The longest v1 header, CRLF included (the specification's limit).
const V1_MAX_LEN: usize = 107;
/// A v2 header's fixed part: signature, version/command, family/protocol, length.
const V2_FIXED_LEN: usize = 16;
/// A v2 TLV's type and length bytes.
const TLV_HEADER_LEN: usize = 3;

/// Whether a connection's first bytes are a PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// The bytes so far are a prefix of a signature; read more to tell.
    NeedMore,
    /// The bytes start with a v1 or v2 signature.
    Present,
    /// The bytes cannot start a header.
    Absent,
}

/// Looks for the v1 (`PROXY `) or v2 signature at the start of `buf`.
pub fn detect(buf: &[u8]) -> Detection {
    let mut undecided = false;
    for signature in [V1_SIGNATURE, V2_SIGNATURE] {
        let n = buf.len().min(signature.len());
        if buf[..n] == signature[..n] {
            if n == signature.len() {
                return Detection::Present;
            }
            undecided = true;
        }
    }
    if undecided {
        Detection::NeedMore
    } else {
        Detection::Absent
    }
}

/// Decodes the header at the start of `buf` and removes its bytes, leaving whatever followed
/// it. `Ok(None)` means more bytes are needed; a header that would exceed `max_len` is refused
/// as soon as that is certain. The verdict never depends on how the bytes were split into reads.
pub fn decode(buf: &mut BytesMut, max_len: usize) -> Result<Option<ProxyHeader>, ProxyHeaderError> {
    let parsed = if buf.first() == Some(&V2_SIGNATURE[0]) {
        decode_v2(buf, max_len)?
    } else {
        decode_v1(buf)?
    };
    let Some((len, addrs, tlv_spans)) = parsed else {
        return Ok(None);
    };
    if len > max_len {
        return Err(ProxyHeaderError::TooLarge { max: max_len });
    }
    let raw = buf.split_to(len).freeze();
    let tlvs = tlv_spans.into_iter().map(|(kind, start, end)| Tlv {
        kind,
        value: raw.slice(start..end),
    });
    Ok(Some(ProxyHeader::new(raw.clone(), addrs, tlvs)))
}

/// A decoded header's length, addresses and TLV value spans.
type Parsed = (usize, Option<ProxiedAddrs>, Vec<(u8, usize, usize)>);

/// v1 is a line: it is framed here (CR LF within 107 bytes) and only the complete line is
/// given to `ppp`, whose own view of an unfinished line depends on where it was cut.
fn decode_v1(buf: &[u8]) -> Result<Option<Parsed>, ProxyHeaderError> {
    let window = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        return if buf.len() >= V1_MAX_LEN {
            Err(ProxyHeaderError::Invalid(format!(
                "v1 header without CRLF in its first {V1_MAX_LEN} bytes"
            )))
        } else {
            Ok(None)
        };
    };
    match buf.get(cr + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => {
            return Err(ProxyHeaderError::Invalid(
                "v1 header: CR not followed by LF".into(),
            ));
        }
    }
    let line = &buf[..cr + 2];
    match v1::Header::try_from(line) {
        Ok(header) => Ok(Some((line.len(), v1_addrs(&header.addresses), Vec::new()))),
        Err(err) => Err(ProxyHeaderError::Invalid(err.to_string())),
    }
}

/// v2 declares its length up front, so `ppp`'s verdict depends only on the bytes present.
fn decode_v2(buf: &[u8], max_len: usize) -> Result<Option<Parsed>, ProxyHeaderError> {
    match v2::Header::try_from(buf) {
        Err(err) if PartialResult::is_incomplete(&err) => {
            if buf.len() >= max_len || declared_v2_len(buf).is_some_and(|n| n > max_len) {
                Err(ProxyHeaderError::TooLarge { max: max_len })
            } else {
                Ok(None)
            }
        }
        Err(err) => Err(ProxyHeaderError::Invalid(err.to_string())),
        Ok(header) => {
            let addrs = match header.command {
                v2::Command::Local => None,
                v2::Command::Proxy => v2_addrs(&header.addresses),
            };
            Ok(Some((header.len(), addrs, tlv_spans(&header)?)))
        }
    }
}

/// The total length a v2 header declares, once its fixed 16 bytes are in.
fn declared_v2_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < V2_FIXED_LEN || !buf.starts_with(V2_SIGNATURE) {
        return None;
    }
    Some(V2_FIXED_LEN + usize::from(u16::from_be_bytes([buf[14], buf[15]])))
}

/// Each TLV's kind and the span of its value within the header, validated.
fn tlv_spans(header: &v2::Header<'_>) -> Result<Vec<(u8, usize, usize)>, ProxyHeaderError> {
    let mut offset = header.len() - header.tlv_bytes().len();
    let mut spans = Vec::new();
    for tlv in header.tlvs() {
        let tlv = tlv.map_err(|err| ProxyHeaderError::Invalid(err.to_string()))?;
        let start = offset + TLV_HEADER_LEN;
        let end = start + tlv.value.len();
        spans.push((tlv.kind, start, end));
        offset = end;
    }
    Ok(spans)
}

fn v1_addrs(addresses: &v1::Addresses) -> Option<ProxiedAddrs> {
    match addresses {
        v1::Addresses::Tcp4(a) => Some(ProxiedAddrs {
            source: SocketAddr::from((a.source_address, a.source_port)),
            destination: SocketAddr::from((a.destination_address, a.destination_port)),
        }),
        v1::Addresses::Tcp6(a) => Some(ProxiedAddrs {
            source: SocketAddr::from((a.source_address, a.source_port)),
            destination: SocketAddr::from((a.destination_address, a.destination_port)),
        }),
        v1::Addresses::Unknown => None,
    }
}

fn v2_addrs(addresses: &v2::Addresses) -> Option<ProxiedAddrs> {
    match addresses {
        v2::Addresses::IPv4(a) => Some(ProxiedAddrs {
            source: SocketAddr::from((a.source_address, a.source_port)),
            destination: SocketAddr::from((a.destination_address, a.destination_port)),
        }),
        v2::Addresses::IPv6(a) => Some(ProxiedAddrs {
            source: SocketAddr::from((a.source_address, a.source_port)),
            destination: SocketAddr::from((a.destination_address, a.destination_port)),
        }),
        // A UNIX-socket client has no address a TCP backend could use.
        v2::Addresses::Unix(_) | v2::Addresses::Unspecified => None,
    }
}
