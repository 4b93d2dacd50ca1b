//! systemd socket activation: the listening sockets passed as descriptors 3.. with
//! `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`.
//!
//! This is the one module of the workspace that uses `unsafe`: turning a descriptor number from
//! the environment into an [`OwnedFd`] cannot be checked by the compiler. Everything else about
//! descriptors (passing, duplicating, flags) goes through rustix's safe API.
#![expect(
    unsafe_code,
    reason = "adopting the descriptors systemd passed by number needs OwnedFd::from_raw_fd"
)]

use std::net::TcpListener;
use std::os::fd::{FromRawFd as _, OwnedFd};

use anyhow::Context as _;
use rustix::net::SocketType;
use rustix::net::sockopt;

use super::handoff::SocketKind;
use super::inherited::InheritedSocket;

/// The name (`FileDescriptorName=`) that marks the admin listener's socket.
pub(crate) const ADMIN_NAME: &str = "admin";

/// The sockets systemd passed to this process; none when `LISTEN_PID` names another process
/// or the variables are absent. Must be called once, before anything else opens descriptors.
pub(crate) fn sockets() -> anyhow::Result<Vec<InheritedSocket>> {
    // `listen_fds_with_names` checks LISTEN_PID against our PID and sets CLOEXEC on each
    // descriptor, so child backends and successors never inherit them by accident.
    let passed = sd_notify::listen_fds_with_names(false)
        .context("systemd socket activation: bad LISTEN_FDS/LISTEN_FDNAMES")?;
    let mut sockets = Vec::new();
    for (raw, name) in passed {
        // SAFETY: systemd passed descriptors LISTEN_FDS_START.. to this very process (the PID
        // matched); nothing in the process has touched them before this call, which runs once
        // at start-up, and each number is taken exactly once, so this OwnedFd is their only
        // owner.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let socket_type = sockopt::socket_type(&fd)
            .with_context(|| format!("systemd socket {name:?} (fd {raw}) is not a socket"))?;
        if socket_type != SocketType::STREAM || !sockopt::socket_acceptconn(&fd).unwrap_or(false) {
            anyhow::bail!("systemd socket {name:?} (fd {raw}) is not a listening TCP socket");
        }
        let listener = TcpListener::from(fd);
        let addr = listener
            .local_addr()
            .with_context(|| format!("systemd socket {name:?} (fd {raw}) has no IP address"))?;
        let kind = if name == ADMIN_NAME {
            SocketKind::Admin
        } else {
            SocketKind::Listener
        };
        sockets.push(InheritedSocket {
            kind,
            name,
            addr,
            listener,
        });
    }
    Ok(sockets)
}
