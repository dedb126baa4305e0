//! The run queue: ready tasks in FIFO order, drained a budget at a time.
//!
//! A task is in the queue at most once (the slab's `Scheduled` state guarantees it), so the
//! queue's length is the number of ready tasks. The budget is how many tasks one reactor turn
//! polls before it looks at the ring and the timers again: a task that yields forever goes to
//! the back of the queue each time and cannot starve I/O or timers.

use std::collections::VecDeque;

use crate::task::TaskId;

#[derive(Debug, Default)]
pub(crate) struct RunQueue {
    ready: VecDeque<TaskId>,
}

impl RunQueue {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        RunQueue {
            ready: VecDeque::with_capacity(capacity),
        }
    }

    pub(crate) fn push(&mut self, id: TaskId) {
        self.ready.push_back(id);
    }

    pub(crate) fn pop(&mut self) -> Option<TaskId> {
        self.ready.pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.ready.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }
}
