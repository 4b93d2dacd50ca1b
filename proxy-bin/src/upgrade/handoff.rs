//! The hand-off protocol between a running process and its successor, over one Unix stream
//! connection that the successor opens to the path in [`SOCKET_ENV`]:
//!
//! 1. old → new: one message `u32` big-endian length + manifest, with the listening sockets
//!    attached as `SCM_RIGHTS` (one per manifest line, in order). A manifest line is
//!    `KIND\tNAME\tADDR`, `KIND` being `listener` or `admin`.
//! 2. new → old: `ready\n` once it could serve, or `error REASON\n` (then it exits).
//! 3. old → new: `go\n` once the old process has committed to the hand-off; only then does the
//!    successor accept. A closed connection instead means "rolled back": the successor exits.
//! 4. new → old: `serving\n` once it accepts. Only then is the upgrade a success; a successor
//!    that exits instead, or says nothing within a bound, is killed and the old process serves
//!    on. (A successor of an older version closes the connection after `go` and runs on: a
//!    close without an exit counts as `serving`.)
//!
//! Every socket is received with `CLOEXEC` set, so child-process backends never inherit one.

use std::io::{self, IoSlice, IoSliceMut, Read as _};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, Interest};
use tokio::net::UnixStream;

/// The environment variable naming the Unix socket a successor connects to.
pub(crate) const SOCKET_ENV: &str = "SLUICE_UPGRADE_SOCKET";

/// The kernel's limit on descriptors in one `SCM_RIGHTS` message (`SCM_MAX_FD`).
pub(crate) const MAX_SOCKETS: usize = 253;

/// The most a manifest or a status line may take; names and addresses are short.
const MAX_MESSAGE: usize = 64 * 1024;

const MANIFEST_HEADER: &str = "sluice-handoff 1";

/// What a listening socket serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SocketKind {
    /// A `[[listener]]`, matched by name.
    Listener,
    /// The `[admin]` listener.
    Admin,
}

impl SocketKind {
    fn label(self) -> &'static str {
        match self {
            Self::Listener => "listener",
            Self::Admin => "admin",
        }
    }
}

/// One manifest line: what a socket is, without the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) kind: SocketKind,
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
}

/// A listening socket on offer to a successor: a duplicate of the one being served.
#[derive(Debug)]
pub(crate) struct Offered {
    pub(crate) entry: Entry,
    pub(crate) fd: OwnedFd,
}

impl Offered {
    /// A duplicate (`F_DUPFD_CLOEXEC`) of `socket`, described by `kind` and `name`.
    pub(crate) fn dup(
        kind: SocketKind,
        name: &str,
        addr: SocketAddr,
        socket: BorrowedFd<'_>,
    ) -> io::Result<Self> {
        Ok(Self {
            entry: Entry {
                kind,
                name: name.to_owned(),
                addr,
            },
            fd: socket.try_clone_to_owned()?,
        })
    }

    /// Another duplicate of the same socket, with the same description.
    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            entry: self.entry.clone(),
            fd: self.fd.try_clone()?,
        })
    }
}

/// Why a hand-off message was not understood.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandoffError {
    #[error("hand-off connection: {0}")]
    Io(#[from] io::Error),
    #[error("hand-off manifest: {0}")]
    Manifest(String),
}

// === the manifest ===

fn encode(entries: &[&Entry]) -> Vec<u8> {
    let mut body = String::from(MANIFEST_HEADER);
    body.push('\n');
    for entry in entries {
        body.push_str(&format!(
            "{}\t{}\t{}\n",
            entry.kind.label(),
            entry.name,
            entry.addr
        ));
    }
    let mut frame = u32::try_from(body.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    frame.extend_from_slice(body.as_bytes());
    frame
}

fn decode(body: &[u8]) -> Result<Vec<Entry>, HandoffError> {
    let bad = |what: String| HandoffError::Manifest(what);
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8".into()))?;
    let mut lines = text.lines();
    if lines.next() != Some(MANIFEST_HEADER) {
        return Err(bad(format!("expected the header {MANIFEST_HEADER:?}")));
    }
    lines
        .map(|line| {
            let mut fields = line.split('\t');
            let (Some(kind), Some(name), Some(addr), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(bad(format!("malformed line {line:?}")));
            };
            let kind = match kind {
                "listener" => SocketKind::Listener,
                "admin" => SocketKind::Admin,
                other => return Err(bad(format!("unknown socket kind {other:?}"))),
            };
            let addr = addr
                .parse()
                .map_err(|_| bad(format!("bad address in {line:?}")))?;
            Ok(Entry {
                kind,
                name: name.to_owned(),
                addr,
            })
        })
        .collect()
}

/// Whether `name` can travel in a manifest line.
pub(crate) fn is_sendable_name(name: &str) -> bool {
    !name.contains(['\t', '\n', '\r'])
}

// === the old side ===

/// Sends the manifest and its sockets to the successor.
pub(crate) async fn send_sockets(stream: &mut UnixStream, offered: &[Offered]) -> io::Result<()> {
    let entries: Vec<&Entry> = offered.iter().map(|o| &o.entry).collect();
    let frame = encode(&entries);
    let fds: Vec<BorrowedFd<'_>> = offered.iter().map(|o| o.fd.as_fd()).collect();
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len().max(1)))];
    let sent = loop {
        stream.writable().await?;
        let result = stream.try_io(Interest::WRITABLE, || {
            let mut control = SendAncillaryBuffer::new(&mut space);
            if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(io::Error::other("too many sockets for one message"));
            }
            Ok(sendmsg(
                &*stream,
                &[IoSlice::new(&frame)],
                &mut control,
                SendFlags::NOSIGNAL,
            )?)
        });
        match result {
            Ok(sent) => break sent,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err),
        }
    };
    // The sockets went with the first byte; the rest of a long manifest follows as plain data.
    stream
        .write_all(frame.get(sent..).unwrap_or_default())
        .await
}

