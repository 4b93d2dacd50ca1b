//! Transports that handshake phases hand on to the next phase, and the queue of bytes waiting
//! to be written to a peer.

mod exhaustion;
mod prefixed;
mod reset;
#[cfg(test)]
mod reset_tests;
mod write_queue;

pub use self::exhaustion::is_out_of_descriptors;
pub use self::prefixed::PrefixedIo;
pub use self::reset::{IntoTcp, close_when_sent, reset_when_sent};
pub use self::write_queue::WriteQueue;
