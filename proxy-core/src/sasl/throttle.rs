//! Slowing down repeated authentication failures from one client address: each failure within
//! a window doubles the delay before that address's next answers, up to a ceiling. A guessing
//! client waits longer for every guess; an address that stops failing is forgotten once the
//! window passes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Addresses tracked at most; past this, expired entries are dropped, and a new address that
/// still finds no room gets the base delay without being tracked.
const MAX_TRACKED: usize = 65_536;

/// Per-address failure counts and the delays they earn.
#[derive(Debug)]
pub struct FailureThrottle {
    base: Duration,
    max: Duration,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl FailureThrottle {
    /// Delays start at `base`, double with each failure up to `max`; failures older than
    /// `window` (counted from the latest) are forgotten.
    pub fn new(base: Duration, max: Duration, window: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            window,
            failures: Mutex::default(),
        }
    }

    /// The delay owed before answering `ip` now (zero when it has no recent failures).
    pub fn delay(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let failures = self.failures.lock();
        match failures.get(&ip) {
            Some(f) if now.duration_since(f.last) < self.window => self.penalty(f.count),
            _ => Duration::ZERO,
        }
    }

    /// Counts a failure from `ip`; returns the delay owed before answering it.
    pub fn record_failure(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut failures = self.failures.lock();
        if failures.len() >= MAX_TRACKED && !failures.contains_key(&ip) {
            let window = self.window;
            failures.retain(|_, f| now.duration_since(f.last) < window);
            if failures.len() >= MAX_TRACKED {
                return self.base;
            }
        }
        let entry = failures.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(entry.last) >= self.window {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        self.penalty(entry.count)
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.failures.lock().len()
    }

    fn penalty(&self, count: u32) -> Duration {
        if count == 0 {
            return Duration::ZERO;
        }
        let doublings = (count - 1).min(31);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    fn throttle() -> FailureThrottle {
        FailureThrottle::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
            Duration::from_secs(60),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn delays_double_per_failure_up_to_the_ceiling_and_only_for_that_address() {
        let throttle = throttle();
        assert_eq!(throttle.delay(A), Duration::ZERO);
        let delays: Vec<_> = (0..6).map(|_| throttle.record_failure(A)).collect();
        let ms: Vec<_> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(throttle.delay(A), Duration::from_secs(1));
        assert_eq!(throttle.delay(B), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_forgotten_after_the_window() {
        let throttle = throttle();
        throttle.record_failure(A);
        throttle.record_failure(A);
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(throttle.delay(A), Duration::ZERO);
        assert_eq!(throttle.record_failure(A), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_table_drops_expired_entries_first() {
        let throttle = throttle();
        for i in 0..MAX_TRACKED {
            let ip = IpAddr::V6(std::net::Ipv6Addr::from(u128::try_from(i).unwrap()));
            throttle.record_failure(ip);
        }
        assert_eq!(throttle.tracked(), MAX_TRACKED);
        // Still full of live entries: a newcomer gets the base delay, untracked.
        assert_eq!(throttle.record_failure(A), Duration::from_millis(100));
        assert_eq!(throttle.tracked(), MAX_TRACKED);
        tokio::time::advance(Duration::from_secs(61)).await;
        throttle.record_failure(A);
        assert_eq!(throttle.tracked(), 1);
    }
}
