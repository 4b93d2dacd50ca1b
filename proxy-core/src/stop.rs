//! How shutdown reaches forwarding sessions: a [`StopSignal`] a listener shares with its
//! sessions, which first asks them to drain and later to close.
//!
//! A session forwards for as long as its peers talk, and must notice a drain or a forced close
//! even while neither does: it has to leave a waker with whatever announces them. A
//! cancellation token's wait keeps an intrusive list entry in the waiting future (64 bytes and
//! more per wait), and a session waits for two; the signal keeps each session's waker in one
//! shared table instead ([`Slots`]), so a session holds only its slot's number and the waker it
//! left, and asking whether it must stop is one atomic load.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Waker};

use parking_lot::Mutex;
use tokio::sync::oneshot;
/// The token type [`StopSignal::following`] follows, re-exported so a library user needs no
/// direct `tokio-util` dependency.
pub use tokio_util::sync::CancellationToken;

use crate::slots::Slots;

/// What a [`StopSignal`] asks of its sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopping {
    /// Finish in-flight work and end at the next request boundary.
    Drain,
    /// End at once.
    ForceClose,
}

const DRAIN: u8 = 1;
const FORCE_CLOSE: u8 = 2;

/// Tells the sessions sharing it to drain, then to close; cheap to clone (one shared state).
///
/// ```
/// use std::task::{Context, Waker};
/// use proxy_core::stop::{StopSignal, Stopping};
///
/// let signal = StopSignal::new();
/// let mut wait = signal.wait();
/// let task = Context::from_waker(Waker::noop());
/// assert_eq!(wait.poll(&task), None);
/// signal.drain();
/// assert_eq!(wait.poll(&task), Some(Stopping::Drain));
/// signal.force_close();
/// assert_eq!(wait.poll(&task), Some(Stopping::ForceClose));
/// ```
#[derive(Clone, Default)]
pub struct StopSignal {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// `DRAIN` and `FORCE_CLOSE`, once raised; never lowered.
    state: AtomicU8,
    /// The waker of each session waiting, by the slot its [`StopWait`] keeps.
    waiting: Mutex<Slots<Waker>>,
    /// Dropped with the signal's last clone: ends the task that follows tokens for it.
    _gone: Option<oneshot::Sender<()>>,
}

impl fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopSignal")
            .field("stopping", &self.stopping())
            .field("waiting", &self.shared.waiting.lock().len())
            .finish()
    }
}

impl StopSignal {
    /// A signal raised only by [`drain`](Self::drain) and [`force_close`](Self::force_close).
    pub fn new() -> Self {
        Self::default()
    }

    /// A signal that drains when `drain` is cancelled and closes when `force_close` is, from a
    /// task spawned on the current tokio runtime (which must be running). The task ends once
    /// `force_close` is cancelled, or once every clone of the signal is gone.
    pub fn following(drain: CancellationToken, force_close: CancellationToken) -> Self {
        let (gone, mut dropped) = oneshot::channel();
        let shared = Arc::new(Shared {
            _gone: Some(gone),
            ..Shared::default()
        });
        let follower = Arc::downgrade(&shared);
        tokio::spawn(async move {
            let mut drained = false;
            loop {
                tokio::select! {
                    biased;
                    _ = &mut dropped => return,
                    () = force_close.cancelled() => {
                        raise(&follower, FORCE_CLOSE);
                        return;
                    }
                    () = drain.cancelled(), if !drained => {
                        raise(&follower, DRAIN);
                        drained = true;
                    }
                }
            }
        });
        Self { shared }
    }

    /// Asks every session to drain.
    pub fn drain(&self) {
        self.shared.raise(DRAIN);
    }

    /// Asks every session to end at once.
    pub fn force_close(&self) {
        self.shared.raise(FORCE_CLOSE);
    }

    /// What the signal asks now: a forced close outranks a drain.
    pub fn stopping(&self) -> Option<Stopping> {
        let state = self.shared.state.load(Ordering::Acquire);
        if state & FORCE_CLOSE != 0 {
            Some(Stopping::ForceClose)
        } else if state & DRAIN != 0 {
            Some(Stopping::Drain)
        } else {
            None
        }
    }

    /// A session's wait on the signal; it leaves its task's waker at its first poll, and takes
    /// it back when dropped.
    pub fn wait(&self) -> StopWait<'_> {
        StopWait {
            signal: self,
            slot: NO_SLOT,
            waker: None,
        }
    }
}

fn raise(shared: &Weak<Shared>, what: u8) {
    if let Some(shared) = shared.upgrade() {
        shared.raise(what);
    }
}

impl Shared {
    fn raise(&self, what: u8) {
        // Raised before the table is read: a wait that registers after the lock below sees
        // the state when it looks again under it.
        self.state.fetch_or(what, Ordering::AcqRel);
        for waker in self.waiting.lock().iter() {
            waker.wake_by_ref();
        }
    }
}

/// `StopWait::slot` before the first registration.
const NO_SLOT: usize = usize::MAX;

