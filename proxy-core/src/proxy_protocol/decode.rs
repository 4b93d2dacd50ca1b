//! Detecting and decoding an inbound PROXY header.

use std::net::SocketAddr;

use bytes::BytesMut;
use ppp::{HeaderResult, PartialResult, v1, v2};

use super::ProxyHeaderError;
use crate::context::{ProxiedAddrs, ProxyHeader, Tlv};

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
/// as soon as that is certain.
pub fn decode(buf: &mut BytesMut, max_len: usize) -> Result<Option<ProxyHeader>, ProxyHeaderError> {
    let (len, addrs, tlv_spans) = match HeaderResult::parse(buf) {
        result if result.is_incomplete() => {
            return if buf.len() >= max_len || declared_v2_len(buf).is_some_and(|n| n > max_len) {
                Err(ProxyHeaderError::TooLarge { max: max_len })
            } else {
                Ok(None)
            };
        }
        HeaderResult::V1(Ok(header)) => {
            (header.header.len(), v1_addrs(&header.addresses), Vec::new())
        }
        HeaderResult::V2(Ok(header)) => {
            let addrs = match header.command {
                v2::Command::Local => None,
                v2::Command::Proxy => v2_addrs(&header.addresses),
            };
            (header.len(), addrs, tlv_spans(&header)?)
        }
        // `ppp` judges a v1 line before its CR arrives (a port cut in half reads as invalid):
        // until the CR or the 107-byte limit, it is only incomplete.
        HeaderResult::V1(Err(_)) if !buf.contains(&b'\r') && buf.len() < V1_MAX_LEN => {
            return Ok(None);
        }
        HeaderResult::V1(Err(err)) => return Err(ProxyHeaderError::Invalid(err.to_string())),
        HeaderResult::V2(Err(err)) => return Err(ProxyHeaderError::Invalid(err.to_string())),
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
