//! Listening sockets a process starts with instead of binding: from the process it replaces, or
//! from systemd socket activation. Each configured listener takes the socket with its name (and
//! a matching address); whatever no one takes is closed.

use std::net::{SocketAddr, TcpListener};

use tracing::info;

use super::handoff::SocketKind;

/// Where inherited sockets came from, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Handed over by the process this one replaces.
    Predecessor,
    /// `LISTEN_FDS` from systemd.
    Systemd,
}

impl Origin {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Predecessor => "predecessor",
            Self::Systemd => "systemd",
        }
    }
}

/// One inherited listening socket.
#[derive(Debug)]
pub(crate) struct InheritedSocket {
    pub(crate) kind: SocketKind,
    pub(crate) name: String,
    /// The address it is bound to, read from the socket itself.
    pub(crate) addr: SocketAddr,
    pub(crate) listener: TcpListener,
}

/// The sockets not yet claimed by a listener.
#[derive(Debug)]
pub(crate) struct Inherited {
    origin: Origin,
    sockets: Vec<InheritedSocket>,
}

// === impl Inherited ===

impl Inherited {
    pub(crate) fn none() -> Self {
        Self {
            origin: Origin::Systemd,
            sockets: Vec::new(),
        }
    }

    pub(crate) fn new(origin: Origin, sockets: Vec<InheritedSocket>) -> Self {
        Self { origin, sockets }
    }

    /// The socket for the listener `name` configured to bind `bind`: the one with that name
    /// whose address matches, else one of the same kind bound to exactly `bind` (a renamed
    /// listener). A name whose address changed gets nothing: the listener binds anew.
    pub(crate) fn take(
        &mut self,
        kind: SocketKind,
        name: &str,
        bind: SocketAddr,
    ) -> Option<TcpListener> {
        let by_name = self
            .sockets
            .iter()
            .position(|s| s.kind == kind && s.name == name && address_matches(bind, s.addr));
        let index = by_name.or_else(|| {
            self.sockets
                .iter()
                .position(|s| s.kind == kind && bind.port() != 0 && s.addr == bind)
        })?;
        let socket = self.sockets.swap_remove(index);
        info!(
            listener.name = name,
            addr = %socket.addr,
            from = self.origin.label(),
            "adopted inherited socket"
        );
        Some(socket.listener)
    }

    /// Takes every listener socket whose name `parse` accepts, with what it parsed.
    pub(crate) fn take_named<T>(
        &mut self,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Vec<(T, SocketAddr, TcpListener)> {
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(self.sockets.len());
        for socket in self.sockets.drain(..) {
            match (socket.kind, parse(&socket.name)) {
                (SocketKind::Listener, Some(parsed)) => {
                    info!(
                        listener.name = socket.name,
                        addr = %socket.addr,
                        from = self.origin.label(),
                        "adopted inherited socket"
                    );
                    taken.push((parsed, socket.addr, socket.listener));
                }
                _ => kept.push(socket),
            }
        }
        self.sockets = kept;
        taken
    }

    /// Closes every socket no listener took (a listener removed from the config).
    pub(crate) fn close_unclaimed(self) {
        for socket in self.sockets {
            info!(
                listener.name = socket.name,
                addr = %socket.addr,
                from = self.origin.label(),
                "closed inherited socket no listener uses"
            );
        }
    }
}

/// Whether a socket bound to `actual` serves a listener configured with `bind`: the same
/// address, or the same IP when the configured port is 0 (any port).
fn address_matches(bind: SocketAddr, actual: SocketAddr) -> bool {
    bind == actual || (bind.port() == 0 && bind.ip() == actual.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(kind: SocketKind, name: &str) -> InheritedSocket {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        InheritedSocket {
            kind,
            name: name.into(),
            addr: listener.local_addr().unwrap(),
            listener,
        }
    }

    #[test]
    fn listeners_take_their_sockets_by_name_kind_and_address() {
        let plain = socket(SocketKind::Listener, "plain");
        let plain_addr = plain.addr;
        let moved = socket(SocketKind::Listener, "moved");
        let renamed = socket(SocketKind::Listener, "old-name");
        let renamed_addr = renamed.addr;
        let admin = socket(SocketKind::Admin, "admin");
        let mut inherited = Inherited::new(Origin::Predecessor, vec![plain, moved, renamed, admin]);

        let any_port = "127.0.0.1:0".parse().unwrap();
        // The admin socket is not a listener called "admin".
        assert!(
            inherited
                .take(SocketKind::Listener, "admin", any_port)
                .is_none()
        );
        let taken = inherited
            .take(SocketKind::Listener, "plain", any_port)
            .unwrap();
        assert_eq!(taken.local_addr().unwrap(), plain_addr);
        assert!(
            inherited
                .take(SocketKind::Listener, "plain", any_port)
                .is_none()
        );
        // Configured elsewhere now: bind anew.
        assert!(
            inherited
                .take(
                    SocketKind::Listener,
                    "moved",
                    "127.0.0.2:1".parse().unwrap()
                )
                .is_none()
        );
        // Renamed but same address: adopted.
        let taken = inherited
            .take(SocketKind::Listener, "new-name", renamed_addr)
            .unwrap();
        assert_eq!(taken.local_addr().unwrap(), renamed_addr);
        assert!(
            inherited
                .take(SocketKind::Admin, "admin", any_port)
                .is_some()
        );
        assert_eq!(inherited.sockets.len(), 1);
        inherited.close_unclaimed();
    }
}
