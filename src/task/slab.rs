//! The task slab: every live task's slot, addressed by key and checked by generation.
//!
//! This is a pure data structure: it knows nothing of the run queue, the ring or threads. Each
//! method performs one transition of [`State`] and tells the caller what to do next (push to the
//! run queue, poll, drop something *after* releasing the slab), so that no user code ever runs
//! while the slab is borrowed.

use std::task::{Poll, Waker};

use slab::Slab;

use super::cell::BoxedTask;
use super::state::State;
use super::waker::{GEN_BITS, KEY_BITS};
use super::TaskId;

/// The largest key a spawned task may have; the key above it is reserved for `block_on`'s future.
pub(crate) const MAX_TASK_KEY: u32 = (1 << KEY_BITS) - 2;
/// The key used by wakers of the future passed to `block_on`.
pub(crate) const MAIN_KEY: u32 = MAX_TASK_KEY + 1;

struct Slot {
    generation: u32,
    state: State,
    /// `JoinHandle::abort` was called: cancel instead of polling.
    abort: bool,
    /// The `JoinHandle` is gone: free the slot as soon as the task finishes.
    detached: bool,
    /// The scheduling class the task was spawned in (fits in the slot's padding).
    class: u8,
    /// `None` exactly while the task is being polled. The cell also holds the `JoinHandle`'s
    /// waker, which keeps this slot at three words.
    task: Option<BoxedTask>,
}

/// What the runner should do with a task it popped from the run queue.
#[must_use]
pub(crate) enum Start {
    /// Poll it.
    Poll(BoxedTask),
    /// `abort` was called: cancel it, then call [`TaskSlab::finish_poll`] with `Ready`.
    Cancel(BoxedTask),
    /// The id is stale or the task is not scheduled: nothing to do.
    Skip,
}

/// What happened after a poll; the caller acts on it after releasing the slab.
#[must_use]
pub(crate) enum AfterPoll {
    /// Back to idle until woken.
    Idle,
    /// Woken during its poll: push it to the run queue again.
    Reschedule,
    /// Finished with a live `JoinHandle`: wake the handle's waker, if any.
    Finished(Option<Waker>),
    /// Finished and detached: the slot is free; drop the cell (its output) outside the slab.
    Freed(BoxedTask),
}

/// The answer to a `JoinHandle` poll.
#[must_use]
pub(crate) enum JoinPoll {
    /// The output was moved out and the slot freed; drop the (now empty) cell outside the slab.
    Finished(BoxedTask),
    /// Not finished; the waker it replaced, to drop outside the slab.
    Pending(Option<Waker>),
    /// The slot is gone: the runtime shut down and dropped the task.
    Gone,
}

/// Every live task of one runtime.
#[derive(Default)]
pub(crate) struct TaskSlab {
    slots: Slab<Slot>,
    next_generation: u32,
    /// Live slots per class, for admission limits.
    live: Vec<u32>,
}

impl std::fmt::Debug for TaskSlab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSlab")
            .field("len", &self.slots.len())
            .finish()
    }
}

const SPAWN_LIMIT: &str = "ringloop: more than 2^26 live tasks on one runtime";

impl TaskSlab {
    /// Number of live slots (running, idle, or finished and not yet joined).
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Live slots of tasks spawned in `class`.
    pub(crate) fn live_in(&self, class: u8) -> usize {
        self.live.get(usize::from(class)).map_or(0, |n| *n as usize)
    }

    /// Stores a new task of `class`, already `Scheduled`: the caller pushes the returned id to
    /// that class's run queue.
    pub(crate) fn insert(&mut self, task: BoxedTask, class: u8) -> TaskId {
        let entry = self.slots.vacant_entry();
        let key = u32::try_from(entry.key())
            .ok()
            .filter(|k| *k <= MAX_TASK_KEY)
            .expect(SPAWN_LIMIT);
        let generation = self.next_generation;
        self.next_generation = (generation + 1) & ((1 << GEN_BITS) - 1);
        entry.insert(Slot {
            generation,
            state: State::Scheduled,
            abort: false,
            detached: false,
            class,
            task: Some(task),
        });
        let class = usize::from(class);
        if self.live.len() <= class {
            self.live.resize(class + 1, 0);
        }
        self.live[class] += 1;
        TaskId { key, generation }
    }

    /// Frees a slot, keeping the per-class counts right.
    fn free(&mut self, key: usize) -> Slot {
        let slot = self.slots.remove(key);
        self.live[usize::from(slot.class)] -= 1;
        slot
    }

