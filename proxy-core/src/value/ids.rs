//! Names of sessions and routes.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A session's identifier, unique within one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

/// The next session's identifier.
static NEXT: AtomicU64 = AtomicU64::new(1);

impl SessionId {
    /// The next identifier; identifiers start at 1 (or where [`start_at`](Self::start_at)
    /// put them) and never repeat within a process.
    pub fn next() -> Self {
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Makes identifiers start at `first` rather than 1, so that processes replacing one
    /// another (an upgrade's generations) never reuse one another's. Takes effect only before
    /// the first identifier is handed out; later calls change nothing.
    pub fn start_at(first: u64) {
        let _ = NEXT.compare_exchange(1, first.max(1), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The numeric value, for logs and metrics.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The name of a route: the cluster a session is sent to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteId(Arc<str>);

impl RouteId {
    /// A route named `name`.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// The route's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RouteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
