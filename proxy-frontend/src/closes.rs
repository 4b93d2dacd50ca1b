//! Counts of closed sessions by reason, in all and per listener: what operators alert on
//! (rejected PROXY headers, unreachable backends, failed TLS handshakes) and what tests assert
//! on.
//!
//! Updated once per session, never on the forwarding path, so a lock is fine here.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use proxy_core::close::CloseReason;

/// Closed sessions per [`CloseReason::label`], and per listener and label.
#[derive(Debug, Clone, Default)]
pub struct CloseCounts {
    inner: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    by_label: BTreeMap<&'static str, u64>,
    /// Listener names come from the config and labels from a closed set: bounded.
    by_listener: BTreeMap<(Arc<str>, &'static str), u64>,
}

impl CloseCounts {
    pub(crate) fn count(&self, listener: &Arc<str>, reason: &CloseReason) {
        let label = reason.label();
        let mut counts = self.inner.lock();
        *counts.by_label.entry(label).or_default() += 1;
        *counts
            .by_listener
            .entry((listener.clone(), label))
            .or_default() += 1;
    }

    /// How many sessions closed with `label`.
    pub fn get(&self, label: &str) -> u64 {
        self.inner.lock().by_label.get(label).copied().unwrap_or(0)
    }

    /// Every label seen so far with its count.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.inner.lock().by_label.clone()
    }

    /// Every (listener, label) pair seen so far with its count, in that order.
    pub fn by_listener(&self) -> BTreeMap<(Arc<str>, &'static str), u64> {
        self.inner.lock().by_listener.clone()
    }
}
