//! What one `quota` stage measured and throttled, for `/metrics`: bytes and requests counted
//! against its limits and the throttle times it imposed (a histogram per quota), per entity for
//! the entities named in its `metrics_entities`, and for all others together (`other`), so label
//! cardinality is bounded by config, never by traffic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the throttle-time histogram's buckets, in seconds.
pub const THROTTLE_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0];

/// The label of entities not named in `metrics_entities`.
pub const OTHER_ENTITIES: &str = "other";

/// Which limit a measurement or a throttle belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// `produce_bytes_per_second`: Produce request bytes.
    Produce,
    /// `fetch_bytes_per_second`: Fetch response bytes.
    Fetch,
    /// `requests_per_second`: requests of every API.
    Request,
}

impl QuotaKind {
    /// Every kind, in the order of [`EntitySnapshot::throttles`].
    pub const ALL: [Self; 3] = [Self::Produce, Self::Fetch, Self::Request];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Produce => "produce",
            Self::Fetch => "fetch",
            Self::Request => "request",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Produce => 0,
            Self::Fetch => 1,
            Self::Request => 2,
        }
    }
}

#[derive(Debug, Default)]
struct Histogram {
    /// Each slot counts its own bucket; cumulative counts are computed when read.
    buckets: [AtomicU64; THROTTLE_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

#[derive(Debug, Default)]
struct Slot {
    produce_bytes: AtomicU64,
    fetch_bytes: AtomicU64,
    requests: AtomicU64,
    throttles: [Histogram; 3],
}

/// One stage's counters, shared by its sessions.
#[derive(Debug)]
pub struct QuotaMetrics {
    per: &'static str,
    /// The entities named in config; their slots come first, `other` last.
    named: Box<[Box<str>]>,
    slots: Box<[Slot]>,
    tracked: AtomicU64,
    refused: AtomicU64,
}

/// A histogram as read.
#[derive(Debug, Clone, PartialEq)]
pub struct ThrottleSnapshot {
    /// Which limit imposed them.
    pub quota: QuotaKind,
    /// Cumulative counts per bucket of [`THROTTLE_BUCKETS`], then `+Inf`.
    pub cumulative: Vec<u64>,
    /// Sum of throttle times, in seconds.
    pub sum_seconds: f64,
    /// Throttles imposed.
    pub count: u64,
}

/// One entity's (or `other`'s) counters as read.
#[derive(Debug, Clone, PartialEq)]
pub struct EntitySnapshot {
    /// The entity as named in config, or [`OTHER_ENTITIES`].
    pub entity: String,
    /// Produce request bytes counted.
    pub produce_bytes: u64,
    /// Fetch response bytes counted.
    pub fetch_bytes: u64,
    /// Requests counted.
    pub requests: u64,
    /// Throttles per quota, in [`QuotaKind::ALL`] order.
    pub throttles: Vec<ThrottleSnapshot>,
}

/// A stage's counters as read.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaSnapshot {
    /// What an entity is (`principal`, `client_id`, ...).
    pub per: &'static str,
    /// Entities tracked now.
    pub tracked: u64,
    /// New entities that found the table full and share the overflow entity.
    pub refused: u64,
    /// Named entities, then `other`.
    pub entities: Vec<EntitySnapshot>,
}

impl QuotaMetrics {
    pub(crate) fn new(per: &'static str, named: &[&str]) -> Self {
        Self {
            per,
            named: named.iter().map(|name| Box::from(*name)).collect(),
            slots: (0..=named.len()).map(|_| Slot::default()).collect(),
            tracked: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The slot of an entity by its display name: its own if named in config, else `other`.
    pub(crate) fn slot_of(&self, entity: &str) -> usize {
        self.named
            .iter()
            .position(|name| **name == *entity)
            .unwrap_or(self.named.len())
    }

    fn slot(&self, slot: usize) -> &Slot {
        &self.slots[slot.min(self.slots.len() - 1)]
    }

    pub(crate) fn count(&self, slot: usize, quota: QuotaKind, amount: u64) {
        let slot = self.slot(slot);
        let counter = match quota {
            QuotaKind::Produce => &slot.produce_bytes,
            QuotaKind::Fetch => &slot.fetch_bytes,
            QuotaKind::Request => &slot.requests,
        };
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    pub(crate) fn throttled(&self, slot: usize, quota: QuotaKind, time: Duration) {
        let histogram = &self.slot(slot).throttles[quota.index()];
        let seconds = time.as_secs_f64();
        let bucket = THROTTLE_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(THROTTLE_BUCKETS.len());
        histogram.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        histogram.sum_micros.fetch_add(
            u64::try_from(time.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        histogram.count.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_table(&self, tracked: usize, refused: u64) {
        self.tracked.store(tracked as u64, Ordering::Relaxed);
        self.refused.store(refused, Ordering::Relaxed);
    }

    /// Every counter, relaxed.
    pub fn snapshot(&self) -> QuotaSnapshot {
        let names = self
            .named
            .iter()
            .map(|name| name.to_string())
            .chain([OTHER_ENTITIES.to_owned()]);
        let entities = names
            .zip(self.slots.iter())
            .map(|(entity, slot)| EntitySnapshot {
                entity,
                produce_bytes: slot.produce_bytes.load(Ordering::Relaxed),
                fetch_bytes: slot.fetch_bytes.load(Ordering::Relaxed),
                requests: slot.requests.load(Ordering::Relaxed),
                throttles: QuotaKind::ALL
                    .into_iter()
                    .map(|quota| {
                        let histogram = &slot.throttles[quota.index()];
                        let mut running = 0;
                        let cumulative = histogram
                            .buckets
                            .iter()
                            .map(|bucket| {
                                running += bucket.load(Ordering::Relaxed);
                                running
                            })
                            .collect();
                        ThrottleSnapshot {
                            quota,
                            cumulative,
                            sum_seconds: histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
                            count: histogram.count.load(Ordering::Relaxed),
                        }
                    })
                    .collect(),
            })
            .collect();
        QuotaSnapshot {
            per: self.per,
            tracked: self.tracked.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            entities,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_entities_have_their_own_counters_and_the_rest_share_other() {
        let metrics = QuotaMetrics::new("principal", &["alice"]);
        let alice = metrics.slot_of("alice");
        let bob = metrics.slot_of("bob");
        assert_ne!(alice, bob);
        assert_eq!(bob, metrics.slot_of("carol"));
        metrics.count(alice, QuotaKind::Produce, 100);
        metrics.count(bob, QuotaKind::Fetch, 7);
        metrics.throttled(alice, QuotaKind::Produce, Duration::from_millis(300));
        let snapshot = metrics.snapshot();
        assert_eq!(snapshot.entities.len(), 2);
        let (a, other) = (&snapshot.entities[0], &snapshot.entities[1]);
        assert_eq!((a.entity.as_str(), a.produce_bytes), ("alice", 100));
        assert_eq!((other.entity.as_str(), other.fetch_bytes), ("other", 7));
        let produce = &a.throttles[0];
        assert_eq!(produce.count, 1);
        // 0.3 s falls in the 0.5 s bucket and every one above it.
        assert_eq!(produce.cumulative[4], 0);
        assert_eq!(produce.cumulative[5], 1);
        assert_eq!(*produce.cumulative.last().unwrap(), 1);
        assert!((produce.sum_seconds - 0.3).abs() < 1e-9);
    }
}
