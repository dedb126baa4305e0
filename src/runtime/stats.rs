//! Counters the runtime keeps as it turns, and the snapshot users read.

use std::cell::Cell;

/// A snapshot of one runtime's counters, from [`Runtime::stats`](crate::Runtime::stats).
///
/// Counters only grow; gauges (`*_alive`, `*_in_flight`, `ready_queue_depth`) are current values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// Tasks spawned since the runtime was built.
    pub tasks_spawned: u64,
    /// Task slots in use: running, waiting, or finished and not yet joined.
    pub tasks_alive: u64,
    /// Polls of spawned tasks.
    pub polls: u64,
    /// Tasks ready to run right now.
    pub ready_queue_depth: u64,
    /// `io_uring_enter` calls.
    pub ring_enters: u64,
    /// Submission queue entries handed to the kernel.
    pub sqes_submitted: u64,
    /// Completion queue entries reaped.
    pub cqes_reaped: u64,
    /// Completions the kernel *dropped* (its CQ overflow counter). With `IORING_FEAT_NODROP`,
    /// which ringloop requires, completions that do not fit wait in the kernel instead, so this
    /// stays 0 unless the kernel could not allocate room for its backlog.
    pub cq_overflows: u64,
    /// How many times the completion queue was found full with completions waiting in the
    /// kernel's backlog, which the runtime then flushed. Non-zero means the CQ is too small.
    pub cq_overflow_flushes: u64,
    /// Operations that found the submission queue full while the kernel took no more (it
    /// answered `EBUSY` or `EAGAIN`), and waited in the runtime for the next turn instead of
    /// failing. Growing steadily means [`Builder::entries`](crate::Builder::entries) is small
    /// for the load.
    pub sqes_backlogged: u64,
    /// `ASYNC_CANCEL` requests submitted for dropped operations.
    pub cancels_submitted: u64,
    /// Completions for a `user_data` that matched no live operation (ignored).
    pub unknown_completions: u64,
    /// Operations the kernel still owns.
    pub ops_in_flight: u64,
    /// Timers fired.
    pub timers_fired: u64,
    /// Timers registered in the wheel (fired ones included until their `Sleep` is dropped).
    pub timers_alive: u64,
    /// Wakes and spawns that arrived from other threads.
    pub remote_wakes: u64,
    /// Reads of the eventfd that lets other threads wake a sleeping runtime that failed.
    /// After three failures in a row the runtime stops sleeping on it: it re-tries after a
    /// pause (1 ms, doubling up to 100 ms) and meanwhile wakes at least that often to look for
    /// work from other threads, so such work waits at most 100 ms. 0 on a healthy kernel.
    pub doorbell_failures: u64,
    /// The ring was set up with `IORING_SETUP_SINGLE_ISSUER`.
    pub single_issuer: bool,
    /// The ring was set up with `IORING_SETUP_DEFER_TASKRUN`.
    pub defer_taskrun: bool,
    /// The ring was set up with `IORING_SETUP_COOP_TASKRUN`.
    pub coop_taskrun: bool,
    /// Listeners and pooled receives keep multishot requests armed (Linux 5.19+; see
    /// [`Builder::multishot`](crate::Builder::multishot)); otherwise they arm one request per
    /// connection or chunk.
    pub multishot: bool,
    /// Buffer pools are provided-buffer rings the kernel picks from (Linux 5.19+; see
    /// [`Builder::buf_rings`](crate::Builder::buf_rings)); otherwise each armed receive is lent
    /// one buffer of the pool.
    pub buf_rings: bool,
    /// Per task class, the default class (`spawn`) first.
    pub classes: Vec<ClassStats>,
}

/// One task class's share of the work, in [`RuntimeStats::classes`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClassStats {
    /// The class's name (`"default"` for tasks spawned with `spawn`).
    pub name: String,
    /// Its CPU shares.
    pub shares: u32,
    /// Its live tasks.
    pub tasks_alive: u64,
    /// Polls of its tasks.
    pub polls: u64,
    /// Time spent polling its tasks. Measured only when the runtime has more than one class
    /// (with one there is nothing to share, and the clock reads are not free): zero otherwise.
    pub cpu_time: std::time::Duration,
}

impl RuntimeStats {
    /// A snapshot of the counters of the runtime this code runs on: what
    /// [`Runtime::stats`](crate::Runtime::stats) gives, reachable from inside a task (a
    /// `/metrics` handler, a shard that has no `Runtime` value in scope).
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// ringloop::block_on(async {
    ///     ringloop::spawn(async {}).await.unwrap();
    ///     let stats = ringloop::RuntimeStats::current();
    ///     assert!(stats.tasks_spawned >= 1);
    /// });
    /// ```
    #[track_caller]
    pub fn current() -> RuntimeStats {
        super::context::with_current(|core| core.stats())
            .unwrap_or_else(|| super::context::no_runtime())
    }

    /// The counters of the class called `name` (`"default"` for `spawn`'s).
    pub fn class(&self, name: &str) -> Option<&ClassStats> {
        self.classes.iter().find(|c| c.name == name)
    }
}

/// The scheduler's own counters (the driver keeps its own).
#[derive(Debug, Default)]
pub(crate) struct SchedulerCounters {
    pub(crate) tasks_spawned: Cell<u64>,
    pub(crate) timers_fired: Cell<u64>,
    pub(crate) remote_wakes: Cell<u64>,
}

pub(crate) fn bump(counter: &Cell<u64>, by: u64) {
    counter.set(counter.get().wrapping_add(by));
}
