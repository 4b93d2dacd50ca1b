//! The admin connections open now, as the accept loop sees them, and the cap on them.
//!
//! At the cap the accept loop keeps accepting and closes the least recently active connection
//! to make room. The alternatives fail the one client that matters: the kubelet. Pausing
//! `accept` (as the proxy's listeners do) leaves its probe in the backlog behind whoever holds
//! the connections, and refusing new connections (a 503, or a close) answers its probe with a
//! failure; either way a client that merely opens connections gets the pod restarted. A probe
//! sends its request as soon as it connects and is answered at once, so it is always among the
//! most recently active connections and is the last to be evicted; what is evicted is a
//! connection that has been silent, or idle after its answer, the longest.
//!
//! For a moment after an eviction, `max + 1` connections are open: the evicted one closes when
//! its task next runs.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::clock::Clock;
use super::state::AdminState;

#[derive(Debug)]
pub(super) struct OpenConnections {
    /// `[admin] max_connections`.
    max: usize,
    /// In accept order. `Weak` because each connection's task owns its clock: once the task has
    /// ended, its entry is dead and is swept.
    open: Vec<Weak<Clock>>,
}

// === impl OpenConnections ===

impl OpenConnections {
    pub(super) fn new(max: usize) -> Self {
        Self {
            max,
            open: Vec::new(),
        }
    }

    /// Counts in a newly accepted connection; at the cap, evicts the least recently active one
    /// first (the earliest accepted among equals).
    pub(super) fn admit(&mut self, clock: &Arc<Clock>) {
        self.open.retain(|open| open.strong_count() > 0);
        if self.open.len() >= self.max {
            let least_recent = self
                .open
                .iter()
                .enumerate()
                .filter_map(|(i, open)| Some((i, open.upgrade()?.since()?)))
                .min_by_key(|&(_, since)| since);
            if let Some((i, _)) = least_recent
                && let Some(evicted) = self.open.remove(i).upgrade()
            {
                evicted.evict();
            }
        }
        self.open.push(Arc::downgrade(clock));
    }
}

/// Counts a connection in `sluice_admin_connections_open` for as long as it is held.
#[derive(Debug)]
pub(super) struct Counted(Arc<AdminState>);

impl Counted {
    pub(super) fn new(state: Arc<AdminState>) -> Self {
        state.admin_connections.open.fetch_add(1, Ordering::Relaxed);
        Self(state)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0
            .admin_connections
            .open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::{Duration, Instant};

    use super::super::clock::Timeouts;
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        header_read: Duration::from_secs(5),
        idle: Duration::from_secs(60),
    };

    fn evicted(clock: &Clock) -> bool {
        clock.since().is_none()
    }

    #[test]
    fn at_the_cap_the_least_recently_active_connection_makes_room() {
        let now = Instant::now();
        let ago = |secs| now.checked_sub(Duration::from_secs(secs)).unwrap();
        let mut open = OpenConnections::new(2);
        let (a, b, c) = (
            Clock::new(TIMEOUTS, ago(30)),
            Clock::new(TIMEOUTS, ago(20)),
            Clock::new(TIMEOUTS, ago(10)),
        );
        open.admit(&a);
        open.admit(&b);
        assert!(!evicted(&a) && !evicted(&b));
        open.admit(&c);
        assert!(evicted(&a), "the oldest silent connection goes first");
        // b answers a request: now c is the least recently active.
        b.on_write();
        let d = Clock::new(TIMEOUTS, now);
        open.admit(&d);
        assert!(evicted(&c) && !evicted(&b));
    }

    #[test]
    fn connections_that_ended_free_their_place() {
        let mut open = OpenConnections::new(1);
        let first = Clock::new(TIMEOUTS, Instant::now());
        open.admit(&first);
        drop(first);
        let second = Clock::new(TIMEOUTS, Instant::now());
        open.admit(&second);
        let third = Clock::new(TIMEOUTS, Instant::now());
        assert!(!evicted(&second));
        open.admit(&third);
        assert!(evicted(&second) && !evicted(&third));
    }
}
