//! The registry of open sessions, for the admin endpoint and for tests.
//!
//! Sessions register when they start and unregister when their guard drops, even on panic or
//! cancellation. The lock is held only to insert, remove or copy entries, never across `.await`,
//! and never on the forwarding path: per-session counters are atomics in [`SessionStats`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use proxy_core::context::{SessionContext, SessionId, SessionStats};

/// What the registry knows about an open session.
#[derive(Debug, Clone)]
pub struct SessionEntry {
    /// The session's identifier.
    pub id: SessionId,
    /// The listener that accepted it.
    pub listener: Arc<str>,
    /// The real client's address.
    pub client_addr: SocketAddr,
    /// Its live counters.
    pub stats: Arc<SessionStats>,
}

/// The open sessions of a proxy instance.
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    open: Arc<Mutex<HashMap<SessionId, SessionEntry>>>,
}

impl Sessions {
    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.open.lock().len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of every open session's entry, in id order.
    pub fn snapshot(&self) -> Vec<SessionEntry> {
        let mut entries: Vec<_> = self.open.lock().values().cloned().collect();
        entries.sort_by_key(|e| e.id);
        entries
    }

    pub(crate) fn register(&self, cx: &SessionContext, listener: Arc<str>) -> Registration {
        let entry = SessionEntry {
            id: cx.id(),
            listener,
            client_addr: cx.client_addr(),
            stats: cx.stats().clone(),
        };
        self.open.lock().insert(cx.id(), entry);
        Registration {
            sessions: self.clone(),
            id: cx.id(),
        }
    }
}

/// Removes its session from the registry when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    sessions: Sessions,
    id: SessionId,
}

impl Registration {
    /// Records the real client's address once a PROXY header has revealed it.
    pub(crate) fn set_client_addr(&self, addr: SocketAddr) {
        if let Some(entry) = self.sessions.open.lock().get_mut(&self.id) {
            entry.client_addr = addr;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.sessions.open.lock().remove(&self.id);
    }
}
