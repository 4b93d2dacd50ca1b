//! Password checks (PBKDF2, milliseconds of CPU each) off the runtime's worker threads: a
//! bounded number run at a time on the blocking pool, a bounded number wait, and the rest are
//! refused at once. However many clients guess, the workers stay free for every other session,
//! and at most `concurrency` cores go to derivations.

use std::fmt;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::UserStore;

/// Checks that wait for a free slot at most, per slot.
const WAITING_PER_SLOT: usize = 32;

/// A PLAIN login to check: the password is dropped once checked, and never printed.
pub struct PasswordCheck {
    users: Arc<UserStore>,
    username: String,
    password: String,
}

impl fmt::Debug for PasswordCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordCheck")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl PasswordCheck {
    /// `username`'s login with `password`, against `users`.
    pub fn new(users: Arc<UserStore>, username: &str, password: &str) -> Self {
        Self {
            users,
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }

    /// The user name the client gave.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Runs the derivation here, on this thread.
    pub fn run(self) -> bool {
        self.users.verify_plain(&self.username, &self.password)
    }
}

/// Why a check did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifierError {
    /// Every slot is busy and the queue is full.
    #[error("too many password checks in progress")]
    Busy,
    /// The blocking task ended without an answer (the runtime is shutting down).
    #[error("the password check did not complete")]
    Lost,
}

/// The process's password checks, shared by every listener that checks passwords.
#[derive(Debug)]
pub struct PasswordVerifier {
    /// One permit per check that may run.
    running: Arc<Semaphore>,
    /// One permit per check that may run or wait.
    admitted: Semaphore,
}

impl Default for PasswordVerifier {
    /// Half the machine's cores (at least one) for derivations, so the runtime's workers keep
    /// the rest.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new((cores / 2).max(1))
    }
}

impl PasswordVerifier {
    /// At most `concurrency` checks at once (at least one), and 32 waiting per slot.
    pub fn new(concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Semaphore::new(concurrency * (1 + WAITING_PER_SLOT)),
        }
    }

    /// Runs `check` on the blocking pool once a slot is free: whether the password is right.
    /// Refused at once, without waiting, when the queue is full.
    pub async fn verify(&self, check: PasswordCheck) -> Result<bool, VerifierError> {
        let Ok(_admitted) = self.admitted.try_acquire() else {
            return Err(VerifierError::Busy);
        };
        let running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| VerifierError::Lost)?;
        // The slot is held by the blocking task, not by this future: a session that ends while
        // its check runs does not free a core that is still deriving.
        tokio::task::spawn_blocking(move || {
            let _running = running;
            check.run()
        })
        .await
        .map_err(|_| VerifierError::Lost)
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::sasl::{ScramCredential, ScramHash};

    fn users() -> Arc<UserStore> {
        let mut users = UserStore::default();
        let iterations = NonZeroU32::new(4096).unwrap();
        users.add(
            "alice",
            ScramCredential::derive(ScramHash::Sha512, "wonderland", b"salt", iterations),
        );
        Arc::new(users)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn checks_run_off_the_runtime_and_answer_right_and_wrong() {
        let verifier = PasswordVerifier::new(1);
        let users = users();
        let right = PasswordCheck::new(users.clone(), "alice", "wonderland");
        let wrong = PasswordCheck::new(users.clone(), "alice", "looking-glass");
        let unknown = PasswordCheck::new(users, "mallory", "wonderland");
        // A current-thread runtime would be blocked by an inline derivation: the ticker below
        // keeps running only because the check is on the blocking pool.
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    ticks.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_micros(100)).await;
                }
            }
        });
        assert_eq!(verifier.verify(right).await, Ok(true));
        assert_eq!(verifier.verify(wrong).await, Ok(false));
        assert_eq!(verifier.verify(unknown).await, Ok(false));
        ticker.abort();
        assert!(ticks.load(Ordering::Relaxed) > 1, "the runtime was blocked");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let verifier = Arc::new(PasswordVerifier::new(1));
        let capacity = 1 + WAITING_PER_SLOT;
        // Hold the only slot so every check waits.
        let held = verifier.running.clone().acquire_owned().await.unwrap();
        let users = users();
        let waiting: Vec<_> = (0..capacity)
            .map(|_| {
                let verifier = verifier.clone();
                let check = PasswordCheck::new(users.clone(), "alice", "wonderland");
                tokio::spawn(async move { verifier.verify(check).await })
            })
            .collect();
        // Bounded: every waiting check has taken its admission once this many are gone.
        for _ in 0..1000 {
            if verifier.admitted.available_permits() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let check = PasswordCheck::new(users, "alice", "wonderland");
        assert_eq!(verifier.verify(check).await, Err(VerifierError::Busy));
        drop(held);
        for waiter in waiting {
            assert_eq!(waiter.await.unwrap(), Ok(true));
        }
    }
}
