//! A rate measured as Kafka brokers measure quotas: a ring of `samples` consecutive windows,
//! the rate being what the ring holds over the time it covers; and the throttle time a broker
//! derives from it (`ClientQuotaManager`): how long the entity must stay silent for its rate to
//! come back to the limit.

use std::time::Duration;

use tokio::time::Instant;

/// One measured quantity (bytes, or requests) of one entity.
#[derive(Debug)]
pub(crate) struct RateWindow {
    /// What each window of the ring counted; `current` is being filled.
    counts: Box<[u64]>,
    current: usize,
    /// When the current window began.
    current_start: Instant,
    /// When measuring began: the ring covers no time before it.
    created: Instant,
}

impl RateWindow {
    pub(crate) fn new(samples: usize, now: Instant) -> Self {
        Self {
            counts: vec![0; samples.max(2)].into_boxed_slice(),
            current: 0,
            current_start: now,
            created: now,
        }
    }

    /// Moves the ring on to the window `now` falls in, clearing those it passes.
    fn advance(&mut self, now: Instant, window: Duration) {
        let behind = now.saturating_duration_since(self.current_start);
        if behind < window {
            return;
        }
        let steps = behind.as_nanos() / window.as_nanos().max(1);
        let samples = self.counts.len();
        if steps >= samples as u128 {
            // Silent for the whole ring: nothing of it is left.
            self.counts.fill(0);
            self.current = 0;
            self.created = now;
            self.current_start = now;
            return;
        }
        // Bounded: fewer steps than samples.
        for _ in 0..steps {
            self.current = (self.current + 1) % samples;
            self.counts[self.current] = 0;
        }
        let steps = u32::try_from(steps).unwrap_or(u32::MAX);
        self.current_start += window * steps;
    }

    /// Counts `amount` at `now`.
    pub(crate) fn record(&mut self, amount: u64, now: Instant, window: Duration) {
        self.advance(now, window);
        self.counts[self.current] = self.counts[self.current].saturating_add(amount);
    }

    /// How long the entity must stay silent, from `now`, for its rate over the ring to come
    /// back to `limit` per second: `(rate - limit) / limit × elapsed`, as a broker computes it
    /// (zero within the limit), at most the ring's length.
    pub(crate) fn throttle(&mut self, limit: u64, now: Instant, window: Duration) -> Duration {
        self.advance(now, window);
        let total: u64 = self.counts.iter().sum();
        let samples = u32::try_from(self.counts.len()).unwrap_or(u32::MAX);
        let ring_start = self
            .current_start
            .checked_sub(window * (samples - 1))
            .unwrap_or(self.created)
            .max(self.created);
        // At least one window: a first burst is judged over a window, not over nanoseconds.
        let elapsed = now.saturating_duration_since(ring_start).max(window);
        let allowed = limit.max(1) as f64 * elapsed.as_secs_f64();
        if (total as f64) <= allowed {
            return Duration::ZERO;
        }
        let silent = total as f64 / limit.max(1) as f64 - elapsed.as_secs_f64();
        Duration::from_secs_f64(silent.max(0.0)).min(window * samples)
    }

    /// Whether the ring holds nothing, or will hold nothing once moved on to `now`: the state
    /// can be dropped.
    pub(crate) fn is_idle(&self, now: Instant, window: Duration) -> bool {
        let samples = u32::try_from(self.counts.len()).unwrap_or(u32::MAX);
        self.counts.iter().all(|count| *count == 0)
            || now.saturating_duration_since(self.current_start) >= window * samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(1);

    #[test]
    fn below_the_limit_there_is_no_throttle_and_at_it_no_more_than_one_send_apart() {
        let start = Instant::now();
        let tick = Duration::from_millis(100);
        let mut below = RateWindow::new(11, start);
        let mut at = RateWindow::new(11, start);
        for n in 0..300 {
            let now = start + tick * n;
            // 80 % of 1 000/s, and exactly 1 000/s, in sends every 100 ms.
            below.record(80, now, WINDOW);
            assert_eq!(below.throttle(1000, now, WINDOW), Duration::ZERO, "{n}");
            at.record(100, now, WINDOW);
            assert!(at.throttle(1000, now, WINDOW) <= tick, "{n}");
        }
    }

    #[test]
    fn a_burst_is_throttled_until_the_rate_is_back_at_the_limit() {
        let start = Instant::now();
        let mut rate = RateWindow::new(11, start);
        // 5 000 bytes at once against 1 000/s: judged over one window, 4 s of silence.
        rate.record(5000, start, WINDOW);
        let throttle = rate.throttle(1000, start, WINDOW);
        assert_eq!(throttle, Duration::from_secs(4));
        // After that silence, the rate over the ring is the limit: no throttle.
        let later = start + WINDOW + throttle;
        assert_eq!(rate.throttle(1000, later, WINDOW), Duration::ZERO);
    }

    #[test]
    fn a_steady_overload_is_throttled_by_the_excess_over_the_ring() {
        let start = Instant::now();
        let mut rate = RateWindow::new(11, start);
        // 2 000/s for 11 s against 1 000/s.
        for second in 0..=10 {
            rate.record(2000, start + WINDOW * second, WINDOW);
        }
        let now = start + WINDOW * 10 + Duration::from_millis(500);
        let throttle = rate.throttle(1000, now, WINDOW);
        // 22 000 bytes over 10.5 s: 22 s of sending at the limit, 11.5 s of silence; capped
        // at the ring's 11 s.
        assert_eq!(throttle, Duration::from_secs(11));
    }

    #[test]
    fn old_windows_fall_out_of_the_ring() {
        let start = Instant::now();
        let mut rate = RateWindow::new(3, start);
        rate.record(10_000, start, WINDOW);
        assert!(rate.throttle(1000, start, WINDOW) > Duration::ZERO);
        // Three windows later the burst has left the ring.
        let later = start + WINDOW * 3;
        assert_eq!(rate.throttle(1000, later, WINDOW), Duration::ZERO);
        assert!(rate.is_idle(later, WINDOW));
        rate.record(10, later, WINDOW);
        assert!(!rate.is_idle(later, WINDOW));
    }

    #[test]
    fn a_partly_filled_ring_is_judged_over_the_time_it_covers() {
        let start = Instant::now();
        let mut rate = RateWindow::new(11, start);
        // 1 500 bytes in each of the first 4 windows: 6 000 over 4 s against 1 000/s.
        for second in 0..4 {
            rate.record(1500, start + WINDOW * second, WINDOW);
        }
        let now = start + WINDOW * 4;
        assert_eq!(rate.throttle(1000, now, WINDOW), Duration::from_secs(2));
    }
}