/// Reads one line (without its newline); `None` at end of stream. Cancel safe: bytes already
/// read stay in `pending`.
pub(crate) async fn read_line(
    stream: &mut UnixStream,
    pending: &mut Vec<u8>,
) -> io::Result<Option<String>> {
    loop {
        if let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = line.get(..end).unwrap_or_default();
            return Ok(Some(String::from_utf8_lossy(line).into_owned()));
        }
        if pending.len() > MAX_MESSAGE {
            return Err(io::Error::other("hand-off line too long"));
        }
        let mut byte = [0u8; 256];
        let n = stream.read(&mut byte).await?;
        if n == 0 {
            return Ok(None);
        }
        pending.extend_from_slice(byte.get(..n).unwrap_or_default());
    }
}

// === the new side ===

/// Receives the manifest and its sockets (blocking, bounded by the stream's read timeout).
pub(crate) fn receive_sockets(
    stream: &StdUnixStream,
) -> Result<Vec<(Entry, OwnedFd)>, HandoffError> {
    let mut buffer = vec![0u8; MAX_MESSAGE];
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_SOCKETS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut buffer)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = message {
            fds.extend(received);
        }
    }
    if received.flags.contains(ReturnFlags::CTRUNC) {
        return Err(HandoffError::Manifest("sockets truncated".into()));
    }
    let mut data = buffer.get(..received.bytes).unwrap_or_default().to_vec();
    let mut reader = stream;
    let mut fill = |data: &mut Vec<u8>, need: usize| -> Result<(), HandoffError> {
        while data.len() < need {
            let mut more = [0u8; 4096];
            let n = reader.read(&mut more)?;
            if n == 0 {
                return Err(HandoffError::Manifest(
                    "connection closed mid-message".into(),
                ));
            }
            data.extend_from_slice(more.get(..n).unwrap_or_default());
        }
        Ok(())
    };
    fill(&mut data, 4)?;
    let len = match data.get(..4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]) as usize,
        _ => 0,
    };
    if len > MAX_MESSAGE {
        return Err(HandoffError::Manifest(format!("{len} bytes is too long")));
    }
    let need = 4 + len;
    fill(&mut data, need)?;
    let entries = decode(data.get(4..need).unwrap_or_default())?;
    if entries.len() != fds.len() {
        return Err(HandoffError::Manifest(format!(
            "{} entries but {} sockets",
            entries.len(),
            fds.len()
        )));
    }
    Ok(entries.into_iter().zip(fds).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips() {
        let entries = [
            Entry {
                kind: SocketKind::Listener,
                name: "plain one".into(),
                addr: "127.0.0.1:9192".parse().unwrap(),
            },
            Entry {
                kind: SocketKind::Admin,
                name: "admin".into(),
                addr: "[::1]:9190".parse().unwrap(),
            },
        ];
        let frame = encode(&entries.iter().collect::<Vec<_>>());
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        assert_eq!(decode(&frame[4..]).unwrap(), entries);
    }

    #[test]
    fn a_bad_manifest_is_an_error() {
        assert!(decode(b"something else\n").is_err());
        assert!(decode(b"sluice-handoff 1\nlistener\tx\n").is_err());
        assert!(decode(b"sluice-handoff 1\nbogus\tx\t127.0.0.1:1\n").is_err());
        assert!(!is_sendable_name("a\tb"));
        assert!(is_sendable_name("plain"));
    }

    #[tokio::test]
    async fn sockets_travel_with_the_manifest() {
        let (mut old, new) = UnixStream::pair().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let offered =
            vec![Offered::dup(SocketKind::Listener, "plain", addr, listener.as_fd()).unwrap()];
        send_sockets(&mut old, &offered).await.unwrap();
        let new = new.into_std().unwrap();
        new.set_nonblocking(false).unwrap();
        let received = tokio::task::spawn_blocking(move || receive_sockets(&new))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(received.len(), 1);
        let (entry, fd) = received.into_iter().next().unwrap();
        assert_eq!(entry.name, "plain");
        let adopted = std::net::TcpListener::from(fd);
        assert_eq!(adopted.local_addr().unwrap(), addr);
        // The same socket: a connection made now is accepted through the received copy.
        drop(listener);
        drop(offered);
        let _client = std::net::TcpStream::connect(addr).unwrap();
        adopted.accept().unwrap();
    }
}
