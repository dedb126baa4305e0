//! The runtime: one thread, one ring, one task slab, one timer wheel, and the reactor turn.
//!
//! A turn, as [`Core::turn`] reads:
//!
//! 1. `run_ready_tasks` — poll up to `event_interval` ready tasks, the scheduler choosing the
//!    class (by virtual runtime, latency-sensitive first) and FIFO within a class; with more
//!    than one class, also stop after a time slice so timers and I/O are not kept waiting;
//! 2. `receive_remote` — take wakes and spawns other threads queued;
//! 3. `fire_expired_timers`;
//! 4. `wait_for_completions` — if nothing is ready, block in one `io_uring_enter` whose timeout
//!    is the next timer deadline; otherwise submit and reap without blocking (and skip the
//!    syscall when there is nothing to submit or reap);
//! 5. `fire_expired_timers` again, for the timers the wait was waiting for.
#![forbid(unsafe_code)]

mod builder;
pub(crate) mod context;
mod handle;
mod scheduler;
mod stats;
mod timers;

pub use builder::Builder;
pub use handle::Handle;
pub use scheduler::{Latency, TaskClass};
pub use stats::{ClassStats, RuntimeStats};

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::blocking::BlockingPool;
use crate::driver::ring::RingConfig;
use crate::driver::{Driver, Wait};
use crate::task::cell::TaskCell;
use crate::task::slab::{AfterPoll, Start, TaskSlab, MAIN_KEY};
use crate::task::waker::{waker, WakeTarget};
use crate::task::{budget, JoinHandle, SpawnError, TaskId};
use handle::{RemoteFuture, Shared};
use scheduler::{ClassConfig, Scheduler};
use stats::{bump, SchedulerCounters};
pub(crate) use timers::Timers;

const MAIN_TASK: TaskId = TaskId {
    key: MAIN_KEY,
    generation: 0,
};

/// Everything a runtime owns, shared by `Rc` with the handles that reach back into it
/// (`JoinHandle`, `Sleep`). Only ever touched from the runtime's thread.
pub(crate) struct Core {
    shared: Arc<Shared>,
    pub(crate) tasks: RefCell<TaskSlab>,
    scheduler: RefCell<Scheduler>,
    max_tasks: Option<usize>,
    main_woken: Cell<bool>,
    pub(crate) driver: Rc<Driver>,
    pub(crate) timers: Timers,
    counters: SchedulerCounters,
    event_interval: usize,
    timer_spin: Duration,
    remote_wakes: RefCell<Vec<TaskId>>,
    remote_spawns: RefCell<Vec<RemoteFuture>>,
    /// Started on the first `spawn_blocking`.
    blocking: std::cell::OnceCell<BlockingPool>,
    blocking_config: (usize, Duration),
    /// Set by [`Runtime::shutdown_timeout`]: how long the shutdown may wait, in all.
    shutdown_deadline: Cell<Option<Instant>>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("id", &self.shared.id)
            .finish_non_exhaustive()
    }
}

/// A wake for `target`, from any thread: direct on the runtime's own thread, through its
/// remote queue from anywhere else. Wakes for runtimes that are gone do nothing.
pub(crate) fn wake(target: WakeTarget) {
    let local = context::with_current(|core| {
        let mine = core.shared.id == target.runtime;
        if mine {
            core.schedule(target.task);
        }
        mine
    });
    if local != Some(true) {
        handle::wake_remote(target);
    }
}

/// What a runtime is built with, besides its ring.
pub(crate) struct CoreConfig {
    pub(crate) event_interval: usize,
    pub(crate) timer_spin: Duration,
    pub(crate) blocking: (usize, Duration),
    pub(crate) classes: Vec<ClassConfig>,
    pub(crate) max_tasks: Option<usize>,
    pub(crate) start_paused: bool,
}

/// With several classes, a turn polls at most this long before it looks at timers and the
/// ring again, so a ready latency-sensitive task waits at most about this (plus one poll).
const TIME_SLICE: Duration = Duration::from_micros(250);

