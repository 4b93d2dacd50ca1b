//! A cap on sessions still authenticating, per listener and per client (IPv6 by /64): an
//! anonymous client cannot hold more than its share of the sessions that cost the proxy work
//! before anyone is known.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use super::throttle::client_prefix;

/// Sessions authenticating at once on one listener, and from one client.
#[derive(Debug)]
pub struct PendingLimit {
    max: usize,
    max_per_source: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_source: HashMap<IpAddr, usize>,
}

/// Which cap refused a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingRefused {
    /// The listener has `max` sessions authenticating.
    Listener,
    /// The client has `max_per_source` sessions authenticating.
    Source,
}

impl fmt::Display for PendingRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Listener => "too many sessions authenticating on this listener",
            Self::Source => "too many sessions authenticating from this client",
        })
    }
}

/// A session counted as authenticating until this is dropped.
#[derive(Debug)]
pub struct PendingGuard {
    limit: Arc<PendingLimit>,
    source: IpAddr,
}

impl PendingLimit {
    /// At most `max` sessions authenticating, `max_per_source` of them from one client.
    pub fn new(max: usize, max_per_source: usize) -> Self {
        Self {
            max,
            max_per_source,
            counts: Mutex::default(),
        }
    }

    /// Counts a session from `ip` as authenticating, unless a cap is reached.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Result<PendingGuard, PendingRefused> {
        let source = client_prefix(ip);
        let mut counts = self.counts.lock();
        let refused = if counts.total >= self.max {
            Some(PendingRefused::Listener)
        } else if counts.by_source.get(&source).copied().unwrap_or(0) >= self.max_per_source {
            Some(PendingRefused::Source)
        } else {
            None
        };
        if let Some(refused) = refused {
            return Err(refused);
        }
        counts.total += 1;
        *counts.by_source.entry(source).or_default() += 1;
        Ok(PendingGuard {
            limit: Arc::clone(self),
            source,
        })
    }

    /// Sessions authenticating now.
    #[cfg(test)]
    fn current(&self) -> usize {
        self.counts.lock().total
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let mut counts = self.limit.counts.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.by_source.get_mut(&self.source) {
            *count -= 1;
            if *count == 0 {
                counts.by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn caps_per_source_and_per_listener_and_frees_on_drop() {
        let limit = Arc::new(PendingLimit::new(3, 2));
        let a1 = limit.enter(A).unwrap();
        let _a2 = limit.enter(A).unwrap();
        assert_eq!(limit.enter(A).unwrap_err(), PendingRefused::Source);
        let _b1 = limit.enter(B).unwrap();
        assert_eq!(limit.enter(B).unwrap_err(), PendingRefused::Listener);
        drop(a1);
        assert_eq!(limit.current(), 2);
        let _a3 = limit.enter(A).unwrap();
        assert_eq!(limit.counts.lock().by_source.len(), 2);
    }
}
