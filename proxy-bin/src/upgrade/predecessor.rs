//! The successor's side of a hand-off: the connection to the process being replaced, opened
//! at start-up when [`SOCKET_ENV`] is set. It brings the listening sockets; later it carries
//! `ready` (or the reason the start failed) and waits for `go` before anything is accepted.

use std::io::{self, Write as _};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::UnixStream;

use tracing::info;

use super::handoff::{self, SOCKET_ENV};
use super::inherited::{Inherited, InheritedSocket, Origin};
use super::pidfile::one_line;
use crate::admin::AdminState;

/// How often a successor checks whether it is ready to take over.
const READY_CHECK: Duration = Duration::from_millis(50);

/// How long receiving the sockets may take; the predecessor sends them as soon as we connect.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection to the predecessor, before the runtime starts.
#[derive(Debug)]
pub(crate) struct Predecessor {
    stream: StdUnixStream,
}

/// The connection to the predecessor, inside the runtime.
#[derive(Debug)]
pub(crate) struct PredecessorLink {
    stream: UnixStream,
    /// Bytes read past the last line.
    pending: Vec<u8>,
}

// === impl Predecessor ===

impl Predecessor {
    /// Connects to the predecessor named by the environment and receives its sockets; `None`
    /// when this process was not started by an upgrade.
    pub(crate) fn from_env() -> anyhow::Result<Option<(Self, Inherited)>> {
        let Some(path) = std::env::var_os(SOCKET_ENV) else {
            return Ok(None);
        };
        let stream = StdUnixStream::connect(&path).with_context(|| {
            format!(
                "upgrade: cannot connect to the predecessor at {}",
                path.to_string_lossy()
            )
        })?;
        stream
            .set_read_timeout(Some(RECEIVE_TIMEOUT))
            .context("upgrade: hand-off connection")?;
        let received = handoff::receive_sockets(&stream).context("upgrade: receiving sockets")?;
        stream
            .set_read_timeout(None)
            .context("upgrade: hand-off connection")?;
        let mut sockets = Vec::with_capacity(received.len());
        for (entry, fd) in received {
            let listener = std::net::TcpListener::from(fd);
            let addr = listener.local_addr().unwrap_or(entry.addr);
            sockets.push(InheritedSocket {
                kind: entry.kind,
                name: entry.name,
                addr,
                listener,
            });
        }
        Ok(Some((
            Self { stream },
            Inherited::new(Origin::Predecessor, sockets),
        )))
    }

    /// Tells the predecessor why this process cannot start (before the runtime exists).
    pub(crate) fn fail(mut self, reason: &str) {
        let _ = writeln!(self.stream, "error {}", one_line(reason));
    }

    /// The same connection, for use inside the runtime.
    pub(crate) fn into_link(self) -> io::Result<PredecessorLink> {
        self.stream.set_nonblocking(true)?;
        Ok(PredecessorLink {
            stream: UnixStream::from_std(self.stream)?,
            pending: Vec::new(),
        })
    }
}

// === impl PredecessorLink ===

impl PredecessorLink {
    /// Tells the predecessor this process is ready to take over.
    pub(crate) async fn ready(&mut self) -> io::Result<()> {
        self.stream.write_all(b"ready\n").await
    }

    /// Tells the predecessor that this process accepts now; after that, it drains. An error
    /// only means the predecessor is gone (one of an older version closes after `go`).
    pub(crate) async fn serving(&mut self) {
        let _ = self.stream.write_all(b"serving\n").await;
    }

    /// Tells the predecessor why this process cannot start.
    pub(crate) async fn fail(&mut self, reason: &str) {
        let line = format!("error {}\n", one_line(reason));
        let _ = self.stream.write_all(line.as_bytes()).await;
    }

    /// A successor's side of the readiness handshake: ready once listeners are set up and the
    /// clusters' requirements hold; then `ready`, and nothing is accepted until `go`.
    pub(crate) async fn take_over(&mut self, state: &AdminState) -> anyhow::Result<()> {
        let mut last_reason = String::new();
        loop {
            match state.ready_to_serve() {
                Ok(()) => break,
                Err(reason) => {
                    if reason != last_reason {
                        info!(reason.detail = %reason, "upgrade: not ready yet");
                        last_reason = reason;
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(READY_CHECK) => {}
                said = self.next() => anyhow::bail!(
                    "upgrade: the predecessor ended the hand-off before we were ready ({said:?})"
                ),
            }
        }
        self.ready().await.context("upgrade: cannot report ready")?;
        info!("upgrade: ready, waiting for the predecessor");
        match self.next().await.context("upgrade: hand-off connection")? {
            Some(word) if word == "go" => {
                info!("upgrade: taking over");
                Ok(())
            }
            said => anyhow::bail!("upgrade: rolled back by the predecessor ({said:?})"),
        }
    }

    /// The predecessor's next word: `Some("go")` to take over; `None` when it closed the
    /// connection (it rolled back, or died). Cancel safe.
    pub(crate) async fn next(&mut self) -> io::Result<Option<String>> {
        handoff::read_line(&mut self.stream, &mut self.pending).await
    }
}
