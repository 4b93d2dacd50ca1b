//! Waiting on the shutdown tokens without asking them on every poll.
//!
//! A forwarding session polls its drain and force-close waits each time it is woken, which is
//! once per message it forwards. Polling a [`WaitForCancellationFuture`] takes its token's lock
//! to read the flag and its waiter list's lock to compare the stored waker, to learn what is
//! almost always the same: not yet. A [`Bell`] polls the waits with a waker of its own, which
//! they keep and ring when the token is cancelled; until it rings, the waits are not polled.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Wake, Waker};

use atomic_waker::AtomicWaker;

/// What a wait wakes: it notes that the waits are due, then wakes the session's task.
#[derive(Debug, Default)]
struct Ring {
    rung: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Ring {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.rung.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// Polls a session's waits when they may have something to say: the first time (so they hold
/// the bell's waker), and each time one of them has woken it since.
#[derive(Debug)]
pub(super) struct Bell {
    ring: Arc<Ring>,
    waker: Waker,
    armed: bool,
}

impl Bell {
    pub(super) fn new() -> Self {
        let ring = Arc::new(Ring::default());
        Self {
            waker: Waker::from(ring.clone()),
            ring,
            armed: false,
        }
    }

    /// Polls `waits` in order if they are due, for the task of `task`: the index of the first
    /// that is ready.
    pub(super) fn poll_any(
        &mut self,
        task: &Context<'_>,
        waits: &mut [Pin<&mut dyn Future<Output = ()>>],
    ) -> Option<usize> {
        // Registered before the flag is read: a ring in between wakes the task again.
        self.ring.task.register(task.waker());
        let due = !self.armed || self.ring.rung.swap(false, Ordering::AcqRel);
        if !due {
            return None;
        }
        self.armed = true;
        let mut cx = Context::from_waker(&self.waker);
        waits
            .iter_mut()
            .position(|wait| wait.as_mut().poll(&mut cx).is_ready())
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::pin::pin;
    use std::task::Poll;
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::*;

    #[tokio::test]
    async fn a_cancelled_token_wakes_the_task_and_is_seen_by_the_next_poll() {
        let drain = CancellationToken::new();
        let force = CancellationToken::new();
        let mut bell = Bell::new();
        let mut drained = pin!(drain.cancelled());
        let mut forced = pin!(force.cancelled());
        let mut polls = 0;
        let cancel = drain.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            cancel.cancel();
        });
        let which = tokio::time::timeout(
            Duration::from_secs(10),
            poll_fn(|task| {
                polls += 1;
                match bell.poll_any(task, &mut [forced.as_mut(), drained.as_mut()]) {
                    Some(which) => Poll::Ready(which),
                    None => Poll::Pending,
                }
            }),
        )
        .await
        .expect("the cancellation never woke the task");
        assert_eq!(which, 1, "the drain token was cancelled");
        // Polled once to register, once when woken: nothing in between wakes the task.
        assert_eq!(polls, 2);
    }

    #[tokio::test]
    async fn waits_are_polled_only_when_due() {
        let token = CancellationToken::new();
        let mut bell = Bell::new();
        let mut wait = pin!(token.cancelled());
        let task = Context::from_waker(Waker::noop());
        assert_eq!(bell.poll_any(&task, &mut [wait.as_mut()]), None);
        assert!(!bell.ring.rung.load(Ordering::Acquire));
        assert_eq!(bell.poll_any(&task, &mut [wait.as_mut()]), None);
        // The wait holds the bell's waker: cancelling rings it, so the next poll is due.
        token.cancel();
        assert!(bell.ring.rung.load(Ordering::Acquire));
        assert_eq!(bell.poll_any(&task, &mut [wait.as_mut()]), Some(0));
    }
}
