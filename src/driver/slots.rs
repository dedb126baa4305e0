//! In-flight operations: one slot per SQE the kernel owns, addressed by `user_data`.
//!
//! `user_data = generation << 32 | key`. Generations start at 1, so every `user_data` whose
//! high half is 0 is free for the driver's own requests ([`DOORBELL`], [`CANCEL`]). A CQE whose
//! `user_data` names a vacant slot or another generation is stale: counted and ignored.
//!
//! A slot's lifecycle:
//!
//! ```text
//! Submitted ──poll──► Waiting(waker) ──CQE──► Completed(cqe) ──poll──► (freed, result to the Op)
//!     │                    │
//!     └──── Op dropped ────┴──► Ignored(resources) ──CQE──► (freed, resources released)
//! ```
//!
//! `Ignored` is what makes dropping an operation's future safe: the buffers, addresses and fds
//! the kernel may still touch move into the slot and stay there until the CQE says it is done.
//!
//! An operation no future awaits (a [`SendQueue`](crate::net::SendQueue)'s sends) is
//! `Handled` from the start: its CQE goes to the [`Handler`] that owns its resources, which
//! continues the work without waking a task.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use io_uring::cqueue;
use slab::Slab;

use super::fifo::Fifo;
use super::op::{Completion, Handler, Orphan};

/// `user_data` of the read armed on the runtime's doorbell eventfd.
pub(crate) const DOORBELL: u64 = 1;
/// `user_data` of `ASYNC_CANCEL` requests; their own completions carry nothing we need.
pub(crate) const CANCEL: u64 = 2;

/// The address of an in-flight operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpId {
    key: u32,
    generation: u32,
}

impl OpId {
    pub(crate) fn user_data(self) -> u64 {
        u64::from(self.generation) << 32 | u64::from(self.key)
    }

    fn from_user_data(user_data: u64) -> OpId {
        OpId {
            key: user_data as u32,
            generation: (user_data >> 32) as u32,
        }
    }
}

/// The CQEs of one multishot op, shared by its slot (which adds them during the reap) and its
/// stream (which takes them), so that taking one is no lookup in the driver.
///
/// Aligned to a cache line: the reap writes it and the stream reads it once per CQE, per
/// connection, so all of it (borrow flag, next CQE, waker) shares one line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct StreamQueue {
    inner: RefCell<StreamInner>,
}

#[derive(Debug, Default)]
struct StreamInner {
    ready: Fifo<Completion>,
    waker: Option<Waker>,
    /// A CQE came without `IORING_CQE_F_MORE`: the kernel will post no more.
    ended: bool,
}

/// The kernel had already ended a stream's op: a CQE after that is a duplicate.
#[derive(Debug)]
pub(crate) struct Ended;

impl StreamQueue {
    /// Adds a CQE; returns the stream's waker, if it waits.
    ///
    /// # Errors
    ///
    /// `Ended` (and the CQE is dropped) if a CQE without `IORING_CQE_F_MORE` came before: the
    /// kernel posts nothing after that one.
    #[inline]
    pub(crate) fn push(&self, completion: Completion) -> Result<Option<Waker>, Ended> {
        let mut inner = self.inner.borrow_mut();
        if inner.ended {
            return Err(Ended);
        }
        inner.ready.push_back(completion);
        inner.ended = !cqueue::more(completion.flags);
        Ok(inner.waker.take())
    }

    /// The next CQE; `None` once the kernel ended the op and every CQE was taken.
    #[inline]
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Completion>> {
        let mut inner = self.inner.borrow_mut();
        if let Some(completion) = inner.ready.pop_front() {
            return Poll::Ready(Some(completion));
        }
        if inner.ended {
            return Poll::Ready(None);
        }
        crate::task::waker::register(&mut inner.waker, cx.waker());
        Poll::Pending
    }

    pub(crate) fn ended(&self) -> bool {
        self.inner.borrow().ended
    }

    /// Takes every CQE not yet taken (for a stream that was dropped).
    pub(crate) fn take_ready(&self) -> Fifo<Completion> {
        std::mem::take(&mut self.inner.borrow_mut().ready)
    }
}

