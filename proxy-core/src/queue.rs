//! A first-in first-out queue that allocates only when it holds more than one element.
//!
//! A session's queues (bytes toward a peer, requests awaiting their answer) mostly hold one
//! element at a time: a request, then its answer. A `VecDeque` allocates on its first push and
//! keeps that allocation for the rest of the session, so every session that ever forwarded a
//! message would carry it while idle. [`InlineFirstQueue`] holds its oldest element inline and
//! only the ones behind it in a `VecDeque`.

use std::collections::VecDeque;

/// A FIFO queue whose oldest element is held inline: one element at a time never allocates.
///
/// ```
/// use proxy_core::queue::InlineFirstQueue;
///
/// let mut queue = InlineFirstQueue::default();
/// queue.push_back("request");
/// assert_eq!(queue.front(), Some(&"request"));
/// queue.push_back("next");
/// assert_eq!(queue.len(), 2);
/// assert_eq!(queue.pop_front(), Some("request"));
/// assert_eq!(queue.pop_front(), Some("next"));
/// assert!(queue.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct InlineFirstQueue<T> {
    /// The oldest element; `None` only when the queue is empty.
    first: Option<T>,
    /// The elements behind `first`, oldest first.
    rest: VecDeque<T>,
}

impl<T> Default for InlineFirstQueue<T> {
    fn default() -> Self {
        Self {
            first: None,
            rest: VecDeque::new(),
        }
    }
}

// === impl InlineFirstQueue ===

impl<T> InlineFirstQueue<T> {
    /// Appends an element at the back.
    pub fn push_back(&mut self, item: T) {
        if self.first.is_none() {
            self.first = Some(item);
        } else {
            self.rest.push_back(item);
        }
    }

    /// Removes and returns the oldest element.
    pub fn pop_front(&mut self) -> Option<T> {
        let item = self.first.take()?;
        self.first = self.rest.pop_front();
        Some(item)
    }

    /// The oldest element.
    pub fn front(&self) -> Option<&T> {
        self.first.as_ref()
    }

    /// The oldest element, to change in place.
    pub fn front_mut(&mut self) -> Option<&mut T> {
        self.first.as_mut()
    }

    /// The newest element, to change in place.
    pub fn back_mut(&mut self) -> Option<&mut T> {
        match self.rest.back_mut() {
            Some(back) => Some(back),
            None => self.first.as_mut(),
        }
    }

    /// How many elements the queue holds.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// True when the queue holds nothing.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Drops every element; the allocation behind the first, if any, is kept.
    pub fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
    }

    /// The elements, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.first.iter().chain(&self.rest)
    }

    /// Removes every element, oldest first.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.first.take().into_iter().chain(self.rest.drain(..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_element_at_a_time_never_allocates() {
        let mut queue = InlineFirstQueue::default();
        for i in 0..10 {
            queue.push_back(i);
            assert_eq!(queue.pop_front(), Some(i));
        }
        assert!(queue.is_empty());
        assert_eq!(queue.rest.capacity(), 0);
    }

    #[test]
    fn order_holds_across_the_inline_element_and_the_rest() {
        let mut queue = InlineFirstQueue::default();
        queue.push_back(1);
        queue.push_back(2);
        assert_eq!(queue.pop_front(), Some(1));
        queue.push_back(3);
        queue.push_back(4);
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.iter().copied().collect::<Vec<_>>(), [2, 3, 4]);
        if let Some(back) = queue.back_mut() {
            *back = 40;
        }
        if let Some(front) = queue.front_mut() {
            *front = 20;
        }
        assert_eq!(queue.drain().collect::<Vec<_>>(), [20, 3, 40]);
        assert!(queue.is_empty());
        assert_eq!(queue.pop_front(), None);
    }

    #[test]
    fn the_back_of_a_queue_of_one_is_its_front() {
        let mut queue = InlineFirstQueue::default();
        assert!(queue.back_mut().is_none());
        queue.push_back(7);
        if let Some(back) = queue.back_mut() {
            *back = 8;
        }
        assert_eq!(queue.front(), Some(&8));
        queue.clear();
        assert!(queue.is_empty());
        assert_eq!(queue.len(), 0);
    }
}
