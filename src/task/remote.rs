//! Tasks spawned from other threads through a [`Handle`](crate::Handle), and their handles.
//!
//! The future is wrapped in a [`RemoteTask`] that reports its output (or panic, or
//! cancellation) into an `Arc`-shared state the `Send` [`RemoteJoinHandle`] reads from any
//! thread. The wrapper is an ordinary local task once it reaches its runtime.

use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use super::JoinError;

struct State<T> {
    output: Option<Result<T, JoinError>>,
    finished: bool,
    abort: bool,
    join_waker: Option<Waker>,
    task_waker: Option<Waker>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finish(&self, output: Result<T, JoinError>) {
        let mut state = self.lock();
        if state.finished {
            return;
        }
        state.finished = true;
        state.output = Some(output);
        let waker = state.join_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The task-side wrapper of a remotely spawned future.
pub(crate) struct RemoteTask<F: Future> {
    // Boxed so the wrapper is `Unpin` and needs no pin projection.
    future: Option<Pin<Box<F>>>,
    shared: Arc<Shared<F::Output>>,
}

impl<F: Future + Send + 'static> RemoteTask<F>
where
    F::Output: Send + 'static,
{
    pub(crate) fn new(future: F) -> (RemoteTask<F>, RemoteJoinHandle<F::Output>) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                output: None,
                finished: false,
                abort: false,
                join_waker: None,
                task_waker: None,
            }),
        });
        let task = RemoteTask {
            future: Some(Box::pin(future)),
            shared: shared.clone(),
        };
        (task, RemoteJoinHandle { shared })
    }
}

impl<F: Future> Future for RemoteTask<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut state = self.shared.lock();
            if state.abort {
                drop(state);
                self.future = None;
                self.shared.finish(Err(JoinError::cancelled()));
                return Poll::Ready(());
            }
            super::waker::register(&mut state.task_waker, cx.waker());
        }
        let Some(future) = self.future.as_mut() else {
            return Poll::Ready(());
        };
        let output = match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(value)) => Ok(value),
            Err(panic) => Err(JoinError::panic(panic)),
        };
        self.future = None;
        self.shared.finish(output);
        Poll::Ready(())
    }
}

impl<F: Future> Drop for RemoteTask<F> {
    fn drop(&mut self) {
        // Dropped before finishing: the runtime shut down, or the task was aborted.
        self.future = None;
        self.shared.finish(Err(JoinError::cancelled()));
    }
}

/// A `Send` handle to a task spawned through [`Handle::spawn`](crate::Handle::spawn).
///
/// It can be awaited from any thread and any executor. Dropping it detaches the task.
pub struct RemoteJoinHandle<T> {
    shared: Arc<Shared<T>>,
}

impl<T> RemoteJoinHandle<T> {
    /// Cancels the task at its next scheduling point; awaiting then yields a cancelled
    /// [`JoinError`]. Does nothing if it already finished.
    pub fn abort(&self) {
        let mut state = self.shared.lock();
        if state.finished {
            return;
        }
        state.abort = true;
        let waker = state.task_waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.shared.lock().finished
    }
}

impl<T> Future for RemoteJoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.shared.lock();
        if let Some(output) = state.output.take() {
            return Poll::Ready(output);
        }
        assert!(
            !state.finished,
            "RemoteJoinHandle polled after it returned its output"
        );
        super::waker::register(&mut state.join_waker, cx.waker());
        Poll::Pending
    }
}

impl<T> fmt::Debug for RemoteJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
