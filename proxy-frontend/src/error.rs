//! Errors of the frontend crate.

use std::io;
use std::net::SocketAddr;

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrontendError {
    /// The listening socket could not be bound.
    #[error("listener {listener}: cannot bind {addr}")]
    Bind {
        /// The listener's name.
        listener: String,
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// A socket received already bound (from a predecessor or systemd) could not be used.
    #[error("listener {listener}: cannot adopt the inherited socket")]
    Adopt {
        /// The listener's name.
        listener: String,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
}
