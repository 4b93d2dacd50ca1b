//! Counts of closed sessions by reason: what operators alert on (rejected PROXY headers,
//! unreachable backends) and what tests assert on.
//!
//! Updated once per session, never on the forwarding path, so a lock is fine here.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use proxy_core::close::CloseReason;

/// Closed sessions per [`CloseReason::label`].
#[derive(Debug, Clone, Default)]
pub struct CloseCounts {
    by_label: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl CloseCounts {
    pub(crate) fn count(&self, reason: &CloseReason) {
        *self.by_label.lock().entry(reason.label()).or_default() += 1;
    }

    /// How many sessions closed with `label`.
    pub fn get(&self, label: &str) -> u64 {
        self.by_label.lock().get(label).copied().unwrap_or(0)
    }

    /// Every label seen so far with its count.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.by_label.lock().clone()
    }
}
