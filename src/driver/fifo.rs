//! `Fifo`: a first-in, first-out queue whose oldest item lives inside the queue itself.
//!
//! The reactor's per-connection queues almost always hold nothing or one item: a stream's next
//! CQE, the buffer a socket is writing. A `VecDeque` keeps even that one item in a heap buffer
//! of its own, one more cache line touched per message and per connection. With a thousand
//! busy connections that line is cold every time (the `echo` server's user time per request
//! grows by a third from 100 to 1,000 connections at the same instruction count). Here the
//! oldest item is a field of the queue, next to the state that is touched anyway; only a second
//! and later item spill into a boxed `VecDeque` (boxed, so that the queue is one item and a
//! pointer wide and fits in a cache line beside its owner's other fields).
//!
//! # Invariant
//!
//! - (F1) `head` is `None` only when `rest` is empty: the oldest item is always `head`.

use std::collections::VecDeque;

/// A FIFO queue that stores its oldest item inline (see the module docs).
#[derive(Debug)]
pub(crate) struct Fifo<T> {
    head: Option<T>,
    /// Allocated at the first spill and kept (a queue that spilled once is likely to again).
    /// Boxed on purpose: a pointer here instead of a `VecDeque`'s 32 bytes keeps the queue,
    /// and the owner around it, within one cache line.
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<T>>>,
}

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo::new()
    }
}

impl<T> Fifo<T> {
    pub(crate) const fn new() -> Fifo<T> {
        Fifo {
            head: None,
            rest: None,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.rest.as_ref().map_or(0, |rest| rest.len())
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        // (F1)
        self.head.is_none()
    }

    #[inline]
    pub(crate) fn front(&self) -> Option<&T> {
        self.head.as_ref()
    }

    #[inline]
    pub(crate) fn push_back(&mut self, item: T) {
        if self.head.is_none() {
            debug_assert!(
                self.rest.as_ref().is_none_or(|rest| rest.is_empty()),
                "(F1)"
            );
            self.head = Some(item);
        } else {
            self.rest.get_or_insert_default().push_back(item);
        }
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let item = self.head.take()?;
        if let Some(rest) = &mut self.rest {
            self.head = rest.pop_front();
        }
        Some(item)
    }

    /// The newest item, if it is not also the oldest: the one a writer may still change while
    /// the oldest is lent out.
    #[cfg(feature = "_compat")]
    #[inline]
    pub(crate) fn newest_behind_front_mut(&mut self) -> Option<&mut T> {
        self.rest.as_mut()?.back_mut()
    }

    /// Keeps the first `at` items and returns the others, in order.
    pub(crate) fn split_off(&mut self, at: usize) -> Fifo<T> {
        if at == 0 {
            return std::mem::take(self);
        }
        let mut tail = Fifo::new();
        if let Some(rest) = &mut self.rest {
            for item in rest.drain((at - 1).min(rest.len())..) {
                tail.push_back(item);
            }
        }
        tail
    }

    /// The items, oldest first.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.head
            .iter()
            .chain(self.rest.iter().flat_map(|rest| rest.iter()))
    }
}

impl<T> IntoIterator for Fifo<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<
        std::option::IntoIter<T>,
        std::iter::Flatten<std::option::IntoIter<VecDeque<T>>>,
    >;

    /// The items, oldest first.
    fn into_iter(self) -> Self::IntoIter {
        let rest = self.rest.map(|rest| *rest);
        self.head.into_iter().chain(rest.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Push(u32),
        Pop,
        SplitOff(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => any::<u32>().prop_map(Step::Push),
            3 => Just(Step::Pop),
            1 => (0usize..5).prop_map(Step::SplitOff),
        ]
    }

    proptest! {
        /// Every sequence of pushes, pops and splits gives what a `VecDeque` gives.
        #[test]
        fn behaves_like_a_vecdeque(steps in proptest::collection::vec(step(), 0..200)) {
            let mut fifo = Fifo::new();
            let mut model = VecDeque::new();
            for step in steps {
                match step {
                    Step::Push(x) => {
                        fifo.push_back(x);
                        model.push_back(x);
                    }
                    Step::Pop => prop_assert_eq!(fifo.pop_front(), model.pop_front()),
                    Step::SplitOff(at) => {
                        let at = at.min(model.len());
                        let tail: Vec<u32> = fifo.split_off(at).into_iter().collect();
                        let model_tail: Vec<u32> = model.split_off(at).into_iter().collect();
                        prop_assert_eq!(tail, model_tail);
                    }
                }
                prop_assert_eq!(fifo.len(), model.len());
                prop_assert_eq!(fifo.is_empty(), model.is_empty());
                prop_assert_eq!(fifo.front(), model.front());
                prop_assert!(fifo.iter().eq(model.iter()));
            }
        }
    }

    #[test]
    fn one_item_needs_no_heap_buffer() {
        assert_eq!(std::mem::size_of::<Fifo<u64>>(), 24);
        let mut fifo = Fifo::new();
        fifo.push_back([0u8; 64]);
        assert!(fifo.rest.is_none());
        fifo.push_back([1u8; 64]);
        assert_eq!(fifo.pop_front(), Some([0u8; 64]));
        assert_eq!(fifo.pop_front(), Some([1u8; 64]));
        assert_eq!(fifo.pop_front(), None);
    }
}
