//! Values kept in numbered slots, for registries whose holders remove their own entry.
//!
//! A registry of open sessions (or of sessions waiting for shutdown) holds one entry per
//! session, and each session removes its own when it ends. A hash map keyed by an id keeps
//! about two entries' room per entry (its buckets stay at most seven-eighths full, and it
//! doubles) plus the key; [`Slots`] keeps one entry's room and hands the holder its slot's
//! number instead.

/// Values in numbered slots: [`insert`](Self::insert) returns the slot's number, which its
/// holder keeps to reach or remove the value; a slot freed is reused before the slots grow.
///
/// ```
/// use proxy_core::slots::Slots;
///
/// let mut slots = Slots::default();
/// let a = slots.insert("a");
/// let b = slots.insert("b");
/// assert_eq!(slots.remove(a), Some("a"));
/// assert_eq!(slots.insert("c"), a);
/// assert_eq!(slots.len(), 2);
/// assert_eq!(slots.get_mut(b), Some(&mut "b"));
/// ```
#[derive(Debug)]
pub struct Slots<T> {
    slots: Vec<Option<T>>,
    /// Empty slots, reused before the slots grow.
    vacant: Vec<usize>,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            vacant: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slots<T> {
    /// Keeps `value` in a free slot, and returns the slot's number.
    pub fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        while let Some(slot) = self.vacant.pop() {
            if let Some(vacant @ None) = self.slots.get_mut(slot) {
                *vacant = Some(value);
                return slot;
            }
        }
        self.slots.push(Some(value));
        self.slots.len() - 1
    }

    /// The value in `slot`, if it holds one.
    pub fn get_mut(&mut self, slot: usize) -> Option<&mut T> {
        self.slots.get_mut(slot)?.as_mut()
    }

    /// Takes the value out of `slot`, which is free from then on; `None` if it held none.
    pub fn remove(&mut self, slot: usize) -> Option<T> {
        let value = self.slots.get_mut(slot)?.take()?;
        self.len -= 1;
        self.vacant.push(slot);
        Some(value)
    }

    /// How many values are kept.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no value is kept.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The values kept, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(slots: &Slots<u16>) -> Vec<u16> {
        let mut kept: Vec<_> = slots.iter().copied().collect();
        kept.sort_unstable();
        kept
    }

    #[test]
    fn a_freed_slot_is_reused_and_every_value_is_listed_once() {
        let mut slots = Slots::default();
        let numbers: Vec<_> = (1..=3).map(|value| slots.insert(value)).collect();
        assert_eq!(slots.len(), 3);
        assert_eq!(slots.remove(numbers[1]), Some(2));
        // Removing twice changes nothing.
        assert_eq!(slots.remove(numbers[1]), None);
        assert_eq!((slots.len(), kept(&slots)), (2, vec![1, 3]));

        let reused = slots.insert(4);
        assert_eq!(reused, numbers[1]);
        assert_eq!(
            slots.slots.len(),
            3,
            "a free slot is used before the slots grow"
        );
        if let Some(value) = slots.get_mut(reused) {
            *value = 5;
        }
        assert_eq!((slots.len(), kept(&slots)), (3, vec![1, 3, 5]));
        assert_eq!(slots.get_mut(99), None);
        assert_eq!(slots.remove(99), None);
    }

    #[test]
    fn emptied_slots_are_all_reused_before_growing() {
        let mut slots = Slots::default();
        let numbers: Vec<_> = (0..4).map(|value| slots.insert(value)).collect();
        for &number in &numbers {
            slots.remove(number);
        }
        assert!(slots.is_empty());
        let mut again: Vec<_> = (0..4).map(|value| slots.insert(value)).collect();
        again.sort_unstable();
        assert_eq!(again, numbers);
        assert_eq!(slots.slots.len(), 4);
    }
}
