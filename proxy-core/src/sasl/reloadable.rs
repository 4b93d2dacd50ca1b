//! The users a terminating listener authenticates against, replaced whole when the users file
//! changes. Each authentication takes the store current when it starts and keeps it to its
//! end; sessions already authenticated never look again.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use super::UserStore;

/// A [`UserStore`] that can be replaced while sessions use the previous one.
pub struct ReloadableUsers {
    /// Locked only to clone or swap the `Arc`, never across a derivation or an `.await`.
    current: Mutex<Arc<UserStore>>,
}

impl fmt::Debug for ReloadableUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableUsers")
            .field("users", &self.current.lock().len())
            .finish()
    }
}

// === impl ReloadableUsers ===

impl ReloadableUsers {
    /// Starts with `users`.
    pub fn new(users: UserStore) -> Self {
        Self {
            current: Mutex::new(Arc::new(users)),
        }
    }

    /// The users new authentications are checked against.
    pub fn current(&self) -> Arc<UserStore> {
        self.current.lock().clone()
    }

    /// Replaces the users for authentications that start from now on.
    pub fn replace(&self, users: UserStore) {
        let users = Arc::new(users);
        // The previous store is dropped outside the lock.
        let _previous = std::mem::replace(&mut *self.current.lock(), users);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::{ScramCredential, ScramHash};
    use std::num::NonZeroU32;

    #[test]
    fn a_replacement_is_seen_by_later_lookups_and_not_by_a_store_already_taken() {
        let iterations = NonZeroU32::new(4096).unwrap();
        let mut alice = UserStore::default();
        alice.add(
            "alice",
            ScramCredential::generate(ScramHash::Sha256, "wonderland", iterations).unwrap(),
        );
        let users = ReloadableUsers::new(alice);
        let taken = users.current();
        let mut bob = UserStore::default();
        bob.add(
            "bob",
            ScramCredential::generate(ScramHash::Sha256, "the-builder", iterations).unwrap(),
        );
        users.replace(bob);
        assert!(taken.verify_plain("alice", "wonderland"));
        assert!(!users.current().verify_plain("alice", "wonderland"));
        assert!(users.current().verify_plain("bob", "the-builder"));
        assert_eq!(format!("{users:?}"), "ReloadableUsers { users: 1 }");
    }
}
