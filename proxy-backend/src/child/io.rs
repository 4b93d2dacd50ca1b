//! `ChildIo`: a session's transport to its child process, stdout for reads and stdin for writes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::ExitStatus;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::oneshot;

/// The session's transport to its child: `AsyncRead` from the child's stdout, `AsyncWrite` to its
/// stdin.
///
/// `poll_shutdown` closes the child's stdin. Dropping a `ChildIo` hands the child to its
/// [`ChildReaper`](super::ChildReaper), which stops it.
#[derive(Debug)]
pub struct ChildIo {
    /// Where the child's answers come from. Reads EOF once the child (and anything that
    /// inherited its stdout) has exited.
    stdout: ChildStdout,
    /// Where the session's bytes go; `None` once shut down, so dropping it is the half-close.
    stdin: Option<ChildStdin>,
    /// Never sent: dropping it tells the supervisor that the session is done with the child.
    _release: oneshot::Sender<()>,
    /// How the child ended, from its supervisor; `None` once reported to the reader.
    exit: Option<oneshot::Receiver<ExitStatus>>,
}

// === impl ChildIo ===

impl ChildIo {
    pub(super) fn new(
        stdin: ChildStdin,
        stdout: ChildStdout,
        release: oneshot::Sender<()>,
        exit: oneshot::Receiver<ExitStatus>,
    ) -> Self {
        Self {
            stdout,
            stdin: Some(stdin),
            _release: release,
            exit: Some(exit),
        }
    }

    /// The open stdin, or the error a write after shutdown gets (as on a shut-down socket).
    fn stdin(&mut self) -> io::Result<Pin<&mut ChildStdin>> {
        match self.stdin.as_mut() {
            Some(stdin) => Ok(Pin::new(stdin)),
            None => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "child stdin already shut down",
            )),
        }
    }
}

impl AsyncRead for ChildIo {
    /// Reads the child's stdout. At its end, waits for the child's exit: a clean exit is EOF (an
    /// orderly close, as a TCP backend's FIN), a signal or a non-zero status is an error, so the
    /// session ends as a backend failure instead of waiting on a half-closed peer.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stdout).poll_read(cx, buf))?;
        if buf.filled().len() > before || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let Some(exit) = this.exit.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let status = ready!(Pin::new(exit).poll(cx));
        this.exit = None;
        match status {
            Ok(status) if !status.success() => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("child exited early: {status}"),
            ))),
            // A clean exit, or a supervisor gone with the runtime: an orderly end.
            _ => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for ChildIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stdin() {
            Ok(stdin) => stdin.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stdin() {
            Ok(stdin) => stdin.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stdin.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stdin.as_mut() {
            Some(stdin) => Pin::new(stdin).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Flushes and closes the child's stdin, so the child reads EOF. Idempotent.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(stdin) = this.stdin.as_mut() {
            // A pipe has no user-space buffer, but flush anyway in case that ever changes. A
            // flush error still closes stdin: the caller asked for the half-close either way.
            let flushed = std::task::ready!(Pin::new(stdin).poll_flush(cx));
            this.stdin = None;
            return Poll::Ready(flushed);
        }
        Poll::Ready(Ok(()))
    }
}