/// One session's wait on a [`StopSignal`].
pub struct StopWait<'a> {
    signal: &'a StopSignal,
    /// Where the waker is kept in the signal's table; [`NO_SLOT`] until the first poll.
    slot: usize,
    /// The waker kept there, to tell without the lock whether it is still the task's.
    waker: Option<Waker>,
}

impl fmt::Debug for StopWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StopWait")
            .field("registered", &(self.slot != NO_SLOT))
            .finish_non_exhaustive()
    }
}

impl StopWait<'_> {
    /// What the signal asks, if anything; until it asks to close, the task of `task` is
    /// woken each time it asks more (a draining session still waits for the close).
    pub fn poll(&mut self, task: &Context<'_>) -> Option<Stopping> {
        let stopping = self.signal.stopping();
        if stopping == Some(Stopping::ForceClose)
            || self
                .waker
                .as_ref()
                .is_some_and(|waker| waker.will_wake(task.waker()))
        {
            return stopping;
        }
        let waker = task.waker().clone();
        {
            let mut waiting = self.signal.shared.waiting.lock();
            match waiting.get_mut(self.slot) {
                Some(kept) => kept.clone_from(&waker),
                None => self.slot = waiting.insert(waker.clone()),
            }
        }
        self.waker = Some(waker);
        // Looked at again after registering: a signal raised in between is seen here, and one
        // raised later wakes the waker just left.
        self.signal.stopping()
    }
}

impl Drop for StopWait<'_> {
    fn drop(&mut self) {
        if self.slot != NO_SLOT {
            self.signal.shared.waiting.lock().remove(self.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::task::Poll;
    use std::time::Duration;

    use super::*;

    /// Whether `wait` is told `what` within ten seconds, polled each time its task is woken.
    async fn told(wait: &mut StopWait<'_>, what: Stopping) -> bool {
        let told = poll_fn(|task| match wait.poll(task) {
            Some(stopping) if stopping == what => Poll::Ready(()),
            _ => Poll::Pending,
        });
        tokio::time::timeout(Duration::from_secs(10), told)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_drain_wakes_a_waiting_task_once_and_a_forced_close_outranks_it() {
        let signal = StopSignal::new();
        let mut wait = signal.wait();
        let mut polls = 0;
        let raiser = signal.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            raiser.drain();
        });
        let first = tokio::time::timeout(
            Duration::from_secs(10),
            poll_fn(|task| {
                polls += 1;
                wait.poll(task).map_or(Poll::Pending, Poll::Ready)
            }),
        )
        .await
        .expect("the drain never woke the task");
        assert_eq!(first, Stopping::Drain);
        // Polled once to register, once when woken: nothing in between wakes the task.
        assert_eq!(polls, 2);
        signal.force_close();
        assert_eq!(signal.stopping(), Some(Stopping::ForceClose));
    }

    #[test]
    fn a_wait_leaves_its_waker_once_and_takes_it_back_when_dropped() {
        let signal = StopSignal::new();
        let task = Context::from_waker(Waker::noop());
        let mut first = signal.wait();
        let mut second = signal.wait();
        assert_eq!(first.poll(&task), None);
        assert_eq!(first.poll(&task), None);
        assert_eq!(second.poll(&task), None);
        assert_eq!(signal.shared.waiting.lock().len(), 2);
        drop(first);
        assert_eq!(signal.shared.waiting.lock().len(), 1);
        drop(second);
        assert!(signal.shared.waiting.lock().is_empty());
        // A wait never polled left nothing to take back.
        drop(signal.wait());
        assert!(signal.shared.waiting.lock().is_empty());
    }

    #[tokio::test]
    async fn a_following_signal_raises_with_its_tokens() {
        let drain = CancellationToken::new();
        let force_close = CancellationToken::new();
        let signal = StopSignal::following(drain.clone(), force_close.clone());
        let mut wait = signal.wait();
        let raise = |token: &CancellationToken| {
            let token = token.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                token.cancel();
            })
        };
        raise(&drain);
        assert!(told(&mut wait, Stopping::Drain).await);
        // A draining session still waits: the close wakes it.
        raise(&force_close);
        assert!(told(&mut wait, Stopping::ForceClose).await);
    }

    #[tokio::test]
    async fn a_forced_close_alone_is_seen_without_a_drain() {
        let signal = StopSignal::following(CancellationToken::new(), {
            let token = CancellationToken::new();
            token.cancel();
            token
        });
        assert!(told(&mut signal.wait(), Stopping::ForceClose).await);
    }

    #[tokio::test]
    async fn the_follower_ends_when_the_signal_is_gone() {
        let metrics = tokio::runtime::Handle::current().metrics();
        let before = metrics.num_alive_tasks();
        let signal = StopSignal::following(CancellationToken::new(), CancellationToken::new());
        assert_eq!(metrics.num_alive_tasks(), before + 1);
        drop(signal);
        // Bounded: the follower needs a poll or two to see the signal gone.
        for _ in 0..1000 {
            if metrics.num_alive_tasks() == before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the follower outlived its signal");
    }
}
