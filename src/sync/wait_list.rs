//! The waiter queue every primitive in `sync` is built on: FIFO, O(1) push, notify and remove.
//!
//! A waiter is a slot in a slab holding its task's waker, what it asks for (`need`: permits,
//! slots) and whether it was notified. Waiting slots are linked front to back by slab keys, so a
//! future that is dropped unlinks itself in O(1) wherever it sits. Slots are recycled by the
//! slab: once warm, waiting and waking allocate nothing.
//!
//! Ground rules:
//!
//! * (W1) A key belongs to exactly one future. Only that future removes it, so a key never
//!   points at another waiter's slot (no ABA): notifying a waiter unlinks it but keeps its slot
//!   until its future removes it, which is how the future learns it was notified.
//! * (W2) `remove` reports whether the waiter had been notified, so a future dropped after it
//!   was handed something (a permit, a slot, a notification) can pass it on: nothing is lost.
//! * (W3) Wakers are handed back to the caller, never woken here: the primitives wake them
//!   after releasing their `RefCell` borrow, so a waker that re-enters cannot hit a borrow panic.

use std::task::Waker;

use slab::Slab;

/// Wakes `wakers`, collected under a `RefCell` borrow that is released by now (W3), then hands
/// the emptied vector to `recycle`, so the next wake-everyone allocates nothing.
pub(crate) fn wake_then_recycle(mut wakers: Vec<Waker>, recycle: impl FnOnce(Vec<Waker>)) {
    for waker in wakers.drain(..) {
        waker.wake();
    }
    recycle(wakers);
}

/// How a waiter was notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notified {
    /// Singled out: it was handed what it asked for (a permit, a slot, a notification).
    One,
    /// Woken with every other waiter (a close, a `notify_waiters`, a new value); it was handed
    /// nothing and must look at the primitive's state again.
    All,
}

#[derive(Debug)]
enum Link {
    Waiting {
        prev: Option<usize>,
        next: Option<usize>,
    },
    Notified(Notified),
}

#[derive(Debug)]
struct Node {
    waker: Option<Waker>,
    need: usize,
    link: Link,
}

/// A FIFO of waiting futures. See the module doc for its rules.
#[derive(Debug, Default)]
pub(crate) struct WaitList {
    nodes: Slab<Node>,
    head: Option<usize>,
    tail: Option<usize>,
}

impl WaitList {
    pub(crate) fn new() -> WaitList {
        WaitList::default()
    }

    /// Whether no waiter is still waiting (notified ones that have not yet looked don't count).
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Queues a waiter at the back; returns its key.
    pub(crate) fn push(&mut self, waker: &Waker, need: usize) -> usize {
        let key = self.nodes.insert(Node {
            waker: Some(waker.clone()),
            need,
            link: Link::Waiting {
                prev: self.tail,
                next: None,
            },
        });
        match self.tail {
            Some(tail) => self.set_next(tail, Some(key)),
            None => self.head = Some(key),
        }
        self.tail = Some(key);
        key
    }

    /// Stores the waker the waiter's future was last polled with (a future may move tasks).
    pub(crate) fn register(&mut self, key: usize, waker: &Waker) {
        crate::task::waker::register(&mut self.nodes[key].waker, waker);
    }

    /// Whether (and how) the waiter was notified.
    pub(crate) fn notified(&self, key: usize) -> Option<Notified> {
        match self.nodes[key].link {
            Link::Waiting { .. } => None,
            Link::Notified(how) => Some(how),
        }
    }

    /// Forgets the waiter (its future completed or was dropped); says whether it had been
    /// notified (W2).
    pub(crate) fn remove(&mut self, key: usize) -> Option<Notified> {
        let how = self.notified(key);
        self.unlink(key);
        self.nodes.remove(key);
        how
    }

    /// What the front waiter asks for.
    pub(crate) fn front_need(&self) -> Option<usize> {
        self.head.map(|key| self.nodes[key].need)
    }

