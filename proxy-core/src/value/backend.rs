//! Where a backend connection goes: an address as configured, and what it reached.

use std::fmt;
use std::net::SocketAddr;

/// One backend address as configured: a host (IP literal or DNS name) and a port. Names are
/// resolved at connect time, so a backend that moves is followed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendAddr {
    /// An IP literal (IPv6 without brackets) or a DNS name.
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// What a session's backend connection goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendTarget {
    /// A TCP address.
    Addr(SocketAddr),
    /// A child process spawned for the session, talking on its stdin and stdout.
    Child {
        /// Its process id.
        pid: u32,
        /// The program, for logs.
        program: Box<str>,
    },
}

impl BackendTarget {
    /// The TCP address, for a network backend.
    pub fn addr(&self) -> Option<SocketAddr> {
        match self {
            Self::Addr(addr) => Some(*addr),
            Self::Child { .. } => None,
        }
    }
}

impl fmt::Display for BackendTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(addr) => addr.fmt(f),
            Self::Child { pid, program } => write!(f, "{program}[{pid}]"),
        }
    }
}