impl Core {
    pub(crate) fn spawn<F: Future + 'static>(self: &Rc<Self>, future: F) -> JoinHandle<F::Output> {
        JoinHandle::new(self.clone(), self.insert_task(future, 0))
    }

    #[track_caller]
    pub(crate) fn spawn_in<F: Future + 'static>(
        self: &Rc<Self>,
        class: &TaskClass,
        future: F,
    ) -> JoinHandle<F::Output> {
        let class = self.class_index(class);
        JoinHandle::new(self.clone(), self.insert_task(future, class))
    }

    /// Spawns unless the runtime's or the class's admission limit is reached.
    #[track_caller]
    pub(crate) fn try_spawn_in<F: Future + 'static>(
        self: &Rc<Self>,
        class: Option<&TaskClass>,
        future: F,
    ) -> Result<JoinHandle<F::Output>, SpawnError<F>> {
        let class = class.map_or(0, |class| self.class_index(class));
        {
            let tasks = self.tasks.borrow();
            let scheduler = self.scheduler.borrow();
            let class_limit = scheduler.classes()[usize::from(class)].config.max_tasks;
            if self.max_tasks.is_some_and(|max| tasks.len() >= max)
                || class_limit.is_some_and(|max| tasks.live_in(class) >= max)
            {
                return Err(SpawnError::Full(future));
            }
        }
        Ok(JoinHandle::new(
            self.clone(),
            self.insert_task(future, class),
        ))
    }

    #[track_caller]
    fn class_index(&self, class: &TaskClass) -> u8 {
        let scheduler = self.scheduler.borrow();
        match scheduler.classes().get(usize::from(class.index)) {
            Some(c) if Arc::ptr_eq(&c.config.name, &class.name) => class.index,
            _ => panic!(
                "ringloop: task class {class:?} was not configured on this runtime's Builder"
            ),
        }
    }

    /// Stores a new task of `class`, ready to run.
    fn insert_task<F: Future + 'static>(&self, future: F, class: u8) -> TaskId {
        // Every poll of the task runs inside its span, so what its ops log is attributed to it.
        #[cfg(feature = "tracing")]
        let cell = TaskCell::boxed_in(
            future,
            tracing::trace_span!("task", task = self.counters.tasks_spawned.get() + 1, class),
        );
        #[cfg(not(feature = "tracing"))]
        let cell = TaskCell::boxed(future);
        let id = self.tasks.borrow_mut().insert(cell, class);
        self.scheduler.borrow_mut().push(class, id);
        bump(&self.counters.tasks_spawned, 1);
        id
    }

    pub(crate) fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// Whether `handle` is this runtime's (exact: the handle keeps what it compares alive).
    #[cfg(feature = "hyper")]
    pub(crate) fn is_handled_by(&self, handle: &Handle) -> bool {
        Arc::ptr_eq(&self.shared, &handle.shared)
    }

    pub(crate) fn blocking_pool(&self) -> &BlockingPool {
        let (max_threads, keep_alive) = self.blocking_config;
        self.blocking
            .get_or_init(|| BlockingPool::new(max_threads, keep_alive))
    }

    /// A local wake.
    #[inline]
    pub(crate) fn schedule(&self, id: TaskId) {
        if id.key == MAIN_KEY {
            self.main_woken.set(true);
        } else {
            let class = self.tasks.borrow_mut().wake(id);
            if let Some(class) = class {
                self.scheduler.borrow_mut().push(class, id);
            }
        }
    }

    pub(crate) fn abort(&self, id: TaskId) {
        let class = self.tasks.borrow_mut().abort(id);
        if let Some(class) = class {
            self.scheduler.borrow_mut().push(class, id);
        }
    }

    pub(crate) fn detach(&self, id: TaskId) {
        let (cell, waker) = self.tasks.borrow_mut().detach(id);
        // User code (the output's and the waker's Drop) runs after the borrow ends.
        drop(cell);
        drop(waker);
    }

    fn turn(&self) {
        self.run_ready_tasks();
        self.receive_remote();
        self.fire_expired_timers();
        self.wait_for_completions();
        self.fire_expired_timers();
    }

    fn run_ready_tasks(&self) {
        if self.scheduler.borrow().is_multi_class() {
            self.run_classes();
            return;
        }
        // One class: nothing to share, so no clock reads (two vDSO calls a turn are a visible
        // share of a busy server's user time); polls are still counted.
        let mut polled = 0;
        while polled < self.event_interval {
            let Some(id) = self.scheduler.borrow_mut().pop(0) else {
                break;
            };
            polled += usize::from(self.poll_task(id, 0));
        }
        self.scheduler.borrow_mut().count_polls(0, polled as u64);
    }

    /// Several classes: each batch runs one class, chosen by virtual runtime, and is charged
    /// the time its polls took; a ready sensitive class ends a batch early; the turn ends after
    /// a time slice so timers and completions are looked at.
    fn run_classes(&self) {
        let mut budget = self.event_interval;
        let turn_start = Instant::now();
        let mut batch_start = turn_start;
        while budget > 0 {
            let Some(class) = self.scheduler.borrow_mut().pick() else {
                break;
            };
            let mut polled = 0;
            while polled < budget {
                let Some(id) = self.scheduler.borrow_mut().pop(class) else {
                    break;
                };
                polled += usize::from(self.poll_task(id, class));
                if self.scheduler.borrow().should_preempt(class)
                    || turn_start.elapsed() >= TIME_SLICE
                {
                    break;
                }
            }
            let now = Instant::now();
            self.scheduler
                .borrow_mut()
                .charge(class, now - batch_start, polled as u64);
            batch_start = now;
            budget -= polled;
            if now - turn_start >= TIME_SLICE {
                break;
            }
        }
    }

    /// Polls (or cancels) task `id` of `class`. `false` if the id was stale: nothing ran.
    fn poll_task(&self, id: TaskId, class: u8) -> bool {
        let start = self.tasks.borrow_mut().start_poll(id);
        let (cell, poll) = match start {
            Start::Skip => return false,
            Start::Poll(mut cell) => {
                let waker = waker(self.shared.id, id);
                budget::reset();
                let poll = cell.as_mut().poll(&mut Context::from_waker(&waker));
                (cell, poll)
            }
            Start::Cancel(mut cell) => {
                cell.as_mut().cancel();
                (cell, Poll::Ready(()))
            }
        };
        let after = self.tasks.borrow_mut().finish_poll(id, cell, poll);
        match after {
            AfterPoll::Idle => {}
            AfterPoll::Reschedule => self.scheduler.borrow_mut().push(class, id),
            AfterPoll::Finished(join_waker) => {
                if let Some(waker) = join_waker {
                    waker.wake();
                }
            }
            AfterPoll::Freed(cell) => drop(cell),
        }
        true
    }

    fn receive_remote(&self) {
        if !self
            .shared
            .notified
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return;
        }
        let mut wakes = self.remote_wakes.take();
        let mut spawns = self.remote_spawns.take();
        self.shared.take_remote(&mut wakes, &mut spawns);
        bump(
            &self.counters.remote_wakes,
            (wakes.len() + spawns.len()) as u64,
        );
        for id in wakes.drain(..) {
            self.schedule(id);
        }
        for future in spawns.drain(..) {
            // Detached: the RemoteJoinHandle reads the output through the wrapper.
            let id = self.insert_task(future, 0);
            self.detach(id);
        }
        *self.remote_wakes.borrow_mut() = wakes;
        *self.remote_spawns.borrow_mut() = spawns;
    }

    pub(crate) fn fire_expired_timers(&self) {
        let fired = self.timers.fire_expired();
        bump(&self.counters.timers_fired, fired);
    }

    fn has_ready_work(&self) -> bool {
        self.main_woken.get() || !self.scheduler.borrow().is_empty()
    }

    /// Ready tasks, or wakes from other threads waiting to be received.
    fn has_work_to_run(&self) -> bool {
        self.has_ready_work()
            || self
                .shared
                .notified
                .load(std::sync::atomic::Ordering::Acquire)
    }

    fn wait_for_completions(&self) {
        let mut may_advance = false;
        let wait = if self.has_work_to_run() {
            if self.driver.is_idle() {
                return;
            }
            Wait::No
        } else {
            match self.timers.time_to_next() {
                // Due, or close enough that the builder asked to spin rather than sleep.
                Some(timeout) if timeout <= self.timer_spin => Wait::No,
                // A paused clock does not reach the next deadline by itself: once nothing
                // else can happen now, it is moved there (below). A file operation or a
                // blocking job in progress is waited for first: its task is not waiting on a
                // timer, and would see the time jump past its timeout.
                Some(_) if self.timers.clock.is_paused() => {
                    if self.holds_clock() {
                        Wait::Until(None)
                    } else {
                        may_advance = true;
                        Wait::No
                    }
                }
                Some(timeout) => Wait::Until(Some(timeout - self.timer_spin)),
                None => Wait::Until(None),
            }
        };
        if let Err(e) = self.driver.turn(wait) {
            panic!("ringloop: io_uring_enter failed, the ring is unusable: {e}");
        }
        // Tasks whose ops completed: scheduled by id, without the waker's trip through the
        // thread-local runtime lookup.
        self.driver
            .drain_woken(|waker| match crate::task::waker::target(&waker) {
                Some(target) if target.runtime == self.shared.id => self.schedule(target.task),
                _ => waker.wake(),
            });
        if may_advance && !self.has_work_to_run() && !self.holds_clock() {
            // Every task waits on a timer or on a peer: time moves to the next deadline, which
            // fires at the turn's last step.
            self.timers.advance_to_next();
        }
    }

    /// A file operation or a blocking job is in progress (see `wait_for_completions`).
    fn holds_clock(&self) -> bool {
        self.driver.clock_holds() > 0
            || self
                .blocking
                .get()
                .is_some_and(|pool| pool.unfinished() > 0)
    }

    pub(crate) fn stats(&self) -> RuntimeStats {
        let driver = self.driver.stats();
        RuntimeStats {
            tasks_spawned: self.counters.tasks_spawned.get(),
            tasks_alive: self.tasks.borrow().len() as u64,
            polls: self
                .scheduler
                .borrow()
                .classes()
                .iter()
                .map(|c| c.polls)
                .sum(),
            ready_queue_depth: self.scheduler.borrow().len() as u64,
            ring_enters: driver.enters,
            sqes_submitted: driver.sqes_submitted,
            cqes_reaped: driver.cqes_reaped,
            cq_overflows: driver.cq_overflows,
            cq_overflow_flushes: driver.cq_overflow_flushes,
            cancels_submitted: driver.cancels_submitted,
            unknown_completions: driver.unknown_completions,
            ops_in_flight: driver.in_flight,
            timers_fired: self.counters.timers_fired.get(),
            timers_alive: self.timers.wheel.borrow().len() as u64,
            remote_wakes: self.counters.remote_wakes.get(),
            doorbell_failures: driver.doorbell_failures,
            sqes_backlogged: driver.backlogged,
            single_issuer: driver.flags.single_issuer,
            defer_taskrun: driver.flags.defer_taskrun,
            coop_taskrun: driver.flags.coop_taskrun,
            multishot: driver.multishot,
            buf_rings: driver.buf_rings,
            classes: self.class_stats(),
        }
    }

    fn class_stats(&self) -> Vec<ClassStats> {
        let tasks = self.tasks.borrow();
        self.scheduler
            .borrow()
            .classes()
            .iter()
            .enumerate()
            .map(|(i, class)| ClassStats {
                name: class.config.name.to_string(),
                shares: class.config.shares,
                tasks_alive: tasks.live_in(i as u8) as u64,
                polls: class.polls,
                cpu_time: class.cpu,
            })
            .collect()
    }

    /// Drops every task, cancels every operation, and lets the kernel finish with their memory
    /// (for up to [`SHUTDOWN_GRACE`](crate::driver::SHUTDOWN_GRACE), or until the deadline of
    /// `shutdown_timeout`, which also waits that long for the blocking pool's running jobs).
    fn shutdown(&self) {
        let deadline = self.shutdown_deadline.get();
        handle::unregister(self.shared.id);
        drop(self.shared.close());
        loop {
            // Dropping a future may drop JoinHandles or spawn: never hold the slab meanwhile.
            let Some(removed) = self.tasks.borrow_mut().remove_any() else {
                break;
            };
            drop(removed);
        }
        self.scheduler.borrow_mut().clear();
        if let Some(pool) = self.blocking.get() {
            pool.shutdown();
        }
        self.remote_spawns.borrow_mut().clear();
        // Timers still registered by escaped `Sleep`s stay in the wheel; their wakers find no
        // runtime and do nothing.
        self.driver
            .shutdown(deadline.unwrap_or_else(|| Instant::now() + crate::driver::SHUTDOWN_GRACE));
        if let (Some(deadline), Some(pool)) = (deadline, self.blocking.get()) {
            pool.wait_for_threads(deadline);
        }
    }
}

