//! Reading an inbound PROXY header, sans-IO: what a listener's policy makes of the bytes read so
//! far, of the phase's deadline and of the client's EOF. The frontend's driver reads into one
//! `BytesMut` and obeys; it keeps no rule of its own.
//!
//! Trust is decided before a byte is read. With [`ProxyProtocolMode::Optional`], a connection
//! holds a header only once its bytes carry a whole v1 or v2 signature: until then they are
//! undecided, and as soon as one byte differs from both signatures they are the client's own.
//! Undecided bytes at the deadline or at EOF are the client's too (a `\r\n` or `PRO` that was
//! never going to be a header); they are forwarded first, never dropped. A whole signature
//! followed by anything but a valid header is refused, as in required mode.

use std::net::IpAddr;

use bytes::BytesMut;

use super::ProxyHeaderError;
use super::decode::{Detection, decode, detect};
use super::header::ProxyHeader;
use super::policy::{ProxyProtocolMode, ProxyProtocolPolicy};

/// What the bytes read so far come to.
#[derive(Debug)]
pub enum HeaderRead {
    /// They may still start a header: read more, until the deadline.
    NeedMore,
    /// A header, decoded and removed from the buffer; whatever followed it stays there. Boxed:
    /// the other answers are empty, and a header is read once per connection.
    Header(Box<ProxyHeader>),
    /// No header: the buffer holds the client's own bytes, to be forwarded first.
    NoHeader,
}

/// One connection's reading of its listener's [`ProxyProtocolPolicy`].
#[derive(Debug, Clone, Copy)]
pub struct HeaderReader {
    mode: ProxyProtocolMode,
    /// Whether the peer is in the trusted networks: only then is a header believed.
    trusted: bool,
    max_header_len: usize,
}

// === impl HeaderReader ===

impl HeaderReader {
    /// Starts reading for `peer`; a peer outside the trusted networks is refused at once when a
    /// header is required.
    pub fn new(policy: &ProxyProtocolPolicy, peer: IpAddr) -> Result<Self, ProxyHeaderError> {
        let trusted = policy.trusted.contains(peer);
        if policy.mode == ProxyProtocolMode::Required && !trusted {
            return Err(ProxyHeaderError::Untrusted);
        }
        Ok(Self {
            mode: policy.mode,
            trusted,
            max_header_len: policy.max_header_len,
        })
    }

    /// Looks at `buf` after a read. A decoded header's bytes are removed from it.
    pub fn on_bytes(&self, buf: &mut BytesMut) -> Result<HeaderRead, ProxyHeaderError> {
        if self.mode == ProxyProtocolMode::Off {
            return Ok(HeaderRead::NoHeader);
        }
        match detect(buf) {
            Detection::Absent if self.optional() => return Ok(HeaderRead::NoHeader),
            Detection::Absent => return Err(ProxyHeaderError::Missing),
            Detection::Present if !self.trusted => return Err(ProxyHeaderError::Untrusted),
            Detection::Present => {
                if let Some(header) = decode(buf, self.max_header_len)? {
                    return Ok(HeaderRead::Header(Box::new(header)));
                }
            }
            Detection::NeedMore => {}
        }
        if buf.len() >= self.max_header_len {
            return Err(ProxyHeaderError::TooLarge {
                max: self.max_header_len,
            });
        }
        Ok(HeaderRead::NeedMore)
    }

    /// The phase's deadline passed with `buf` read and [`HeaderRead::NeedMore`] the last
    /// answer. `Ok`: no header, and `buf` is the client's. A client may speak second (the
    /// server greets first), or stop after a byte or two that only look like a signature.
    pub fn on_deadline(&self, buf: &[u8]) -> Result<(), ProxyHeaderError> {
        if self.undecided_is_clients(buf) {
            Ok(())
        } else {
            Err(ProxyHeaderError::TimedOut)
        }
    }

    /// The client sent EOF with `buf` read and [`HeaderRead::NeedMore`] the last answer. `Ok`:
    /// no header, and `buf` is the client's (its EOF follows it).
    pub fn on_eof(&self, buf: &[u8]) -> Result<(), ProxyHeaderError> {
        if self.undecided_is_clients(buf) {
            Ok(())
        } else if buf.is_empty() {
            Err(ProxyHeaderError::Missing)
        } else {
            Err(ProxyHeaderError::Truncated)
        }
    }

    fn optional(&self) -> bool {
        self.mode != ProxyProtocolMode::Required
    }

    /// With an optional header, bytes that never made a whole signature (none at all, or a
    /// strict prefix of one) are the client's; a whole signature is a header, finished or not.
    fn undecided_is_clients(&self, buf: &[u8]) -> bool {
        self.optional() && detect(buf) == Detection::NeedMore
    }
}
