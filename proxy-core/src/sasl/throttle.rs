//! Slowing down repeated authentication failures, as Kafka brokers do with
//! `connection.failed.authentication.delay.ms`: a failing connection's answer and close are
//! held back, by a delay that doubles with each failure of the same user from the same client
//! (IPv6 clients by their /64) up to a ceiling. Successes are never delayed, so a stale client
//! behind a shared address (NAT, a load balancer) cannot lock out anyone who knows their
//! password; a (client, user) that stops failing is forgotten once the window passes.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Keys tracked at most; past this, expired entries are dropped, and a new key that still
/// finds no room gets the base delay without being tracked.
const MAX_TRACKED: usize = 65_536;

/// Per-(client, user) failure counts and the delays they earn.
#[derive(Debug)]
pub struct FailureThrottle {
    base: Duration,
    max: Duration,
    window: Duration,
    /// Keys are a keyed hash of (client prefix, user name): a fixed size per entry whatever the
    /// names, and not predictable from outside.
    hasher: std::hash::RandomState,
    failures: Mutex<HashMap<u64, Failures>>,
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
            hasher: std::hash::RandomState::new(),
            failures: Mutex::default(),
        }
    }

    /// Counts a failure of `user` from `ip`; returns how long to hold back this connection's
    /// answer and close.
    pub fn record_failure(&self, ip: IpAddr, user: &str) -> Duration {
        let key = self.key(ip, user);
        let now = Instant::now();
        let mut failures = self.failures.lock();
        if failures.len() >= MAX_TRACKED && !failures.contains_key(&key) {
            let window = self.window;
            failures.retain(|_, f| now.duration_since(f.last) < window);
            if failures.len() >= MAX_TRACKED {
                return self.base;
            }
        }
        let entry = failures.entry(key).or_insert(Failures {
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

    /// Recent failures of `user` from `ip` (zero once the window has passed).
    #[cfg(test)]
    fn failures(&self, ip: IpAddr, user: &str) -> u32 {
        let now = Instant::now();
        match self.failures.lock().get(&self.key(ip, user)) {
            Some(f) if now.duration_since(f.last) < self.window => f.count,
            _ => 0,
        }
    }

    /// Keys currently tracked.
    pub fn tracked(&self) -> usize {
        self.failures.lock().len()
    }

    fn key(&self, ip: IpAddr, user: &str) -> u64 {
        self.hasher.hash_one((client_prefix(ip), user))
    }

    fn penalty(&self, count: u32) -> Duration {
        if count == 0 {
            return Duration::ZERO;
        }
        let doublings = (count - 1).min(31);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

/// What identifies one client: an IPv4 address, or an IPv6 /64 (one host commonly holds a
/// whole /64, so a per-address key would give it 2^64 fresh starts). An IPv4-mapped IPv6
/// address counts as its IPv4 address.
pub fn client_prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    fn throttle() -> FailureThrottle {
        FailureThrottle::new(
            Duration::from_millis(100),
            Duration::from_secs(1),
            Duration::from_secs(60),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn delays_double_per_failure_up_to_the_ceiling_for_that_user_and_client_only() {
        let throttle = throttle();
        let delays: Vec<_> = (0..6)
            .map(|_| throttle.record_failure(A, "alice"))
            .collect();
        let ms: Vec<_> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(throttle.failures(A, "alice"), 6);
        // Another user from the same address, or the same user elsewhere, starts afresh.
        assert_eq!(throttle.failures(A, "bob"), 0);
        assert_eq!(throttle.failures(B, "alice"), 0);
        assert_eq!(
            throttle.record_failure(A, "bob"),
            Duration::from_millis(100)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_ipv6_client_is_its_64() {
        let throttle = throttle();
        let host = |low: u64| {
            IpAddr::V6(Ipv6Addr::from(
                (0x2001_0db8_0000_0001_u128 << 64) | u128::from(low),
            ))
        };
        throttle.record_failure(host(1), "alice");
        assert_eq!(
            throttle.record_failure(host(2), "alice"),
            Duration::from_millis(200)
        );
        let other_net = IpAddr::V6(Ipv6Addr::from(0x2001_0db8_0000_0002_u128 << 64));
        assert_eq!(throttle.failures(other_net, "alice"), 0);
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(client_prefix(mapped), A);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_forgotten_after_the_window() {
        let throttle = throttle();
        throttle.record_failure(A, "alice");
        throttle.record_failure(A, "alice");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(throttle.failures(A, "alice"), 0);
        assert_eq!(
            throttle.record_failure(A, "alice"),
            Duration::from_millis(100)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_table_drops_expired_entries_first() {
        let throttle = throttle();
        for i in 0..MAX_TRACKED {
            throttle.record_failure(A, &i.to_string());
        }
        assert_eq!(throttle.tracked(), MAX_TRACKED);
        // Still full of live entries: a newcomer gets the base delay, untracked.
        assert_eq!(throttle.record_failure(B, "x"), Duration::from_millis(100));
        assert_eq!(throttle.tracked(), MAX_TRACKED);
        tokio::time::advance(Duration::from_secs(61)).await;
        throttle.record_failure(B, "x");
        assert_eq!(throttle.tracked(), 1);
    }
}
