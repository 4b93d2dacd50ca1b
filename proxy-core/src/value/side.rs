//! The two peers of a session, the two directions messages travel, and whose fault a failure
//! was.

use std::fmt;

/// Who caused a session to end badly (pingora's error tags). Orderly closes have no fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The client, or the network between it and us.
    Downstream,
    /// A backend, or the network between us and it.
    Upstream,
    /// Sluice itself: a stage, a configuration limit, a shutdown deadline.
    Internal,
}

impl Fault {
    /// A short, stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Downstream => "downstream",
            Self::Upstream => "upstream",
            Self::Internal => "internal",
        }
    }
}

/// One of the two peers of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The connection that was accepted.
    Client,
    /// The connection the proxy opened toward the route's backend.
    Backend,
}

impl Side {
    /// The peer on the other end of the session.
    pub fn other(self) -> Self {
        match self {
            Self::Client => Self::Backend,
            Self::Backend => Self::Client,
        }
    }

    /// Whose fault a failure on this side is.
    pub fn fault(self) -> Fault {
        match self {
            Self::Client => Fault::Downstream,
            Self::Backend => Fault::Upstream,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Backend => "backend",
        })
    }
}

/// The direction a message travels through the stage chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client toward backend.
    Request,
    /// Backend toward client.
    Response,
}
