//! The `AwaitingProxyHeader` phase: reading a PROXY-protocol header from a load balancer.
//!
//! [`HeaderReader`] decides (whose header to believe, when bytes are a header and when they are
//! the client's own, what the deadline and an EOF mean); this driver only reads. Reading is
//! bounded by the header size limit and one deadline for the whole phase; a slow peer only ever
//! holds up its own session. Bytes that arrived after the header, or that turned out to be the
//! client's own, are returned, never dropped.

use bytes::BytesMut;
use proxy_core::close::CloseReason;
use proxy_core::context::SessionContext;
use proxy_core::proxy_protocol::{HeaderRead, HeaderReader, ProxyProtocolPolicy};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tracing::debug;

/// How much to read at a time while looking for the header; most headers fit in one read.
const READ_CHUNK: usize = 512;

/// Reads the header `policy` asks for into `cx`; returns the bytes read past it (with no
/// header, every byte read).
pub(crate) async fn read(
    stream: &mut TcpStream,
    cx: &mut SessionContext,
    policy: &ProxyProtocolPolicy,
    deadline: Instant,
) -> Result<BytesMut, CloseReason> {
    let reader =
        HeaderReader::new(policy, cx.peer_addr().ip()).map_err(CloseReason::ProxyHeader)?;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        match reader
            .on_bytes(&mut buf)
            .map_err(CloseReason::ProxyHeader)?
        {
            HeaderRead::Header(header) => {
                debug!(header.addrs = ?header.addrs(), header.tlvs = header.tlvs().len(), "read proxy header");
                cx.set_proxy_header(*header);
                return Ok(buf);
            }
            HeaderRead::NoHeader => {
                debug!(early.len = buf.len(), "no proxy header");
                return Ok(buf);
            }
            HeaderRead::NeedMore => {}
        }
        buf.reserve(READ_CHUNK);
        // `read_buf` into a buffer we keep is cancel safe: a timeout loses no byte.
        let ended = match timeout_at(deadline, stream.read_buf(&mut buf)).await {
            Ok(Ok(0)) => reader.on_eof(&buf),
            Ok(Ok(_)) => continue,
            Ok(Err(err)) => return Err(CloseReason::ClientIo(err.kind())),
            Err(_) => reader.on_deadline(&buf),
        };
        ended.map_err(CloseReason::ProxyHeader)?;
        debug!(
            early.len = buf.len(),
            "no proxy header by the end of the phase"
        );
        return Ok(buf);
    }
}
