//! Per-tenant counters: requests, bytes from clients and bytes to them. A tenant has a label of
//! its own only when named in the stage's `tenants`; the rest count together as `other`, so the
//! label's values are bounded by config, not by traffic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The label of tenants not named in `tenants`.
pub const OTHER_TENANTS: &str = "other";

#[derive(Debug, Default)]
struct Slot {
    requests: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// One `tenant` stage's counters.
#[derive(Debug, Default)]
pub struct TenantMetrics {
    named: HashMap<Box<str>, Slot>,
    other: Slot,
}

/// One tenant's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantCount {
    /// The tenant, or [`OTHER_TENANTS`].
    pub tenant: String,
    /// Requests its sessions sent.
    pub requests: u64,
    /// Bytes of those requests.
    pub bytes_in: u64,
    /// Bytes of the answers they got.
    pub bytes_out: u64,
}

impl TenantMetrics {
    /// Counters for the tenants in `named`, and one for all others.
    pub fn new<'a>(named: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            named: named
                .into_iter()
                .map(|tenant| (Box::from(tenant), Slot::default()))
                .collect(),
            other: Slot::default(),
        }
    }

    fn slot(&self, tenant: &str) -> &Slot {
        self.named.get(tenant).unwrap_or(&self.other)
    }

    pub(crate) fn request(&self, tenant: &str, bytes: usize) {
        let slot = self.slot(tenant);
        slot.requests.fetch_add(1, Ordering::Relaxed);
        slot.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn response(&self, tenant: &str, bytes: usize) {
        self.slot(tenant)
            .bytes_out
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Every named tenant (sorted), then `other`.
    pub fn snapshot(&self) -> Vec<TenantCount> {
        let count = |tenant: &str, slot: &Slot| TenantCount {
            tenant: tenant.to_owned(),
            requests: slot.requests.load(Ordering::Relaxed),
            bytes_in: slot.bytes_in.load(Ordering::Relaxed),
            bytes_out: slot.bytes_out.load(Ordering::Relaxed),
        };
        let mut counts: Vec<TenantCount> = self
            .named
            .iter()
            .map(|(tenant, slot)| count(tenant, slot))
            .collect();
        counts.sort_by(|a, b| a.tenant.cmp(&b.tenant));
        counts.push(count(OTHER_TENANTS, &self.other));
        counts
    }
}
