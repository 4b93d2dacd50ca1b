//! `PrefixedIo`: a transport whose first reads return bytes already read by an earlier phase.
//!
//! A handshake phase (the PROXY header reader, later TLS detection) may read past its own bytes:
//! a client often sends its header and its first request (or TLS ClientHello) in one segment.
//! Those bytes are never dropped: the phase returns `PrefixedIo::new(leftover, io)` and the next
//! phase reads them first. Writes go straight to the inner transport.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// `inner`, with `prefix` returned by the first reads.
#[derive(Debug)]
pub struct PrefixedIo<T> {
    prefix: Bytes,
    inner: T,
}

impl<T> PrefixedIo<T> {
    /// Reads return `prefix` first, then `inner`'s bytes.
    pub fn new(prefix: impl Into<Bytes>, inner: T) -> Self {
        Self {
            prefix: prefix.into(),
            inner,
        }
    }

    /// Bytes not yet read from the prefix.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The inner transport.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The inner transport, dropping whatever of the prefix was not read.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for PrefixedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.prefix.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = this.prefix.len().min(buf.remaining());
        buf.put_slice(&this.prefix[..n]);
        this.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for PrefixedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    #[tokio::test]
    async fn the_prefix_is_read_before_the_inner_bytes_and_writes_pass_through() {
        let (inner, mut peer) = duplex(64);
        let mut io = PrefixedIo::new(Bytes::from_static(b"hello "), inner);
        peer.write_all(b"world").await.unwrap();
        peer.shutdown().await.unwrap();
        let mut small = [0u8; 4];
        io.read_exact(&mut small).await.unwrap();
        assert_eq!(&small, b"hell");
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"o world");
        io.write_all(b"back").await.unwrap();
        let mut got = [0u8; 4];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"back");
    }
}
