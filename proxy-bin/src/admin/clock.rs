//! When an admin connection must be closed: the header-read and idle timeouts, and eviction
//! at the connection cap.
//!
//! hyper parses the requests; this clock never looks at bytes. It only learns, from
//! [`super::watched::Watched`], that bytes were read or written, and from that knows whether the
//! connection owes a request head or sits idle after an answer. [`Phase`] is the sans-IO
//! machine; [`Clock`] shares it between the connection's I/O, its task (which asks for the
//! deadline and obeys, [`Clock::expired`]) and the accept loop (which evicts).
//!
//! hyper's own `header_read_timeout` is not used: in hyper 1.x it also runs while a kept-alive
//! connection waits for its next request, so the idle timeout could be no longer than the
//! header timeout.

use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::{Duration, Instant, sleep_until};
use tracing::trace;

/// The two timeouts, from `[admin]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timeouts {
    pub(super) header_read: Duration,
    pub(super) idle: Duration,
}

/// Why the proxy closed an admin connection; a label of
/// `sluice_admin_connections_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    HeaderTimeout,
    IdleTimeout,
    Evicted,
}

impl Expiry {
    pub(super) const ALL: [Expiry; 3] = [Self::HeaderTimeout, Self::IdleTimeout, Self::Evicted];

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::Evicted => "evicted",
        }
    }
}

/// Where one admin connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// A request head is owed, in full, within the header-read timeout of `since`: when the
    /// connection was accepted, or when its first byte after an answer arrived. Later bytes do
    /// not move `since`, so sending a byte at a time gains nothing.
    Head { since: Instant },
    /// An answer was written at `since` (its last bytes so far) and nothing has been read since.
    /// A client that does not read its answer stays here too: writes stop moving `since`.
    Idle { since: Instant },
    /// Closed to make room at the cap; nothing moves it on.
    Evicted,
}

// === impl Phase ===

impl Phase {
    pub(super) fn accepted(now: Instant) -> Self {
        Self::Head { since: now }
    }

    /// Bytes arrived: an idle connection starts owing a head.
    fn on_read(self, now: Instant) -> Self {
        match self {
            Self::Idle { .. } => Self::Head { since: now },
            head_or_evicted => head_or_evicted,
        }
    }

    /// Bytes of an answer left: the connection is idle from now.
    fn on_write(self, now: Instant) -> Self {
        match self {
            Self::Head { .. } | Self::Idle { .. } => Self::Idle { since: now },
            Self::Evicted => Self::Evicted,
        }
    }

    /// When the connection is closed if nothing changes, and why; `None` for an evicted one,
    /// which is closed at once.
    fn deadline(self, timeouts: Timeouts) -> Option<(Instant, Expiry)> {
        match self {
            Self::Head { since } => Some((since + timeouts.header_read, Expiry::HeaderTimeout)),
            Self::Idle { since } => Some((since + timeouts.idle, Expiry::IdleTimeout)),
            Self::Evicted => None,
        }
    }

    /// When the connection was last active, for choosing whom to evict; `None` once evicted.
    fn since(self) -> Option<Instant> {
        match self {
            Self::Head { since } | Self::Idle { since } => Some(since),
            Self::Evicted => None,
        }
    }
}

/// One connection's [`Phase`], shared by its I/O, its task and the accept loop.
///
/// Behind an `Arc` with a lock because hyper owns the I/O while the task waits on the deadline;
/// the lock is held for a copy or an assignment, never across an `.await`.
#[derive(Debug)]
pub(super) struct Clock {
    timeouts: Timeouts,
    phase: parking_lot::Mutex<Phase>,
    /// Wakes [`Clock::expired`] when the deadline moves earlier.
    earlier: Notify,
}

// === impl Clock ===

impl Clock {
    pub(super) fn new(timeouts: Timeouts, now: Instant) -> Arc<Self> {
        Arc::new(Self {
            timeouts,
            phase: parking_lot::Mutex::new(Phase::accepted(now)),
            earlier: Notify::new(),
        })
    }

    pub(super) fn on_read(&self) {
        self.apply(|phase| phase.on_read(Instant::now()));
    }