/// A ringloop runtime: one thread, one io_uring, its tasks and its timers.
///
/// A `Runtime` is not `Send`: its tasks need not be `Send`, so it stays on the thread that
/// built it (which is also the thread its `SINGLE_ISSUER` ring belongs to). Build it on the
/// thread that will run it — a [`Builder`] is `Send` and can be moved there first — and use
/// [`Runtime::handle`] to reach it from other threads.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<ringloop::Runtime>();
/// ```
///
/// Dropping it drops its tasks, cancels in-flight operations, keeps their buffers until the
/// kernel lets go (leaking, never freeing, what the kernel still holds after a grace period),
/// closes the ring and returns.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let rt = ringloop::Runtime::new()?;
/// let out = rt.block_on(async {
///     let task = ringloop::spawn(async { 40 + 2 });
///     ringloop::time::sleep(Duration::from_micros(300)).await;
///     task.await.unwrap()
/// });
/// assert_eq!(out, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Runtime {
    core: Rc<Core>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.core.shared.id)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime with the default [`Builder`] settings.
    ///
    /// # Errors
    ///
    /// See [`Builder::build`].
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    fn with_config(config: RingConfig, core_config: CoreConfig) -> io::Result<Runtime> {
        let shared = handle::register()?;
        let driver = match Driver::new(config, shared.doorbell.as_raw_fd()) {
            Ok(driver) => driver,
            Err(e) => {
                handle::unregister(shared.id);
                return Err(e);
            }
        };
        let core = Core {
            shared,
            tasks: RefCell::new(TaskSlab::default()),
            scheduler: RefCell::new(Scheduler::new(&core_config.classes, 1024)),
            max_tasks: core_config.max_tasks,
            main_woken: Cell::new(false),
            driver: Rc::new(driver),
            timers: Timers::new(core_config.start_paused),
            counters: SchedulerCounters::default(),
            event_interval: core_config.event_interval,
            timer_spin: core_config.timer_spin,
            remote_wakes: RefCell::new(Vec::new()),
            remote_spawns: RefCell::new(Vec::new()),
            blocking: std::cell::OnceCell::new(),
            blocking_config: core_config.blocking,
            shutdown_deadline: Cell::new(None),
        };
        Ok(Runtime {
            core: Rc::new(core),
        })
    }

    /// Runs `future` to completion on this thread, running spawned tasks, I/O and timers while
    /// it waits. May be called any number of times; tasks left running stay in the runtime
    /// and continue in the next `block_on`.
    ///
    /// # Panics
    ///
    /// If called while this thread is already inside a `block_on`. A panic of `future` itself
    /// propagates out of `block_on`; panics of spawned tasks are caught and reported through
    /// their `JoinHandle`.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _context = context::enter(self.core.clone());
        let core = &*self.core;
        let mut future = pin!(future);
        let waker: Waker = waker(core.shared.id, MAIN_TASK);
        let mut cx = Context::from_waker(&waker);
        core.main_woken.set(true);
        loop {
            if core.main_woken.replace(false) {
                budget::reset();
                if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                    return output;
                }
            }
            core.turn();
        }
    }

    /// Spawns a task on this runtime from outside it (it runs during the next `block_on`).
    pub fn spawn<F: Future + 'static>(&self, future: F) -> JoinHandle<F::Output> {
        self.core.spawn(future)
    }

    /// A `Send + Sync` handle for other threads.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.core.shared.clone(),
        }
    }

    /// A snapshot of the runtime's counters.
    pub fn stats(&self) -> RuntimeStats {
        self.core.stats()
    }
}