    fn slot(&mut self, id: TaskId) -> Option<&mut Slot> {
        self.slots
            .get_mut(id.key as usize)
            .filter(|slot| slot.generation == id.generation)
    }

    /// A wake. Returns the task's class when the caller must push `id` to its run queue.
    #[inline]
    pub(crate) fn wake(&mut self, id: TaskId) -> Option<u8> {
        let slot = self.slot(id)?;
        match slot.state {
            State::Idle => {
                slot.state = State::Scheduled;
                Some(slot.class)
            }
            State::Running => {
                slot.state = State::RunningNotified;
                None
            }
            State::Scheduled | State::RunningNotified | State::Finished => None,
        }
    }

    /// Takes a scheduled task out of its slot to poll (or cancel) it.
    #[inline]
    pub(crate) fn start_poll(&mut self, id: TaskId) -> Start {
        let Some(slot) = self.slot(id) else {
            return Start::Skip;
        };
        if slot.state != State::Scheduled {
            return Start::Skip;
        }
        slot.state = State::Running;
        let task = slot.task.take().expect("a scheduled task is in its slot");
        if slot.abort {
            Start::Cancel(task)
        } else {
            Start::Poll(task)
        }
    }

    /// Puts a polled task back and moves it to its next state.
    #[inline]
    pub(crate) fn finish_poll(&mut self, id: TaskId, task: BoxedTask, poll: Poll<()>) -> AfterPoll {
        let Some(slot) = self.slot(id) else {
            // Only shutdown frees a running task's slot; the cell is dropped by the caller.
            return AfterPoll::Freed(task);
        };
        if poll.is_ready() {
            if slot.detached {
                self.free(id.key as usize);
                return AfterPoll::Freed(task);
            }
            slot.state = State::Finished;
            let mut task = task;
            let join_waker = task.as_mut().join_waker().take();
            slot.task = Some(task);
            return AfterPoll::Finished(join_waker);
        }
        slot.task = Some(task);
        if slot.state == State::RunningNotified || slot.abort {
            slot.state = State::Scheduled;
            AfterPoll::Reschedule
        } else {
            slot.state = State::Idle;
            AfterPoll::Idle
        }
    }

    /// `JoinHandle::poll`: moves the output into `dst` if finished, else stores `waker`.
    ///
    /// # Safety
    ///
    /// `dst` must point to a valid `Poll<Result<T, JoinError>>` where `T` is the output type of
    /// the task `id` was returned for.
    pub(crate) unsafe fn poll_join(&mut self, id: TaskId, waker: &Waker, dst: *mut ()) -> JoinPoll {
        let Some(slot) = self.slot(id) else {
            return JoinPoll::Gone;
        };
        if slot.state == State::Finished {
            // The handle has what it waited for: free the slot now, while it is hot.
            let mut task = self
                .free(id.key as usize)
                .task
                .expect("a finished task is in its slot");
            // SAFETY: (C2) forwarded from this function's contract.
            unsafe { task.as_mut().take_output(dst) };
            return JoinPoll::Finished(task);
        }
        // No cell while the task runs: only the task itself can poll its handle then, and a
        // task awaiting its own end never ends, with or without a waker.
        let Some(task) = slot.task.as_mut() else {
            return JoinPoll::Pending(None);
        };
        let join_waker = task.as_mut().join_waker();
        let replaced = match join_waker {
            Some(current) if current.will_wake(waker) => None,
            _ => join_waker.replace(waker.clone()),
        };
        JoinPoll::Pending(replaced)
    }

    /// `JoinHandle::is_finished`.
    pub(crate) fn is_finished(&mut self, id: TaskId) -> bool {
        self.slot(id)
            .is_none_or(|slot| slot.state == State::Finished)
    }

    /// `JoinHandle::abort`. Returns the task's class when the caller must push `id` to its
    /// run queue.
    pub(crate) fn abort(&mut self, id: TaskId) -> Option<u8> {
        let slot = self.slot(id)?;
        if slot.state == State::Finished {
            return None;
        }
        slot.abort = true;
        self.wake(id)
    }

    /// The `JoinHandle` was dropped. Returns what the caller must drop outside the slab: the
    /// finished cell if the slot was freed, and the handle's stale waker.
    pub(crate) fn detach(&mut self, id: TaskId) -> (Option<BoxedTask>, Option<Waker>) {
        let Some(slot) = self.slot(id) else {
            return (None, None);
        };
        let waker = slot
            .task
            .as_mut()
            .and_then(|task| task.as_mut().join_waker().take());
        if slot.state == State::Finished {
            let slot = self.free(id.key as usize);
            return (slot.task, waker);
        }
        slot.detached = true;
        (None, waker)
    }