    /// Notifies the front waiter alone (`Notified::One`) and returns its waker to wake.
    pub(crate) fn notify_front(&mut self) -> Option<Waker> {
        let key = self.head?;
        self.mark(key, Notified::One);
        self.nodes[key].waker.take()
    }

    /// Notifies every waiting waiter (`Notified::All`), pushing their wakers onto `wakers`.
    pub(crate) fn notify_all(&mut self, wakers: &mut Vec<Waker>) {
        while let Some(key) = self.head {
            self.mark(key, Notified::All);
            wakers.extend(self.nodes[key].waker.take());
        }
    }

    fn mark(&mut self, key: usize, how: Notified) {
        self.unlink(key);
        self.nodes[key].link = Link::Notified(how);
    }

    /// Takes a waiting node out of the queue; leaves a notified one alone.
    fn unlink(&mut self, key: usize) {
        let (prev, next) = match self.nodes[key].link {
            Link::Waiting { prev, next } => (prev, next),
            Link::Notified(_) => return,
        };
        match prev {
            Some(prev) => self.set_next(prev, next),
            None => self.head = next,
        }
        match next {
            Some(next) => self.set_prev(next, prev),
            None => self.tail = prev,
        }
        // Callers mark or remove the node straight after; until then it reads as woken.
        self.nodes[key].link = Link::Notified(Notified::All);
    }

    fn set_next(&mut self, key: usize, to: Option<usize>) {
        if let Link::Waiting { next, .. } = &mut self.nodes[key].link {
            *next = to;
        }
    }

    fn set_prev(&mut self, key: usize, to: Option<usize>) {
        if let Link::Waiting { prev, .. } = &mut self.nodes[key].link {
            *prev = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::task::Waker;

    use proptest::prelude::*;

    use super::{Notified, WaitList};

    #[derive(Debug, Clone)]
    enum Op {
        Push(usize),
        Remove(usize),
        NotifyFront,
        NotifyAll,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1usize..4).prop_map(Op::Push),
            2 => any::<usize>().prop_map(Op::Remove),
            2 => Just(Op::NotifyFront),
            1 => Just(Op::NotifyAll),
        ]
    }

    proptest! {
        /// The list behaves as a VecDeque of waiting keys plus a map of notified ones.
        #[test]
        fn wait_list_matches_a_vecdeque_model(ops in proptest::collection::vec(op(), 0..200)) {
            let waker = Waker::noop();
            let mut list = WaitList::new();
            let mut waiting: VecDeque<(usize, usize)> = VecDeque::new();
            let mut notified: Vec<(usize, Notified)> = Vec::new();
            for op in ops {
                match op {
                    Op::Push(need) => {
                        let key = list.push(waker, need);
                        waiting.push_back((key, need));
                    }
                    Op::Remove(pick) => {
                        let total = waiting.len() + notified.len();
                        if total == 0 {
                            continue;
                        }
                        let pick = pick % total;
                        if pick < waiting.len() {
                            let (key, _) = waiting.remove(pick).unwrap();
                            prop_assert_eq!(list.remove(key), None);
                        } else {
                            let (key, how) = notified.remove(pick - waiting.len());
                            prop_assert_eq!(list.remove(key), Some(how));
                        }
                    }
                    Op::NotifyFront => {
                        let woke = list.notify_front().is_some();
                        prop_assert_eq!(woke, !waiting.is_empty());
                        if let Some((key, _)) = waiting.pop_front() {
                            notified.push((key, Notified::One));
                        }
                    }
                    Op::NotifyAll => {
                        let mut wakers = Vec::new();
                        list.notify_all(&mut wakers);
                        prop_assert_eq!(wakers.len(), waiting.len());
                        notified.extend(waiting.drain(..).map(|(k, _)| (k, Notified::All)));
                    }
                }
                prop_assert_eq!(list.front_need(), waiting.front().map(|w| w.1));
                prop_assert_eq!(list.is_empty(), waiting.is_empty());
                for (key, how) in &notified {
                    prop_assert_eq!(list.notified(*key), Some(*how));
                }
                for (key, _) in &waiting {
                    prop_assert_eq!(list.notified(*key), None);
                }
            }
        }
    }
}
