//! `JoinSet`: a set of spawned tasks whose outputs are taken in the order they finish.
//!
//! Each task is spawned inside a small wrapper that holds a [`Finished`] guard. The guard's
//! `Drop` runs however the task ends (its future returns, panics, or is dropped by `abort`)
//! and puts the task's key on the set's `done` queue, waking whoever waits in
//! [`JoinSet::join_next`]. So taking the next output costs no scan over the set.
//!
//! # Invariants
//!
//! - (J1) A key in `done` whose slot holds another id (the task was removed meanwhile by
//!   `detach_all`, and its key reused) is stale and skipped: ids are never reused.
//! - (J2) `join_next` takes a key off `done` only once its handle has returned the output,
//!   so a `join_next` dropped halfway loses nothing.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::{JoinError, JoinHandle};

/// A set of tasks spawned on the current runtime, awaited in the order they finish.
///
/// The same shape as `tokio::task::JoinSet`. Dropping the set aborts every task still in it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringloop::task::JoinSet;
///
/// ringloop::block_on(async {
///     let mut set = JoinSet::new();
///     for ms in [30u64, 10, 20] {
///         set.spawn(async move {
///             ringloop::time::sleep(Duration::from_millis(ms)).await;
///             ms
///         });
///     }
///     let mut order = Vec::new();
///     while let Some(done) = set.join_next().await {
///         order.push(done.unwrap());
///     }
///     assert_eq!(order, [10, 20, 30]);
/// });
/// ```
pub struct JoinSet<T> {
    tasks: Slab<(u64, JoinHandle<T>)>,
    next_id: u64,
    shared: Rc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Keys (with ids, J1) of tasks that ended, in the order they ended.
    done: RefCell<VecDeque<(usize, u64)>>,
    waiter: RefCell<Option<Waker>>,
}

/// Reports its task's end to the set, from the wrapper future, however that future ends.
struct Finished {
    shared: Rc<Shared>,
    key: usize,
    id: u64,
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.shared.done.borrow_mut().push_back((self.key, self.id));
        let waiter = self.shared.waiter.borrow_mut().take();
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }
}

impl<T: 'static> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            tasks: Slab::new(),
            next_id: 0,
            shared: Rc::default(),
        }
    }

    /// Spawns `future` on the current runtime as a task of this set.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = T> + 'static,
    {
        let entry = self.tasks.vacant_entry();
        let (key, id) = (entry.key(), self.next_id);
        self.next_id += 1;
        let finished = Finished {
            shared: self.shared.clone(),
            key,
            id,
        };
        let handle = crate::spawn(async move {
            let _finished = finished;
            future.await
        });
        entry.insert((id, handle));
    }

    /// Waits for the next task to finish and returns its output, or its [`JoinError`] if it
    /// panicked or was aborted. `None` once the set is empty.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: an output is taken out of the set only when this future returns it (J2).
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Polls for the next finished task (for hand-written futures); `join_next` is this as a
    /// future.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        loop {
            if self.tasks.is_empty() {
                return Poll::Ready(None);
            }
            let Some(&(key, id)) = self.shared.done.borrow().front() else {
                crate::task::waker::register(&mut self.shared.waiter.borrow_mut(), cx.waker());
                return Poll::Pending;
            };
            match self.tasks.get_mut(key) {
                Some((held, handle)) if *held == id => {
                    // The task ended; its handle answers at once, or after the runtime marks
                    // it finished (it then wakes `cx`).
                    let output = std::task::ready!(Pin::new(handle).poll(cx));
                    self.shared.done.borrow_mut().pop_front();
                    self.tasks.remove(key);
                    return Poll::Ready(Some(output));
                }
                // (J1) stale: that task left the set.
                _ => {
                    self.shared.done.borrow_mut().pop_front();
                }
            }
        }
    }

    /// The output of a task that already finished, if any, without waiting.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        let waker = Waker::noop();
        match self.poll_join_next(&mut Context::from_waker(waker)) {
            Poll::Ready(output) => output,
            Poll::Pending => None,
        }
    }

    /// Waits for every task and returns their outputs, in the order they finished.
    ///
    /// # Panics
    ///
    /// If a task panicked, with its panic (the other tasks are aborted when the set drops);
    /// if a task was aborted.
    pub async fn join_all(mut self) -> Vec<T> {
        let mut outputs = Vec::with_capacity(self.len());
        while let Some(output) = self.join_next().await {
            match output {
                Ok(value) => outputs.push(value),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("a task of the JoinSet was aborted: {e}"),
            }
        }
        outputs
    }

    /// Aborts every task in the set. They stay in it: [`join_next`](Self::join_next) returns
    /// each one's cancelled error (or its output, if it finished first).
    pub fn abort_all(&mut self) {
        for (_, (_, handle)) in &self.tasks {
            handle.abort();
        }
    }

    /// Aborts every task and waits until all have ended; the set is then empty.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Removes every task from the set without aborting them: they run on, detached.
    pub fn detach_all(&mut self) {
        // Their guards will still report to `done`: stale keys, skipped (J1).
        self.tasks.clear();
        self.shared.done.borrow_mut().clear();
    }

    /// Tasks in the set (running, or finished and not yet joined).
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

impl<T: 'static> Default for JoinSet<T> {
    fn default() -> Self {
        JoinSet::new()
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        for (_, (_, handle)) in &self.tasks {
            handle.abort();
        }
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet")
            .field("len", &self.tasks.len())
            .finish()
    }
}
