//! The states a task moves through, one paragraph each.
//!
//! Transitions are made by [`TaskSlab`](super::slab::TaskSlab) only; this file owns the names.

/// Where a task is in its life. A task is in the run queue exactly when it is `Scheduled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Waiting for an event. Not in the run queue; a wake moves it to `Scheduled`.
    Idle,
    /// In the run queue exactly once. Further wakes change nothing until it is polled.
    Scheduled,
    /// Being polled: its future is out of the slot. A wake now moves it to `RunningNotified`.
    Running,
    /// Woken while being polled: when the poll returns `Pending` it goes straight back to the
    /// run queue (this is how `yield_now` reschedules itself).
    RunningNotified,
    /// Completed, panicked or cancelled. The future is gone; its output (or the error) waits in
    /// the slot for the `JoinHandle`, or the slot is freed at once if the handle was dropped.
    Finished,
}
