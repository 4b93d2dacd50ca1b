//! The memory budget for messages being assembled: bytes a session holds of a message larger
//! than one read, before the message is whole and can be passed on.
//!
//! Without it, every connection may hold one frame of the codec's maximum size (100 MiB for
//! Kafka) while its sender trickles or stalls, and nothing bounds the sum. A budget is a count
//! of bytes; a listener's budget has the process's as its parent, and a reservation must fit
//! both. A session reserves a message's whole declared size when its first bytes arrive (all
//! or nothing, so sessions that were granted their messages can always complete them and none
//! waits on another), and gives it back when the message has been decoded or the session ends.
//! A session that cannot reserve pauses its reads
//! ([`PauseReason::FrameBudget`](crate::gate::PauseReason::FrameBudget)) and is woken when any
//! reservation is given back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use std::task::{Context, Poll, Waker};

/// A shared count of bytes that sessions may hold of messages being assembled.
///
/// ```
/// use proxy_core::forward::FrameBudget;
///
/// let process = FrameBudget::new(512 << 20);
/// let listener = process.child(256 << 20);
/// assert_eq!(listener.limit(), 256 << 20);
/// assert_eq!(process.used(), 0);
/// ```
#[derive(Clone)]
pub struct FrameBudget {
    inner: Arc<Inner>,
}

struct Inner {
    limit: usize,
    used: AtomicUsize,
    /// Reservations that had to wait at least once.
    waits: AtomicU64,
    parent: Option<FrameBudget>,
    /// Sessions waiting for room, kept by the root budget: a release anywhere below it may be
    /// what any of them waits for.
    waiters: Mutex<Vec<Waker>>,
}

/// Bytes reserved from a [`FrameBudget`], given back when dropped.
pub(crate) struct FrameGrant {
    budget: FrameBudget,
    bytes: usize,
}

// === impl FrameBudget ===

impl FrameBudget {
    /// A budget of `limit` bytes with no parent (the process's).
    pub fn new(limit: usize) -> Self {
        Self::with_parent(limit, None)
    }

    /// A budget of `limit` bytes whose reservations are also charged to this one (a listener's
    /// under the process's).
    pub fn child(&self, limit: usize) -> Self {
        Self::with_parent(limit, Some(self.clone()))
    }

    fn with_parent(limit: usize, parent: Option<FrameBudget>) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit,
                used: AtomicUsize::new(0),
                waits: AtomicU64::new(0),
                parent,
                waiters: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The most bytes this budget lets sessions hold at once.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// How many reservations against this budget (or a child of it) have had to wait.
    pub fn waits(&self) -> u64 {
        self.inner.waits.load(Ordering::Relaxed)
    }

    /// Whether a message of `bytes` could ever be granted: no budget on the way up is smaller.
    pub fn can_ever_hold(&self, bytes: usize) -> bool {
        bytes <= self.inner.limit
            && self
                .inner
                .parent
                .as_ref()
                .is_none_or(|parent| parent.can_ever_hold(bytes))
    }

    /// Reserves `bytes`, or registers the task to be woken when room is given back.
    pub(crate) fn poll_reserve(&self, bytes: usize, task: &mut Context<'_>) -> Poll<FrameGrant> {
        if self.try_reserve(bytes) {
            return Poll::Ready(self.grant(bytes));
        }
        self.register(task.waker());
        // Room given back between the failed attempt and the registration woke no one.
        if self.try_reserve(bytes) {
            return Poll::Ready(self.grant(bytes));
        }
        self.count_wait();
        Poll::Pending
    }

    fn grant(&self, bytes: usize) -> FrameGrant {
        FrameGrant {
            budget: self.clone(),
            bytes,
        }
    }

    fn count_wait(&self) {
        self.inner.waits.fetch_add(1, Ordering::Relaxed);
        if let Some(parent) = &self.inner.parent {
            parent.count_wait();
        }
    }

    /// Charges `bytes` here and to every parent, or to none of them.
    fn try_reserve(&self, bytes: usize) -> bool {
        let reserved = self
            .inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|&sum| sum <= self.inner.limit)
            })
            .is_ok();
        if !reserved {
            return false;
        }
        match &self.inner.parent {
            Some(parent) if !parent.try_reserve(bytes) => {
                self.inner.used.fetch_sub(bytes, Ordering::AcqRel);
                false
            }
            _ => true,
        }
    }

    fn release(&self, bytes: usize) {
        self.inner.used.fetch_sub(bytes, Ordering::AcqRel);
        match &self.inner.parent {
            Some(parent) => parent.release(bytes),
            None => self.wake_all(),
        }
    }

    fn root(&self) -> &FrameBudget {
        match &self.inner.parent {
            Some(parent) => parent.root(),
            None => self,
        }
    }

    fn register(&self, waker: &Waker) {
        let mut waiters = self.root().inner.waiters.lock();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
    }

    fn wake_all(&self) {
        let waiters = std::mem::take(&mut *self.inner.waiters.lock());
        for waker in waiters {
            waker.wake();
        }
    }
}

impl std::fmt::Debug for FrameBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameBudget")
            .field("limit", &self.limit())
            .field("used", &self.used())
            .finish_non_exhaustive()
    }
}

// === impl FrameGrant ===

impl FrameGrant {
    /// The bytes reserved.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for FrameGrant {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::task::Wake;

    use super::*;

    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn flag() -> (Arc<Flag>, Waker) {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(flag.clone());
        (flag, waker)
    }

    #[test]
    fn a_reservation_is_charged_to_the_listener_and_the_process_and_given_back_on_drop() {
        let process = FrameBudget::new(100);
        let listener = process.child(60);
        let (_, waker) = flag();
        let mut task = Context::from_waker(&waker);
        let Poll::Ready(grant) = listener.poll_reserve(40, &mut task) else {
            panic!("40 of 60 bytes must be granted");
        };
        assert_eq!((listener.used(), process.used()), (40, 40));
        drop(grant);
        assert_eq!((listener.used(), process.used()), (0, 0));
    }

    #[test]
    fn a_reservation_that_does_not_fit_the_parent_charges_neither() {
        let process = FrameBudget::new(50);
        let first = process.child(60);
        let second = process.child(60);
        let (_, waker) = flag();
        let mut task = Context::from_waker(&waker);
        let Poll::Ready(_held) = first.poll_reserve(30, &mut task) else {
            panic!("30 of 50 bytes must be granted");
        };
        assert!(second.poll_reserve(30, &mut task).is_pending());
        assert_eq!((second.used(), process.used()), (0, 30));
        assert_eq!(process.waits(), 1);
    }

    #[test]
    fn a_waiting_session_is_woken_when_room_is_given_back() {
        let process = FrameBudget::new(10);
        let listener = process.child(10);
        let (_, holder) = flag();
        let Poll::Ready(grant) = listener.poll_reserve(10, &mut Context::from_waker(&holder))
        else {
            panic!("the whole budget must be granted once");
        };
        let (woken, waiter) = flag();
        let mut task = Context::from_waker(&waiter);
        assert!(listener.poll_reserve(5, &mut task).is_pending());
        assert!(!woken.0.load(Ordering::SeqCst));
        drop(grant);
        assert!(woken.0.load(Ordering::SeqCst));
        assert!(listener.poll_reserve(5, &mut task).is_ready());
    }

    #[test]
    fn a_message_larger_than_any_budget_on_the_way_up_can_never_be_held() {
        let process = FrameBudget::new(100);
        let listener = process.child(1000);
        assert!(listener.can_ever_hold(100));
        assert!(!listener.can_ever_hold(101));
    }
}
