//! The transport to a backend: a TCP stream, TLS over one, or a child process's stdin and
//! stdout.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use proxy_core::io::IntoTcp;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::child::ChildIo;

/// Whatever a session's backend connection is.
#[derive(Debug)]
pub enum BackendIo {
    /// A network backend.
    Tcp(TcpStream),
    /// A network backend the proxy speaks TLS to. Boxed: a TLS connection's state is large
    /// next to a socket.
    Tls(Box<TlsStream<TcpStream>>),
    /// A child process spawned for the session. Boxed, as TLS: an idle session to a network
    /// backend would otherwise carry room for a child's pipes.
    Child(Box<ChildIo>),
}

impl IntoTcp for BackendIo {
    /// A child process has no reset to pass on: its stdin is closed as always.
    fn into_tcp(self) -> Option<TcpStream> {
        match self {
            Self::Tcp(io) => Some(io),
            Self::Tls(io) => io.into_tcp(),
            Self::Child(_) => None,
        }
    }

    fn close_sends_fin(&self) -> bool {
        matches!(self, Self::Tcp(_))
    }
}

impl AsyncRead for BackendIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(io) => Pin::new(io).poll_read(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
            Self::Child(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for BackendIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(io) => Pin::new(io).poll_write(cx, buf),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
            Self::Child(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_write_vectored(cx, bufs),
            Self::Child(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(io) => io.is_write_vectored(),
            Self::Tls(io) => io.is_write_vectored(),
            Self::Child(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(io) => Pin::new(io).poll_flush(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
            Self::Child(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(io) => Pin::new(io).poll_shutdown(cx),
            Self::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
            Self::Child(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}