pub(crate) enum Lifecycle {
    /// The SQE is queued or in the kernel; nobody has polled yet.
    Submitted,
    /// The SQE is in the kernel and a future waits for it.
    Waiting(Waker),
    /// The CQE arrived; the future takes it on its next poll.
    Completed(Completion),
    /// The future was dropped; the slot keeps what the kernel may touch until the last CQE.
    Ignored(Box<dyn Orphan>),
    /// A multishot op: CQEs queue in the [`StreamQueue`] it shares with its stream.
    Streaming(Rc<StreamQueue>),
    /// A slot whose single-shot ops nobody awaits: each CQE goes to the handler, which owns
    /// what the kernel reads or writes and keeps it until then. The slot stays between ops
    /// (`armed` while one is in the kernel) so that a handler submitting one op after another
    /// reuses it, with a fresh generation each time.
    Handled {
        handler: Rc<dyn Handler>,
        armed: bool,
    },
    /// The runtime shut down before the kernel answered. The future still holds resources the
    /// kernel may write into: it must never release them (it leaks them when dropped).
    Lost,
}

struct Slot {
    generation: u32,
    lifecycle: Lifecycle,
}

/// What a completion asks the driver to do once its borrow of the slots is released.
#[must_use]
pub(crate) enum Dispatch {
    /// Wake the future waiting on the operation.
    Wake(Waker),
    /// Hand the completion to the resources of a dropped operation (frees them; closes an fd
    /// that an abandoned open or accept produced).
    Release(Box<dyn Orphan>, Completion),
    /// Give the completion to the handler of an op nobody awaits.
    Handle(Rc<dyn Handler>, Completion),
    /// Nothing to do (result stored, or the CQE was stale).
    Nothing,
}

#[derive(Default)]
pub(crate) struct Slots {
    slab: Slab<Slot>,
    next_generation: u32,
    /// Handler slots with nothing in flight (kept for their handler's next op).
    parked: usize,
    pub(crate) unknown_completions: u64,
}

impl Slots {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// Slots the kernel may still post to (parked handler slots excluded).
    pub(crate) fn active(&self) -> usize {
        self.slab.len() - self.parked
    }

    /// Arms a parked handler slot under a fresh generation (a new `user_data`: CQEs still
    /// carrying the old one are then stale). `None` if `id` is not a parked handler slot.
    #[inline]
    pub(crate) fn rearm_handled(&mut self, id: OpId) -> Option<OpId> {
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let generation = self.next_generation;
        let slot = self.get(id)?;
        let Lifecycle::Handled { armed, .. } = &mut slot.lifecycle else {
            return None;
        };
        if *armed {
            return None;
        }
        *armed = true;
        slot.generation = generation;
        self.parked -= 1;
        Some(OpId {
            key: id.key,
            generation,
        })
    }

    /// Frees a parked handler slot; `None` if `id` is not one.
    pub(crate) fn remove_parked(&mut self, id: OpId) -> Option<Lifecycle> {
        let parked = matches!(
            self.get(id).map(|slot| &slot.lifecycle),
            Some(Lifecycle::Handled { armed: false, .. })
        );
        if !parked {
            return None;
        }
        self.parked -= 1;
        Some(self.slab.remove(id.key as usize).lifecycle)
    }

    pub(crate) fn insert(&mut self, lifecycle: Lifecycle) -> OpId {
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let generation = self.next_generation;
        let key = self.slab.insert(Slot {
            generation,
            lifecycle,
        });
        let key = u32::try_from(key).expect("fewer than 2^32 operations in flight");
        OpId { key, generation }
    }

    fn get(&mut self, id: OpId) -> Option<&mut Slot> {
        self.slab
            .get_mut(id.key as usize)
            .filter(|slot| slot.generation == id.generation)
    }

    /// The slot's state, `None` once it was freed (or for a stale id).
    pub(crate) fn get_lifecycle(&mut self, id: OpId) -> Option<&mut Lifecycle> {
        self.get(id).map(|slot| &mut slot.lifecycle)
    }

    pub(crate) fn lifecycle(&mut self, id: OpId) -> &mut Lifecycle {
        &mut self
            .get(id)
            .expect("an Op owns its slot until it frees it")
            .lifecycle
    }

    pub(crate) fn remove(&mut self, id: OpId) -> Lifecycle {
        debug_assert!(self.get(id).is_some());
        self.slab.remove(id.key as usize).lifecycle
    }

