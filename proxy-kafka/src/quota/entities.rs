//! The entities one `quota` stage measures, shared by its listener's sessions, in bounded
//! memory: an entity idle for a whole ring is dropped, at most `max_entities` are tracked, and
//! beyond that new ones share one overflow entity (so that inventing client ids cannot escape
//! a limit). Keys longer than [`MAX_KEY_LEN`] are kept as a prefix and a keyed hash.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::window::RateWindow;

/// Longer keys (a client id may take 32 KiB) are stored shortened.
pub(crate) const MAX_KEY_LEN: usize = 256;

/// What is measured of one entity: one ring per configured limit.
#[derive(Debug)]
pub(crate) struct Entity {
    pub(crate) produce: Option<RateWindow>,
    pub(crate) fetch: Option<RateWindow>,
    pub(crate) requests: Option<RateWindow>,
}

/// Which limits are configured, so entities only hold the rings they need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    pub(crate) produce: bool,
    pub(crate) fetch: bool,
    pub(crate) requests: bool,
    pub(crate) samples: usize,
    pub(crate) window: Duration,
}

impl Entity {
    fn new(measured: Measured, now: Instant) -> Self {
        let ring = |on: bool| on.then(|| RateWindow::new(measured.samples, now));
        Self {
            produce: ring(measured.produce),
            fetch: ring(measured.fetch),
            requests: ring(measured.requests),
        }
    }

    fn is_idle(&self, now: Instant, window: Duration) -> bool {
        [&self.produce, &self.fetch, &self.requests]
            .into_iter()
            .flatten()
            .all(|ring| ring.is_idle(now, window))
    }
}

/// The entities of one stage.
#[derive(Debug)]
pub(crate) struct EntityTable {
    measured: Measured,
    map: HashMap<Arc<str>, Entity>,
    max_entities: usize,
    /// Shared by every entity the table had no room for.
    overflow: Entity,
    /// New entities that went to the overflow.
    refused: u64,
    last_sweep: Instant,
    hasher: RandomState,
}

impl EntityTable {
    pub(crate) fn new(measured: Measured, max_entities: usize, now: Instant) -> Self {
        Self {
            measured,
            map: HashMap::new(),
            max_entities,
            overflow: Entity::new(measured, now),
            refused: 0,
            last_sweep: now,
            hasher: RandomState::new(),
        }
    }

    /// The key stored for `name`: itself, or for a long one a prefix and a keyed hash of it.
    pub(crate) fn key(&self, name: &str) -> Arc<str> {
        if name.len() <= MAX_KEY_LEN {
            return Arc::from(name);
        }
        let mut cut = 64;
        // Bounded: at most three steps back to a character boundary.
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        Arc::from(format!(
            "{}…#{:016x}",
            &name[..cut],
            self.hasher.hash_one(name)
        ))
    }

    /// The entity stored under `key` (see [`Self::key`]), made if there is room, else the
    /// overflow entity.
    pub(crate) fn entity(&mut self, key: &Arc<str>, now: Instant) -> &mut Entity {
        if !self.map.contains_key(key.as_ref()) && !self.make_room(now) {
            self.refused += 1;
            return &mut self.overflow;
        }
        let measured = self.measured;
        self.map
            .entry(key.clone())
            .or_insert_with(|| Entity::new(measured, now))
    }

    /// Whether a new entity fits: at the cap, idle entities are swept out, at most once per
    /// window (so a flood of new keys costs one sweep per window, not one per key).
    fn make_room(&mut self, now: Instant) -> bool {
        if self.map.len() < self.max_entities {
            return true;
        }
        let window = self.measured.window;
        if now.saturating_duration_since(self.last_sweep) < window {
            return false;
        }
        self.last_sweep = now;
        self.map.retain(|_, entity| !entity.is_idle(now, window));
        self.map.len() < self.max_entities
    }

    /// Entities tracked now.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// New entities that found no room since start.
    pub(crate) fn refused(&self) -> u64 {
        self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEASURED: Measured = Measured {
        produce: true,
        fetch: false,
        requests: true,
        samples: 11,
        window: Duration::from_secs(1),
    };

    #[test]
    fn a_hundred_thousand_client_ids_stay_within_the_cap_and_share_the_overflow() {
        let start = Instant::now();
        let mut table = EntityTable::new(MEASURED, 1000, start);
        for n in 0..100_000u32 {
            let key = table.key(&format!("client-{n}"));
            let entity = table.entity(&key, start);
            if let Some(ring) = entity.produce.as_mut() {
                ring.record(100, start, MEASURED.window);
            }
        }
        assert_eq!(table.len(), 1000);
        assert_eq!(table.refused(), 99_000);
        // The overflow entity measured all of those: a flood of new ids is throttled together.
        let throttle =
            table
                .overflow
                .produce
                .as_mut()
                .unwrap()
                .throttle(1_000_000, start, MEASURED.window);
        assert!(throttle > Duration::from_secs(8), "{throttle:?}");

        // Once the ring has passed, idle entities make room for new ones.
        let later = start + MEASURED.window * 11;
        let key = table.key("newcomer");
        table.entity(&key, later);
        assert_eq!(table.len(), 1, "the idle entities were swept");
        assert_eq!(table.refused(), 99_000);
    }

    #[test]
    fn a_full_table_makes_room_once_its_entities_are_idle() {
        let start = Instant::now();
        let mut table = EntityTable::new(MEASURED, 2, start);
        for name in ["a", "b"] {
            let key = table.key(name);
            table
                .entity(&key, start)
                .produce
                .as_mut()
                .unwrap()
                .record(1, start, MEASURED.window);
        }
        let key = table.key("c");
        table.entity(&key, start + Duration::from_secs(2));
        assert_eq!(table.refused(), 1, "a and b are busy: no room");
        // Once a and b have been silent for a whole ring, the next new entity sweeps them out.
        let key = table.key("d");
        table.entity(&key, start + Duration::from_secs(12));
        assert_eq!(table.len(), 1, "swept: a and b idle, d made");
        let key = table.key("e");
        table.entity(&key, start + Duration::from_secs(12));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn long_keys_are_stored_short_and_stay_distinct() {
        let table = EntityTable::new(MEASURED, 10, Instant::now());
        let long_a = "x".repeat(30_000) + "a";
        let long_b = "x".repeat(30_000) + "b";
        let (a, b) = (table.key(&long_a), table.key(&long_b));
        assert!(a.len() <= MAX_KEY_LEN && b.len() <= MAX_KEY_LEN);
        assert_ne!(a, b);
        assert_eq!(table.key(&long_a), a, "the same name, the same key");
        assert_eq!(&*table.key("short"), "short");
        // A multi-byte character across the cut is not split.
        let accents = "é".repeat(200);
        assert!(table.key(&accents).starts_with('é'));
    }
}
