//! The `AwaitingProxyHeader` phase: reading a PROXY-protocol header from a load balancer.
//!
//! Whose header to believe is decided before a byte is read: a peer outside the listener's
//! trusted networks is refused at once when a header is required, and refused as soon as its
//! bytes turn out to start one when a header is optional. Reading is bounded by the header size
//! limit and one deadline for the whole phase; a slow peer only ever holds up its own session.
//! Bytes that arrived after the header are returned, never dropped.

use bytes::BytesMut;
use proxy_core::close::CloseReason;
use proxy_core::context::SessionContext;
use proxy_core::proxy_protocol::{
    Detection, ProxyHeaderError, ProxyProtocolMode, ProxyProtocolPolicy, decode, detect,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tracing::debug;

/// How much to read at a time while looking for the header; most headers fit in one read.
const READ_CHUNK: usize = 512;

/// Reads the header `policy` asks for into `cx`; returns the bytes read past it.
pub(crate) async fn read(
    stream: &mut TcpStream,
    cx: &mut SessionContext,
    policy: &ProxyProtocolPolicy,
    deadline: Instant,
) -> Result<BytesMut, CloseReason> {
    let reject = |err: ProxyHeaderError| CloseReason::ProxyHeader(err);
    let trusted = policy.trusted.contains(cx.peer_addr().ip());
    if policy.mode == ProxyProtocolMode::Required && !trusted {
        return Err(reject(ProxyHeaderError::Untrusted));
    }
    let optional = policy.mode == ProxyProtocolMode::Optional;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        match detect(&buf) {
            Detection::Absent if optional => return Ok(buf),
            Detection::Absent => return Err(reject(ProxyHeaderError::Missing)),
            Detection::Present if !trusted => return Err(reject(ProxyHeaderError::Untrusted)),
            Detection::Present => {
                if let Some(header) = decode(&mut buf, policy.max_header_len).map_err(reject)? {
                    debug!(header.addrs = ?header.addrs(), header.tlvs = header.tlvs().len(), "read proxy header");
                    cx.set_proxy_header(header);
                    return Ok(buf);
                }
            }
            Detection::NeedMore => {}
        }
        if buf.len() >= policy.max_header_len {
            return Err(reject(ProxyHeaderError::TooLarge {
                max: policy.max_header_len,
            }));
        }
        buf.reserve(READ_CHUNK);
        // `read_buf` into a buffer we keep is cancel safe: a timeout loses no byte.
        match timeout_at(deadline, stream.read_buf(&mut buf)).await {
            // A client that sends nothing may speak second (the server greets first): with an
            // optional header, silence until the deadline means "no header".
            Err(_) if optional && buf.is_empty() => return Ok(buf),
            Err(_) => return Err(reject(ProxyHeaderError::TimedOut)),
            Ok(Ok(0)) if buf.is_empty() && optional => return Ok(buf),
            Ok(Ok(0)) if buf.is_empty() => return Err(reject(ProxyHeaderError::Missing)),
            Ok(Ok(0)) => return Err(reject(ProxyHeaderError::Truncated)),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(CloseReason::ClientIo(err.kind())),
        }
    }
}