impl Runtime {
    /// Shuts the runtime down as dropping it does, but waits up to `timeout` in all: for the
    /// kernel to finish with the cancelled operations (instead of the 1 s a drop allows), and
    /// for jobs still running on the blocking pool to return (a drop does not wait for them).
    /// What is still running then is left behind: a job's thread runs on detached, and the
    /// memory of an operation the kernel still holds is leaked, never freed.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = ringloop::Runtime::new()?;
    /// let job = rt.block_on(async {
    ///     ringloop::spawn_blocking(|| std::thread::sleep(Duration::from_millis(20)))
    /// });
    /// drop(job); // the job runs on; shutdown waits for it
    /// let start = std::time::Instant::now();
    /// rt.shutdown_timeout(Duration::from_secs(5));
    /// assert!(start.elapsed() < Duration::from_secs(5));
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn shutdown_timeout(self, timeout: Duration) {
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(86_400));
        self.core.shutdown_deadline.set(Some(deadline));
        drop(self);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _context = context::try_enter(self.core.clone());
        self.core.shutdown();
    }
}

/// Runs `future` to completion on a new default runtime.
///
/// # Panics
///
/// If the runtime cannot be built (see [`Builder::build`]); and as [`Runtime::block_on`].
///
/// # Examples
///
/// ```
/// let answer = ringloop::block_on(async { 42 });
/// assert_eq!(answer, 42);
/// ```
#[track_caller]
pub fn block_on<F: Future>(future: F) -> F::Output {
    let runtime = match Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => panic!("ringloop::block_on could not build a runtime: {e}"),
    };
    runtime.block_on(future)
}

/// The current runtime's driver, for I/O types created inside it.
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub(crate) fn current_driver() -> Rc<Driver> {
    context::current().driver.clone()
}