    /// Removes any one task, for shutdown. The caller drops it outside the slab, then calls
    /// again until `None`: dropping a future may drop `JoinHandle`s that reach back in here.
    pub(crate) fn remove_any(&mut self) -> Option<Option<BoxedTask>> {
        let key = self.slots.iter().next()?.0;
        Some(self.free(key).task)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::cell::TaskCell;
    use proptest::prelude::*;
    use std::collections::VecDeque;
    use std::task::{Context, Poll};

    #[derive(Debug, Clone)]
    enum Action {
        Spawn,
        Wake(usize),
        Run { ready: bool },
        Abort(usize),
        Detach(usize),
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            2 => Just(Action::Spawn),
            3 => any::<usize>().prop_map(Action::Wake),
            3 => any::<bool>().prop_map(|ready| Action::Run { ready }),
            1 => any::<usize>().prop_map(Action::Abort),
            1 => any::<usize>().prop_map(Action::Detach),
        ]
    }

    /// The model of one task: is it finished, is its handle alive.
    #[derive(Debug, Clone, Copy)]
    struct Model {
        id: TaskId,
        finished: bool,
        detached: bool,
    }

    proptest! {
        /// The slab against a model: a task is queued at most once, stale ids (finished and
        /// freed, slot reused) never reach a live task, and slots are freed exactly when the
        /// task is finished and its handle gone.
        #[test]
        fn slab_matches_model(actions in proptest::collection::vec(action(), 1..300)) {
            let mut slab = TaskSlab::default();
            let mut queue: VecDeque<TaskId> = VecDeque::new();
            let mut tasks: Vec<Model> = Vec::new();
            let waker = std::task::Waker::noop();
            for action in actions {
                match action {
                    Action::Spawn => {
                        let id = slab.insert(TaskCell::boxed(std::future::pending::<()>()), 0);
                        prop_assert!(!tasks.iter().any(|t| t.id == id && !(t.finished && t.detached)));
                        queue.push_back(id);
                        tasks.push(Model { id, finished: false, detached: false });
                    }
                    Action::Wake(i) if !tasks.is_empty() => {
                        let id = tasks[i % tasks.len()].id;
                        if slab.wake(id).is_some() {
                            prop_assert!(!queue.contains(&id), "queued twice");
                            queue.push_back(id);
                        }
                    }
                    Action::Run { ready } => {
                        let Some(id) = queue.pop_front() else { continue };
                        let model = tasks.iter().position(|t| t.id == id).unwrap();
                        let (cell, poll) = match slab.start_poll(id) {
                            Start::Skip => { prop_assert!(false, "a queued task must start"); unreachable!() }
                            Start::Poll(mut cell) => {
                                prop_assert!(!tasks[model].finished);
                                let _ = cell.as_mut().poll(&mut Context::from_waker(waker));
                                (cell, if ready { Poll::Ready(()) } else { Poll::Pending })
                            }
                            Start::Cancel(mut cell) => {
                                cell.as_mut().cancel();
                                (cell, Poll::Ready(()))
                            }
                        };
                        match slab.finish_poll(id, cell, poll) {
                            AfterPoll::Idle => prop_assert!(poll.is_pending()),
                            AfterPoll::Reschedule => queue.push_back(id),
                            AfterPoll::Finished(_) => {
                                prop_assert!(!tasks[model].detached);
                                tasks[model].finished = true;
                            }
                            AfterPoll::Freed(_) => {
                                prop_assert!(tasks[model].detached);
                                tasks.remove(model);
                            }
                        }
                    }
                    Action::Abort(i) if !tasks.is_empty() => {
                        let i = i % tasks.len();
                        if !tasks[i].detached && slab.abort(tasks[i].id).is_some() {
                            prop_assert!(!queue.contains(&tasks[i].id));
                            queue.push_back(tasks[i].id);
                        }
                    }
                    Action::Detach(i) if !tasks.is_empty() => {
                        let i = i % tasks.len();
                        if tasks[i].detached {
                            continue;
                        }
                        let (freed, _) = slab.detach(tasks[i].id);
                        prop_assert_eq!(freed.is_some(), tasks[i].finished);
                        if tasks[i].finished {
                            tasks.remove(i);
                        } else {
                            tasks[i].detached = true;
                        }
                    }
                    _ => {}
                }
                prop_assert_eq!(slab.len(), tasks.len());
                prop_assert_eq!(slab.live_in(0), tasks.len());
                for t in &tasks {
                    prop_assert_eq!(slab.is_finished(t.id), t.finished);
                }
            }
        }
    }
}
