//! How operations the process runs now and then ended, counted for `/metrics`: certificate and
//! users-file reloads, upgrades. Written where the operation ends, read by scrapes.

use std::sync::atomic::{AtomicU64, Ordering};

/// How one operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It did what it was asked.
    Succeeded,
    /// It was tried and failed; the previous state stays.
    Failed,
    /// It was not tried (an upgrade already under way).
    Refused,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 3] = [Self::Succeeded, Self::Failed, Self::Refused];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Succeeded => 0,
            Self::Failed => 1,
            Self::Refused => 2,
        }
    }
}

/// A count per [`Outcome`].
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    counts: [AtomicU64; 3],
}

impl Outcomes {
    pub(crate) fn record(&self, outcome: Outcome) {
        self.counts[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self, outcome: Outcome) -> u64 {
        self.counts[outcome.index()].load(Ordering::Relaxed)
    }
}