    /// Records the completion of `user_data`.
    #[inline]
    pub(crate) fn record(&mut self, user_data: u64, completion: Completion) -> Dispatch {
        let id = OpId::from_user_data(user_data);
        // `get`, spelled out: it would borrow all of `self`, and a handler slot's completion
        // updates `self.parked` while the slot is borrowed.
        let Some(slot) = self
            .slab
            .get_mut(id.key as usize)
            .filter(|slot| slot.generation == id.generation)
        else {
            self.unknown_completions += 1;
            return Dispatch::Nothing;
        };
        let more = cqueue::more(completion.flags);
        match &mut slot.lifecycle {
            Lifecycle::Streaming(queue) => {
                return match queue.push(completion) {
                    Ok(waker) => waker.map_or(Dispatch::Nothing, Dispatch::Wake),
                    Err(Ended) => {
                        self.unknown_completions += 1;
                        Dispatch::Nothing
                    }
                };
            }
            Lifecycle::Ignored(orphan) if more => {
                // (See `Orphan`) closes an fd or returns a buffer; no user code.
                orphan.release(completion);
                return Dispatch::Nothing;
            }
            Lifecycle::Handled { handler, armed } => {
                if !*armed {
                    // Nothing was in flight under this generation: a duplicate.
                    self.unknown_completions += 1;
                    return Dispatch::Nothing;
                }
                *armed = false;
                self.parked += 1;
                return Dispatch::Handle(handler.clone(), completion);
            }
            Lifecycle::Ignored(_) => {
                // The last CQE of a dropped op: the slot goes, the resources are released.
                let Lifecycle::Ignored(orphan) = self.slab.remove(id.key as usize).lifecycle else {
                    unreachable!("matched just above");
                };
                return Dispatch::Release(orphan, completion);
            }
            _ => {}
        }
        match std::mem::replace(&mut slot.lifecycle, Lifecycle::Completed(completion)) {
            Lifecycle::Submitted => Dispatch::Nothing,
            Lifecycle::Waiting(waker) => Dispatch::Wake(waker),
            Lifecycle::Lost => {
                slot.lifecycle = Lifecycle::Lost;
                Dispatch::Nothing
            }
            Lifecycle::Completed(first) => {
                // A second CQE for a single-shot op: keep the first, count the duplicate.
                slot.lifecycle = Lifecycle::Completed(first);
                self.unknown_completions += 1;
                Dispatch::Nothing
            }
            Lifecycle::Streaming(_) | Lifecycle::Handled { .. } | Lifecycle::Ignored(_) => {
                unreachable!("handled above")
            }
        }
    }