    pub(super) fn on_write(&self) {
        self.apply(|phase| phase.on_write(Instant::now()));
    }

    /// Closes the connection to make room for a new one.
    pub(super) fn evict(&self) {
        self.apply(|_| Phase::Evicted);
    }

    pub(super) fn since(&self) -> Option<Instant> {
        self.phase.lock().since()
    }

    fn apply(&self, transition: impl FnOnce(Phase) -> Phase) {
        let (before, after) = {
            let mut phase = self.phase.lock();
            let before = *phase;
            *phase = transition(before);
            (before, *phase)
        };
        if before == after {
            return;
        }
        trace!(?before, ?after, "admin connection phase");
        let at = |phase: Phase| phase.deadline(self.timeouts).map(|(at, _)| at);
        // `None` (evicted) is "now", the earliest of all.
        let moved_earlier = match (at(before), at(after)) {
            (Some(before), Some(after)) => after < before,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if moved_earlier {
            // A stored permit: a waiter that has not started waiting yet still wakes.
            self.earlier.notify_one();
        }
    }

    /// Completes when the connection must be closed, with the reason. Cancel-safe: it holds no
    /// state between polls but the phase, which lives in `self`.
    pub(super) async fn expired(&self) -> Expiry {
        loop {
            let phase = *self.phase.lock();
            let Some((deadline, expiry)) = phase.deadline(self.timeouts) else {
                return Expiry::Evicted;
            };
            tokio::select! {
                () = sleep_until(deadline) => {
                    // The phase may have moved on while we slept; only an unchanged one expires.
                    if *self.phase.lock() == phase {
                        return expiry;
                    }
                }
                () = self.earlier.notified() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        header_read: Duration::from_secs(5),
        idle: Duration::from_secs(60),
    };

    #[test]
    fn a_head_is_owed_from_acceptance_and_trickled_bytes_do_not_extend_it() {
        let t0 = Instant::now();
        let phase = Phase::accepted(t0).on_read(t0 + Duration::from_secs(4));
        assert_eq!(
            phase.deadline(TIMEOUTS),
            Some((t0 + Duration::from_secs(5), Expiry::HeaderTimeout))
        );
    }

    #[test]
    fn an_answer_makes_the_connection_idle_and_the_next_byte_starts_a_new_head() {
        let t0 = Instant::now();
        let idle = Phase::accepted(t0).on_write(t0 + Duration::from_secs(1));
        assert_eq!(
            idle.deadline(TIMEOUTS),
            Some((t0 + Duration::from_secs(61), Expiry::IdleTimeout))
        );
        let head = idle.on_read(t0 + Duration::from_secs(30));
        assert_eq!(
            head.deadline(TIMEOUTS),
            Some((t0 + Duration::from_secs(35), Expiry::HeaderTimeout))
        );
    }

    #[test]
    fn eviction_is_final() {
        let t0 = Instant::now();
        let evicted = Phase::Evicted.on_read(t0).on_write(t0);
        assert_eq!(evicted, Phase::Evicted);
        assert_eq!(evicted.deadline(TIMEOUTS), None);
        assert_eq!(evicted.since(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_follows_the_phase_and_wakes_for_an_earlier_deadline() {
        let clock = Clock::new(TIMEOUTS, Instant::now());
        clock.on_write();
        let waiting = tokio::spawn({
            let clock = clock.clone();
            async move { clock.expired().await }
        });
        // Idle for 10 s of the 60, then a byte: the head deadline (5 s) is earlier.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let read_at = Instant::now();
        clock.on_read();
        assert_eq!(waiting.await.unwrap(), Expiry::HeaderTimeout);
        assert_eq!(Instant::now(), read_at + TIMEOUTS.header_read);

        let clock = Clock::new(TIMEOUTS, Instant::now());
        let waiting = tokio::spawn({
            let clock = clock.clone();
            async move { clock.expired().await }
        });
        tokio::task::yield_now().await;
        clock.evict();
        assert_eq!(waiting.await.unwrap(), Expiry::Evicted);
    }
}
