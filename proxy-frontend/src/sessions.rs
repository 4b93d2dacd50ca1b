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
    open: OpenSessions,
    /// Per listener: sessions accepted, and the bytes of those that closed. Listener names
    /// come from the config: bounded.
    closed: HashMap<Arc<str>, ListenerTotals>,
}

impl Sessions {
    /// How many sessions are open.
    pub fn len(&self) -> usize {
        self.registry.lock().open.len
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

/// Open sessions in slots a registration keeps: one entry's room per session, where a hash
/// map by id would keep about two (its buckets stay at most seven-eighths full, and it
/// doubles) and the id a second time as the key.
#[derive(Debug, Default)]
struct OpenSessions {
    slots: Vec<Option<SessionEntry>>,
    /// Empty slots, reused before the slots grow.
    vacant: Vec<usize>,
    len: usize,
}

impl OpenSessions {
    fn insert(&mut self, entry: SessionEntry) -> usize {
        self.len += 1;
        if let Some(slot) = self.vacant.pop()
            && let Some(vacant) = self.slots.get_mut(slot)
        {
            *vacant = Some(entry);
            return slot;
        }
        self.slots.push(Some(entry));
        self.slots.len() - 1
    }

    fn get_mut(&mut self, slot: usize) -> Option<&mut SessionEntry> {
        self.slots.get_mut(slot)?.as_mut()
    }

    fn remove(&mut self, slot: usize) -> Option<SessionEntry> {
        let entry = self.slots.get_mut(slot)?.take()?;
        self.len -= 1;
        self.vacant.push(slot);
        Some(entry)
    }

    fn iter(&self) -> impl Iterator<Item = &SessionEntry> {
        self.slots.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(port: u16) -> SessionEntry {
        SessionEntry {
            id: SessionId::next(),
            listener: "l".into(),
            client_addr: SocketAddr::from(([127, 0, 0, 1], port)),
            stats: Arc::default(),
        }
    }

    fn ports(open: &OpenSessions) -> Vec<u16> {
        let mut ports: Vec<_> = open.iter().map(|e| e.client_addr.port()).collect();
        ports.sort_unstable();
        ports
    }

    #[test]
    fn a_closed_sessions_slot_is_reused_and_every_open_one_is_listed_once() {
        let mut open = OpenSessions::default();
        let slots: Vec<_> = (1..=3).map(|port| open.insert(entry(port))).collect();
        assert_eq!(open.len, 3);
        assert_eq!(open.remove(slots[1]).map(|e| e.client_addr.port()), Some(2));
        // Removing twice (a registration dropped once only, but still) changes nothing.
        assert!(open.remove(slots[1]).is_none());
        assert_eq!((open.len, ports(&open)), (2, vec![1, 3]));

        let reused = open.insert(entry(4));
        assert_eq!(reused, slots[1]);
        assert_eq!(
            open.slots.len(),
            3,
            "a vacant slot is used before the slots grow"
        );
        if let Some(e) = open.get_mut(reused) {
            e.client_addr.set_port(5);
        }
        assert_eq!((open.len, ports(&open)), (3, vec![1, 3, 5]));
        assert!(open.get_mut(99).is_none());
    }
}
