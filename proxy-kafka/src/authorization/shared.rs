//! The rules a listener decides by, replaced whole when their file is reloaded: sessions
//! already open decide their next request by the new rules.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use super::Acl;

/// A listener's rules, swapped on reload.
#[derive(Debug, Default)]
pub struct SharedAcl {
    current: RwLock<Arc<Acl>>,
    /// Counts replacements: a session's remembered decisions are only good for one.
    generation: AtomicU64,
}

impl SharedAcl {
    /// Starts with `acl`.
    pub fn new(acl: Acl) -> Self {
        Self {
            current: RwLock::new(Arc::new(acl)),
            generation: AtomicU64::new(0),
        }
    }

    /// The rules now.
    pub fn load(&self) -> Arc<Acl> {
        self.current.read().clone()
    }

    /// Which rules are current: changes with every [`replace`](Self::replace).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Makes `acl` the rules for every request from now on.
    pub fn replace(&self, acl: Acl) {
        *self.current.write() = Arc::new(acl);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}