    /// Every slot the kernel still owns (not yet completed), for shutdown.
    pub(crate) fn in_flight(&self) -> impl Iterator<Item = OpId> + '_ {
        self.slab
            .iter()
            .filter_map(|(key, slot)| match &slot.lifecycle {
                Lifecycle::Completed(_) | Lifecycle::Lost => None,
                Lifecycle::Streaming(queue) if queue.ended() => None,
                Lifecycle::Handled { armed: false, .. } => None,
                _ => Some(OpId {
                    key: key as u32,
                    generation: slot.generation,
                }),
            })
    }

    /// Frees every handler slot with nothing in flight, returning the handlers (to be dropped
    /// once the driver is no longer borrowed).
    pub(crate) fn take_idle_handlers(&mut self) -> Vec<Rc<dyn Handler>> {
        let keys: Vec<usize> = self
            .slab
            .iter()
            .filter(|(_, slot)| matches!(slot.lifecycle, Lifecycle::Handled { armed: false, .. }))
            .map(|(key, _)| key)
            .collect();
        self.parked = 0;
        keys.into_iter()
            .filter_map(|key| match self.slab.remove(key).lifecycle {
                Lifecycle::Handled { handler, .. } => Some(handler),
                _ => None,
            })
            .collect()
    }

    /// Gives up on every slot still owned by the kernel: their resources are leaked, never
    /// freed, because the kernel may still write into them after the ring is gone.
    pub(crate) fn leak_in_flight(&mut self) -> usize {
        let ids: Vec<OpId> = self.in_flight().collect();
        for id in &ids {
            let slot = self.get(*id).expect("listed just above");
            match std::mem::replace(&mut slot.lifecycle, Lifecycle::Lost) {
                Lifecycle::Ignored(orphan) => {
                    std::mem::forget(orphan);
                    self.slab.remove(id.key as usize);
                }
                Lifecycle::Handled { handler, .. } => {
                    std::mem::forget(handler);
                    self.slab.remove(id.key as usize);
                }
                _ => {}
            }
        }
        ids.len()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    fn done(result: i32) -> Completion {
        Completion { result, flags: 0 }
    }

    /// A dropped operation's resources, counting how often the kernel's answer reached them.
    struct CountReleases(Rc<Cell<u32>>);

    impl Orphan for CountReleases {
        fn release(&mut self, _: Completion) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn a_completion_for_a_freed_slot_is_ignored_and_counted() {
        let mut slots = Slots::default();
        let id = slots.insert(Lifecycle::Submitted);
        assert!(matches!(
            slots.record(id.user_data(), done(5)),
            Dispatch::Nothing
        ));
        slots.remove(id);
        assert!(matches!(
            slots.record(id.user_data(), done(5)),
            Dispatch::Nothing
        ));
        assert_eq!(slots.unknown_completions, 1);
        assert_eq!(slots.len(), 0);
    }

    #[test]
    fn a_stale_completion_never_reaches_the_op_that_reused_its_slot() {
        let mut slots = Slots::default();
        let old = slots.insert(Lifecycle::Submitted);
        slots.remove(old);
        let new = slots.insert(Lifecycle::Submitted);
        assert_eq!(new.key, old.key, "the slab reuses the freed slot");
        assert_ne!(new.user_data(), old.user_data());
        assert!(matches!(
            slots.record(old.user_data(), done(-125)),
            Dispatch::Nothing
        ));
        assert_eq!(slots.unknown_completions, 1);
        assert!(matches!(slots.lifecycle(new), Lifecycle::Submitted));
        assert!(matches!(
            slots.record(new.user_data(), done(7)),
            Dispatch::Nothing
        ));
        assert!(matches!(slots.lifecycle(new), Lifecycle::Completed(c) if c.result == 7));
    }

    #[test]
    fn a_duplicated_completion_keeps_the_first_and_is_counted() {
        let mut slots = Slots::default();
        let id = slots.insert(Lifecycle::Submitted);
        assert!(matches!(
            slots.record(id.user_data(), done(3)),
            Dispatch::Nothing
        ));
        assert!(matches!(
            slots.record(id.user_data(), done(9)),
            Dispatch::Nothing
        ));
        assert_eq!(slots.unknown_completions, 1);
        assert!(matches!(slots.lifecycle(id), Lifecycle::Completed(c) if c.result == 3));
    }

    #[test]
    fn a_dropped_op_is_released_once_and_its_duplicate_completion_is_counted() {
        let mut slots = Slots::default();
        let releases = Rc::new(Cell::new(0));
        let id = slots.insert(Lifecycle::Ignored(Box::new(CountReleases(
            releases.clone(),
        ))));
        match slots.record(id.user_data(), done(4)) {
            Dispatch::Release(mut orphan, completion) => orphan.release(completion),
            _ => panic!("the completion of a dropped op releases its resources"),
        }
        assert_eq!(slots.len(), 0);
        assert!(matches!(
            slots.record(id.user_data(), done(4)),
            Dispatch::Nothing
        ));
        assert_eq!(releases.get(), 1, "released twice");
        assert_eq!(slots.unknown_completions, 1);
    }

    #[test]
    fn user_data_that_was_never_issued_is_ignored_and_counted() {
        let mut slots = Slots::default();
        let id = slots.insert(Lifecycle::Submitted);
        for bogus in [
            0,
            3,
            u64::MAX,
            id.user_data() + (1 << 32),
            id.user_data() + 1,
        ] {
            assert!(matches!(slots.record(bogus, done(1)), Dispatch::Nothing));
        }
        assert_eq!(slots.unknown_completions, 5);
        assert!(matches!(slots.lifecycle(id), Lifecycle::Submitted));
    }

    #[test]
    fn a_stream_takes_nothing_after_its_final_completion() {
        // The kernel posts nothing after a CQE without F_MORE: anything after it is a
        // duplicate, counted, never a new item of the stream.
        let mut slots = Slots::default();
        let queue = Rc::new(StreamQueue::default());
        let id = slots.insert(Lifecycle::Streaming(queue.clone()));
        let more = Completion {
            result: 1,
            // IORING_CQE_F_MORE
            flags: 1 << 1,
        };
        for completion in [more, done(2), done(3), more] {
            assert!(matches!(
                slots.record(id.user_data(), completion),
                Dispatch::Nothing
            ));
        }
        assert!(queue.ended());
        let taken: Vec<i32> = queue.take_ready().iter().map(|c| c.result).collect();
        assert_eq!(taken, [1, 2]);
        assert_eq!(slots.unknown_completions, 2);
    }

    #[test]
    fn a_stream_queue_fits_in_one_cache_line() {
        assert_eq!(std::mem::size_of::<StreamQueue>(), 64);
        assert_eq!(std::mem::align_of::<StreamQueue>(), 64);
    }

    /// A handler whose completions the test reads from the `Dispatch` instead.
    struct NoHandler;

    impl Handler for NoHandler {
        fn complete(self: Rc<Self>, _: Completion) {}
    }

    mod model {
        use proptest::prelude::*;

        use super::*;

        /// What happens to the slots: ops submitted, completed (also twice, also under a
        /// `user_data` whose slot was freed), awaited, dropped, re-armed.
        #[derive(Debug, Clone)]
        enum Act {
            Submit {
                awaited: bool,
            },
            Stream,
            Handled,
            /// A CQE for the `op`-th live op (modulo how many live).
            Cqe {
                op: usize,
                result: i32,
                more: bool,
            },
            /// The `op`-th live op's future takes its result (a finished single-shot op or
            /// stream frees its slot).
            Take {
                op: usize,
            },
            /// The `op`-th live op's future or stream is dropped.
            Drop {
                op: usize,
            },
            /// A parked handler slot gets its next op, or is given back.
            Rearm {
                op: usize,
            },
            Retire {
                op: usize,
            },
            /// A CQE under the `user_data` of the `op`-th op whose slot was freed.
            Stale {
                op: usize,
                result: i32,
            },
        }

        fn act() -> impl Strategy<Value = Act> {
            prop_oneof![
                3 => any::<bool>().prop_map(|awaited| Act::Submit { awaited }),
                1 => Just(Act::Stream),
                1 => Just(Act::Handled),
                6 => (any::<usize>(), -200..200i32, any::<bool>())
                    .prop_map(|(op, result, more)| Act::Cqe { op, result, more }),
                3 => any::<usize>().prop_map(|op| Act::Take { op }),
                2 => any::<usize>().prop_map(|op| Act::Drop { op }),
                2 => any::<usize>().prop_map(|op| Act::Rearm { op }),
                1 => any::<usize>().prop_map(|op| Act::Retire { op }),
                2 => (any::<usize>(), -200..200i32).prop_map(|(op, result)| Act::Stale { op, result }),
            ]
        }

        /// What the test expects of one live op.
        #[derive(Debug)]
        enum Expect {
            Single {
                done: Option<i32>,
                awaited: bool,
            },
            Ignored,
            Stream {
                items: usize,
                ended: bool,
                queue: Rc<StreamQueue>,
            },
            Handled {
                armed: bool,
            },
        }

        struct Model {
            live: Vec<(OpId, Expect)>,
            dead: Vec<OpId>,
            unknown: u64,
            releases: u32,
        }

        const F_MORE: u32 = 1 << 1;

        fn check(
            slots: &mut Slots,
            model: &Model,
            released: &Cell<u32>,
        ) -> Result<(), TestCaseError> {
            prop_assert_eq!(slots.unknown_completions, model.unknown);
            prop_assert_eq!(released.get(), model.releases, "each result released once");
            prop_assert_eq!(slots.len(), model.live.len());
            let parked = model
                .live
                .iter()
                .filter(|(_, e)| matches!(e, Expect::Handled { armed: false }))
                .count();
            prop_assert_eq!(slots.active(), model.live.len() - parked);
            let mut kernel_owned: Vec<u64> = model
                .live
                .iter()
                .filter(|(_, e)| match e {
                    Expect::Single { done, .. } => done.is_none(),
                    Expect::Ignored => true,
                    Expect::Stream { ended, .. } => !ended,
                    Expect::Handled { armed } => *armed,
                })
                .map(|(id, _)| id.user_data())
                .collect();
            let mut in_flight: Vec<u64> = slots.in_flight().map(OpId::user_data).collect();
            kernel_owned.sort_unstable();
            in_flight.sort_unstable();
            prop_assert_eq!(
                in_flight,
                kernel_owned,
                "in_flight lists what the kernel owns"
            );
            for (id, expect) in &model.live {
                let lifecycle = slots.get_lifecycle(*id);
                prop_assert!(lifecycle.is_some(), "a live op keeps its slot");
                let ok = match (lifecycle.unwrap(), expect) {
                    (
                        Lifecycle::Submitted,
                        Expect::Single {
                            done: None,
                            awaited: false,
                        },
                    ) => true,
                    (
                        Lifecycle::Waiting(_),
                        Expect::Single {
                            done: None,
                            awaited: true,
                        },
                    ) => true,
                    (Lifecycle::Completed(c), Expect::Single { done: Some(r), .. }) => {
                        c.result == *r
                    }
                    (Lifecycle::Ignored(_), Expect::Ignored) => true,
                    (Lifecycle::Streaming(q), Expect::Stream { items, ended, .. }) => {
                        q.ended() == *ended && q.inner.borrow().ready.len() == *items
                    }
                    (Lifecycle::Handled { armed, .. }, Expect::Handled { armed: want }) => {
                        armed == want
                    }
                    _ => false,
                };
                prop_assert!(ok, "op {:?} is not {:?}", id, expect);
            }
            for id in &model.dead {
                prop_assert!(
                    slots.get_lifecycle(*id).is_none(),
                    "a freed op's id finds nothing"
                );
            }
            Ok(())
        }

        fn run(acts: Vec<Act>) -> Result<(), TestCaseError> {
            let mut slots = Slots::default();
            let released = Rc::new(Cell::new(0));
            let orphan = || -> Box<dyn Orphan> { Box::new(CountReleases(released.clone())) };
            let mut m = Model {
                live: Vec::new(),
                dead: Vec::new(),
                unknown: 0,
                releases: 0,
            };
            for act in acts {
                let n = m.live.len();
                match act {
                    Act::Submit { awaited } => {
                        let lifecycle = if awaited {
                            Lifecycle::Waiting(Waker::noop().clone())
                        } else {
                            Lifecycle::Submitted
                        };
                        let id = slots.insert(lifecycle);
                        m.live.push((
                            id,
                            Expect::Single {
                                done: None,
                                awaited,
                            },
                        ));
                    }
                    Act::Stream => {
                        let queue = Rc::new(StreamQueue::default());
                        let id = slots.insert(Lifecycle::Streaming(queue.clone()));
                        m.live.push((
                            id,
                            Expect::Stream {
                                items: 0,
                                ended: false,
                                queue,
                            },
                        ));
                    }
                    Act::Handled => {
                        let handler: Rc<dyn Handler> = Rc::new(NoHandler);
                        let id = slots.insert(Lifecycle::Handled {
                            handler,
                            armed: true,
                        });
                        m.live.push((id, Expect::Handled { armed: true }));
                    }
                    Act::Cqe { .. }
                    | Act::Take { .. }
                    | Act::Drop { .. }
                    | Act::Rearm { .. }
                    | Act::Retire { .. }
                        if n == 0 => {}
                    Act::Cqe { op, result, more } => {
                        let i = op % n;
                        let id = m.live[i].0;
                        let completion = Completion {
                            result,
                            flags: if more { F_MORE } else { 0 },
                        };
                        let dispatch = slots.record(id.user_data(), completion);
                        let mut freed = false;
                        match (&mut m.live[i].1, dispatch) {
                            (
                                Expect::Single {
                                    done: done @ None,
                                    awaited,
                                },
                                d,
                            ) => {
                                prop_assert_eq!(matches!(d, Dispatch::Wake(_)), *awaited);
                                prop_assert!(matches!(d, Dispatch::Wake(_) | Dispatch::Nothing));
                                *done = Some(result);
                            }
                            (Expect::Single { done: Some(_), .. }, Dispatch::Nothing) => {
                                m.unknown += 1
                            }
                            (Expect::Ignored, Dispatch::Nothing) if more => m.releases += 1,
                            (Expect::Ignored, Dispatch::Release(mut orphan, c)) if !more => {
                                prop_assert_eq!(c.result, result);
                                orphan.release(c);
                                m.releases += 1;
                                freed = true;
                            }
                            (Expect::Stream { ended: true, .. }, Dispatch::Nothing) => {
                                m.unknown += 1
                            }
                            (Expect::Stream { items, ended, .. }, Dispatch::Nothing) => {
                                *items += 1;
                                *ended = !more;
                            }
                            (
                                Expect::Handled {
                                    armed: armed @ true,
                                },
                                Dispatch::Handle(_, c),
                            ) => {
                                prop_assert_eq!(c.result, result);
                                *armed = false;
                            }
                            (Expect::Handled { armed: false }, Dispatch::Nothing) => m.unknown += 1,
                            (expect, _) => prop_assert!(false, "wrong dispatch for {:?}", expect),
                        }
                        if freed {
                            m.dead.push(m.live.swap_remove(i).0);
                        }
                    }
                    Act::Take { op } => {
                        let i = op % n;
                        let id = m.live[i].0;
                        match &m.live[i].1 {
                            Expect::Single { done: Some(_), .. } => {}
                            Expect::Stream {
                                ended: true, queue, ..
                            } => {
                                drop(queue.take_ready());
                                m.live[i].1 = Expect::Stream {
                                    items: 0,
                                    ended: true,
                                    queue: queue.clone(),
                                };
                            }
                            _ => continue,
                        }
                        slots.remove(id);
                        m.dead.push(m.live.swap_remove(i).0);
                    }
                    Act::Drop { op } => {
                        // What `Driver::abandon` does with the slots.
                        let i = op % n;
                        let id = m.live[i].0;
                        let freed = match &m.live[i].1 {
                            Expect::Single { done: Some(_), .. } => {
                                m.releases += 1;
                                released.set(released.get() + 1);
                                true
                            }
                            Expect::Single { done: None, .. } => {
                                *slots.lifecycle(id) = Lifecycle::Ignored(orphan());
                                m.live[i].1 = Expect::Ignored;
                                false
                            }
                            Expect::Stream { ended, queue, .. } => {
                                let left = queue.take_ready().into_iter().count() as u32;
                                m.releases += left;
                                released.set(released.get() + left);
                                if *ended {
                                    true
                                } else {
                                    *slots.lifecycle(id) = Lifecycle::Ignored(orphan());
                                    m.live[i].1 = Expect::Ignored;
                                    false
                                }
                            }
                            Expect::Ignored | Expect::Handled { .. } => continue,
                        };
                        if freed {
                            slots.remove(id);
                            m.dead.push(m.live.swap_remove(i).0);
                        }
                    }
                    Act::Rearm { op } => {
                        let i = op % n;
                        let id = m.live[i].0;
                        let rearmed = slots.rearm_handled(id);
                        match &m.live[i].1 {
                            Expect::Handled { armed: false } => {
                                let new = rearmed.expect("a parked handler slot re-arms");
                                prop_assert_ne!(
                                    new.user_data(),
                                    id.user_data(),
                                    "a fresh generation"
                                );
                                m.dead.push(id);
                                m.live[i] = (new, Expect::Handled { armed: true });
                            }
                            _ => prop_assert!(
                                rearmed.is_none(),
                                "only a parked handler slot re-arms"
                            ),
                        }
                    }
                    Act::Retire { op } => {
                        let i = op % n;
                        let id = m.live[i].0;
                        let removed = slots.remove_parked(id);
                        if matches!(m.live[i].1, Expect::Handled { armed: false }) {
                            prop_assert!(removed.is_some());
                            m.dead.push(m.live.swap_remove(i).0);
                        } else {
                            prop_assert!(
                                removed.is_none(),
                                "only a parked handler slot is retired"
                            );
                        }
                    }
                    Act::Stale { op, result } => {
                        if m.dead.is_empty() {
                            continue;
                        }
                        let id = m.dead[op % m.dead.len()];
                        let dispatch =
                            slots.record(id.user_data(), Completion { result, flags: 0 });
                        prop_assert!(
                            matches!(dispatch, Dispatch::Nothing),
                            "a stale CQE does nothing"
                        );
                        m.unknown += 1;
                    }
                }
                check(&mut slots, &m, &released)?;
            }
            Ok(())
        }

        proptest! {
            /// Every CQE reaches the op it was issued for, once; duplicates and CQEs under a
            /// freed or re-armed `user_data` are counted and change nothing; `in_flight` and
            /// `active` agree with what the kernel still owns.
            #[test]
            fn slots_match_a_model_of_their_ops(acts in proptest::collection::vec(act(), 0..300)) {
                run(acts)?;
            }
        }
    }
}
