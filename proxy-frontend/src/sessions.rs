//! The registry of open sessions, for the admin endpoint and for tests, and each listener's
//! totals: sessions accepted and bytes read each way.
//!
//! Sessions register when they start and unregister when their guard drops, even on panic or
//! cancellation. The lock is held only to insert, remove or copy entries, never across `.await`,
//! and never on the forwarding path: per-session counters are atomics in [`SessionStats`].
//!
//! A listener's byte totals are the bytes of its closed sessions plus the live counters of its
//! open ones. A session's bytes move from one to the other under the same lock a
//! [`totals`](Sessions::totals) read takes, so a total never goes back.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use proxy_core::Side;
use proxy_core::context::{SessionContext, SessionId, SessionStats};
use proxy_core::slots::Slots;

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

/// One listener's sessions since start: accepted, and bytes read from each side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerTotals {
    /// Sessions accepted.
    pub sessions: u64,
    /// Bytes read from clients.
    pub bytes_from_client: u64,
    /// Bytes read from backends.
    pub bytes_from_backend: u64,
}

/// The open sessions of a proxy instance.
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    registry: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
struct Registry {
    /// Each registration keeps its slot: one entry's room per session, where a map by id
    /// would keep about two.
    open: Slots<SessionEntry>,
    /// Per listener: sessions accepted, and the bytes of those that closed. Listener names
    /// come from the config: bounded.
    closed: HashMap<Arc<str>, ListenerTotals>,
}

impl Sessions {
    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.registry.lock().open.len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of every open session's entry, in id order.
    pub fn snapshot(&self) -> Vec<SessionEntry> {
        let mut entries: Vec<_> = self.registry.lock().open.iter().cloned().collect();
        entries.sort_by_key(|e| e.id);
        entries
    }

    /// Each listener that has accepted a session: sessions accepted and bytes read so far,
    /// open sessions included.
    pub fn totals(&self) -> BTreeMap<Arc<str>, ListenerTotals> {
        let registry = self.registry.lock();
        let mut totals: BTreeMap<Arc<str>, ListenerTotals> = registry
            .closed
            .iter()
            .map(|(listener, totals)| (listener.clone(), *totals))
            .collect();
        for entry in registry.open.iter() {
            let total = totals.entry(entry.listener.clone()).or_default();
            total.bytes_from_client += entry.stats.bytes_from(Side::Client);
            total.bytes_from_backend += entry.stats.bytes_from(Side::Backend);
        }
        totals
    }

    pub(crate) fn register(&self, cx: &SessionContext, listener: Arc<str>) -> Registration {
        let entry = SessionEntry {
            id: cx.id(),
            listener,
            client_addr: cx.client_addr(),
            stats: cx.stats().clone(),
        };
        let mut registry = self.registry.lock();
        registry
            .closed
            .entry(entry.listener.clone())
            .or_default()
            .sessions += 1;
        let slot = registry.open.insert(entry);
        drop(registry);
        Registration {
            sessions: self.clone(),
            slot,
        }
    }
}

/// Removes its session from the registry when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    sessions: Sessions,
    slot: usize,
}

impl Registration {
    /// Records the real client's address once a PROXY header has revealed it.
    pub(crate) fn set_client_addr(&self, addr: SocketAddr) {
        if let Some(entry) = self.sessions.registry.lock().open.get_mut(self.slot) {
            entry.client_addr = addr;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut registry = self.sessions.registry.lock();
        if let Some(entry) = registry.open.remove(self.slot) {
            let total = registry.closed.entry(entry.listener.clone()).or_default();
            total.bytes_from_client += entry.stats.bytes_from(Side::Client);
            total.bytes_from_backend += entry.stats.bytes_from(Side::Backend);
        }
    }
}
