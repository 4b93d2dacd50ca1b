//! Transports that handshake phases hand on to the next phase.

mod prefixed;

pub use self::prefixed::PrefixedIo;
