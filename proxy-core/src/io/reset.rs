//! Ending a connection once what was written to it has left this host: passing a peer's reset
//! on (the other peer sees a reset, TCP RST, where the first one reset, and a clean close where
//! it closed), and closing after a drain.
//!
//! A reset drops whatever the kernel still holds unsent, so it is sent only once everything
//! the resetting peer sent before has left this host: the socket waits, within a bound, until
//! its unsent queue is empty (`TCP_NOTSENT_LOWAT` of one byte makes "writable" mean exactly
//! that), and only then closes with `SO_LINGER` zero. A client reading slowly still gets the
//! server's last answer, then the reset. Meanwhile whatever the peer sends is read and dropped
//! (it has nowhere to go): a peer that reads only once its own writes are taken, as an echo
//! does, would otherwise never take ours, and every such reset would wait out its bound.

use std::io;
use std::time::Duration;

use socket2::SockRef;
use tokio::net::TcpStream;
use tracing::debug;

use super::PrefixedIo;

/// A transport over a TCP connection that can be had back once the transport is done with, to
/// end it with a reset.
pub trait IntoTcp {
    /// The TCP connection under this transport; `None` for transports that are not TCP (a
    /// child process's pipes), which close as they always do.
    fn into_tcp(self) -> Option<TcpStream>;

    /// True when closing the transport sends what shutting its write half down would: plain
    /// TCP (a FIN either way), not TLS (whose shutdown sends `close_notify` first).
    fn close_sends_fin(&self) -> bool {
        false
    }
}

impl IntoTcp for TcpStream {
    fn into_tcp(self) -> Option<TcpStream> {
        Some(self)
    }

    fn close_sends_fin(&self) -> bool {
        true
    }
}

impl<T: IntoTcp> IntoTcp for PrefixedIo<T> {
    fn into_tcp(self) -> Option<TcpStream> {
        self.into_inner().into_tcp()
    }

    fn close_sends_fin(&self) -> bool {
        self.get_ref().close_sends_fin()
    }
}

impl<T: IntoTcp> IntoTcp for Box<T> {
    fn into_tcp(self) -> Option<TcpStream> {
        (*self).into_tcp()
    }

    fn close_sends_fin(&self) -> bool {
        (**self).close_sends_fin()
    }
}

/// TLS ends with the connection's reset too: no `close_notify`, as the peer it stands for sent
/// none.
impl<T: IntoTcp> IntoTcp for tokio_rustls::server::TlsStream<T> {
    fn into_tcp(self) -> Option<TcpStream> {
        self.into_inner().0.into_tcp()
    }
}

impl<T: IntoTcp> IntoTcp for tokio_rustls::client::TlsStream<T> {
    fn into_tcp(self) -> Option<TcpStream> {
        self.into_inner().0.into_tcp()
    }
}

/// An in-memory pipe has no reset: it closes.
impl IntoTcp for tokio::io::DuplexStream {
    fn into_tcp(self) -> Option<TcpStream> {
        None
    }
}

/// Ends `transport` with a reset once everything written to it has been sent, waiting at most
/// `within` for a peer that does not read; a transport that is not TCP just closes.
pub async fn reset_when_sent(transport: impl IntoTcp, within: Duration) {
    let Some(tcp) = transport.into_tcp() else {
        return;
    };
    if let Err(err) = reset_when_sent_tcp(tcp, within).await {
        // The connection closes either way; only the kind of close is lost.
        debug!(error = %err, "could not pass a reset on");
    }
}

/// Closes `transport` once everything written to it has been sent, waiting at most `within`
/// for a peer that does not read; a transport that is not TCP just closes.
///
/// For a session that drained: the client may have sent requests the drain left unread, and
/// closing a socket with unread bytes resets it, which drops whatever the kernel still holds
/// unsent (the last answers, to a client that reads slowly) and can make the client discard
/// what it had received. So the bytes it sent are read and dropped while ours leave, and the
/// close that follows is a FIN.
pub async fn close_when_sent(transport: impl IntoTcp, within: Duration) {
    let Some(tcp) = transport.into_tcp() else {
        return;
    };
    if let Err(err) = wait_sent(tcp, within).await {
        debug!(error = %err, "could not wait for the last bytes before closing");
    }
}

async fn wait_sent(tcp: TcpStream, within: Duration) -> io::Result<TcpStream> {
    // Registered anew, so the first readiness reported is the socket's current state and not
    // one cached from the forwarding's last write.
    let socket = tcp.into_std()?;
    SockRef::from(&socket).set_tcp_notsent_lowat(1)?;
    let socket = TcpStream::from_std(socket)?;
    if tokio::time::timeout(within, sent_while_reading(&socket))
        .await
        .is_err()
    {
        debug!(
            within_ms = within.as_millis() as u64,
            "the peer did not take the last bytes"
        );
    }
    Ok(socket)
}

async fn reset_when_sent_tcp(tcp: TcpStream, within: Duration) -> io::Result<()> {
    let socket = wait_sent(tcp, within).await?;
    socket.set_zero_linger()?;
    drop(socket);
    Ok(())
}

/// Waits until nothing written to `socket` is unsent, reading (and dropping) what the peer
/// sends meanwhile: a peer blocked writing to us (its answers have nowhere to go now) would
/// otherwise never read what we sent it, and the wait would last its whole bound.
async fn sent_while_reading(socket: &TcpStream) -> io::Result<()> {
    let mut discard = [0u8; 2048];
    let mut peer_ended = false;
    loop {
        tokio::select! {
            biased;
            sent = socket.writable() => return sent,
            readable = socket.readable(), if !peer_ended => {
                readable?;
                match socket.try_read(&mut discard) {
                    Ok(0) => peer_ended = true,
                    Ok(_) => {}
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => return Err(err),
                }
            }
        }
    }
}
