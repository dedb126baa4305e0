//! `spawn_blocking`: a pool of threads for work that cannot be made asynchronous (a database
//! call, a DNS lookup, a CPU-heavy computation), so it never stalls the runtime's thread.
//!
//! Each runtime has its own pool, started lazily: threads are created as jobs arrive, up to
//! [`Builder::max_blocking_threads`](crate::Builder::max_blocking_threads), and exit after
//! staying idle for the keep-alive period. A finished job wakes its waiting task through the
//! task's waker, which from a pool thread goes through the runtime's remote queue and rings
//! the ring: the runtime never polls for results.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::task::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    /// Signalled when a thread exits (for `wait_for_threads`).
    exited: Condvar,
    max_threads: usize,
    keep_alive: Duration,
    /// Jobs given to the pool whose result is not stored yet: while any is, a paused clock
    /// does not move by itself (its task is not waiting on a timer).
    unfinished: Arc<AtomicUsize>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock, so a poisoned lock only means a panic in our own
        // bookkeeping, which leaves plain counters behind: keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One runtime's blocking pool.
pub(crate) struct BlockingPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BlockingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingPool")
            .field("max_threads", &self.shared.max_threads)
            .finish_non_exhaustive()
    }
}

impl BlockingPool {
    pub(crate) fn new(max_threads: usize, keep_alive: Duration) -> BlockingPool {
        BlockingPool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                exited: Condvar::new(),
                max_threads: max_threads.max(1),
                keep_alive,
                unfinished: Arc::new(AtomicUsize::new(0)),
            }),
        }
    }

    fn execute(&self, job: Job) {
        let mut state = self.shared.lock();
        if state.shutdown {
            return; // dropped with the runtime: its task is gone too
        }
        state.queue.push_back(job);
        if state.idle > 0 {
            self.shared.work.notify_one();
            return;
        }
        if state.threads >= self.shared.max_threads {
            return; // a busy thread takes it when done
        }
        state.threads += 1;
        drop(state);
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("ringloop-blocking".into())
            .spawn(move || worker(&shared));
        if spawned.is_err() {
            // Out of threads: the job waits for a running thread, if any; with none, it waits
            // until a later spawn succeeds.
            self.shared.lock().threads -= 1;
        }
    }

    /// How many jobs have not stored their result yet.
    pub(crate) fn unfinished(&self) -> usize {
        self.shared.unfinished.load(Ordering::Acquire)
    }

    /// Drops queued jobs and lets the threads exit once their current job ends. Does not wait
    /// for running jobs (they cannot be interrupted), so dropping a runtime stays prompt.
    pub(crate) fn shutdown(&self) {
        let queued = {
            let mut state = self.shared.lock();
            state.shutdown = true;
            std::mem::take(&mut state.queue)
        };
        self.shared.work.notify_all();
        drop(queued);
    }

    /// After [`shutdown`](Self::shutdown): waits until every thread has exited (its running
    /// job returned) or `deadline` passes. Returns the threads still running.
    pub(crate) fn wait_for_threads(&self, deadline: std::time::Instant) -> usize {
        let mut state = self.shared.lock();
        loop {
            let now = std::time::Instant::now();
            if state.threads == 0 || now >= deadline {
                return state.threads;
            }
            state = self
                .shared
                .exited
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

fn worker(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        if let Some(job) = state.queue.pop_front() {
            drop(state);
            job();
            state = shared.lock();
            continue;
        }
        if state.shutdown {
            break;
        }
        state.idle += 1;
        let (next, timeout) = shared
            .work
            .wait_timeout(state, shared.keep_alive)
            .unwrap_or_else(PoisonError::into_inner);
        state = next;
        state.idle -= 1;
        if timeout.timed_out() && state.queue.is_empty() {
            break;
        }
    }
    state.threads -= 1;
    shared.exited.notify_all();
}

/// Where a blocking job leaves its result for its task.
struct Slot<R> {
    result: Option<std::thread::Result<R>>,
    waker: Option<Waker>,
}

/// The task side of a blocking job: waits for the result and returns it (or resumes the
/// job's panic, which the task harness reports through the `JoinHandle`).
struct Waiting<R> {
    slot: Arc<Mutex<Slot<R>>>,
}

impl<R> Future for Waiting<R> {
    type Output = R;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.result.take() {
            Some(Ok(value)) => Poll::Ready(value),
            Some(Err(panic)) => {
                drop(slot);
                resume_unwind(panic)
            }
            None => {
                crate::task::waker::register(&mut slot.waker, cx.waker());
                Poll::Pending
            }
        }
    }
}

/// Runs `f` on the runtime's blocking pool and returns a handle to its result.
///
/// The returned [`JoinHandle`] behaves like one from [`spawn`](crate::spawn): awaiting it
/// gives the result, or a [`JoinError`](crate::JoinError) whose `is_panic()` is true if `f`
/// panicked. Dropping it detaches the job; `abort` stops waiting for it, but cannot stop `f`
/// once it has started.
///
/// # Panics
///
/// Outside a runtime.
///
/// # Examples
///
/// ```
/// ringloop::block_on(async {
///     let sum = ringloop::spawn_blocking(|| (1..=1000u64).sum::<u64>()).await.unwrap();
///     assert_eq!(sum, 500_500);
/// });
/// ```
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let core = crate::runtime::context::current();
    let slot = Arc::new(Mutex::new(Slot {
        result: None,
        waker: None,
    }));
    let pool = core.blocking_pool();
    let unfinished = pool.shared.unfinished.clone();
    unfinished.fetch_add(1, Ordering::Relaxed);
    let job: Job = {
        let slot = slot.clone();
        Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(f));
            let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            slot.result = Some(result);
            let waker = slot.waker.take();
            drop(slot);
            // Before the wake: the runtime, once woken, must not see this job as running.
            unfinished.fetch_sub(1, Ordering::Release);
            if let Some(waker) = waker {
                waker.wake();
            }
        })
    };
    pool.execute(job);
    core.spawn(Waiting { slot })
}
